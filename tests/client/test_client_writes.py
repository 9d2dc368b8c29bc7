"""Single-record writes: create/update/upsert/delete with names and values from the seed."""

import uuid

import pytest

from d365nb.client.errors import NotFound, PreconditionFailed


@pytest.fixture
def lead_id(d365):
    return d365.list("leads", select="subject", top=1).index[0]


def test_create_returns_a_client_generated_id_and_binds_lookups(d365, lead_id):
    owner = d365.whoami()["UserId"]
    task_id = d365.create(
        "tasks",
        {
            "subject": "Call back",
            "regardingobjectid": ("leads", lead_id),
            "ownerid": f"systemusers({owner})",
            "scheduledend": "03/01/2026",
            "prioritycode": "High",
            "percentcomplete": "10",
        },
    )
    uuid.UUID(task_id)
    record = d365.get("tasks", task_id)
    assert record["_regardingobjectid_value"] == lead_id
    assert record[
        "_regardingobjectid_value@Microsoft.Dynamics.CRM.associatednavigationproperty"
    ] == ("regardingobjectid_lead_task")
    assert record["_ownerid_value"] == owner
    assert record["scheduledend"] == "2026-03-01T00:00:00Z"
    assert (record["prioritycode"], record["percentcomplete"]) == (2, 10)


def test_create_with_a_given_id_uses_it_and_a_second_create_is_refused(d365):
    wanted = str(uuid.uuid4())
    assert d365.create("tasks", {"subject": "mine"}, id=wanted) == wanted
    with pytest.raises(PreconditionFailed):
        d365.create("tasks", {"subject": "again"}, id=wanted)


def test_update_changes_only_given_columns_and_never_creates(d365):
    task_id = d365.create("tasks", {"subject": "to update", "percentcomplete": 5})
    d365.update("tasks", task_id, {"percentcomplete": 50})
    record = d365.get("tasks", task_id)
    assert (record["subject"], record["percentcomplete"]) == ("to update", 50)
    missing = str(uuid.uuid4())
    with pytest.raises(NotFound, match=f"no task record with id {missing}"):
        d365.update("tasks", missing, {"percentcomplete": 1})
    with pytest.raises(NotFound):
        d365.get("tasks", missing)


def test_upsert_reports_whether_it_created(d365):
    new_id = str(uuid.uuid4())
    assert d365.upsert("tasks", new_id, {"subject": "upserted"}) is True
    assert d365.upsert("tasks", new_id, {"percentcomplete": 7}) is False
    assert d365.get("tasks", new_id)["percentcomplete"] == 7


def test_delete_removes_the_record(d365):
    task_id = d365.create("tasks", {"subject": "to delete"})
    d365.delete("tasks", task_id)
    with pytest.raises(NotFound, match=task_id):
        d365.get("tasks", task_id)
    with pytest.raises(NotFound, match=f"no task record with id {task_id}"):
        d365.delete("tasks", task_id)


def test_choices_by_label_and_dates_by_mm_dd_yyyy_are_stored_as_values(d365):
    task_id = d365.create(
        "tasks", {"subject": "labels", "prioritycode": "low", "actualstart": "12/31/2025"}
    )
    record = d365.get("tasks", task_id, select="prioritycode,actualstart")
    assert record["prioritycode"] == 0
    assert record["actualstart"].startswith("2025-12-31")


def test_validate_returns_the_body_create_would_send_and_writes_nothing(empty_d365):
    from d365nb.client.errors import ValidationError

    lead = str(uuid.uuid4())
    body = empty_d365.validate(
        "tasks",
        {"subject": "Call", "prioritycode": "High", "scheduledend": "03/01/2026",
         "regardingobjectid": ("leads", lead)},
    )  # fmt: skip
    assert body == {
        "subject": "Call",
        "prioritycode": 2,
        "scheduledend": "2026-03-01T00:00:00Z",
        "regardingobjectid_lead_task@odata.bind": f"/leads({lead})",
    }
    sent = empty_d365.requests_sent
    with pytest.raises(ValidationError, match=r"task\.percentcomplete: expected a whole number"):
        empty_d365.validate("tasks", {"percentcomplete": "half"}, for_update=True)
    with pytest.raises(ValidationError, match="read-only"):
        empty_d365.validate("tasks", {"activityid": str(uuid.uuid4())}, for_update=True)
    assert empty_d365.requests_sent == sent  # metadata was cached: no request at all
    assert len(empty_d365.list("tasks", select="subject")) == 0
