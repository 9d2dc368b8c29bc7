"""Metadata writes over real HTTP: custom tables (`POST EntityDefinitions`) and columns
(`POST EntityDefinitions(...)/Attributes`), then the new table and columns queried, written,
listed in `EntityDefinitions`/`Attributes` and `$metadata`; choices (multi-select) columns read
and written as "1,2" with "A; B" formatted values and queried with `ContainValues` /
`DoesNotContainValues`. Each test gets a fresh empty sandbox (`empty_api`)."""

from __future__ import annotations

import httpx
import pytest

NS = "Microsoft.Dynamics.CRM"
FORMATTED = "OData.Community.Display.V1.FormattedValue"


def label(text: str) -> dict:
    return {
        "@odata.type": f"{NS}.Label",
        "LocalizedLabels": [
            {"@odata.type": f"{NS}.LocalizedLabel", "Label": text, "LanguageCode": 1033}
        ],
    }


# The request body of the create-update-entity-definitions doc's example.
BANK_ACCOUNT = {
    "@odata.type": f"{NS}.EntityMetadata",
    "Attributes": [
        {
            "AttributeType": "String",
            "AttributeTypeName": {"Value": "StringType"},
            "Description": label("Type the name of the bank account"),
            "DisplayName": label("Account Name"),
            "IsPrimaryName": True,
            "RequiredLevel": {
                "Value": "None",
                "CanBeChanged": True,
                "ManagedPropertyLogicalName": "canmodifyrequirementlevelsettings",
            },
            "SchemaName": "new_AccountName",
            "@odata.type": f"{NS}.StringAttributeMetadata",
            "FormatName": {"Value": "Text"},
            "MaxLength": 100,
        }
    ],
    "Description": label("An entity to store information about customer bank accounts"),
    "DisplayCollectionName": label("Bank Accounts"),
    "DisplayName": label("Bank Account"),
    "HasActivities": False,
    "HasNotes": False,
    "IsActivity": False,
    "OwnershipType": "UserOwned",
    "SchemaName": "new_BankAccount",
}

ACTIVITIES = {
    "@odata.type": f"{NS}.MultiSelectPicklistAttributeMetadata",
    "SchemaName": "sample_OutdoorActivities",
    "DisplayName": label("Outdoor activities"),
    "RequiredLevel": {"Value": "None"},
    "OptionSet": {
        "@odata.type": f"{NS}.OptionSetMetadata",
        "IsGlobal": False,
        "OptionSetType": "Picklist",
        "Options": [
            {"Value": v, "Label": label(t)}
            for v, t in [
                (1, "Swimming"),
                (2, "Hiking"),
                (3, "Mountain Climbing"),
                (4, "Fishing"),
                (5, "Hunting"),
                (6, "Running"),
                (7, "Boating"),
                (8, "Skiing"),
                (9, "Camping"),
            ]
        ],
    },
}


def _attribute(api: httpx.Client, table: str, body: dict) -> httpx.Response:
    return api.post(f"EntityDefinitions(LogicalName='{table}')/Attributes", json=body)


