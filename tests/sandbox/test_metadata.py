"""Metadata endpoints over real HTTP: service document, $metadata CSDL, EntityDefinitions,
Attributes (with type casts and option sets) and relationships - all derived from the schema.

Metadata is read-only and independent of the data, so the tests share the session sandbox
(`sandbox`/`api` from conftest)."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import httpx
import pytest

from d365nb.sandbox import schema as schema_module

EDMX = "{http://docs.oasis-open.org/odata/ns/edmx}"
EDM = "{http://docs.oasis-open.org/odata/ns/edm}"
NS = "Microsoft.Dynamics.CRM"


# Every table of the sandbox (schema/tables/).
TABLES = (
    "lead",
    "task",
    "account",
    "contact",
    "systemuser",
    "team",
    "opportunity",
    "email",
    "activityparty",
    "businessunit",
    "transactioncurrency",
)


@pytest.fixture(scope="module")
def tables():
    return schema_module.load()


def ok(response: httpx.Response) -> dict:
    assert response.status_code == 200, response.text
    assert response.headers["OData-Version"] == "4.0"
    return response.json()


def definition(api: httpx.Client, table: str, params: dict[str, str], below: str = "") -> dict:
    """A table's EntityDefinition, or what lies `below` it (`/Attributes`, a cast of them ...),
    queried with `params`."""
    return ok(api.get(f"EntityDefinitions(LogicalName='{table}'){below}", params=params))


def attributes(api: httpx.Client, table: str, params: dict[str, str]) -> dict:
    """The `Attributes` of a table's EntityDefinition, queried with `params`."""
    return definition(api, table, params, "/Attributes")


def refused(response: httpx.Response, status: int) -> dict:
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert set(error) >= {"code", "message"} and "\n" not in error["message"]
    return error


# -- service document ----------------------------------------------------------------------


def test_service_document_lists_every_entity_set(api, sandbox, tables):
    body = ok(api.get(""))
    assert body["@odata.context"] == sandbox.api + "$metadata"
    names = {item["name"] for item in body["value"]}
    assert {t.entity_set for t in tables.values()} | {"EntityDefinitions"} <= names
    assert all(
        item["kind"] == "EntitySet" and item["url"] == item["name"] for item in body["value"]
    )


# -- $metadata -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def csdl(sandbox):
    headers = {"Authorization": f"Bearer {sandbox.token}"}
    response = httpx.get(sandbox.api + "$metadata", headers=headers)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/xml")
    return ET.fromstring(response.content)


def entity_types(csdl) -> dict[str, ET.Element]:
    schema_el = csdl.find(f"{EDMX}DataServices/{EDM}Schema")
    return {e.get("Name"): e for e in schema_el.findall(f"{EDM}EntityType")}


def test_csdl_is_an_edmx_4_document_in_the_crm_namespace(csdl):
    assert csdl.tag == f"{EDMX}Edmx" and csdl.get("Version") == "4.0"
    schema_el = csdl.find(f"{EDMX}DataServices/{EDM}Schema")
    assert schema_el.get("Namespace") == NS and schema_el.get("Alias") == "mscrm"


def test_csdl_entity_types_have_their_key(csdl, tables):
    types = entity_types(csdl)
    for table in tables.values():
        entity = types[table.logical_name]
        key = entity.find(f"{EDM}Key/{EDM}PropertyRef").get("Name")
        assert key == table.primary_id
        props = {p.get("Name"): p.get("Type") for p in entity.findall(f"{EDM}Property")}
        assert props[key] == "Edm.Guid"


@pytest.mark.parametrize(
    ("table", "prop", "edm"),
    [
        ("lead", "subject", "Edm.String"),
        ("lead", "description", "Edm.String"),
        ("task", "percentcomplete", "Edm.Int32"),
        ("lead", "statuscode", "Edm.Int32"),
        ("account", "revenue", "Edm.Decimal"),
        ("account", "creditonhold", "Edm.Boolean"),
        ("lead", "versionnumber", "Edm.Int64"),
        ("lead", "createdon", "Edm.DateTimeOffset"),
        ("contact", "birthdate", "Edm.Date"),
        ("lead", "_parentaccountid_value", "Edm.Guid"),
        ("task", "_regardingobjectid_value", "Edm.Guid"),
        ("task", "_ownerid_value", "Edm.Guid"),
    ],
)
def test_csdl_property_types(csdl, table, prop, edm):
    props = {
        p.get("Name"): p.get("Type") for p in entity_types(csdl)[table].findall(f"{EDM}Property")
    }
    assert props[prop] == edm


