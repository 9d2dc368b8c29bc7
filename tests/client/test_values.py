"""Values are checked and coerced against metadata before any request."""

import uuid
from datetime import UTC, date, datetime

import numpy as np
import pytest

from d365nb.client.errors import UnknownColumn, ValidationError
from d365nb.client.values import coerce_record, normalize_id

LEAD = "a0dbf27c-8efb-e511-80d2-00155db07c77"


@pytest.fixture(autouse=True)
def _table(task_meta, targets):
    global _META, _TARGETS
    _META, _TARGETS = task_meta, targets


def body(values, for_update=False, missing="omit"):
    return coerce_record(
        _META, values, for_update=for_update, resolve_target=_TARGETS, missing=missing
    )


def test_text_and_whole_numbers_pass_and_numeric_text_becomes_int():
    assert body({"subject": "Call back", "percentcomplete": "50"}) == {
        "subject": "Call back",
        "percentcomplete": 50,
    }
    assert body({"percentcomplete": np.int64(7)}) == {"percentcomplete": 7}


def test_wrong_type_names_field_expected_type_and_example():
    with pytest.raises(ValidationError) as info:
        body({"percentcomplete": "half"})
    text = str(info.value)
    assert "task.percentcomplete" in text and "whole number" in text and "e.g." in text
    assert "\n" not in text


def test_out_of_range_and_too_long_are_refused():
    with pytest.raises(ValidationError, match="maximum 100"):
        body({"percentcomplete": 101})
    with pytest.raises(ValidationError, match="at most 200"):
        body({"subject": "x" * 201})
    with pytest.raises(ValidationError, match="text"):
        body({"subject": 5})


def test_dates_accept_iso_and_mm_dd_yyyy():
    assert body({"scheduledend": "03/01/2026"}) == {"scheduledend": "2026-03-01T00:00:00Z"}
    assert body({"scheduledend": "03/01/2026 2:30 PM"}) == {"scheduledend": "2026-03-01T14:30:00Z"}
    assert body({"scheduledend": "2026-03-01T12:00:00-08:00"}) == {
        "scheduledend": "2026-03-01T20:00:00Z"
    }
    assert body({"scheduledend": datetime(2026, 3, 1, 9, tzinfo=UTC)}) == {
        "scheduledend": "2026-03-01T09:00:00Z"
    }
    assert body({"actualstart": "2026-03-01T23:00:00Z"}) == {"actualstart": "2026-03-01"}
    assert body({"actualstart": date(2026, 3, 1)}) == {"actualstart": "2026-03-01"}


@pytest.mark.parametrize("bad", ["13/45/2026", "tomorrow", "1700-01-01", 20260301])
def test_bad_dates_are_refused(bad):
    with pytest.raises(ValidationError, match="scheduledend"):
        body({"scheduledend": bad})


def test_choices_by_value_or_label():
    assert body({"prioritycode": "High"}) == {"prioritycode": 2}
    assert body({"prioritycode": "high"}) == {"prioritycode": 2}
    assert body({"prioritycode": 0}) == {"prioritycode": 0}
    with pytest.raises(ValidationError, match="valid: 0 'Low', 1 'Normal', 2 'High'"):
        body({"prioritycode": "Urgent"})
    with pytest.raises(ValidationError):
        body({"prioritycode": 7})


def test_booleans_accept_words_and_labels():
    assert body({"isbilled": "yes"}) == {"isbilled": True}
    assert body({"isbilled": 0}) == {"isbilled": False}
    with pytest.raises(ValidationError):
        body({"isbilled": "maybe"})


def test_lookups_become_odata_bind_with_the_right_navigation():
    assert body({"regardingobjectid": ("leads", LEAD)}) == {
        "regardingobjectid_lead_task@odata.bind": f"/leads({LEAD})"
    }
    assert body({"regardingobjectid": f"accounts({LEAD.upper()})"}) == {
        "regardingobjectid_account_task@odata.bind": f"/accounts({LEAD})"
    }
    assert body({"ownerid": f"/systemusers({LEAD})"}) == {
        "ownerid@odata.bind": f"/systemusers({LEAD})"
    }
    assert body({"parentaccountid": LEAD}) == {"parentaccountid@odata.bind": f"/accounts({LEAD})"}
    assert body({"ownerid": ("team", uuid.UUID(LEAD))}) == {"ownerid@odata.bind": f"/teams({LEAD})"}


def test_lookup_errors_say_what_is_wrong():
    with pytest.raises(ValidationError, match="say which"):
        body({"regardingobjectid": LEAD})  # several targets: the type is needed
    with pytest.raises(ValidationError, match="not one of"):
        body({"regardingobjectid": ("systemusers", LEAD)})
    with pytest.raises(ValidationError, match="not a GUID"):
        body({"regardingobjectid": ("leads", "12345")})


def test_explicit_bind_annotations_pass_through():
    assert body({"regardingobjectid_lead_task@odata.bind": f"/leads({LEAD})"}) == {
        "regardingobjectid_lead_task@odata.bind": f"/leads({LEAD})"
    }


def test_unknown_column_suggests_close_names():
    with pytest.raises(UnknownColumn, match="did you mean subject"):
        body({"subjet": "x"})


def test_read_only_columns_are_refused():
    with pytest.raises(ValidationError, match="read-only"):
        body({"createdon": "2026-01-01"})
    with pytest.raises(ValidationError, match="read-only"):
        body({"activityid": LEAD}, for_update=True)


def test_missing_values_are_omitted_or_sent_as_null_by_option():
    assert body({"subject": "x", "percentcomplete": float("nan")}) == {"subject": "x"}
    assert body({"subject": "x", "percentcomplete": float("nan")}, missing="null") == {
        "subject": "x",
        "percentcomplete": None,
    }
    assert body({"description": None}) == {"description": None}


def test_normalize_id_refuses_malformed_guids():
    assert normalize_id("{A0DBF27C-8EFB-E511-80D2-00155DB07C77}") == LEAD
    with pytest.raises(ValidationError, match="not a GUID"):
        normalize_id("a0dbf27c-8efb")