def test_create_custom_table(empty_api: httpx.Client) -> None:
    """https://learn.microsoft.com/power-apps/developer/data-platform/webapi/create-update-entity-definitions-using-web-api
    POST the documented body: 204 with `OData-EntityId: .../EntityDefinitions(<MetadataId>)`;
    the table then has its primary id/name, an entity set, `$metadata` and rows."""
    r = empty_api.post("EntityDefinitions", json=BANK_ACCOUNT)
    assert r.status_code == 204, r.text
    location = r.headers["OData-EntityId"]
    assert "/EntityDefinitions(" in location
    metadata_id = location.rsplit("(", 1)[1].rstrip(")")
    entity = empty_api.get(f"EntityDefinitions({metadata_id})").json()
    assert entity["LogicalName"] == "new_bankaccount"
    assert entity["SchemaName"] == "new_BankAccount"
    assert entity["EntitySetName"] == "new_bankaccounts"
    assert entity["PrimaryIdAttribute"] == "new_bankaccountid"
    assert entity["PrimaryNameAttribute"] == "new_accountname"
    assert entity["IsCustomEntity"] is True and entity["OwnershipType"] == "UserOwned"
    assert entity["ObjectTypeCode"] >= 10000
    names = [
        e["LogicalName"]
        for e in empty_api.get("EntityDefinitions?$select=LogicalName").json()["value"]
    ]
    assert "new_bankaccount" in names
    attrs = empty_api.get(
        "EntityDefinitions(LogicalName='new_bankaccount')/Attributes?$select=LogicalName"
    ).json()["value"]
    assert {"new_bankaccountid", "new_accountname", "ownerid", "createdon"} <= {
        a["LogicalName"] for a in attrs
    }
    csdl = empty_api.get("$metadata").text
    assert '<EntityType Name="new_bankaccount"' in csdl
    assert 'EntitySet Name="new_bankaccounts"' in csdl
    # rows: create, read, update, delete
    r = empty_api.post("new_bankaccounts", json={"new_accountname": "Checking"})
    assert r.status_code == 204, r.text
    url = r.headers["OData-EntityId"]
    id = url.rsplit("(", 1)[1].rstrip(")")
    row = empty_api.get(f"new_bankaccounts({id})").json()
    assert row["new_accountname"] == "Checking" and row["statecode"] == 0
    assert row["_ownerid_value"]  # the caller owns it, as for every user-owned table
    assert (
        empty_api.patch(f"new_bankaccounts({id})", json={"new_accountname": "Savings"}).status_code
        == 204
    )
    got = empty_api.get("new_bankaccounts?$filter=new_accountname eq 'Savings'").json()["value"]
    assert [g["new_bankaccountid"] for g in got] == [id]
    assert empty_api.delete(f"new_bankaccounts({id})").status_code == 204
    # the name column keeps its documented length
    r = empty_api.post("new_bankaccounts", json={"new_accountname": "x" * 101})
    assert r.status_code == 400


@pytest.mark.parametrize(
    "change",
    [
        {"SchemaName": "BankAccount"},  # no customization prefix
        {"SchemaName": None},
        {"Attributes": []},  # no primary name attribute
        {"DisplayName": None},
        {"OwnershipType": "Sideways"},
        {"Attributes": [{**BANK_ACCOUNT["Attributes"][0], "IsPrimaryName": False}]},
    ],
)
def test_bad_table_definitions_are_400(empty_api: httpx.Client, change: dict) -> None:
    """https://learn.microsoft.com/power-apps/developer/data-platform/webapi/create-update-entity-definitions-using-web-api
    A bad definition is answered 400 with a Dataverse error body, and makes no table."""
    body = {k: v for k, v in {**BANK_ACCOUNT, **change}.items() if v is not None}
    r = empty_api.post("EntityDefinitions", json=body)
    assert r.status_code == 400, r.text
    assert set(r.json()["error"]) == {"code", "message"}
    assert empty_api.get("EntityDefinitions(LogicalName='new_bankaccount')").status_code == 404
    assert empty_api.get("new_bankaccounts").status_code == 404


def test_duplicate_table_and_bad_json_are_400(empty_api: httpx.Client) -> None:
    """https://learn.microsoft.com/power-apps/developer/data-platform/webapi/create-update-entity-definitions-using-web-api
    A second table with the same name, a body that is not JSON: 400, never 5xx."""
    assert empty_api.post("EntityDefinitions", json=BANK_ACCOUNT).status_code == 204
    assert empty_api.post("EntityDefinitions", json=BANK_ACCOUNT).status_code == 400
    r = empty_api.post(
        "EntityDefinitions", content=b"{not json", headers={"Content-Type": "application/json"}
    )
    assert r.status_code == 400