def test_csdl_lookups_appear_only_as_value_properties(csdl):
    props = {p.get("Name") for p in entity_types(csdl)["task"].findall(f"{EDM}Property")}
    assert "regardingobjectid" not in props and "_regardingobjectid_value" in props


def test_csdl_navigation_properties_are_consistent(csdl):
    types = entity_types(csdl)
    checked = 0
    for name, entity in types.items():
        props = {p.get("Name") for p in entity.findall(f"{EDM}Property")}
        for nav in entity.findall(f"{EDM}NavigationProperty"):
            target_type = nav.get("Type").removeprefix("Collection(").removesuffix(")")
            target = types[target_type.removeprefix("mscrm.")]
            partner = nav.get("Partner")
            if partner:
                back = {n.get("Name"): n for n in target.findall(f"{EDM}NavigationProperty")}
                assert back[partner].get("Partner") == nav.get("Name"), (name, nav.get("Name"))
            for rc in nav.findall(f"{EDM}ReferentialConstraint"):
                assert rc.get("Property") in props
                key = target.find(f"{EDM}Key/{EDM}PropertyRef").get("Name")
                assert rc.get("ReferencedProperty") == key
            checked += 1
    assert checked > 40


def test_csdl_has_both_sides_of_a_relationship(csdl):
    task_navs = {
        n.get("Name"): n for n in entity_types(csdl)["task"].findall(f"{EDM}NavigationProperty")
    }
    lead_navs = {
        n.get("Name"): n for n in entity_types(csdl)["lead"].findall(f"{EDM}NavigationProperty")
    }
    single = task_navs["regardingobjectid_lead_task"]
    assert single.get("Type") == "mscrm.lead" and single.get("Partner") == "Lead_Tasks"
    assert lead_navs["Lead_Tasks"].get("Type") == "Collection(mscrm.task)"


def test_csdl_container_binds_entity_sets_and_offers_whoami(csdl, tables):
    schema_el = csdl.find(f"{EDMX}DataServices/{EDM}Schema")
    container = schema_el.find(f"{EDM}EntityContainer")
    sets = {s.get("Name"): s for s in container.findall(f"{EDM}EntitySet")}
    assert set(sets) == {t.entity_set for t in tables.values()}
    types = entity_types(csdl)
    for table in tables.values():
        entity_set = sets[table.entity_set]
        assert entity_set.get("EntityType") == f"mscrm.{table.logical_name}"
        navs = {
            n.get("Name") for n in types[table.logical_name].findall(f"{EDM}NavigationProperty")
        }
        for binding in entity_set.findall(f"{EDM}NavigationPropertyBinding"):
            assert binding.get("Path") in navs and binding.get("Target") in sets
    assert container.find(f"{EDM}FunctionImport[@Name='WhoAmI']") is not None
    assert schema_el.find(f"{EDM}Function[@Name='WhoAmI']") is not None


def test_csdl_annotations_show_change_tracking_only_when_asked(api, csdl, tables):
    term = "Org.OData.Capabilities.V1.ChangeTracking"
    assert term not in api.get("$metadata").text
    annotated = ET.fromstring(api.get("$metadata", params={"annotations": "true"}).content)
    container = annotated.find(f"{EDMX}DataServices/{EDM}Schema/{EDM}EntityContainer")
    for table in tables.values():
        entity_set = container.find(f"{EDM}EntitySet[@Name='{table.entity_set}']")
        note = entity_set.find(f"{EDM}Annotation[@Term='{term}']")
        assert (note is not None) == table.change_tracking
        if note is not None:
            value = note.find(f"{EDM}Record/{EDM}PropertyValue[@Property='Supported']")
            assert value.get("Bool") == "true"


def test_csdl_annotations_mark_read_only_columns(api):
    annotated = ET.fromstring(api.get("$metadata", params={"annotations": "true"}).content)
    lead = entity_types(annotated)["lead"]
    fullname = lead.find(f"{EDM}Property[@Name='fullname']")
    subject = lead.find(f"{EDM}Property[@Name='subject']")
    computed = f"{EDM}Annotation[@Term='Org.OData.Core.V1.Computed']"
    assert fullname.find(computed) is not None and subject.find(computed) is None


# -- EntityDefinitions ---------------------------------------------------------------------

