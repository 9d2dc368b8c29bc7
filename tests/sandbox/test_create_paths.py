"""One create path: a record POSTed to its entity set and the same body sent through
CreateMultiple are stored alike (defaults, state/status, owner, currency and base amounts,
computed columns, deep insert, binds) and refused alike.

Create: https://learn.microsoft.com/power-apps/developer/data-platform/webapi/create-entity-web-api
CreateMultiple: https://learn.microsoft.com/power-apps/developer/data-platform/bulk-operations
"""

from __future__ import annotations

import uuid

import pytest

from tests.support.records import create

ACCOUNT = "Microsoft.Dynamics.CRM.account"
# What differs between two creates of the same body by design: the key, the time and version.
STAMPS = {"createdon", "modifiedon", "versionnumber"}


post = create  # a POST to the entity set


def create_multiple(client, entity_set: str, logical_name: str, body: dict) -> str:
    target = {"@odata.type": f"Microsoft.Dynamics.CRM.{logical_name}", **body}
    r = client.post(
        f"{entity_set}/Microsoft.Dynamics.CRM.CreateMultiple", json={"Targets": [target]}
    )
    assert r.status_code == 200, r.text
    (id,) = r.json()["Ids"]
    return id


def stored(handle, table: str, id: str) -> dict:
    """The stored row without its key and stamps; lookups to records made with it (deep
    insert) are replaced by those records, compared the same way."""
    store = handle.org.store
    schema = handle.org.schema
    row = store.get(table, id)
    assert row is not None
    out = {}
    for name, value in row.items():
        if name in STAMPS or name == schema[table].primary_id:
            continue
        col = schema[table].columns.get(name)
        related = row.get(f"{name}__type")
        if col is not None and col.is_lookup and related and name in DEEP.get(table, ()):
            value = stored(handle, related, value)
        out[name] = value
    return out


# Lookups filled by deep insert in the bodies below (their ids differ between the two creates).
DEEP = {"account": ("primarycontactid",)}


def test_a_post_and_a_create_multiple_of_the_same_body_store_the_same_record(
    empty_sandbox, empty_api
):
    """Defaults, the caller as owner/createdby, the base currency with its exchange rate and the
    `_base` amounts, the computed full name: the same whichever way the record came in."""
    for entity_set, logical_name, body in [
        ("accounts", "account", {"name": "Contoso", "revenue": 1234.5, "creditlimit": 10}),
        ("leads", "lead", {"firstname": "Ada", "lastname": "Byron", "subject": "Engines"}),
        ("leads", "lead", {"lastname": "Qualified", "subject": "s", "statuscode": 3}),
        ("contacts", "contact", {"firstname": "Grace", "lastname": "Hopper", "statecode": 1}),
        ("tasks", "task", {"subject": "Call back", "prioritycode": 2}),
    ]:
        one = post(empty_api, entity_set, body)
        many = create_multiple(empty_api, entity_set, logical_name, body)
        assert one != many
        single, bulk = (
            stored(empty_sandbox, logical_name, one),
            stored(empty_sandbox, logical_name, many),
        )
        assert single == bulk, logical_name
        # the values the server fills were really filled (the comparison is not of two blanks)
        if logical_name == "account":
            assert single["transactioncurrencyid"] == empty_sandbox.org.store.base_currency_id
            assert single["revenue_base"] == 1234.5 and single["exchangerate"] == 1.0
        if "ownerid" in single:
            assert single["ownerid"] == empty_sandbox.org.user_id


def test_owner_bound_to_a_team_is_stored_alike(empty_sandbox, empty_api):
    team = post(empty_api, "teams", {"name": "Sales"})
    body = {"subject": "Team task", "ownerid@odata.bind": f"/teams({team})"}
    one = post(empty_api, "tasks", body)
    many = create_multiple(empty_api, "tasks", "task", body)
    single, bulk = stored(empty_sandbox, "task", one), stored(empty_sandbox, "task", many)
    assert single == bulk
    assert (single["ownerid"], single["ownerid__type"]) == (team, "team")
    assert single["owningbusinessunit"] is not None


def test_deep_insert_through_create_multiple_creates_the_related_records(empty_sandbox, empty_api):
    body = {
        "name": "Fabrikam",
        "primarycontactid": {"firstname": "Pat", "lastname": "Lee"},
        "Account_Tasks": [{"subject": "Kick-off"}, {"subject": "Follow-up"}],
    }
    one = post(empty_api, "accounts", body)
    many = create_multiple(empty_api, "accounts", "account", body)
    assert stored(empty_sandbox, "account", one) == stored(empty_sandbox, "account", many)
    for id in (one, many):
        tasks = empty_api.get(
            f"accounts({id})/Account_Tasks?$select=subject&$orderby=subject"
        ).json()["value"]
        assert [t["subject"] for t in tasks] == ["Follow-up", "Kick-off"]
    assert empty_sandbox.org.store.count("contact") == 2


@pytest.mark.parametrize(
    "body",
    [
        {"name": "x", "nosuchcolumn": 1},
        {"name": "x", "revenue": "lots"},
        {"name": "x", "statuscode": 999},
        {"name": "x", "parentaccountid@odata.bind": f"/accounts({uuid.UUID(int=7)})"},
        {"name": "x" * 161},
        {"name": "x", "primarycontactid": {"nosuchcolumn": 1}},
    ],
    ids=["unknown-column", "bad-type", "bad-status", "missing-bind", "too-long", "bad-deep"],
)
def test_a_body_refused_by_post_is_refused_alike_by_create_multiple(body, empty_sandbox, empty_api):
    one = empty_api.post("accounts", json=body)
    many = empty_api.post(
        "accounts/Microsoft.Dynamics.CRM.CreateMultiple",
        json={"Targets": [{"@odata.type": ACCOUNT, **body}]},
    )
    assert 400 <= one.status_code < 500, one.text
    assert (many.status_code, many.json()["error"]) == (one.status_code, one.json()["error"])
    assert empty_sandbox.org.store.count("account") == 0
    assert empty_sandbox.org.store.count("contact") == 0


def test_a_key_taken_is_refused_alike(empty_sandbox, empty_api):
    key = str(uuid.uuid4())
    post(empty_api, "accounts", {"name": "First", "accountid": key})
    one = empty_api.post("accounts", json={"name": "Again", "accountid": key})
    many = empty_api.post(
        "accounts/Microsoft.Dynamics.CRM.CreateMultiple",
        json={"Targets": [{"@odata.type": ACCOUNT, "name": "Again", "accountid": key}]},
    )
    assert one.status_code == 412  # "A record with matching key values already exists."
    assert (many.status_code, many.json()["error"]) == (one.status_code, one.json()["error"])
    assert empty_sandbox.org.store.count("account") == 1


def test_duplicate_detection_is_part_of_the_one_create_path(empty_sandbox):
    """`create_many(..., detect_duplicates=True)` applies the table's duplicate rules as a
    POST with `MSCRM.SuppressDuplicateDetection: false` does, also between its own bodies."""
    from d365nb.sandbox.errors import DataverseError

    service = empty_sandbox.org.service
    table = service.schema["lead"]
    body = {"lastname": "Orton", "subject": "s", "emailaddress1": "monte@example.com"}
    with pytest.raises(DataverseError) as refused:
        service.create_many(table, [body, {**body, "subject": "t"}], detect_duplicates=True)
    assert refused.value.code == "0x80040333"
    assert empty_sandbox.org.store.count("lead") == 0
    assert len(service.create_many(table, [body, {**body, "subject": "t"}])) == 2
