"""Fields built from column metadata validate inline and produce the values the client accepts."""

from __future__ import annotations

import pytest

from d365nb.client.metadata import ColumnMeta
from d365nb.notebook.forms import columns as cols
from d365nb.notebook.forms.fields import BLANK, make_field


def test_text_over_max_length_is_flagged_inline_as_typed():
    field = make_field(ColumnMeta("subject", "String", "Subject", required=True, max_length=10))
    field.input.value = "x" * 11
    assert "at most 10" in field.error.value
    assert not field.validate()
    field.input.value = "short"
    assert field.validate() and field.value() == "short"


def test_required_text_is_flagged_only_when_checked():
    field = make_field(ColumnMeta("lastname", "String", "Last Name", required=True, max_length=50))
    assert field.error.value == ""  # an untouched form is not shouting yet
    assert not field.validate()
    assert "Last Name is required" in field.error.value


def test_memo_is_a_text_area():
    field = make_field(ColumnMeta("description", "Memo", "Description", max_length=2000))
    assert type(field.input).__name__ == "Textarea"


def test_whole_number_range_and_type_are_checked():
    field = make_field(
        ColumnMeta("percentcomplete", "Integer", "Percent Complete", min_value=0, max_value=100)
    )
    assert field.input.placeholder == "whole number 0 to 100"
    field.input.value = "101"
    assert "above the maximum 100" in field.error.value
    field.input.value = "4.5"
    assert "not a whole number" in field.error.value
    field.input.value = "50"
    assert field.validate() and field.value() == 50
    field.input.value = ""
    assert field.value() is BLANK and field.validate()


def test_decimal_accepts_fractions():
    field = make_field(ColumnMeta("revenue", "Money", "Revenue", min_value=0))
    field.input.value = "1,234.5"
    assert field.value() == 1234.5


@pytest.mark.parametrize("typed", ["1,5", "12,34", "1,2345"])
def test_a_comma_that_is_not_a_thousands_separator_is_flagged_not_dropped(typed):
    # "1,5" may mean one and a half: turning it into 15 would store a wrong amount silently.
    field = make_field(ColumnMeta("revenue", "Money", "Revenue", min_value=0))
    field.input.value = typed
    assert not field.validate()
    assert "is not a number" in field.error.value


@pytest.mark.parametrize(
    ("typed", "expected"),
    [("03/31/2026", "2026-03-31"), ("2026-03-31", "2026-03-31"), ("3/1/2026", "2026-03-01")],
)
def test_date_accepts_mm_dd_yyyy_and_iso(typed, expected):
    field = make_field(ColumnMeta("scheduledend", "DateTime", "Due Date"))
    field.text.value = typed
    assert field.value() == expected
    assert field.picker.value.isoformat() == expected  # the date picker follows the box


def test_picking_a_date_fills_the_box_as_mm_dd_yyyy():
    from datetime import date

    field = make_field(ColumnMeta("scheduledend", "DateTime", "Due Date"))
    field.picker.value = date(2026, 12, 24)
    assert field.text.value == "12/24/2026"
    assert field.value() == "2026-12-24"


def test_bad_date_is_flagged_with_the_accepted_formats():
    field = make_field(ColumnMeta("scheduledend", "DateTime", "Due Date"))
    field.text.value = "31/31/2026"
    assert "mm/dd/yyyy" in field.error.value
    assert not field.validate()


def test_choice_is_a_dropdown_of_labels_sending_the_value():
    field = make_field(
        ColumnMeta(
            "prioritycode", "Picklist", "Priority", options={0: "Low", 1: "Normal", 2: "High"}
        )
    )
    assert [label for label, _ in field.input.options] == ["", "Low", "Normal", "High"]
    field.set("High")
    assert field.value() == 2
    with pytest.raises(ValueError, match="not a choice"):
        field.set("Urgent")


def test_boolean_is_a_checkbox_and_untouched_means_default():
    field = make_field(
        ColumnMeta(
            "donotemail", "Boolean", "Do not allow Emails", options={0: "Allow", 1: "Do Not Allow"}
        )
    )
    assert type(field.input).__name__ == "Checkbox"
    assert field.value() is BLANK
    field.input.value = True
    assert field.value() is True


def test_required_fields_are_marked_in_the_label():
    required = make_field(ColumnMeta("subject", "String", "Subject", required=True))
    optional = make_field(ColumnMeta("category", "String", "Category"))
    assert "d365nb-required" in required.label.value
    assert "d365nb-required" not in optional.label.value


def test_owner_is_never_required_because_the_caller_becomes_owner():
    owner = ColumnMeta("ownerid", "Owner", "Owner", required=True, targets=["systemuser", "team"])
    assert not cols.is_required(owner)


def test_columns_without_an_input_are_refused_clearly():
    with pytest.raises(ValueError, match="has no form input"):
        make_field(ColumnMeta("activityid", "Uniqueidentifier", "Activity"))


def test_parse_date_message_names_both_formats():
    with pytest.raises(ValueError, match=r"mm/dd/yyyy.*2026-03-31"):
        cols.parse_date("tomorrow")
