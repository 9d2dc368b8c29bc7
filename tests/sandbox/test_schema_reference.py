"""Tables generated from Microsoft's table/column reference: documented columns with their
documented types and options, currency columns, sequential ids, e-mails with activity parties.

Sources:
https://learn.microsoft.com/power-apps/developer/data-platform/reference/entities/account
https://learn.microsoft.com/power-apps/developer/data-platform/reference/entities/email
https://learn.microsoft.com/power-apps/developer/data-platform/reference/entities/activityparty
https://learn.microsoft.com/power-apps/developer/data-platform/transaction-currency-currency-entity
https://learn.microsoft.com/power-apps/developer/data-platform/webapi/create-entity-web-api
"""

from __future__ import annotations

import pytest

from d365nb.sandbox import schema
from d365nb.sandbox.schema import documented
from d365nb.sandbox.store import sequence_of
from tests.support.records import create, created_id

ANNOTATIONS = {"Prefer": 'odata.include-annotations="*"'}

# (table, column, documented AttributeType): a sample of each page's columns.
DOCUMENTED = [
    ("account", "address1_latitude", "Double"),
    ("account", "address2_longitude", "Double"),
    ("account", "address2_city", "String"),
    ("account", "customertypecode", "Picklist"),
    ("account", "accountratingcode", "Picklist"),
    ("account", "fax", "String"),
    ("account", "telephone3", "String"),
    ("account", "preferredsystemuserid", "Lookup"),
    ("account", "owningbusinessunit", "Lookup"),
    ("account", "transactioncurrencyid", "Lookup"),
    ("account", "exchangerate", "Decimal"),
    ("account", "creditlimit_base", "Money"),
    ("account", "lastonholdtime", "DateTime"),
    ("account", "donotfax", "Boolean"),
    ("opportunity", "estimatedvalue", "Money"),
    ("opportunity", "estimatedvalue_base", "Money"),
    ("opportunity", "customerid", "Customer"),
    ("opportunity", "closeprobability", "Integer"),
    ("opportunity", "discountpercentage", "Decimal"),
    ("opportunity", "salesstage", "Picklist"),
    ("email", "directioncode", "Boolean"),
    ("email", "delayedemailsendtime", "DateTime"),
    ("email", "regardingobjectid", "Lookup"),
    ("activityparty", "participationtypemask", "Picklist"),
    ("activityparty", "partyid", "Lookup"),
    ("transactioncurrency", "isocurrencycode", "String"),
    ("transactioncurrency", "exchangerate", "Decimal"),
    ("businessunit", "address1_latitude", "Double"),
    ("businessunit", "isdisabled", "Boolean"),
]


@pytest.mark.parametrize(("table", "column", "kind"), DOCUMENTED)
def test_documented_column_is_served_with_its_documented_type(api, table, column, kind):
    resp = api.get(
        f"EntityDefinitions(LogicalName='{table}')/Attributes"
        f"?$select=LogicalName,AttributeType&$filter=LogicalName eq '{column}'"
    )
    assert resp.status_code == 200, resp.text
    assert [(a["LogicalName"], a["AttributeType"]) for a in resp.json()["value"]] == [
        (column, kind)
    ]


# Columns transcribed later from their pages (table, column, AttributeType, MaxLength,
# DisplayName, valid for create - False in the read-only section):
# https://learn.microsoft.com/power-apps/developer/data-platform/reference/entities/systemuser
# https://learn.microsoft.com/power-apps/developer/data-platform/reference/entities/team
# https://learn.microsoft.com/power-apps/developer/data-platform/reference/entities/contact
# https://learn.microsoft.com/dynamics365/customerengagement/on-premises/developer/entities/lead
COMPLETED = [
    ("systemuser", "address2_line1", "String", 1024, "Other Street 1", True),
    ("systemuser", "address2_postalcode", "String", 40, "Other ZIP/Postal Code", True),
    ("systemuser", "address2_latitude", "Double", None, "Address 2: Latitude", True),
    ("team", "sharelinkqualifier", "String", 1250, "Share Link Qualifier", False),
    ("team", "systemmanaged", "Boolean", None, "Is System Managed", False),
    ("contact", "yomifullname", "String", 450, "Yomi Full Name", False),
    ("lead", "yomifullname", "String", 450, "Yomi Full Name", False),
]