def test_add_columns_of_each_type(empty_api: httpx.Client) -> None:
    """https://learn.microsoft.com/power-apps/developer/data-platform/webapi/create-update-column-definitions-using-web-api
    Columns added to a shipped table are writable, queryable and listed with their type."""
    bodies = [
        {"@odata.type": f"{NS}.StringAttributeMetadata", "SchemaName": "new_Code", "MaxLength": 10},
        {
            "@odata.type": f"{NS}.IntegerAttributeMetadata",
            "SchemaName": "new_Count",
            "MinValue": 0,
            "MaxValue": 100,
        },
        {
            "@odata.type": f"{NS}.DecimalAttributeMetadata",
            "SchemaName": "new_Ratio",
            "Precision": 3,
        },
        {"@odata.type": f"{NS}.MoneyAttributeMetadata", "SchemaName": "new_Budget"},
        {
            "@odata.type": f"{NS}.BooleanAttributeMetadata",
            "SchemaName": "new_Flag",
            "DefaultValue": False,
            "OptionSet": {
                "TrueOption": {"Value": 1, "Label": label("On")},
                "FalseOption": {"Value": 0, "Label": label("Off")},
            },
        },
        {
            "@odata.type": f"{NS}.DateTimeAttributeMetadata",
            "SchemaName": "new_Due",
            "DateTimeBehavior": {"Value": "DateOnly"},
            "Format": "DateOnly",
        },
        {
            "@odata.type": f"{NS}.PicklistAttributeMetadata",
            "SchemaName": "new_Size",
            "OptionSet": {
                "IsGlobal": False,
                "Options": [
                    {"Value": 1, "Label": label("Small")},
                    {"Value": 2, "Label": label("Large")},
                ],
            },
        },
    ]
    for body in bodies:
        body = {**body, "DisplayName": label(body["SchemaName"][4:])}
        r = _attribute(empty_api, "account", body)
        assert r.status_code == 204, r.text
        assert "/Attributes(" in r.headers["OData-EntityId"]
    r = empty_api.post(
        "accounts",
        json={
            "name": "A",
            "new_code": "X1",
            "new_count": 5,
            "new_ratio": 0.125,
            "new_budget": 10.5,
            "new_flag": True,
            "new_due": "2026-03-01",
            "new_size": 2,
        },
        headers={"Prefer": "return=representation"},
    )
    assert r.status_code == 201, r.text
    row = r.json()
    assert (
        row["new_code"],
        row["new_count"],
        row["new_flag"],
        row["new_due"],
        row["new_size"],
    ) == ("X1", 5, True, "2026-03-01", 2)
    assert row["new_budget_base"] == 10.5  # computed from the base currency, as for revenue
    got = empty_api.get(
        "accounts?$select=name&$filter=new_count gt 4 and new_size eq 2 and new_flag eq true"
    ).json()["value"]
    assert [g["name"] for g in got] == ["A"]
    # the column limits hold
    assert empty_api.post("accounts", json={"name": "B", "new_count": 101}).status_code == 400
    assert empty_api.post("accounts", json={"name": "B", "new_code": "x" * 11}).status_code == 400
    assert empty_api.post("accounts", json={"name": "B", "new_size": 3}).status_code == 400
    # listed with their types, and in $metadata
    attr = empty_api.get(
        f"EntityDefinitions(LogicalName='account')/Attributes(LogicalName='new_size')/{NS}.PicklistAttributeMetadata?$expand=OptionSet"
    ).json()
    assert attr["IsCustomAttribute"] is True
    assert [o["Value"] for o in attr["OptionSet"]["Options"]] == [1, 2]
    csdl = empty_api.get("$metadata").text
    assert 'Name="new_budget"' in csdl and 'Name="new_due" Type="Edm.Date"' in csdl


def test_columns_stay_in_their_own_sandbox(empty_api: httpx.Client, api: httpx.Client) -> None:
    """https://learn.microsoft.com/power-apps/developer/data-platform/webapi/create-update-column-definitions-using-web-api
    A column added in one organisation does not appear in another one served by the same
    process (the shipped table definitions are shared and never changed)."""
    body = {
        "@odata.type": f"{NS}.StringAttributeMetadata",
        "SchemaName": "new_Only",
        "DisplayName": label("Only"),
    }
    assert _attribute(empty_api, "account", body).status_code == 204
    assert empty_api.get("accounts?$select=new_only").status_code == 200
    assert api.get("accounts?$select=new_only").status_code == 400
    assert (
        api.get(
            "EntityDefinitions(LogicalName='account')/Attributes(LogicalName='new_only')"
        ).status_code
        == 404
    )


