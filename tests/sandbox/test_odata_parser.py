"""The $filter / $orderby parser: trees with positions, literals, aliases, Dataverse's errors."""

from __future__ import annotations

import datetime as dt

import pytest

from d365nb.sandbox.odata import ODataError, parse_filter, parse_orderby
from d365nb.sandbox.odata.nodes import (
    And,
    Call,
    Compare,
    Lambda,
    Literal,
    Not,
    Or,
    Property,
    QueryFunction,
)


def error_of(text: str, aliases=None) -> ODataError:
    with pytest.raises(ODataError) as info:
        parse_filter(text, aliases)
    return info.value


def test_comparison_keeps_positions_of_each_part():
    node = parse_filter("lastname eq 'Smith'")
    assert node == Compare(0, "eq", Property(0, ("lastname",)), Literal(12, "string", "Smith"))


def test_doubled_quote_is_one_quote_in_a_string():
    assert parse_filter("lastname eq 'O''Bryan'").right.value == "O'Bryan"


def test_and_binds_tighter_than_or_and_parentheses_override():
    node = parse_filter("a eq 1 or b eq 2 and c eq 3")
    assert isinstance(node, Or) and isinstance(node.right, And)
    grouped = parse_filter("(a eq 1 or b eq 2) and c eq 3")
    assert isinstance(grouped, And) and isinstance(grouped.left, Or)


def test_not_applies_to_the_comparison_or_call_after_it():
    node = parse_filter("not contains(name,'x')")
    assert isinstance(node, Not) and isinstance(node.operand, Call)
    assert node.operand.name == "contains"


@pytest.mark.parametrize(
    ("text", "kind", "value"),
    [
        ("x eq 42", "int", 42),
        ("x eq -7", "int", -7),
        ("x eq 1.5", "decimal", 1.5),
        ("x eq true", "bool", True),
        ("x eq null", "null", None),
        (
            "x eq A0DBF27C-8EFB-E511-80D2-00155DB07C77",
            "guid",
            "a0dbf27c-8efb-e511-80d2-00155db07c77",
        ),
        ("x eq 2026-01-02", "date", dt.date(2026, 1, 2)),
        ("x eq 2026-01-02T03:04:05Z", "datetime", dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.UTC)),
    ],
)
def test_literal_forms(text, kind, value):
    literal = parse_filter(text).right
    assert (literal.kind, literal.value) == (kind, value)


def test_datetime_with_offset_becomes_utc_and_without_offset_is_utc():
    shifted = parse_filter("x ge 2026-01-02T03:00:00+02:00").right.value
    assert shifted == dt.datetime(2026, 1, 2, 1, 0, tzinfo=dt.UTC)
    bare = parse_filter("x ge 2026-01-02T03:00:00").right.value
    assert bare == dt.datetime(2026, 1, 2, 3, 0, tzinfo=dt.UTC)


def test_enum_literal_keeps_its_type_for_metadata_filters():
    node = parse_filter("AttributeType eq Microsoft.Dynamics.CRM.AttributeTypeCode'Picklist'")
    assert node.right == Literal(17, "enum", "Picklist", "Microsoft.Dynamics.CRM.AttributeTypeCode")
    assert parse_filter("RequiredLevel/Value eq 'x'").left.path == ("RequiredLevel", "Value")


def test_navigation_path_and_lambdas():
    assert parse_filter("parentaccountid/name eq 'x'").left.path == ("parentaccountid", "name")
    any_ = parse_filter("Account_Tasks/any(t:t/statecode eq 1)")
    assert isinstance(any_, Lambda) and (any_.path, any_.kind, any_.var) == (
        ("Account_Tasks",),
        "any",
        "t",
    )
    assert any_.predicate.left.path == ("t", "statecode")
    empty = parse_filter("Account_Tasks/any()")
    assert (empty.kind, empty.var, empty.predicate) == ("any", None, None)
    assert parse_filter("Account_Tasks/all(x:x/subject ne null)").kind == "all"


def test_query_function_with_square_bracket_values():
    node = parse_filter(
        'Microsoft.Dynamics.CRM.Between(PropertyName=\'numberofemployees\',PropertyValues=["5","2000"])'
    )
    assert isinstance(node, QueryFunction)
    assert node.name == "Microsoft.Dynamics.CRM.Between"
    assert node.args["PropertyName"].value == "numberofemployees"
    assert node.args["PropertyValues"].value == ["5", "2000"]


def test_aliases_are_substituted_and_unassigned_alias_is_null():
    node = parse_filter(
        "Microsoft.Dynamics.CRM.In(PropertyName=@p1,PropertyValues=@p2) and x eq @p3",
        {"@p1": "'lastname'", "@p2": '["OBrian","O\'Brian"]'},
    )
    function = node.left
    assert function.args["PropertyName"].value == "lastname"
    assert function.args["PropertyValues"].value == ["OBrian", "O'Brian"]
    assert node.right.right.kind == "null"


def test_alias_may_name_a_property():
    node = parse_filter("contains(@p1,'Contoso')", {"@p1": "name"})
    assert node.args[0] == Property(9, ("name",))


def test_unterminated_literal_is_reported_as_dataverse_does():
    err = error_of("lastname eq 'O'Bryan'")
    assert str(err) == "There is an unterminated literal at position 21 in 'lastname eq 'O'Bryan''."
    assert err.position == 21


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("name eq", "Expression expected at position 7 in 'name eq'."),
        ("(name eq 1", "')' or operator expected at position 10 in '(name eq 1'."),
        ("name ! 1", "Syntax error: character '!' is not valid at position 5 in 'name ! 1'."),
        ("name eq 1 1", "Syntax error at position 10 in 'name eq 1 1'."),
        ("", "Expression expected at position 0 in ''."),
    ],
)
def test_syntax_errors_name_the_position(text, message):
    assert str(error_of(text)) == message


def test_orderby_directions_and_alias():
    items = parse_orderby("revenue desc, name,@o asc", {"@o": "createdon"})
    assert [(i.path, i.descending) for i in items] == [
        (("revenue",), True),
        (("name",), False),
        (("createdon",), False),
    ]


def test_orderby_alias_must_name_a_property():
    with pytest.raises(ODataError):
        parse_orderby("@o", {"@o": "42"})


def test_parsed_trees_are_reused_for_the_same_text():
    assert parse_filter("statuscode eq 1") is parse_filter("statuscode eq 1")