@pytest.mark.parametrize(("table", "column", "kind", "length", "display", "create"), COMPLETED)
def test_completed_column_is_served_as_its_page_states(
    api, table, column, kind, length, display, create
):
    resp = api.get(f"EntityDefinitions(LogicalName='{table}')/Attributes(LogicalName='{column}')")
    assert resp.status_code == 200, resp.text
    attr = resp.json()
    assert attr["AttributeType"] == kind
    assert attr.get("MaxLength") == length
    assert attr["DisplayName"]["UserLocalizedLabel"]["Label"] == display
    assert attr["IsValidForCreate"] is create


def test_option_values_and_labels_are_the_documented_ones():
    tables = schema.load()
    industry = {o.value: o.label for o in tables["account"].columns["industrycode"].options}
    assert len(industry) == 33 and industry[33] == "Wholesale" and industry[7] == "Consulting"
    terms = {o.value: o.label for o in tables["account"].columns["paymenttermscode"].options}
    assert terms == {1: "Net 30", 2: "2% 10, Net 30", 3: "Net 45", 4: "Net 60"}
    mask = tables["activityparty"].columns["participationtypemask"].options
    assert [(o.value, o.label) for o in mask[:4]] == [
        (1, "Sender"),
        (2, "To Recipient"),
        (3, "CC Recipient"),
        (4, "BCC Recipient"),
    ]
    # Boolean labels as documented, including the unusual ones.
    follow = tables["account"].columns["followemail"]
    assert [(o.value, o.label) for o in follow.options] == [(0, "Do Not Allow"), (1, "Allow")]
    assert follow.default == 1


def test_every_reference_file_names_its_source_page():
    files = sorted(documented.REFERENCE.glob("*.json"))
    assert len(files) >= 6
    for path in files:
        table = path.stem
        assert table in documented.shipped_tables()
        data = documented.page(table)
        assert data["source"].startswith("https://learn.microsoft.com/"), table
        assert data["table"]["logical_name"] == table


def test_documented_columns_round_trip_through_create_and_get(empty_api):
    body = {
        "name": "Fabrikam",
        "address1_latitude": 47.64,
        "address2_longitude": -122.13,
        "address2_city": "Redmond",
        "customertypecode": 3,
        "fax": "+1-425-555-0100",
        "donotfax": True,
        "lastonholdtime": "2026-01-02T03:04:05Z",
    }
    resp = empty_api.post("accounts", json=body, headers={"Prefer": "return=representation"})
    assert resp.status_code == 201, resp.text
    key = resp.json()["accountid"]
    got = empty_api.get(f"accounts({key})?$select={','.join(body)}").json()
    assert {k: got[k] for k in body} == body


def _base_currency(api) -> str:
    found = api.get("transactioncurrencies?$filter=isocurrencycode eq 'USD'").json()["value"]
    assert len(found) == 1 and found[0]["exchangerate"] == 1
    return found[0]["transactioncurrencyid"]


@pytest.mark.parametrize("fixture", ["api", "empty_api"])
def test_base_currency_exists_in_demo_and_empty_sandboxes(request, fixture):
    client = request.getfixturevalue(fixture)
    assert _base_currency(client)


def test_money_gets_base_currency_exchange_rate_and_base_value(empty_api):
    base = _base_currency(empty_api)
    resp = empty_api.post(
        "opportunities",
        json={"name": "Deal", "estimatedvalue": 1500},
        headers={"Prefer": "return=representation"},
    )
    assert resp.status_code == 201, resp.text
    deal = resp.json()
    assert deal["_transactioncurrencyid_value"] == base
    assert deal["exchangerate"] == 1
    assert deal["estimatedvalue_base"] == 1500