@pytest.mark.parametrize(
    "body",
    [
        {"@odata.type": f"{NS}.StringAttributeMetadata", "SchemaName": "NoPrefix"},
        {"@odata.type": f"{NS}.ImageAttributeMetadata", "SchemaName": "new_Picture"},
        {
            "@odata.type": f"{NS}.IntegerAttributeMetadata",
            "SchemaName": "new_N",
            "MinValue": 5,
            "MaxValue": 1,
        },
        {"@odata.type": f"{NS}.PicklistAttributeMetadata", "SchemaName": "new_P"},  # no options
        {
            "@odata.type": f"{NS}.StringAttributeMetadata",
            "SchemaName": "new_S",
            "MaxLength": "long",
        },
    ],
)
def test_bad_column_definitions_are_400(empty_api: httpx.Client, body: dict) -> None:
    """https://learn.microsoft.com/power-apps/developer/data-platform/webapi/create-update-column-definitions-using-web-api
    A column the sandbox cannot create is a 400 with a Dataverse error body; nothing changes."""
    r = _attribute(empty_api, "account", {**body, "DisplayName": label("X")})
    assert r.status_code == 400, r.text
    assert set(r.json()["error"]) == {"code", "message"}
    name = body["SchemaName"].lower()
    assert empty_api.get(f"accounts?$select={name}").status_code == 400
    # the same name twice: the second is refused
    good = {
        "@odata.type": f"{NS}.StringAttributeMetadata",
        "SchemaName": "new_Twice",
        "DisplayName": label("T"),
    }
    assert _attribute(empty_api, "account", good).status_code == 204
    assert _attribute(empty_api, "account", good).status_code == 400


@pytest.fixture
def outdoor(empty_api: httpx.Client) -> httpx.Client:
    """contact.sample_outdooractivities and the multi-select doc's eight contacts."""
    assert (
        _attribute(
            empty_api, "contact", {**ACTIVITIES, "DisplayName": label("Outdoor activities")}
        ).status_code
        == 204
    )
    people = {
        "Wayne Yarborough": "1, 9",
        "Monte Orton": "2",
        "Randal Maple": "4",
        "Hiram Mundy": "2,3,8,9",
        "Barbara Weber": "1,4,7",
        "Georgette Sullivan": "4,5,9",
        "Verna Kennedy": "2,4,9",
        "Marvin Bracken": "1,2,8,9",
    }
    for name, values in people.items():
        first, last = name.split()
        r = empty_api.post(
            "contacts",
            json={"firstname": first, "lastname": last, "sample_outdooractivities": values},
        )
        assert r.status_code == 204, r.text
    return empty_api


def outdoor_fans(api: httpx.Client, function: str, values: str) -> list[str]:
    """The sorted full names of the contacts `function` (`ContainValues` or
    `DoesNotContainValues`) keeps for the outdoor activities `values` (a list literal)."""
    f = f"{NS}.{function}(PropertyName='sample_outdooractivities',PropertyValues={values})"
    r = api.get(f"contacts?$select=fullname,sample_outdooractivities&$filter={f}")
    assert r.status_code == 200, r.text
    return sorted(c["fullname"] for c in r.json()["value"])


def test_choices_values_and_formatted_values(outdoor: httpx.Client) -> None:
    """https://learn.microsoft.com/power-apps/developer/data-platform/multi-select-picklist
    Written as "1, 9", read back as "1,9"; the formatted value joins the labels with "; "."""
    r = outdoor.get(
        "contacts?$select=fullname,sample_outdooractivities&$filter=lastname eq 'Yarborough'",
        headers={"Prefer": f'odata.include-annotations="{FORMATTED}"'},
    )
    row = r.json()["value"][0]
    assert row["sample_outdooractivities"] == "1,9"
    assert row[f"sample_outdooractivities@{FORMATTED}"] == "Swimming; Camping"
    attr = outdoor.get(
        "EntityDefinitions(LogicalName='contact')/Attributes(LogicalName='sample_outdooractivities')"
    ).json()
    assert attr["AttributeTypeName"] == {"Value": "MultiSelectPicklistType"}
    # `eq` compares the whole value, as the doc lists it among the usable operators
    got = outdoor.get("contacts?$select=fullname&$filter=sample_outdooractivities eq '1,9'").json()[
        "value"
    ]
    assert [c["fullname"] for c in got] == ["Wayne Yarborough"]
    # values outside the option set, or not numbers, are refused
    for bad in ("10", "1,x", 3):
        r = outdoor.post("contacts", json={"lastname": "Bad", "sample_outdooractivities": bad})
        assert r.status_code == 400, (bad, r.text)


