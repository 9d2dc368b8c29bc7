"""Navigation properties over HTTP: related collections, `$ref` associate/disassociate, and
collection-valued `@odata.bind` (wire doc §6 Binding, [AS])."""

from __future__ import annotations

import uuid

from tests.support.lookups import create_under
from tests.support.records import create as _new

# The lookup that makes a task one of an account's `Account_Tasks`.
REGARDING = "regardingobjectid_account_task"


def test_related_collection_lists_only_the_parents_children(empty_api):
    mine = _new(empty_api, "accounts", {"name": "Mine"})
    other = _new(empty_api, "accounts", {"name": "Other"})
    for subject in ("a", "b", "c"):
        create_under(empty_api, mine, "tasks", {"subject": subject}, REGARDING)
    create_under(empty_api, other, "tasks", {"subject": "z"}, REGARDING)
    body = empty_api.get(f"accounts({mine})/Account_Tasks?$select=subject&$orderby=subject").json()
    assert [t["subject"] for t in body["value"]] == ["a", "b", "c"]
    assert body["@odata.context"].endswith("$metadata#tasks(subject)")
    filtered = empty_api.get(
        f"accounts({mine})/Account_Tasks?$filter=subject ne 'b' or subject eq 'z'"
    ).json()
    assert sorted(t["subject"] for t in filtered["value"]) == ["a", "c"]


def test_related_count_has_a_bom(empty_api):
    parent = _new(empty_api, "accounts", {"name": "Counted"})
    create_under(empty_api, parent, "tasks", {"subject": "t"}, REGARDING)
    r = empty_api.get(f"accounts({parent})/Account_Tasks/$count")
    assert r.status_code == 200
    assert r.content == b"\xef\xbb\xbf1"


def test_related_collection_of_missing_parent_is_404(empty_api):
    missing = str(uuid.uuid4())
    r = empty_api.get(f"accounts({missing})/Account_Tasks")
    assert r.status_code == 404
    assert r.json()["error"]["message"] == f"account With Id = {missing} Does Not Exist"


def test_associate_and_disassociate_with_ref(empty_api, empty_sandbox):
    parent = _new(empty_api, "accounts", {"name": "Parent"})
    child = _new(empty_api, "contacts", {"lastname": "Child"})
    r = empty_api.post(
        f"accounts({parent})/contact_customer_accounts/$ref",
        json={"@odata.id": f"{empty_sandbox.api}contacts({child})"},
    )
    assert r.status_code == 204
    assert empty_api.get(f"contacts({child})").json()["_parentcustomerid_value"] == parent
    assert empty_api.get(f"accounts({parent})/contact_customer_accounts/$count").content.endswith(
        b"1"
    )
    r = empty_api.delete(
        f"accounts({parent})/contact_customer_accounts/$ref?$id={empty_sandbox.api}contacts({child})"
    )
    assert r.status_code == 204
    assert empty_api.get(f"contacts({child})").json()["_parentcustomerid_value"] is None


def test_disassociate_by_key_segment(empty_api):
    parent = _new(empty_api, "accounts", {"name": "P"})
    task = create_under(empty_api, parent, "tasks", {"subject": "t"}, REGARDING)
    assert empty_api.delete(f"accounts({parent})/Account_Tasks({task})/$ref").status_code == 204
    assert empty_api.get(f"tasks({task})").json()["_regardingobjectid_value"] is None
    # not (any more) a child: 404, nothing changes
    assert empty_api.delete(f"accounts({parent})/Account_Tasks({task})/$ref").status_code == 404


def test_collection_valued_bind_on_create(empty_api):
    tasks = [_new(empty_api, "tasks", {"subject": f"t{i}"}) for i in range(2)]
    account = _new(
        empty_api,
        "accounts",
        {"name": "With tasks", "Account_Tasks@odata.bind": [f"/tasks({t})" for t in tasks]},
    )
    for t in tasks:
        task = empty_api.get(f"tasks({t})").json()
        assert task["_regardingobjectid_value"] == account


def test_collection_valued_bind_to_missing_child_creates_nothing(empty_api):
    before = empty_api.get("accounts/$count").text
    missing = str(uuid.uuid4())
    r = empty_api.post(
        "accounts", json={"name": "x", "Account_Tasks@odata.bind": [f"/tasks({missing})"]}
    )
    assert r.status_code == 404
    assert empty_api.get("accounts/$count").text == before


def test_single_valued_navigation_returns_the_related_record(empty_api):
    contact = _new(empty_api, "contacts", {"firstname": "Ada", "lastname": "Lovelace"})
    lead = _new(
        empty_api,
        "leads",
        {"subject": "s", "lastname": "L", "parentcontactid@odata.bind": f"/contacts({contact})"},
    )
    related = empty_api.get(f"leads({lead})/parentcontactid?$select=fullname").json()
    assert related["fullname"] == "Ada Lovelace"
    assert related["contactid"] == contact


def test_ref_on_a_non_lookup_is_refused(empty_api):
    account = _new(empty_api, "accounts", {"name": "x"})
    r = empty_api.put(f"accounts({account})/name/$ref", json={"@odata.id": "contacts(x)"})
    assert r.status_code == 400
    assert r.json()["error"] == {
        "code": "0x80060888",
        "message": "Expand with $ref is only supported on lookup type navigation property.",
    }


def test_deleting_a_parent_clears_the_lookups_that_pointed_at_it(empty_api):
    parent = _new(empty_api, "accounts", {"name": "Doomed"})
    contact = create_under(
        empty_api, parent, "contacts", {"lastname": "Orphan"}, "parentcustomerid_account"
    )
    before = empty_api.get(f"contacts({contact})").json()["versionnumber"]
    assert empty_api.delete(f"accounts({parent})").status_code == 204
    after = empty_api.get(f"contacts({contact})").json()
    assert after["_parentcustomerid_value"] is None
    assert after["versionnumber"] > before


def test_deep_insert_creates_related_records_in_one_request(empty_api):
    r = empty_api.post(
        "accounts",
        json={
            "name": "Deep Account",
            "primarycontactid": {"firstname": "John", "lastname": "Smith"},
            "Account_Tasks": [{"subject": "Call John"}, {"subject": "Send offer"}],
        },
        headers={"Prefer": "return=representation"},
    )
    assert r.status_code == 201, r.text
    account = r.json()
    contact = empty_api.get(f"contacts({account['_primarycontactid_value']})").json()
    assert contact["fullname"] == "John Smith"
    tasks = empty_api.get(f"accounts({account['accountid']})/Account_Tasks?$select=subject").json()
    assert sorted(t["subject"] for t in tasks["value"]) == ["Call John", "Send offer"]


def test_deep_insert_is_all_or_nothing(empty_api):
    counts = {s: empty_api.get(f"{s}/$count").text for s in ("accounts", "contacts", "tasks")}
    r = empty_api.post(
        "accounts",
        json={
            "name": "Half",
            "primarycontactid": {"lastname": "Fine"},
            "Account_Tasks": [{"subject": "ok"}, {"subject": "x" * 201}],
        },
    )
    assert r.status_code == 400
    assert r.json()["error"]["code"] == "0x80044331"
    assert {s: empty_api.get(f"{s}/$count").text for s in counts} == counts