def test_base_value_divides_by_the_records_exchange_rate_and_follows_updates(empty_api):
    resp = empty_api.post(
        "transactioncurrencies",
        json={
            "currencyname": "Euro",
            "isocurrencycode": "EUR",
            "currencysymbol": "€",
            "currencyprecision": 2,
            "currencytype": 1,
            "exchangerate": 0.8,
        },
        headers={"Prefer": "return=representation"},
    )
    assert resp.status_code == 201, resp.text
    euro = resp.json()["transactioncurrencyid"]
    resp = empty_api.post(
        "opportunities",
        json={
            "name": "Euro deal",
            "estimatedvalue": 1000,
            "transactioncurrencyid@odata.bind": f"/transactioncurrencies({euro})",
        },
        headers={"Prefer": "return=representation"},
    )
    deal = resp.json()
    assert (deal["_transactioncurrencyid_value"], deal["exchangerate"]) == (euro, 0.8)
    assert deal["estimatedvalue_base"] == 1250  # base = value / exchangerate
    key = deal["opportunityid"]
    assert (
        empty_api.patch(f"opportunities({key})", json={"estimatedvalue": 2000}).status_code == 204
    )
    again = empty_api.get(f"opportunities({key})?$select=estimatedvalue_base").json()
    assert again["estimatedvalue_base"] == 2500


def test_base_columns_are_read_only(empty_api):
    resp = empty_api.post(
        "accounts",
        json={"name": "A", "revenue": 10, "revenue_base": 999},
        headers={"Prefer": "return=representation"},
    )
    assert resp.json()["revenue_base"] == 10


def test_server_assigned_ids_are_sequential_and_default_order_is_creation_order(empty_api):
    """Dataverse assigns sequential GUIDs; without $orderby rows come in creation order."""
    names = [f"acct {n:02d}" for n in range(12)]
    ids = []
    for name in names:
        ids.append(create(empty_api, "accounts", {"name": name}))
    assert ids == sorted(ids)
    assert all(sequence_of(i) is not None for i in ids)
    got = empty_api.get("accounts?$select=name").json()["value"]
    assert [r["name"] for r in got] == names


def test_client_supplied_ids_are_honoured(empty_api):
    key = "00000000-0000-4000-8000-00000000abcd"
    resp = empty_api.post("accounts", json={"accountid": key, "name": "Mine"})
    assert resp.status_code == 204
    assert resp.headers["OData-EntityId"].endswith(f"accounts({key})")


def test_demo_default_order_is_creation_order(api):
    rows = api.get("opportunities?$select=createdon&$top=50").json()["value"]
    stamps = [r["createdon"] for r in rows]
    assert len(stamps) == 50 and stamps == sorted(stamps)


def test_email_with_activity_parties_deep_insert_and_expand(empty_api):
    contact = create(empty_api, "contacts", {"firstname": "Nancy", "lastname": "Anderson"})
    me = empty_api.get("WhoAmI").json()["UserId"]
    resp = empty_api.post(
        "emails",
        json={
            "subject": "Welcome",
            "description": "Hello",
            "email_activity_parties": [
                {
                    "partyid_systemuser@odata.bind": f"/systemusers({me})",
                    "participationtypemask": 1,
                },
                {"partyid_contact@odata.bind": f"/contacts({contact})", "participationtypemask": 2},
            ],
        },
    )
    key = created_id(resp)
    got = empty_api.get(
        f"emails({key})?$select=subject"
        "&$expand=email_activity_parties($select=participationtypemask,_partyid_value)",
        headers=ANNOTATIONS,
    ).json()
    parties = sorted(
        (p["participationtypemask"], p["_partyid_value"]) for p in got["email_activity_parties"]
    )
    assert parties == [(1, me), (2, contact)]


def test_demo_has_opportunities_and_emails_with_parties(api):
    deals = api.get("opportunities?$select=estimatedvalue,estimatedvalue_base&$top=5").json()
    assert all(d["estimatedvalue_base"] == d["estimatedvalue"] for d in deals["value"])
    mail = api.get(
        "emails?$select=subject&$top=3&$expand=email_activity_parties($select=participationtypemask)"
    ).json()["value"]
    assert len(mail) == 3
    for item in mail:
        assert sorted(p["participationtypemask"] for p in item["email_activity_parties"]) == [1, 2]


