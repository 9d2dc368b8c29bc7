"""``{expr}`` interpolation, OData quoting in filters, ``field=value`` words and cell bodies."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest

from d365nb.client.metadata import ColumnMeta, TableMeta
from d365nb.notebook.values import (
    BadValue,
    interpolate,
    interpolate_filter,
    parse_assignments,
    parse_cell_body,
)

TASK = TableMeta(
    logical_name="task",
    entity_set="tasks",
    primary_id="activityid",
    primary_name="subject",
    columns={
        name: ColumnMeta(name=name, type=kind)
        for name, kind in [
            ("activityid", "Uniqueidentifier"),
            ("subject", "String"),
            ("percentcomplete", "Integer"),
            ("prioritycode", "Picklist"),
            ("regardingobjectid", "Lookup"),
            ("scheduledend", "DateTime"),
        ]
    },
)


def test_filter_string_value_is_quoted_with_doubled_quote():
    assert interpolate_filter("lastname eq {name}", {"name": "O'Neil"}) == "lastname eq 'O''Neil'"


def test_filter_value_inside_odata_quotes_is_escaped_not_requoted():
    text = interpolate_filter("contains(fullname,'{part}')", {"part": "O'N"})
    assert text == "contains(fullname,'O''N')"


def test_filter_quote_state_survives_escaped_quotes_before_the_placeholder():
    text = interpolate_filter("lastname eq 'a''b' and firstname eq {x}", {"x": "c"})
    assert text == "lastname eq 'a''b' and firstname eq 'c'"


def test_filter_guid_datetime_number_none_are_bare_literals():
    ns = {
        "id": uuid.UUID("3f2504e0-4f89-11d3-9a0c-0305e82c3301"),
        "when": datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC),
        "n": 5,
        "nothing": None,
    }
    text = interpolate_filter("a eq {id} and b ge {when} and c eq {n} and d eq {nothing}", ns)
    assert text == (
        "a eq 3f2504e0-4f89-11d3-9a0c-0305e82c3301 and b ge 2026-01-02T03:04:05Z "
        "and c eq 5 and d eq null"
    )


def test_filter_expressions_and_format_field_syntax_both_work():
    ns = {"names": ["x", "y"], "trigger": {"subject": "S'1"}}
    assert interpolate_filter("a eq {names[1].upper()}", ns) == "a eq 'Y'"
    assert interpolate_filter("a eq {trigger[subject]}", ns) == "a eq 'S''1'"


def test_comprehension_in_braces_sees_user_names_and_leaves_namespace_alone():
    ns = {"nums": [1, 5, 9], "limit": 4}
    assert interpolate("{[n for n in nums if n > limit]}", ns) == "[5, 9]"
    assert set(ns) == {"nums", "limit"}


def test_dollar_text_and_doubled_braces_pass_untouched():
    assert interpolate_filter("$filter {{x}}", {}) == "$filter {x}"


def test_unknown_name_in_braces_is_a_one_line_error():
    with pytest.raises(BadValue, match=r"cannot evaluate \{missing\}: NameError"):
        interpolate_filter("a eq {missing}", {})


def test_unclosed_brace_is_reported():
    with pytest.raises(BadValue, match="unclosed"):
        interpolate("x{y", {"y": 1})


def test_assignment_whole_placeholder_keeps_python_type():
    values = parse_assignments(
        ["percentcomplete={n}", "subject=Call {who}"], TASK, {"n": 50, "who": "Ann"}
    )
    assert values == {"percentcomplete": 50, "subject": "Call Ann"}


def test_assignment_null_clears_and_lookup_text_is_kept_for_the_client():
    rid = "3f2504e0-4f89-11d3-9a0c-0305e82c3301"
    values = parse_assignments(["scheduledend=null", f"regardingobjectid=leads({rid})"], TASK, {})
    assert values == {"scheduledend": None, "regardingobjectid": f"leads({rid})"}


def test_assignment_unknown_column_suggests_close_names():
    with pytest.raises(BadValue, match=r"no column 'subjct'; did you mean subject"):
        parse_assignments(["subjct=x"], TASK, {})


def test_word_without_equals_is_refused_with_an_example():
    with pytest.raises(BadValue, match="is not field=value"):
        parse_assignments(["subject"], TASK, {})


def test_cell_body_field_lines_with_comments_quotes_and_braces():
    body = '# a task\nsubject: "Call back"\npercentcomplete = {n}\n\nprioritycode: High\n'
    assert parse_cell_body(body, TASK, {"n": 5}) == {
        "subject": "Call back",
        "percentcomplete": 5,
        "prioritycode": "High",
    }


def test_cell_body_json_object_and_array():
    assert parse_cell_body('{"subject": "a"}', TASK, {}) == {"subject": "a"}
    assert parse_cell_body('[{"subject": "a"}, {"subject": "b"}]', TASK, {}) == [
        {"subject": "a"},
        {"subject": "b"},
    ]


def test_cell_body_bad_json_names_line_and_column():
    with pytest.raises(BadValue, match="not valid JSON: .* line 1 column"):
        parse_cell_body('{"subject": }', TASK, {})


def test_cell_body_line_that_is_not_field_value():
    with pytest.raises(BadValue, match="cell line 2 is not `field: value`"):
        parse_cell_body("subject: a\njust words here", TASK, {})