ENTITY_FIELDS = {
    "MetadataId",
    "EntitySetName",
    "LogicalName",
    "LogicalCollectionName",
    "PrimaryIdAttribute",
    "PrimaryNameAttribute",
    "ObjectTypeCode",
    "DisplayName",
    "DisplayCollectionName",
    "ChangeTrackingEnabled",
    "OwnershipType",
    "IsActivity",
    "SchemaName",
}


def test_entity_definitions_describe_every_table(api, tables):
    body = ok(api.get("EntityDefinitions"))
    by_name = {e["LogicalName"]: e for e in body["value"]}
    assert set(by_name) == set(tables)
    for name, table in tables.items():
        entity = by_name[name]
        assert set(entity) >= ENTITY_FIELDS
        assert entity["EntitySetName"] == table.entity_set
        assert entity["PrimaryIdAttribute"] == table.primary_id
        assert entity["PrimaryNameAttribute"] == table.primary_name
        assert entity["ObjectTypeCode"] == table.object_type_code
        assert entity["OwnershipType"] == table.ownership
        assert entity["IsActivity"] == table.is_activity
        assert entity["ChangeTrackingEnabled"] == table.change_tracking
        label = entity["DisplayName"]
        assert label["LocalizedLabels"][0]["Label"] == table.display
        assert label["LocalizedLabels"][0]["LanguageCode"] == 1033
        assert label["UserLocalizedLabel"]["Label"] == table.display


def test_entity_definition_by_logical_name_selects_and_keeps_metadata_id(api, sandbox):
    body = ok(
        api.get(
            "EntityDefinitions(LogicalName='lead')", params={"$select": "LogicalName,EntitySetName"}
        )
    )
    assert set(body) == {"@odata.context", "LogicalName", "EntitySetName", "MetadataId"}
    assert body["EntitySetName"] == "leads"
    assert body["@odata.context"] == (
        sandbox.api + "$metadata#EntityDefinitions(LogicalName,EntitySetName)/$entity"
    )


def test_entity_definition_by_metadata_id_is_the_same_table(api):
    by_name = ok(api.get("EntityDefinitions(LogicalName='task')"))
    by_id = ok(api.get(f"EntityDefinitions({by_name['MetadataId']})"))
    assert by_id["LogicalName"] == "task" and by_id["MetadataId"] == by_name["MetadataId"]


def test_metadata_ids_are_stable_across_sandboxes(api, empty_api):
    params = {"$select": "LogicalName"}
    first = ok(api.get("EntityDefinitions(LogicalName='lead')", params=params))
    second = ok(empty_api.get("EntityDefinitions(LogicalName='lead')", params=params))
    assert first["MetadataId"] == second["MetadataId"]


@pytest.mark.parametrize(
    ("flt", "expected"),
    [
        ("LogicalName eq 'lead'", {"lead"}),
        (
            "ChangeTrackingEnabled eq true",
            set(TABLES) - {"activityparty"},  # every table but activityparty
        ),
        ("IsActivity eq true", {"task", "email"}),
        (
            "OwnershipType eq Microsoft.Dynamics.CRM.OwnershipTypes'BusinessOwned'",
            {"systemuser", "team", "businessunit"},
        ),
        ("ObjectTypeCode lt 3 and not (LogicalName eq 'account')", {"contact"}),
        ("startswith(EntitySetName,'sys') or EntitySetName eq 'teams'", {"systemuser", "team"}),
        ("IsPrivate eq false and (LogicalName eq 'lead')", {"lead"}),
    ],
)
def test_entity_definitions_filter(api, tables, flt, expected):
    expected = {n for n in expected if tables[n].change_tracking} if "Change" in flt else expected
    body = ok(api.get("EntityDefinitions", params={"$select": "LogicalName", "$filter": flt}))
    assert {e["LogicalName"] for e in body["value"]} == expected
    assert all(set(e) == {"LogicalName", "MetadataId"} for e in body["value"])


def test_entity_definitions_expand_attributes(api, tables):
    picklist_columns = (
        "Attributes($select=LogicalName;$filter=AttributeType eq "
        "Microsoft.Dynamics.CRM.AttributeTypeCode'Picklist')"
    )
    body = definition(api, "account", {"$select": "LogicalName", "$expand": picklist_columns})
    picklists = {n for n, c in tables["account"].columns.items() if c.type == "Picklist"}
    assert {"accountcategorycode", "industrycode", "customertypecode"} <= picklists
    assert {a["LogicalName"] for a in body["Attributes"]} == picklists


