"""Safe OData literals and filter interpolation."""

import uuid
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal

import pytest

from d365nb.client.errors import ValidationError
from d365nb.client.query import build_query, format_filter, literal


def test_strings_are_quoted_with_doubled_apostrophes():
    assert literal("O'Neil") == "'O''Neil'"
    assert literal("") == "''"


def test_injection_attempt_stays_inside_the_literal():
    evil = "x' or 1 eq 1 or lastname eq '"
    assert format_filter("lastname eq {v}", v=evil) == (
        "lastname eq 'x'' or 1 eq 1 or lastname eq '''"
    )


def test_guids_are_bare_and_lowercase():
    gid = uuid.UUID("A0DBF27C-8EFB-E511-80D2-00155DB07C77")
    assert literal(gid) == "a0dbf27c-8efb-e511-80d2-00155db07c77"
    assert literal("{A0DBF27C-8EFB-E511-80D2-00155DB07C77}") == (
        "a0dbf27c-8efb-e511-80d2-00155db07c77"
    )


def test_datetimes_are_iso_utc_with_z():
    aware = datetime(2026, 1, 1, 9, 30, tzinfo=timezone(timedelta(hours=-8)))
    assert literal(aware) == "2026-01-01T17:30:00Z"
    assert literal(datetime(2026, 1, 1)) == "2026-01-01T00:00:00Z"
    assert literal(datetime(2026, 1, 1, 0, 0, 0, 500, tzinfo=UTC)) == (
        "2026-01-01T00:00:00.000500Z"
    )
    assert literal(date(2026, 3, 1)) == "2026-03-01"


def test_scalars_are_bare():
    assert literal(None) == "null"
    assert literal(True) == "true"
    assert literal(False) == "false"
    assert literal(42) == "42"
    assert literal(2.5) == "2.5"
    assert literal(Decimal("100000.00")) == "100000.00"


def test_lists_become_double_quoted_arrays():
    assert literal(["OBrian", "O'Brian"]) == '["OBrian","O\'Brian"]'
    assert literal([1, 2]) == '["1","2"]'


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), object(), b"bytes"])
def test_values_without_a_literal_are_refused(bad):
    with pytest.raises(ValidationError):
        literal(bad)


def test_format_filter_takes_a_namespace_and_item_access():
    trigger = {"subject": "It's new"}
    text = format_filter(
        "subject eq {trigger[subject]} and statuscode eq {s}", {"trigger": trigger}, s=1
    )
    assert text == "subject eq 'It''s new' and statuscode eq 1"


def test_format_filter_keeps_doubled_braces_literal():
    assert format_filter("name eq {n} and x eq '{{y}}'", n="a") == "name eq 'a' and x eq '{y}'"


def test_format_filter_refuses_missing_values_and_raw_specs():
    with pytest.raises(ValidationError, match="no value"):
        format_filter("lastname eq {name}")
    with pytest.raises(ValidationError, match="format spec"):
        format_filter("lastname eq {name:>10}", name="x")
    with pytest.raises(ValidationError, match="conversion"):
        format_filter("lastname eq {name!r}", name="x")


def test_build_query_names_options():
    params = build_query(
        filter="a eq 1", orderby=["createdon desc", "name"], select="a, b", top=5, count=True
    )
    assert params == {
        "$select": "a,b",
        "$filter": "a eq 1",
        "$orderby": "createdon desc,name",
        "$top": "5",
        "$count": "true",
    }
    with pytest.raises(ValidationError):
        build_query(top=-1)
