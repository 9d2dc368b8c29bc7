"""Bad input: one clear line, nothing written (checked on a fresh, empty sandbox)."""

import uuid

import pytest

from d365nb.client.errors import (
    BadRequest,
    ChangeTokenExpired,
    D365Error,
    NotFound,
    UnknownColumn,
    UnknownTable,
    ValidationError,
)


def one_line(err: BaseException) -> str:
    text = str(err)
    assert "\n" not in text and len(text) < 400, text
    return text


def assert_nothing_written(conn):
    assert len(conn.list("tasks", select="subject")) == 0


def test_unknown_table_suggests_the_closest_names(empty_d365):
    with pytest.raises(UnknownTable) as info:
        empty_d365.create("taks", {"subject": "x"})
    text = one_line(info.value)
    assert "did you mean" in text and "task" in text and "tasks" in text
    assert_nothing_written(empty_d365)


def test_unknown_column_is_named_with_a_suggestion(empty_d365):
    with pytest.raises(UnknownColumn) as info:
        empty_d365.create("tasks", {"subjet": "x"})
    assert "'subjet'" in one_line(info.value) and "subject" in str(info.value)
    with pytest.raises(UnknownColumn):
        empty_d365.list("tasks", select="subjet")
    assert_nothing_written(empty_d365)


def test_malformed_filter_reports_the_server_message_and_position(empty_d365):
    with pytest.raises(BadRequest) as info:
        empty_d365.list("tasks", filter="subject eq 'O'Bryan'")
    text = one_line(info.value)
    assert "position" in text and info.value.code == "0x80060888"


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ({"subject": "x", "percentcomplete": "half"}, "whole number"),
        ({"subject": "x", "scheduledend": "31/31/2026"}, "date"),
        ({"subject": "x", "prioritycode": "Urgent"}, "choice"),
        ({"subject": "x", "regardingobjectid": ("systemusers", str(uuid.uuid4()))}, "lookup"),
        ({"subject": 42}, "text"),
    ],
)
def test_wrong_value_types_name_field_type_and_example(empty_d365, values, expected):
    with pytest.raises(ValidationError) as info:
        empty_d365.create("tasks", values)
    text = one_line(info.value)
    assert "task." in text and expected in text and "e.g." in text
    assert_nothing_written(empty_d365)


@pytest.mark.parametrize("bad_id", ["12345", "not-a-guid", "", None, 42])
def test_malformed_guid_is_refused_before_any_request(empty_d365, bad_id):
    empty_d365.metadata.table("tasks")
    before = empty_d365.requests_sent
    with pytest.raises(ValidationError) as info:
        empty_d365.update("tasks", bad_id, {"subject": "x"})
    assert "GUID" in one_line(info.value)
    assert empty_d365.requests_sent == before


def test_missing_record_names_table_and_id(empty_d365):
    ghost = str(uuid.uuid4())
    for call in (
        lambda: empty_d365.get("tasks", ghost),
        lambda: empty_d365.update("tasks", ghost, {"subject": "x"}),
        lambda: empty_d365.delete("tasks", ghost),
    ):
        with pytest.raises(NotFound) as info:
            call()
        assert f"no task record with id {ghost}" in one_line(info.value)
    assert_nothing_written(empty_d365)


def test_expired_change_token_is_recoverable_by_full_resync(empty_sandbox, empty_d365):
    first = empty_d365.changes("tasks")
    empty_d365.create("tasks", {"subject": "after first sync"})
    empty_sandbox.org.config["change_tracking_expiry_days"] = 0
    try:
        with pytest.raises(ChangeTokenExpired) as info:
            empty_d365.changes("tasks", first.token)
        assert "full resync" in one_line(info.value)
        assert isinstance(info.value, D365Error) and info.value.status == 400
    finally:
        empty_sandbox.org.config["change_tracking_expiry_days"] = 7
    resync = empty_d365.changes("tasks")
    assert [r["subject"] for r in resync.upserted] == ["after first sync"]