def test_unknown_entity_is_404(api):
    error = refused(api.get("EntityDefinitions(LogicalName='invoice')"), 404)
    assert "'invoice'" in error["message"]
    refused(api.get("EntityDefinitions(00000000-0000-0000-0000-000000000001)"), 404)
    refused(api.get("EntityDefinitions(LogicalName='nope')/Attributes"), 404)


def test_unknown_property_in_select_is_400(api):
    error = refused(api.get("EntityDefinitions", params={"$select": "LogicalName,Nonsense"}), 400)
    assert error["message"] == (
        "Could not find a property named 'Nonsense' on type 'Microsoft.Dynamics.CRM.EntityMetadata'."
    )


def test_bad_filter_is_400_with_position(api):
    error = refused(api.get("EntityDefinitions", params={"$filter": "LogicalName eq 'le"}), 400)
    assert "position" in error["message"]
    refused(api.get("EntityDefinitions", params={"$filter": "Bogus eq 1"}), 400)


def test_unsupported_option_is_400(api):
    refused(api.get("EntityDefinitions", params={"$skip": "1"}), 400)
    refused(api.get("EntityDefinitions", params={"$top": "two"}), 400)
    refused(api.get("EntityDefinitions", params={"$orderby": "Nonsense"}), 400)


def test_orderby_top_and_aliases(api):
    body = ok(
        api.get(
            "EntityDefinitions",
            params={"$select": "LogicalName", "$orderby": "ObjectTypeCode desc", "$top": "2"},
        )
    )
    assert [e["LogicalName"] for e in body["value"]] == ["transactioncurrency", "task"]
    by_label = attributes(
        api,
        "task",
        {
            "$select": "LogicalName",
            "$filter": "AttributeOf eq null and IsValidForCreate eq @c",
            "@c": "false",
            "$orderby": "DisplayName asc",
        },
    )
    names = [a["LogicalName"] for a in by_label["value"]]
    # "Created By", "Created By (Delegate)", "Created On", ...
    assert names[:3] == ["createdby", "createdonbehalfby", "createdon"]
    assert "subject" not in names


def test_metadata_is_read_only(api):
    # POST creates tables, columns and keys (test_metadata_writes.py); an incomplete definition
    # is refused and changes nothing, and the other verbs stay read-only.
    before = ok(api.get("EntityDefinitions", params={"$select": "LogicalName"}))
    refused(api.post("EntityDefinitions", json={"SchemaName": "new_thing"}), 400)
    error = refused(api.delete("EntityDefinitions(LogicalName='lead')"), 405)
    assert "read-only" in error["message"]
    error = refused(api.patch("EntityDefinitions(LogicalName='lead')", json={}), 405)
    assert "read-only" in error["message"]
    assert ok(api.get("EntityDefinitions", params={"$select": "LogicalName"})) == before


# -- Attributes ----------------------------------------------------------------------------

ODATA_TYPES = {
    "String": "StringAttributeMetadata",
    "Memo": "MemoAttributeMetadata",
    "Integer": "IntegerAttributeMetadata",
    "BigInt": "BigIntAttributeMetadata",
    "Money": "MoneyAttributeMetadata",
    "Decimal": "DecimalAttributeMetadata",
    "Double": "DoubleAttributeMetadata",
    "Boolean": "BooleanAttributeMetadata",
    "DateTime": "DateTimeAttributeMetadata",
    "Picklist": "PicklistAttributeMetadata",
    "State": "StateAttributeMetadata",
    "Status": "StatusAttributeMetadata",
    "Lookup": "LookupAttributeMetadata",
    "Customer": "LookupAttributeMetadata",
    "Owner": "LookupAttributeMetadata",
    "Uniqueidentifier": "UniqueIdentifierAttributeMetadata",
}


@pytest.mark.parametrize(
    "table",
    TABLES,
)
def test_attributes_list_every_column_with_its_type(api, tables, table):
    body = ok(api.get(f"EntityDefinitions(LogicalName='{table}')/Attributes"))
    by_name = {a["LogicalName"]: a for a in body["value"]}
    assert set(by_name) == set(tables[table].columns)
    for name, column in tables[table].columns.items():
        attr = by_name[name]
        assert attr["@odata.type"] == f"#{NS}.{ODATA_TYPES[column.type]}"
        assert attr["AttributeType"] == column.type
        assert attr["AttributeTypeName"] == {"Value": f"{column.type}Type"}
        assert attr["RequiredLevel"]["Value"] == column.required
        assert attr["DisplayName"]["UserLocalizedLabel"]["Label"] == column.display
        assert attr["IsPrimaryId"] == (name == tables[table].primary_id)
        assert attr["IsPrimaryName"] == (name == tables[table].primary_name)
        assert attr["IsValidForCreate"] == (column.valid_for_create and not column.read_only)
        assert attr["IsValidForRead"] is True
        assert attr["EntityLogicalName"] == table