# An excerpt of the account page's Markdown (both sections), as Microsoft publishes it.
PAGE = """
## Writable columns/attributes

### <a name="BKMK_AccountCategoryCode"></a> AccountCategoryCode

|Property|Value|
|--------|-----|
|Description|Select a category to indicate whether the customer account is standard or preferred.|
|DisplayName|Category|
|IsValidForForm|True|
|IsValidForRead|True|
|LogicalName|accountcategorycode|
|RequiredLevel|None|
|Type|Picklist|

#### AccountCategoryCode Choices/Options

|Value|Label|Description|
|-----|-----|--------|
|1|Preferred Customer||
|2|Standard||

### <a name="BKMK_OwnerIdType"></a> OwnerIdType

|Property|Value|
|--------|-----|
|LogicalName|owneridtype|
|RequiredLevel|SystemRequired|
|Type|EntityName|

## Read-only columns/attributes

### <a name="BKMK_CreditLimit_Base"></a> CreditLimit_Base

|Property|Value|
|--------|-----|
|Description|Shows the credit limit converted to the system's default base currency.|
|DisplayName|Credit Limit (Base)|
|IsValidForForm|True|
|IsValidForRead|True|
|LogicalName|creditlimit_base|
|MaxValue|922337203685477|
|MinValue|-922337203685477|
|Precision|4|
|PrecisionSource|2|
|RequiredLevel|None|
|Type|Money|

### <a name="BKMK_OwnerIdName"></a> OwnerIdName

|Property|Value|
|--------|-----|
|Description||
|DisplayName||
|LogicalName|owneridname|
|MaxLength|100|
|RequiredLevel|SystemRequired|
|Type|String|
"""


def test_generator_turns_a_page_into_the_stored_entries():
    from d365nb.sandbox.schema.generate import parse

    parsed = parse(PAGE)
    stored = documented.page("account")["columns"]
    assert list(parsed) == ["accountcategorycode", "creditlimit_base"]  # no EntityName, no shadow
    for name, entry in parsed.items():
        assert entry == stored[name], name


# The 2024 form of a page (task): bold/code values, state details, Boolean labels as properties,
# relationships with their referencing attribute.
PAGE_2024 = """
## Writable columns/attributes

### <a name="BKMK_IsBilled"></a> IsBilled

|Property|Value|
|---|---|
|Description|**Information which specifies whether the task was billed as part of resolving a case.**|
|DisplayName|**Is Billed**|
|IsValidForForm|False|
|IsValidForRead|True|
|LogicalName|`isbilled`|
|RequiredLevel|None|
|Type|Boolean|
|GlobalChoiceName|`task_isbilled`|
|DefaultValue|False|
|True Label|Yes|
|False Label|No|

### <a name="BKMK_StateCode"></a> StateCode

|Property|Value|
|---|---|
|DisplayName|**Activity Status**|
|IsValidForForm|True|
|IsValidForRead|True|
|LogicalName|`statecode`|
|RequiredLevel|SystemRequired|
|Type|State|
|DefaultFormValue|0|

#### StateCode Choices/Options

|Value|Details|
|---|---|
|0|Label: **Open**<br />DefaultStatus: 2<br />InvariantName: `Open`|
|1|Label: **Completed**<br />DefaultStatus: 5<br />InvariantName: `Completed`|
|2|Label: **Canceled**<br />DefaultStatus: 6<br />InvariantName: `Canceled`|

## Read-only columns/attributes

### <a name="BKMK_CreatedBy"></a> CreatedBy

|Property|Value|
|---|---|
|Description|**Shows who created the record.**|
|DisplayName|**Created By**|
|IsValidForForm|True|
|IsValidForRead|True|
|LogicalName|`createdby`|
|RequiredLevel|None|
|Type|Lookup|
|Targets|systemuser|

## Many-to-One relationships

### <a name="BKMK_lk_task_createdby"></a> lk_task_createdby

One-To-Many Relationship: [systemuser lk_task_createdby](systemuser.md#BKMK_lk_task_createdby)

|Property|Value|
|---|---|
|ReferencedEntity|`systemuser`|
|ReferencedAttribute|`systemuserid`|
|ReferencingAttribute|`createdby`|
|ReferencingEntityNavigationPropertyName|`createdby_task`|
"""

