"""Alternate keys over real HTTP: defined through `POST EntityDefinitions(...)/Keys`, listed
under `.../Keys`, then used to retrieve, update, upsert, delete and `@odata.bind` records by
their key columns instead of their GUID; duplicate key values are refused.

Each test gets a fresh empty sandbox (`empty_api`), since keys change the organisation."""

from __future__ import annotations

import httpx
import pytest

KEYS = "EntityDefinitions(LogicalName='account')/Keys"


def _key(api: httpx.Client, table: str, schema_name: str, *columns: str) -> httpx.Response:
    body = {
        "SchemaName": schema_name,
        "DisplayName": {"LocalizedLabels": [{"Label": schema_name, "LanguageCode": 1033}]},
        "KeyAttributes": list(columns),
    }
    return api.post(f"EntityDefinitions(LogicalName='{table}')/Keys", json=body)


def _create(api: httpx.Client, entity_set: str, body: dict) -> str:
    r = api.post(entity_set, json=body)
    assert r.status_code == 204, r.text
    return r.headers["OData-EntityId"].rsplit("(", 1)[1].rstrip(")")


@pytest.fixture
def keyed(empty_api: httpx.Client) -> httpx.Client:
    assert _key(empty_api, "account", "new_AccountNumberKey", "accountnumber").status_code == 204
    return empty_api


def test_create_and_list_keys(empty_api: httpx.Client) -> None:
    """https://learn.microsoft.com/power-apps/developer/data-platform/define-alternate-keys-entity
    POST an EntityKeyMetadata to `EntityDefinitions(...)/Keys`; the table's `Keys` then list it
    with its `KeyAttributes`, active at once."""
    assert empty_api.get(KEYS).json()["value"] == []
    r = _key(empty_api, "account", "new_AccountNumberKey", "accountnumber")
    assert r.status_code == 204, r.text
    assert "/EntityDefinitions('account')/Keys(" in r.headers["OData-EntityId"]
    keys = empty_api.get(KEYS).json()["value"]
    assert [(k["SchemaName"], k["KeyAttributes"]) for k in keys] == [
        ("new_AccountNumberKey", ["accountnumber"])
    ]
    assert keys[0]["LogicalName"] == "new_accountnumberkey"
    assert keys[0]["EntityKeyIndexStatus"] == "Active"
    # the doc's query: every table with its keys
    tables = empty_api.get(
        "EntityDefinitions?$select=SchemaName&$expand=Keys($select=KeyAttributes)"
    ).json()["value"]
    by_name = {t["SchemaName"]: t["Keys"] for t in tables}
    assert [k["KeyAttributes"] for k in by_name["Account"]] == [["accountnumber"]]
    assert set(by_name["Account"][0]) == {"KeyAttributes", "MetadataId"}
    assert by_name["Contact"] == []
    one = empty_api.get(f"{KEYS}(LogicalName='new_accountnumberkey')")
    assert one.status_code == 200 and one.json()["KeyAttributes"] == ["accountnumber"]


@pytest.mark.parametrize(
    "body",
    [
        {"KeyAttributes": ["accountnumber"]},  # no SchemaName
        {"SchemaName": "new_k", "KeyAttributes": []},
        {"SchemaName": "new_k", "KeyAttributes": ["nosuchcolumn"]},
        {"SchemaName": "new_k", "KeyAttributes": ["description"]},  # Memo: not a key type
        {"SchemaName": "new_k", "KeyAttributes": "accountnumber"},
    ],
)
def test_bad_key_definitions_are_400(empty_api: httpx.Client, body: dict) -> None:
    """https://learn.microsoft.com/power-apps/developer/data-platform/define-alternate-keys-entity
    Only Decimal, Integer, String, DateTime, Lookup and Picklist columns may form a key; a bad
    definition is a 400 with a Dataverse error body and creates nothing."""
    r = empty_api.post(KEYS, json=body)
    assert r.status_code == 400, r.text
    assert set(r.json()["error"]) == {"code", "message"}
    assert empty_api.get(KEYS).json()["value"] == []


def test_key_on_existing_duplicates_fails(empty_api: httpx.Client) -> None:
    """https://learn.microsoft.com/power-apps/developer/data-platform/define-alternate-keys-entity
    A key's index cannot be built while rows share its values (Dataverse marks the index
    Failed); the sandbox refuses the key."""
    _create(empty_api, "accounts", {"name": "a", "accountnumber": "DUP"})
    _create(empty_api, "accounts", {"name": "b", "accountnumber": "DUP"})
    r = _key(empty_api, "account", "new_AccountNumberKey", "accountnumber")
    assert r.status_code == 400
    assert empty_api.get(KEYS).json()["value"] == []