def test_attributes_filter_by_attribute_type_enum(api, tables):
    body = attributes(
        api,
        "lead",
        {
            "$select": "LogicalName",
            "$filter": "AttributeType eq Microsoft.Dynamics.CRM.AttributeTypeCode'Picklist'",
        },
    )
    picklists = {n for n, c in tables["lead"].columns.items() if c.type == "Picklist"}
    assert {"leadsourcecode", "leadqualitycode", "industrycode"} <= picklists
    assert {a["LogicalName"] for a in body["value"]} == picklists


def test_attributes_filter_by_required_level(api, tables):
    body = attributes(
        api,
        "lead",
        {
            "$select": "SchemaName,LogicalName",
            "$filter": "RequiredLevel/Value eq "
            "Microsoft.Dynamics.CRM.AttributeRequiredLevel'ApplicationRequired'",
        },
    )
    expected = {n for n, c in tables["lead"].columns.items() if c.required == "ApplicationRequired"}
    assert {a["LogicalName"] for a in body["value"]} == expected == {"subject", "lastname"}


def test_attribute_by_logical_name_has_its_details(api):
    attr = ok(api.get("EntityDefinitions(LogicalName='lead')/Attributes(LogicalName='subject')"))
    assert attr["@odata.type"] == f"#{NS}.StringAttributeMetadata"
    assert attr["MaxLength"] == 300 and attr["Format"] == "Text"
    assert attr["DisplayName"]["UserLocalizedLabel"]["Label"] == "Topic"
    assert attr["RequiredLevel"]["Value"] == "ApplicationRequired"
    number = ok(
        api.get("EntityDefinitions(LogicalName='task')/Attributes(LogicalName='percentcomplete')")
    )
    assert (number["MinValue"], number["MaxValue"]) == (0, 100)
    money = ok(
        api.get("EntityDefinitions(LogicalName='account')/Attributes(LogicalName='revenue')")
    )
    assert money["Precision"] == 2
    date = ok(
        api.get(
            "EntityDefinitions(LogicalName='lead')/Attributes(LogicalName='estimatedclosedate')"
        )
    )
    assert date["Format"] == "DateOnly" and date["DateTimeBehavior"] == {"Value": "DateOnly"}


def test_attribute_by_metadata_id(api):
    by_name = ok(
        api.get("EntityDefinitions(LogicalName='lead')/Attributes(LogicalName='lastname')")
    )
    entity = ok(api.get("EntityDefinitions(LogicalName='lead')", params={"$select": "LogicalName"}))
    by_id = ok(
        api.get(f"EntityDefinitions({entity['MetadataId']})/Attributes({by_name['MetadataId']})")
    )
    assert by_id["LogicalName"] == "lastname"


def test_derived_properties_need_the_cast(api):
    error = refused(
        api.get(
            "EntityDefinitions(LogicalName='lead')/Attributes",
            params={"$select": "LogicalName,MaxLength"},
        ),
        400,
    )
    assert "Microsoft.Dynamics.CRM.AttributeMetadata" in error["message"]
    body = ok(
        api.get(
            "EntityDefinitions(LogicalName='lead')/Attributes/Microsoft.Dynamics.CRM.StringAttributeMetadata",
            params={"$select": "LogicalName,MaxLength"},
        )
    )
    lengths = {a["LogicalName"]: a["MaxLength"] for a in body["value"]}
    assert lengths["subject"] == 300 and lengths["lastname"] == 50 and "description" not in lengths