# The Dynamics 365 Customer Engagement form (opportunity): `**Property**: value` lines, bullets.
PAGE_CE = """
### <a name="BKMK_OpportunityRatingCode"></a> OpportunityRatingCode

**Description**: Select the expected value or priority of the opportunity.<br />
**DisplayName**: Rating<br />
**LogicalName**: opportunityratingcode<br />
**IsValidForForm**: True<br />
**IsValidForRead**: True<br />
**RequiredLevel**: None<br />
**Type**: Picklist<br />
**Options**:

- **Value**: 1 **Label**: Hot
- **Value**: 2 **Label**: Warm
- **Value**: 3 **Label**: Cold

### <a name="BKMK_StatusCode"></a> StatusCode

**Description**: Select the opportunity's status.<br />
**DisplayName**: Status Reason<br />
**LogicalName**: statuscode<br />
**IsValidForForm**: True<br />
**IsValidForRead**: True<br />
**RequiredLevel**: None<br />
**Type**: Status<br />
**Options**:

- **Value**: 1 **Label**: In Progress **State**: 0
- **Value**: 2 **Label**: On Hold **State**: 0
- **Value**: 3 **Label**: Won **State**: 1
- **Value**: 4 **Label**: Canceled **State**: 2
- **Value**: 5 **Label**: Out-Sold **State**: 2

### <a name="BKMK_CaptureProposalFeedback"></a> CaptureProposalFeedback

**DisplayName**: Proposal Feedback Captured<br />
**LogicalName**: captureproposalfeedback<br />
**IsValidForRead**: True<br />
**RequiredLevel**: None<br />
**Type**: Boolean<br />
**Options**:

- **TrueOption Value**: 1 **Label**: No
- **FalseOption Value**: 0 **Label**: Yes

**DefaultValue**: False
"""


@pytest.mark.parametrize(("table", "page"), [("task", PAGE_2024), ("opportunity", PAGE_CE)])
def test_generator_reads_every_page_form(table, page):
    from d365nb.sandbox.schema.generate import parse

    parsed = parse(page)
    stored = documented.page(table)["columns"]
    assert parsed, "nothing parsed"
    for name, entry in parsed.items():
        assert entry == stored[name], name


# Per table: a body of documented columns of several kinds that must come back as sent.
ROUND_TRIPS = [
    (
        "contacts",
        {
            "lastname": "Ng",
            "address3_city": "Osaka",
            "address2_latitude": 34.69,
            "familystatuscode": 2,
            "anniversary": "2020-05-17",
            "assistantphone": "+81-6-555-0100",
            "donotfax": True,
        },
    ),
    (
        "leads",
        {
            "subject": "Fleet upgrade",
            "lastname": "Ortiz",
            "industrycode": 33,
            "address2_city": "Lyon",
            "estimatedamount": 12500.5,
            "budgetstatus": 2,
            "schedulefollowup_qualify": "2026-03-01T00:00:00Z",
        },
    ),
    (
        "opportunities",
        {
            "name": "Renewal",
            "closeprobability": 75,
            "purchasetimeframe": 1,
            "discountpercentage": 12.5,
            "captureproposalfeedback": True,
            "finaldecisiondate": "2026-04-30",
        },
    ),
    ("tasks", {"subject": "Call back", "sortdate": "2026-02-02T10:00:00Z", "isbilled": True}),
    ("emails", {"subject": "Hello", "directioncode": False, "notifications": 2}),
    ("teams", {"name": "Pilots", "yominame": "Pairotto", "teamtype": 1}),
    ("businessunits", {"name": "EMEA", "address2_city": "Dublin", "costcenter": "CC-42"}),
    (
        "transactioncurrencies",
        {
            "currencyname": "Yen",
            "isocurrencycode": "JPY",
            "currencysymbol": "¥",
            "currencyprecision": 0,
            "currencytype": 1,
            "exchangerate": 150.25,
        },
    ),
]


@pytest.mark.parametrize(("entity_set", "body"), ROUND_TRIPS, ids=[s for s, _ in ROUND_TRIPS])
def test_documented_columns_of_each_table_round_trip(empty_api, entity_set, body):
    resp = empty_api.post(entity_set, json=body)
    assert resp.status_code == 204, resp.text
    location = resp.headers["OData-EntityId"].rsplit("/", 1)[1]
    got = empty_api.get(f"{location}?$select={','.join(body)}")
    assert got.status_code == 200, got.text
    assert {k: got.json()[k] for k in body} == body
