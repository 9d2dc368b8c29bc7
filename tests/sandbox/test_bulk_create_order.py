"""CreateMultiple checks its targets in bulk but answers exactly as creating them one by one
would: the first refused target decides the error, a target may bind to a record created
earlier in the same call, and a key used twice in one call is a duplicate."""

from __future__ import annotations

import uuid

ACCOUNT = "Microsoft.Dynamics.CRM.account"


def create_multiple(client, targets, entity_set: str = "accounts"):
    return client.post(
        f"{entity_set}/Microsoft.Dynamics.CRM.CreateMultiple", json={"Targets": targets}
    )


def account(name: str, **extra) -> dict:
    return {"@odata.type": ACCOUNT, "name": name, **extra}


def test_a_target_can_bind_to_an_account_created_earlier_in_the_call(empty_sandbox, empty_api):
    parent = str(uuid.uuid4())
    r = create_multiple(
        empty_api,
        [
            account("Parent", accountid=parent),
            account("Child", **{"parentaccountid@odata.bind": f"/accounts({parent})"}),
        ],
    )
    assert r.status_code == 200, r.text
    child = r.json()["Ids"][1]
    got = empty_api.get(f"accounts({child})?$select=_parentaccountid_value").json()
    assert got["_parentaccountid_value"] == parent


def test_a_bind_to_a_later_target_is_not_found_and_nothing_is_written(empty_sandbox, empty_api):
    later = str(uuid.uuid4())
    r = create_multiple(
        empty_api,
        [
            account("Child", **{"parentaccountid@odata.bind": f"/accounts({later})"}),
            account("Parent", accountid=later),
        ],
    )
    assert r.status_code == 404 and later in r.json()["error"]["message"]
    assert empty_sandbox.org.store.count("account") == 0


def test_the_same_key_twice_in_one_call_is_a_duplicate(empty_sandbox, empty_api):
    key = str(uuid.uuid4())
    r = create_multiple(empty_api, [account("A", accountid=key), account("B", accountid=key)])
    first = empty_api.post("accounts", json={"name": "C", "accountid": key})
    assert first.status_code == 204  # the refused call left the key unused
    again = empty_api.post("accounts", json={"name": "D", "accountid": key})
    assert r.status_code == again.status_code == 412
    assert r.json()["error"]["code"] == again.json()["error"]["code"]


def test_the_first_refused_target_decides_the_error(empty_sandbox, empty_api):
    missing = str(uuid.uuid4())
    bind_first = create_multiple(
        empty_api,
        [
            account("ok"),
            account("bad bind", **{"parentaccountid@odata.bind": f"/accounts({missing})"}),
            account("bad value", numberofemployees="many"),
        ],
    )
    value_first = create_multiple(
        empty_api,
        [
            account("bad value", numberofemployees="many"),
            account("bad bind", **{"parentaccountid@odata.bind": f"/accounts({missing})"}),
        ],
    )
    assert bind_first.status_code == 404 and missing in bind_first.json()["error"]["message"]
    assert value_first.status_code == 400 and missing not in value_first.text
    assert empty_sandbox.org.store.count("account") == 0


def test_deep_insert_targets_still_create_their_related_records(empty_sandbox, empty_api):
    r = create_multiple(
        empty_api,
        [account("With contact", primarycontactid={"lastname": "Deep"}), account("Plain")],
    )
    assert r.status_code == 200, r.text
    first = r.json()["Ids"][0]
    got = empty_api.get(f"accounts({first})?$expand=primarycontactid($select=lastname)").json()
    assert got["primarycontactid"]["lastname"] == "Deep"
