"""Bulk writes: *Multiple actions in chunks, $batch fallback with per-record results."""

import uuid

import pandas as pd
import pytest

from d365nb.client.errors import ValidationError


def test_create_many_uses_create_multiple_in_chunks(d365):
    d365.metadata.table("tasks")
    before = d365.requests_sent
    seen = []
    result = d365.create_many(
        "tasks",
        [{"subject": f"bulk {i}", "percentcomplete": i % 100} for i in range(2500)],
        progress=lambda done, total: seen.append((done, total)),
    )
    assert result.ok and result.succeeded == 2500 and len(set(result.ids)) == 2500
    assert d365.requests_sent - before == 3  # ceil(2500 / 1000)
    assert seen == [(1000, 2500), (2000, 2500), (2500, 2500)]
    marker = result.ids[1234]
    assert d365.get("tasks", marker)["subject"] == "bulk 1234"


def test_create_many_from_a_dataframe_omits_missing_values(d365):
    frame = pd.DataFrame(
        {
            "subject": ["df a", "df b"],
            "percentcomplete": pd.array([10, None], dtype="Int64"),
            "scheduledend": pd.to_datetime(["2026-03-01T09:00:00Z", None], utc=True),
        }
    )
    result = d365.create_many("tasks", frame)
    assert result.ok
    first, second = (d365.get("tasks", i) for i in result.ids)
    assert (first["percentcomplete"], first["scheduledend"]) == (10, "2026-03-01T09:00:00Z")
    assert (second["percentcomplete"], second["scheduledend"]) == (None, None)


def test_a_bad_record_on_the_server_fails_alone(d365):
    ghost_lead = str(uuid.uuid4())
    records = [
        {"subject": "good 1"},
        {"subject": "bad", "regardingobjectid": ("leads", ghost_lead)},
        {"subject": "good 2"},
    ]
    result = d365.create_many("tasks", records)
    assert result.failed == 1 and 1 in result.errors and result.ids[1] is None
    assert result.errors[1].status in (400, 404)
    for i in (0, 2):
        assert d365.get("tasks", result.ids[i])["subject"] == records[i]["subject"]


def test_invalid_input_is_refused_before_any_request(empty_d365):
    empty_d365.metadata.table("tasks")
    before = empty_d365.requests_sent
    with pytest.raises(ValidationError, match="record 1: task.percentcomplete"):
        empty_d365.create_many(
            "tasks", [{"subject": "ok"}, {"subject": "x", "percentcomplete": "lots"}]
        )
    assert empty_d365.requests_sent == before


def test_update_many_from_a_dataframe_indexed_by_id(d365):
    ids = d365.create_many("tasks", [{"subject": f"u{i}"} for i in range(5)]).ids
    frame = pd.DataFrame(
        {"percentcomplete": [11, 22, 33, 44, 55]}, index=pd.Index(ids, name="activityid")
    )
    assert d365.update_many("tasks", frame).ok
    got = d365.list(
        "tasks", filter=" or ".join(f"activityid eq {i}" for i in ids), select="percentcomplete"
    )
    assert got.loc[ids, "percentcomplete"].tolist() == [11, 22, 33, 44, 55]


def test_upsert_many_creates_and_updates(d365):
    existing = d365.create("tasks", {"subject": "exists"})
    new = str(uuid.uuid4())
    result = d365.upsert_many(
        "tasks",
        [
            {"activityid": existing, "percentcomplete": 9},
            {"activityid": new, "subject": "new one"},
        ],
    )
    assert result.ok and result.ids == [existing, new]
    assert d365.get("tasks", existing)["percentcomplete"] == 9
    assert d365.get("tasks", new)["subject"] == "new one"


def test_delete_many_reports_missing_records_per_record(d365):
    ids = d365.create_many("tasks", [{"subject": f"d{i}"} for i in range(3)]).ids
    ghost = str(uuid.uuid4())
    result = d365.delete_many("tasks", [*ids, ghost])
    assert result.failed == 1 and result.errors[3].status == 404
    left = d365.list("tasks", filter=" or ".join(f"activityid eq {i}" for i in ids))
    assert len(left) == 0


def test_bulk_falls_back_to_batch_when_the_action_is_missing(d365):
    # systemuser-like tables may lack CreateMultiple; force the fallback to prove it works.
    d365._no_multiple.add(("task", "Create"))
    d365.metadata.table("tasks")
    before = d365.requests_sent
    result = d365.create_many("tasks", [{"subject": f"b{i}"} for i in range(1500)])
    assert result.ok and d365.requests_sent - before == 2
    assert d365.get("tasks", result.ids[-1])["subject"] == "b1499"


def test_a_record_refused_with_404_does_not_turn_bulk_actions_off(empty_d365):
    ghost_lead = str(uuid.uuid4())  # the server answers 404 "lead With Id = ... Does Not Exist"
    bad = empty_d365.create_many(
        "tasks", [{"subject": "ok"}, {"subject": "x", "regardingobjectid": ("leads", ghost_lead)}]
    )
    assert bad.failed == 1 and bad.errors[1].status == 404
    before = empty_d365.requests_sent
    later = empty_d365.create_many("tasks", [{"subject": f"later {i}"} for i in range(2000)])
    assert later.ok and empty_d365.requests_sent - before == 2  # still CreateMultiple x 1000