def test_contain_values(outdoor: httpx.Client) -> None:
    """https://learn.microsoft.com/power-apps/developer/data-platform/multi-select-picklist
    `ContainValues(...,PropertyValues=['2'])` returns the four contacts who like hiking, as the
    doc's example answers."""
    # the list's brackets may come percent-encoded
    assert outdoor_fans(outdoor, "ContainValues", "%5B'2'%5D") == [
        "Hiram Mundy",
        "Marvin Bracken",
        "Monte Orton",
        "Verna Kennedy",
    ]
    # any of several values; "9" does not match "19"-like text
    assert outdoor_fans(outdoor, "ContainValues", "['7','5']") == [
        "Barbara Weber",
        "Georgette Sullivan",
    ]


def test_does_not_contain_values(outdoor: httpx.Client) -> None:
    """https://learn.microsoft.com/power-apps/developer/data-platform/multi-select-picklist
    `DoesNotContainValues(... ['2'])`: the doc's four contacts who do not like hiking."""
    assert outdoor_fans(outdoor, "DoesNotContainValues", "['2']") == [
        "Barbara Weber",
        "Georgette Sullivan",
        "Randal Maple",
        "Wayne Yarborough",
    ]
    # bad calls: a value outside the options, no values, a column that is not multi-select
    for call in (
        "ContainValues(PropertyName='sample_outdooractivities',PropertyValues=['99'])",
        "ContainValues(PropertyName='sample_outdooractivities',PropertyValues=[])",
        "ContainValues(PropertyName='lastname',PropertyValues=['1'])",
    ):
        assert outdoor.get(f"contacts?$filter={NS}.{call}").status_code == 400, call


def test_customisations_survive_reopening_the_database(tmp_path) -> None:
    """https://learn.microsoft.com/power-apps/developer/data-platform/webapi/create-update-entity-definitions-using-web-api
    A file-backed sandbox reopened later still serves its custom tables, columns and keys, with
    their rows, as an organisation keeps its customisations."""
    from d365nb import sandbox as sandbox_module
    from tests.support.sandboxes import api_client

    db = str(tmp_path / "org.db")
    with sandbox_module.start(data="empty", db=db) as handle, api_client(handle) as api:
        assert api.post("EntityDefinitions", json=BANK_ACCOUNT).status_code == 204
        assert _attribute(api, "contact", ACTIVITIES).status_code == 204
        key = {"SchemaName": "new_NameKey", "KeyAttributes": ["new_accountname"]}
        r = api.post("EntityDefinitions(LogicalName='new_bankaccount')/Keys", json=key)
        assert r.status_code == 204, r.text
        assert api.post("new_bankaccounts", json={"new_accountname": "Kept"}).status_code == 204
        r = api.post("contacts", json={"lastname": "Kept", "sample_outdooractivities": "2,3"})
        assert r.status_code == 204
    with sandbox_module.start(data="empty", db=db) as handle, api_client(handle) as api:
        row = api.get("new_bankaccounts(new_accountname='Kept')?$select=new_accountname")
        assert row.status_code == 200, row.text
        f = f"{NS}.ContainValues(PropertyName='sample_outdooractivities',PropertyValues=['3'])"
        got = api.get(f"contacts?$select=lastname,sample_outdooractivities&$filter={f}").json()
        assert [(c["lastname"], c["sample_outdooractivities"]) for c in got["value"]] == [
            ("Kept", "2,3")
        ]
        # new rows continue the counters (versions above the reopened rows')
        r = api.post("new_bankaccounts", json={"new_accountname": "New"})
        assert r.status_code == 204
        rows = api.get("new_bankaccounts?$select=new_accountname,versionnumber").json()["value"]
        versions = {x["new_accountname"]: int(x["versionnumber"]) for x in rows}
        assert versions["New"] > versions["Kept"]
        r = api.post("new_bankaccounts", json={"new_accountname": "kept"})
        assert r.status_code == 412  # the key still holds