def test_retrieve_update_delete_by_key(keyed: httpx.Client) -> None:
    """https://learn.microsoft.com/power-apps/developer/data-platform/webapi/retrieve-entity-using-web-api#retrieve-using-an-alternate-key
    `accounts(accountnumber='ABC')` addresses the record like its GUID does."""
    id = _create(keyed, "accounts", {"name": "Contoso", "accountnumber": "ABC"})
    _create(keyed, "accounts", {"name": "Other", "accountnumber": "XYZ"})
    r = keyed.get("accounts(accountnumber='ABC')?$select=name")
    assert r.status_code == 200, r.text
    assert r.json()["accountid"] == id and r.json()["name"] == "Contoso"
    # text keys compare case-insensitively, like the column
    assert keyed.get("accounts(accountnumber='abc')").json()["accountid"] == id
    r = keyed.patch("accounts(accountnumber='ABC')", json={"name": "Contoso Ltd"})
    assert r.status_code == 204, r.text
    assert keyed.get(f"accounts({id})?$select=name").json()["name"] == "Contoso Ltd"
    assert keyed.delete("accounts(accountnumber='ABC')").status_code == 204
    missing = keyed.get("accounts(accountnumber='ABC')")
    assert missing.status_code == 404
    assert missing.json()["error"]["code"] == "0x80040217"
    assert keyed.get("accounts(accountnumber='XYZ')").status_code == 200


def test_upsert_by_key_creates_then_updates(keyed: httpx.Client) -> None:
    """https://learn.microsoft.com/power-apps/developer/data-platform/use-upsert-insert-update-record
    PATCH on an alternate key no record has creates one with the key's values; the second
    PATCH updates it."""
    r = keyed.patch(
        "accounts(accountnumber='NEW-1')",
        json={"name": "Fabrikam"},
        headers={"Prefer": "return=representation"},
    )
    assert r.status_code == 201, r.text
    assert r.json()["accountnumber"] == "NEW-1" and r.json()["name"] == "Fabrikam"
    id = r.json()["accountid"]
    r = keyed.patch("accounts(accountnumber='NEW-1')", json={"name": "Fabrikam Inc"})
    assert r.status_code == 204
    rows = keyed.get("accounts?$select=name,accountnumber").json()["value"]
    assert [(a["accountid"], a["name"]) for a in rows] == [(id, "Fabrikam Inc")]
    # If-Match: * forbids the create
    r = keyed.patch(
        "accounts(accountnumber='NEW-2')", json={"name": "x"}, headers={"If-Match": "*"}
    )
    assert r.status_code == 404
    assert len(keyed.get("accounts").json()["value"]) == 1


def test_duplicate_key_values_are_refused(keyed: httpx.Client) -> None:
    """https://learn.microsoft.com/power-apps/developer/data-platform/define-alternate-keys-entity
    A key's columns are unique: a create or update that would repeat them is refused and
    changes nothing."""
    first = _create(keyed, "accounts", {"name": "a", "accountnumber": "K1"})
    r = keyed.post("accounts", json={"name": "b", "accountnumber": "k1"})
    assert r.status_code == 412 and r.json()["error"]["code"] == "0x80060892"
    second = _create(keyed, "accounts", {"name": "b", "accountnumber": "K2"})
    r = keyed.patch(f"accounts({second})", json={"accountnumber": "K1"})
    assert r.status_code == 412
    assert keyed.get(f"accounts({second})?$select=accountnumber").json()["accountnumber"] == "K2"
    # the same record may keep its own key values
    assert keyed.patch(f"accounts({first})", json={"accountnumber": "K1"}).status_code == 204
    # two records with the same key in one bulk create: nothing is created
    r = keyed.post(
        "accounts/Microsoft.Dynamics.CRM.CreateMultiple",
        json={
            "Targets": [
                {
                    "@odata.type": "Microsoft.Dynamics.CRM.account",
                    "name": "c",
                    "accountnumber": "K3",
                },
                {
                    "@odata.type": "Microsoft.Dynamics.CRM.account",
                    "name": "d",
                    "accountnumber": "K3",
                },
            ]
        },
    )
    assert r.status_code == 412, r.text
    assert len(keyed.get("accounts").json()["value"]) == 2