def test_picklist_cast_expands_option_set(api, tables):
    params = {"$select": "LogicalName", "$expand": "OptionSet($select=Options),GlobalOptionSet"}
    body = definition(api, "account", params, f"/Attributes/{NS}.PicklistAttributeMetadata")
    assert body["@odata.context"].endswith(
        "$metadata#EntityDefinitions('account')/Attributes/Microsoft.Dynamics.CRM."
        "PicklistAttributeMetadata(LogicalName,OptionSet,GlobalOptionSet,OptionSet(Options))"
    )
    by_name = {a["LogicalName"]: a for a in body["value"]}
    assert set(by_name) == {n for n, c in tables["account"].columns.items() if c.type == "Picklist"}
    options = by_name["accountcategorycode"]["OptionSet"]["Options"]
    assert [(o["Value"], o["Label"]["UserLocalizedLabel"]["Label"]) for o in options] == [
        (1, "Preferred Customer"),
        (2, "Standard"),
    ]
    assert options[0]["Color"] is None
    assert options[0]["Label"]["LocalizedLabels"][0]["LanguageCode"] == 1033
    assert by_name["accountcategorycode"]["GlobalOptionSet"] is None
    assert "@odata.type" not in by_name["industrycode"]


def test_state_and_status_options_know_each_other(api, tables):
    base = "EntityDefinitions(LogicalName='lead')/Attributes/Microsoft.Dynamics.CRM."
    state = ok(
        api.get(
            base + "StateAttributeMetadata",
            params={"$select": "LogicalName", "$expand": "OptionSet"},
        )
    )
    status = ok(
        api.get(
            base + "StatusAttributeMetadata",
            params={"$select": "LogicalName", "$expand": "OptionSet"},
        )
    )
    states = {o["Value"]: o for o in state["value"][0]["OptionSet"]["Options"]}
    statuses = {o["Value"]: o for o in status["value"][0]["OptionSet"]["Options"]}
    assert {v: o["DefaultStatus"] for v, o in states.items()} == {0: 1, 1: 3, 2: 4}
    assert {v: o["State"] for v, o in statuses.items()} == {
        1: 0,
        2: 0,
        3: 1,
        4: 2,
        5: 2,
        6: 2,
        7: 2,
    }
    assert statuses[5]["Label"]["UserLocalizedLabel"]["Label"] == "Cannot Contact"
    assert status["value"][0]["OptionSet"]["OptionSetType"] == "Status"


def test_boolean_cast_has_true_and_false_options(api):
    body = ok(
        api.get(
            "EntityDefinitions(LogicalName='lead')/Attributes(LogicalName='donotemail')"
            "/Microsoft.Dynamics.CRM.BooleanAttributeMetadata",
            params={"$select": "LogicalName,DefaultValue", "$expand": "OptionSet"},
        )
    )
    assert body["DefaultValue"] is False
    option_set = body["OptionSet"]
    assert option_set["TrueOption"]["Value"] == 1
    assert option_set["TrueOption"]["Label"]["UserLocalizedLabel"]["Label"] == "Do Not Allow"
    assert option_set["FalseOption"]["Label"]["UserLocalizedLabel"]["Label"] == "Allow"


def test_lookup_cast_lists_targets(api):
    body = ok(
        api.get(
            "EntityDefinitions(LogicalName='task')/Attributes/Microsoft.Dynamics.CRM.LookupAttributeMetadata",
            params={"$select": "LogicalName,Targets,AttributeType"},
        )
    )
    targets = {a["LogicalName"]: (a["AttributeType"], set(a["Targets"])) for a in body["value"]}
    assert targets["regardingobjectid"] == (
        "Lookup",
        {"account", "contact", "lead", "opportunity"},
    )
    assert targets["ownerid"] == ("Owner", {"systemuser", "team"})


def test_option_set_of_one_attribute_by_path(api):
    body = ok(
        api.get(
            "EntityDefinitions(LogicalName='task')/Attributes(LogicalName='prioritycode')"
            "/Microsoft.Dynamics.CRM.PicklistAttributeMetadata/OptionSet",
            params={"$select": "Options"},
        )
    )
    assert [o["Value"] for o in body["Options"]] == [0, 1, 2]
    assert set(body) == {"@odata.context", "Options", "MetadataId"}


def test_wrong_cast_and_unknown_attribute_are_refused(api):
    base = "EntityDefinitions(LogicalName='lead')/Attributes"
    refused(
        api.get(base + "(LogicalName='subject')/Microsoft.Dynamics.CRM.PicklistAttributeMetadata"),
        400,
    )
    refused(api.get(base + "(LogicalName='nosuchcolumn')"), 404)
    refused(api.get(base + "/Microsoft.Dynamics.CRM.NoSuchAttributeMetadata"), 404)
    refused(
        api.get(
            base + "/Microsoft.Dynamics.CRM.LookupAttributeMetadata",
            params={"$expand": "OptionSet"},
        ),
        400,
    )


