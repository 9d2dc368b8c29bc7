"""Date ranges of the Microsoft.Dynamics.CRM query functions, computed from an injected "now"."""

from __future__ import annotations

import datetime as dt

import pytest

from d365nb.sandbox.odata import ODataError, functions

UTC = dt.UTC
NOW = dt.datetime(2026, 1, 31, 15, 30, 12, tzinfo=UTC)  # a Saturday, end of a month


def at(*parts: int) -> dt.datetime:
    return dt.datetime(*parts, tzinfo=UTC)


def test_today_yesterday_tomorrow_are_whole_days():
    assert functions.condition("Today", NOW) == functions.TimeRange(at(2026, 1, 31), at(2026, 2, 1))
    assert functions.condition("Yesterday", NOW).lower == at(2026, 1, 30)
    assert functions.condition("Tomorrow", NOW).upper == at(2026, 2, 2)


def test_weeks_start_on_sunday():
    this_week = functions.condition("ThisWeek", NOW)
    assert this_week == functions.TimeRange(at(2026, 1, 25), at(2026, 2, 1))
    assert functions.condition("LastWeek", NOW).lower == at(2026, 1, 18)
    assert functions.condition("NextWeek", NOW).lower == at(2026, 2, 1)


def test_months_and_years_are_calendar_periods():
    assert functions.condition("LastMonth", NOW) == functions.TimeRange(
        at(2025, 12, 1), at(2026, 1, 1)
    )
    assert functions.condition("NextMonth", NOW) == functions.TimeRange(
        at(2026, 2, 1), at(2026, 3, 1)
    )
    assert functions.condition("ThisYear", NOW) == functions.TimeRange(
        at(2026, 1, 1), at(2027, 1, 1)
    )


def test_month_arithmetic_clamps_to_the_last_day():
    # 31 January minus 2 months -> 30 November (not an invalid 31 November)
    older = functions.condition("OlderThanXMonths", NOW, value=2)
    assert older.upper == at(2025, 11, 30, 15, 30, 12) and older.lower is None
    assert functions.condition("NextXMonths", NOW, value=1).upper == at(2026, 3, 1)


def test_last_x_hours_is_relative_to_now_and_last_x_days_to_midnight():
    hours = functions.condition("LastXHours", NOW, value=3)
    assert (hours.lower, hours.upper, hours.upper_inclusive) == (
        at(2026, 1, 31, 12, 30, 12),
        NOW,
        True,
    )
    days = functions.condition("LastXDays", NOW, value=2)
    assert (days.lower, days.upper) == (at(2026, 1, 29), NOW)


def test_on_functions_take_a_date():
    day = dt.date(2026, 1, 15)
    assert functions.condition("On", NOW, value=day) == functions.TimeRange(
        at(2026, 1, 15), at(2026, 1, 16)
    )
    assert functions.condition("OnOrBefore", NOW, value=day).upper == at(2026, 1, 16)


@pytest.mark.parametrize(
    ("name", "shape"),
    [
        ("Today", "none"),
        ("LastXYears", "x"),
        ("OlderThanXMinutes", "x"),
        ("Between", "pair"),
        ("NotIn", "list"),
        ("On", "date"),
        ("LastXMinutes", None),
        ("Whenever", None),
    ],
)
def test_known_function_shapes(name, shape):
    assert functions.arity(name) == shape


def test_unknown_function_raises():
    with pytest.raises(ODataError):
        functions.condition("Whenever", NOW)


def test_date_functions_use_the_sandbox_clock(empty_sandbox, empty_api):
    # A sandbox whose clock is injected must answer "today" from that clock, as it stamps
    # createdon from it: both sides of the comparison share one "now".
    empty_sandbox.org.store.clock = lambda: dt.datetime(2020, 1, 10, 12, 0, tzinfo=dt.UTC)
    assert empty_api.post("leads", json={"subject": "s", "lastname": "Then"}).status_code == 204
    query = "leads?$select=lastname&$filter=Microsoft.Dynamics.CRM.Today(PropertyName='createdon')"
    assert [r["lastname"] for r in empty_api.get(query).json()["value"]] == ["Then"]
    count = "leads/$count?$filter=Microsoft.Dynamics.CRM.Today(PropertyName='createdon')"
    assert empty_api.get(count).text == "1"
