"""CreateMultiple / UpdateMultiple / UpsertMultiple over real HTTP: documented responses and
all-or-nothing writes."""

from __future__ import annotations

import uuid

import pytest

LEAD = "Microsoft.Dynamics.CRM.lead"


def targets(n: int, **extra) -> list[dict]:
    return [
        {"@odata.type": LEAD, "subject": f"Bulk {i}", "lastname": f"Last{i}", **extra}
        for i in range(n)
    ]


def action(client, name: str, body, entity_set: str = "leads"):
    return client.post(f"{entity_set}/Microsoft.Dynamics.CRM.{name}", json=body)


def count(handle) -> int:
    return handle.org.store.count("lead")


def test_create_multiple_returns_the_ids(empty_sandbox, empty_api):
    r = action(empty_api, "CreateMultiple", {"Targets": targets(3)})
    assert r.status_code == 200
    body = r.json()
    assert body["@odata.context"] == (
        f"{empty_sandbox.api}$metadata#Microsoft.Dynamics.CRM.CreateMultipleResponse"
    )
    assert len(body["Ids"]) == 3
    for i, id in enumerate(body["Ids"]):
        record = empty_api.get(f"leads({id})?$select=subject,lastname").json()
        assert (record["subject"], record["lastname"]) == (f"Bulk {i}", f"Last{i}")


def test_create_multiple_honours_client_keys_so_a_retry_is_detected(empty_sandbox, empty_api):
    keys = [str(uuid.uuid4()) for _ in range(3)]
    body = {"Targets": [dict(t, leadid=k) for t, k in zip(targets(3), keys, strict=True)]}
    r = action(empty_api, "CreateMultiple", body)
    assert r.status_code == 200 and r.json()["Ids"] == keys
    retry = action(empty_api, "CreateMultiple", body)
    assert retry.status_code == 412
    assert retry.json()["error"]["message"] == "A record with matching key values already exists."
    assert count(empty_sandbox) == 3


@pytest.mark.parametrize(
    ("bad", "status", "fragment"),
    [
        ({"subject": "x" * 301, "lastname": "L"}, 400, "exceeded the maximum allowed length"),
        ({"subject": "s", "lastname": "l", "statuscode": 99}, 400, "statuscode"),
        ({"subject": "s", "lastname": "l", "nosuchcolumn": 1}, 400, "nosuchcolumn"),
    ],
)
def test_one_invalid_target_writes_nothing(empty_sandbox, empty_api, bad, status, fragment):
    body = targets(4)
    body.insert(2, {"@odata.type": LEAD, **bad})
    r = action(empty_api, "CreateMultiple", {"Targets": body})
    assert r.status_code == status
    assert fragment in r.json()["error"]["message"]
    assert count(empty_sandbox) == 0


@pytest.mark.parametrize(
    ("target", "fragment"),
    [
        ({"subject": "s", "lastname": "l"}, "has no @odata.type"),
        ({"@odata.type": "Microsoft.Dynamics.CRM.contact", "lastname": "l"}, "expected"),
    ],
)
def test_targets_need_the_right_odata_type(empty_sandbox, empty_api, target, fragment):
    r = action(empty_api, "CreateMultiple", {"Targets": [*targets(2), target]})
    assert r.status_code == 400
    message = r.json()["error"]["message"]
    assert fragment in message and "Targets[2]" in message
    assert count(empty_sandbox) == 0


@pytest.mark.parametrize("body", [{}, {"Targets": []}, {"Targets": "x"}, [1]])
def test_a_body_without_targets_is_refused(empty_api, body):
    r = action(empty_api, "CreateMultiple", body)
    assert r.status_code == 400 and "Targets" in r.json()["error"]["message"]


def test_unknown_entity_set_is_not_found(empty_api):
    r = action(empty_api, "CreateMultiple", {"Targets": targets(1)}, entity_set="leadz")
    assert r.status_code == 404
    assert r.json()["error"]["code"] == "0x8006088a"


def test_update_multiple_answers_204_and_updates_all(empty_sandbox, empty_api):
    ids = action(empty_api, "CreateMultiple", {"Targets": targets(3)}).json()["Ids"]
    updates = [{"@odata.type": LEAD, "leadid": i, "subject": f"Updated {i}"} for i in ids]
    r = action(empty_api, "UpdateMultiple", {"Targets": updates})
    assert r.status_code == 204 and r.content == b""
    for i in ids:
        assert empty_api.get(f"leads({i})?$select=subject").json()["subject"] == f"Updated {i}"


def test_update_multiple_with_a_missing_record_changes_nothing(empty_sandbox, empty_api):
    ids = action(empty_api, "CreateMultiple", {"Targets": targets(2)}).json()["Ids"]
    ghost = str(uuid.uuid4())
    updates = [{"@odata.type": LEAD, "leadid": i, "subject": "changed"} for i in [*ids, ghost]]
    r = action(empty_api, "UpdateMultiple", {"Targets": updates})
    assert r.status_code == 404
    assert r.json()["error"]["message"] == f"lead With Id = {ghost} Does Not Exist"
    for i in ids:
        assert empty_api.get(f"leads({i})?$select=subject").json()["subject"] != "changed"
    no_key = action(empty_api, "UpdateMultiple", {"Targets": [{"@odata.type": LEAD}]})
    assert no_key.status_code == 400 and "leadid" in no_key.json()["error"]["message"]


def test_upsert_multiple_creates_and_updates_and_answers_204(empty_sandbox, empty_api):
    (existing,) = action(empty_api, "CreateMultiple", {"Targets": targets(1)}).json()["Ids"]
    fresh, by_odata_id = str(uuid.uuid4()), str(uuid.uuid4())
    body = {
        "Targets": [
            {"@odata.type": LEAD, "leadid": existing, "subject": "upserted"},
            {"@odata.type": LEAD, "leadid": fresh, "subject": "new", "lastname": "N"},
            {
                "@odata.type": LEAD,
                "@odata.id": f"leads({by_odata_id})",
                "subject": "via id",
                "lastname": "I",
            },
        ]
    }
    r = action(empty_api, "UpsertMultiple", body)
    assert r.status_code == 204
    assert empty_api.get(f"leads({existing})?$select=subject").json()["subject"] == "upserted"
    assert empty_api.get(f"leads({fresh})?$select=subject").json()["subject"] == "new"
    assert empty_api.get(f"leads({by_odata_id})?$select=subject").json()["subject"] == "via id"
    assert count(empty_sandbox) == 3


def test_bulk_writes_show_in_change_tracking(empty_api):
    link = empty_api.get("leads", headers={"Prefer": "odata.track-changes"}).json()[
        "@odata.deltaLink"
    ]
    ids = action(empty_api, "CreateMultiple", {"Targets": targets(5)}).json()["Ids"]
    values = empty_api.get(link).json()["value"]
    assert [v["leadid"] for v in values] == ids