# -- relationships -------------------------------------------------------------------------


def test_relationships_resolve_navigation_properties(api):
    one_to_many = ok(api.get("EntityDefinitions(LogicalName='lead')/OneToManyRelationships"))
    lead_tasks = next(r for r in one_to_many["value"] if r["SchemaName"] == "Lead_Tasks")
    assert (
        lead_tasks["ReferencedEntity"] == "lead" and lead_tasks["ReferencedAttribute"] == "leadid"
    )
    assert lead_tasks["ReferencingEntity"] == "task"
    assert lead_tasks["ReferencingAttribute"] == "regardingobjectid"
    assert lead_tasks["ReferencedEntityNavigationPropertyName"] == "Lead_Tasks"
    assert lead_tasks["ReferencingEntityNavigationPropertyName"] == "regardingobjectid_lead_task"

    many_to_one = ok(
        api.get(
            "EntityDefinitions(LogicalName='contact')/ManyToOneRelationships",
            params={
                "$select": "SchemaName,ReferencingEntityNavigationPropertyName",
                "$filter": "ReferencingAttribute eq 'parentcustomerid'",
            },
        )
    )
    navs = {
        r["SchemaName"]: r["ReferencingEntityNavigationPropertyName"] for r in many_to_one["value"]
    }
    assert navs == {
        "contact_customer_accounts": "parentcustomerid_account",
        "contact_customer_contacts": "parentcustomerid_contact",
    }


def test_every_lookup_relationship_is_served(api, tables):
    served = {r["SchemaName"] for r in ok(api.get("RelationshipDefinitions"))["value"]}
    declared = {
        rel.schema_name
        for table in tables.values()
        for column in table.columns.values()
        for rel in column.relationships
    }
    assert served == declared


def test_relationship_by_schema_name(api):
    body = ok(api.get("RelationshipDefinitions(SchemaName='Account_Tasks')"))
    assert body["ReferencedEntity"] == "account" and body["ReferencingEntity"] == "task"
    refused(api.get("RelationshipDefinitions(SchemaName='No_Such')"), 404)


def test_many_to_many_and_keys_are_empty(api):
    assert (
        ok(api.get("EntityDefinitions(LogicalName='lead')/ManyToManyRelationships"))["value"] == []
    )
    assert ok(api.get("EntityDefinitions(LogicalName='lead')/Keys"))["value"] == []


# -- derivation, naming, auth --------------------------------------------------------------


def test_schema_names_follow_dataverse_capitalisation(api):
    entity = ok(
        api.get("EntityDefinitions(LogicalName='systemuser')", params={"$select": "SchemaName"})
    )
    assert entity["SchemaName"] == "SystemUser"
    attrs = attributes(
        api,
        "account",
        {
            "$select": "SchemaName,LogicalName",
            "$filter": "startswith(LogicalName,'emailaddress')",
        },
    )
    # the documented SchemaNames (account reference page)
    assert [a["SchemaName"] for a in attrs["value"]] == [
        "EMailAddress1",
        "EMailAddress2",
        "EMailAddress3",
    ]


def test_service_document_without_trailing_slash(sandbox):
    response = httpx.get(
        sandbox.api.rstrip("/"), headers={"Authorization": f"Bearer {sandbox.token}"}
    )
    assert response.status_code == 200 and response.json()["value"]


def test_metadata_needs_the_bearer_token(sandbox):
    for path in ("", "$metadata", "EntityDefinitions"):
        assert httpx.get(sandbox.api + path).status_code == 401


def test_global_option_sets_are_empty_and_relationships_filter(api):
    assert ok(api.get("GlobalOptionSetDefinitions"))["value"] == []
    refused(api.get("GlobalOptionSetDefinitions(Name='x')"), 404)
    body = ok(
        api.get(
            "RelationshipDefinitions",
            params={"$select": "SchemaName", "$filter": "ReferencingEntity eq 'lead'"},
        )
    )
    names = {r["SchemaName"] for r in body["value"]}
    assert {"lead_parent_account", "lead_customer_accounts", "lead_owning_user"} <= names