def test_composite_key_and_bind_by_key(empty_api: httpx.Client) -> None:
    """https://learn.microsoft.com/power-apps/developer/data-platform/use-alternate-key-reference-record
    A key of two columns addresses `contacts(firstname='Joe',emailaddress1='abc@example.com')`;
    `@odata.bind` accepts an alternate key in place of the GUID."""
    assert (
        _key(empty_api, "contact", "new_NameMailKey", "firstname", "emailaddress1").status_code
        == 204
    )
    assert _key(empty_api, "account", "new_AccountNumberKey", "accountnumber").status_code == 204
    account = _create(empty_api, "accounts", {"name": "Contoso", "accountnumber": "ABC"})
    contact = _create(
        empty_api,
        "contacts",
        {
            "firstname": "Joe",
            "lastname": "Smith",
            "emailaddress1": "abc@example.com",
            "parentcustomerid_account@odata.bind": "/accounts(accountnumber='ABC')",
        },
    )
    r = empty_api.get(
        "contacts(firstname='Joe',emailaddress1='abc@example.com')"
        "?$select=lastname,_parentcustomerid_value"
    )
    assert r.status_code == 200, r.text
    assert r.json()["contactid"] == contact
    assert r.json()["_parentcustomerid_value"] == account
    # a lead bound to the account by key
    lead = _create(
        empty_api,
        "leads",
        {"lastname": "L", "parentaccountid@odata.bind": "/accounts(accountnumber='ABC')"},
    )
    got = empty_api.get(f"leads({lead})?$select=_parentaccountid_value").json()
    assert got["_parentaccountid_value"] == account
    # binding to a key no record has is a 404 and creates nothing
    r = empty_api.post(
        "leads",
        json={"lastname": "M", "parentaccountid@odata.bind": "/accounts(accountnumber='NOPE')"},
    )
    assert r.status_code == 404
    assert len(empty_api.get("leads").json()["value"]) == 1
    # only part of a key, or columns that are no key: a 400, not a lookup by any column
    assert empty_api.get("contacts(firstname='Joe')").status_code == 400
    assert empty_api.get("accounts(name='Contoso')").status_code == 400


def test_bad_key_segment_is_400(keyed: httpx.Client) -> None:
    """https://learn.microsoft.com/power-apps/developer/data-platform/webapi/retrieve-entity-using-web-api#retrieve-using-an-alternate-key
    A malformed key segment is a client mistake: 4xx with a Dataverse error body, never 5xx."""
    for path in (
        "accounts(accountnumber=)",
        "accounts(accountnumber='a',accountnumber='b')",
        "accounts(accountnumber='unterminated)",
    ):
        r = keyed.get(path)
        assert 400 <= r.status_code < 500, (path, r.status_code, r.text)
        assert set(r.json()["error"]) == {"code", "message"}


def test_key_with_a_lookup_column(empty_api: httpx.Client) -> None:
    """https://learn.microsoft.com/power-apps/developer/data-platform/define-alternate-keys-entity
    A key may include a lookup column; the URL names it as it is read, `_<lookup>_value`,
    and an upsert on a key no record has sets the lookup."""
    r = _key(empty_api, "lead", "new_ParentName", "parentaccountid", "lastname")
    assert r.status_code == 204, r.text
    account = _create(empty_api, "accounts", {"name": "Contoso"})
    path = f"leads(_parentaccountid_value={account},lastname='Smith')"
    r = empty_api.patch(path, json={"firstname": "Ann"})
    assert r.status_code == 204, r.text
    got = empty_api.get(f"{path}?$select=firstname,_parentaccountid_value")
    assert got.status_code == 200, got.text
    assert got.json()["firstname"] == "Ann"
    assert got.json()["_parentaccountid_value"] == account
    other = f"leads(_parentaccountid_value={account},lastname='Jones')"
    assert empty_api.get(other).status_code == 404
    # a Customer (polymorphic) lookup cannot be part of a key
    r = _key(empty_api, "contact", "new_Customer", "parentcustomerid")
    assert r.status_code == 400


def test_delete_key(keyed: httpx.Client) -> None:
    """https://learn.microsoft.com/power-apps/developer/data-platform/define-alternate-keys-entity
    Deleting a key (DeleteEntityKey) drops its index: the values need not be unique any more
    and the key no longer addresses records."""
    _create(keyed, "accounts", {"name": "a", "accountnumber": "K1"})
    assert keyed.delete(f"{KEYS}(LogicalName='nosuchkey')").status_code == 404
    assert keyed.delete(f"{KEYS}(LogicalName='new_accountnumberkey')").status_code == 204
    assert keyed.get(KEYS).json()["value"] == []
    _create(keyed, "accounts", {"name": "b", "accountnumber": "K1"})
    assert keyed.get("accounts(accountnumber='K1')").status_code == 400
    # other metadata deletes stay refused
    assert keyed.delete("EntityDefinitions(LogicalName='account')").status_code == 405