def test_a_new_table_definition_appears_everywhere_without_code(tables):
    # Metadata is derived from the schema objects: a new table needs only its definition.
    from d365nb.sandbox.metadata import Catalog, build_csdl
    from d365nb.sandbox.schema import Column, Relationship, Table

    invoice = Table(
        "invoice",
        "invoices",
        "invoiceid",
        "name",
        "Invoice",
        "Invoices",
        1090,
        columns={
            "invoiceid": Column("invoiceid", "Uniqueidentifier", "Invoice"),
            "name": Column(
                "name", "String", "Name", required="ApplicationRequired", max_length=300
            ),
            "customerid": Column(
                "customerid",
                "Customer",
                "Customer",
                relationships=(
                    Relationship("invoice_customer_accounts", "account", "customerid_account"),
                ),
            ),
        },
    )
    extended = {**tables, "invoice": invoice}
    catalog = Catalog(extended)
    assert catalog.entities["invoice"]["EntitySetName"] == "invoices"
    assert [a["LogicalName"] for a in catalog.attributes["invoice"]] == [
        "invoiceid",
        "name",
        "customerid",
    ]
    assert any(r["ReferencingEntity"] == "invoice" for r in catalog.one_to_many["account"])
    doc = ET.fromstring(build_csdl(extended))
    account = entity_types(doc)["account"]
    navs = {n.get("Name"): n.get("Type") for n in account.findall(f"{EDM}NavigationProperty")}
    assert navs["invoice_customer_accounts"] == "Collection(mscrm.invoice)"


# -- RetrieveMetadataChanges ---------------------------------------------------------------


def retrieve_changes(api, query: dict, **extra: str) -> httpx.Response:
    import json

    args = ",".join(["Query=@p1", *(f"{k}=@{k}" for k in extra)])
    params = {"@p1": json.dumps(query), **{f"@{k}": v for k, v in extra.items()}}
    return api.get(f"RetrieveMetadataChanges({args})", params=params)


def test_retrieve_metadata_changes_returns_typed_attributes_in_one_query(api):
    query = {
        "Criteria": {
            "FilterOperator": "And",
            "Conditions": [
                {
                    "PropertyName": "LogicalName",
                    "ConditionOperator": "Equals",
                    "Value": {"Type": "System.String", "Value": "lead"},
                }
            ],
        },
        "Properties": {"PropertyNames": ["LogicalName", "Attributes"]},
        "AttributeQuery": {
            "Properties": {"PropertyNames": ["LogicalName", "MaxLength", "MinValue", "OptionSet"]},
            "Criteria": {
                "Conditions": [
                    {
                        "PropertyName": "AttributeType",
                        "ConditionOperator": "In",
                        "Value": {"Type": "System.String[]", "Value": ["String", "Picklist"]},
                    }
                ]
            },
        },
    }
    body = ok(retrieve_changes(api, query))
    assert body["ServerVersionStamp"]
    [lead] = body["EntityMetadata"]
    assert lead["LogicalName"] == "lead" and "EntitySetName" not in lead
    attrs = {a["LogicalName"]: a for a in lead["Attributes"]}
    assert attrs["subject"]["MaxLength"] == 300
    assert attrs["subject"]["@odata.type"] == f"#{NS}.ComplexStringAttributeMetadata"
    sources = attrs["leadsourcecode"]["OptionSet"]["Options"]
    assert {o["Value"] for o in sources} >= {1, 8}
    assert "statuscode" not in attrs and "numberofemployees" not in attrs


def test_retrieve_metadata_changes_or_filter_and_version_stamp(api):
    def equals(name: str) -> dict:
        value = {"Type": "System.String", "Value": name}
        return {"PropertyName": "LogicalName", "ConditionOperator": "Equals", "Value": value}

    query = {
        "Criteria": {"FilterOperator": "Or", "Conditions": [equals("team"), equals("task")]},
        "Properties": {"PropertyNames": ["LogicalName", "ObjectTypeCode"]},
    }
    body = ok(retrieve_changes(api, query))
    assert {e["LogicalName"] for e in body["EntityMetadata"]} == {"team", "task"}
    stamp = body["ServerVersionStamp"]
    again = ok(retrieve_changes(api, query, ClientVersionStamp=f"'{stamp}'"))
    assert again["EntityMetadata"] == [] and again["ServerVersionStamp"] == stamp


def test_retrieve_metadata_changes_refuses_bad_input(api):
    refused(api.get("RetrieveMetadataChanges(Query=@p1)", params={"@p1": "{not json"}), 400)
    refused(api.get("RetrieveMetadataChanges"), 400)
    bad_op = {
        "Criteria": {"Conditions": [{"PropertyName": "LogicalName", "ConditionOperator": "Like"}]}
    }
    refused(retrieve_changes(api, bad_op), 400)
