"""The `Microsoft.Dynamics.CRM.*` query functions, as conditions on one column.

Each function becomes a `Condition`: a half-open time range, a pair of bounds, a value list or
the current user, which `sql` turns into parameterised SQL on the column. Times are relative to
`now` (injected; UTC - the sandbox's users all work in UTC), weeks start on Sunday (the default
organisation setting).

Ranges, with d0 = today 00:00 and now = the current moment:

    Today [d0, d0+1d)   Yesterday [d0-1d, d0)   Tomorrow [d0+1d, d0+2d)
    On(v) [v, v+1d)     OnOrAfter(v) [v, ...)    OnOrBefore(v) (..., v+1d)
    Last7Days / LastXDays(X)     [d0-Xd, now]    Next7Days / NextXDays(X)   [now, d0+(X+1)d)
    LastXHours(X) [now-Xh, now]  NextXHours(X) [now, now+Xh]   (weeks/months/years like days)
    OlderThanX{Minutes..Years}(X)  (..., now-X)
    This/Last/Next{Week,Month,Year}  the calendar period containing / before / after today
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from .errors import ODataError

PREFIX = "Microsoft.Dynamics.CRM."
DAY = dt.timedelta(days=1)


@dataclass(frozen=True, slots=True)
class TimeRange:
    """lower <= column (< or <=) upper; either bound may be None (open)."""

    lower: dt.datetime | None
    upper: dt.datetime | None
    upper_inclusive: bool = False


@dataclass(frozen=True, slots=True)
class Between:
    low: Any
    high: Any
    negate: bool


@dataclass(frozen=True, slots=True)
class InList:
    values: list[Any]
    negate: bool


@dataclass(frozen=True, slots=True)
class CurrentUser:
    negate: bool


Condition = TimeRange | Between | InList | CurrentUser

# name -> (argument shape, builder); shapes: "none", "date" (PropertyValue date), "x" (int X),
# "pair" (PropertyValues=[a,b] or PropertyValue1/2), "list" (PropertyValues=[...]).
_UNITS = ("Minutes", "Hours", "Days", "Weeks", "Months", "Years")
SUB_DAY_UNITS = ("Minutes", "Hours")


def _add_months(moment: dt.datetime, months: int) -> dt.datetime:
    index = moment.year * 12 + moment.month - 1 + months
    year, month = divmod(index, 12)
    month += 1
    # Clamp the day (31 Jan + 1 month = 28/29 Feb), as date arithmetic in SQL Server does.
    next_month = dt.date(year + (month == 12), month % 12 + 1, 1)
    last_day = (next_month - dt.timedelta(days=1)).day
    return moment.replace(year=year, month=month, day=min(moment.day, last_day))


def _shift(moment: dt.datetime, unit: str, amount: int) -> dt.datetime:
    if unit == "Minutes":
        return moment + dt.timedelta(minutes=amount)
    if unit == "Hours":
        return moment + dt.timedelta(hours=amount)
    if unit == "Days":
        return moment + dt.timedelta(days=amount)
    if unit == "Weeks":
        return moment + dt.timedelta(weeks=amount)
    if unit == "Months":
        return _add_months(moment, amount)
    return _add_months(moment, 12 * amount)


def _period(today: dt.datetime, period: str, offset: int) -> TimeRange:
    if period == "Week":
        start = today - dt.timedelta(days=(today.weekday() + 1) % 7)  # back to Sunday
        start += dt.timedelta(weeks=offset)
        return TimeRange(start, start + dt.timedelta(weeks=1))
    if period == "Month":
        start = _add_months(today.replace(day=1), offset)
        return TimeRange(start, _add_months(start, 1))
    start = today.replace(month=1, day=1)
    start = start.replace(year=start.year + offset)
    return TimeRange(start, start.replace(year=start.year + 1))


def arity(name: str) -> str | None:
    """The argument shape of a known function (see module doc), or None if unknown."""
    if name in ("Today", "Yesterday", "Tomorrow", "Last7Days", "Next7Days"):
        return "none"
    if name in ("EqualUserId", "NotEqualUserId"):
        return "none"
    if name in ("On", "OnOrAfter", "OnOrBefore"):
        return "date"
    if name in ("Between", "NotBetween"):
        return "pair"
    if name in ("In", "NotIn"):
        return "list"
    for prefix in ("LastX", "NextX", "OlderThanX"):
        if name.startswith(prefix) and name[len(prefix) :] in _UNITS:
            if prefix != "OlderThanX" and name.endswith("Minutes"):
                return None  # LastXMinutes/NextXMinutes do not exist; OlderThanXMinutes does
            return "x"
    for prefix in ("This", "Last", "Next"):
        if name.startswith(prefix) and name[len(prefix) :] in ("Week", "Month", "Year"):
            return "none"
    return None


def unit_of(name: str) -> str | None:
    """`Hours` for LastXHours etc.; None for functions without a unit."""
    for unit in _UNITS:
        if name.endswith(unit) and "X" in name:
            return unit
    return None


def condition(name: str, now: dt.datetime, value: Any = None, values: Any = None) -> Condition:
    """The condition of function `name` (short name) at time `now`.

    `value` is the PropertyValue (a date/datetime for On*, an int for the X functions); `values`
    the PropertyValues list (already typed by the caller).
    """
    now = now.astimezone(dt.UTC).replace(microsecond=0)
    today = now.replace(hour=0, minute=0, second=0)
    if name == "Today":
        return TimeRange(today, today + DAY)
    if name == "Yesterday":
        return TimeRange(today - DAY, today)
    if name == "Tomorrow":
        return TimeRange(today + DAY, today + 2 * DAY)
    if name == "Last7Days":
        return TimeRange(today - 7 * DAY, now, upper_inclusive=True)
    if name == "Next7Days":
        return TimeRange(now, today + 8 * DAY)
    if name in ("On", "OnOrAfter", "OnOrBefore"):
        start = dt.datetime.combine(value, dt.time(), tzinfo=dt.UTC)
        if name == "On":
            return TimeRange(start, start + DAY)
        if name == "OnOrAfter":
            return TimeRange(start, None)
        return TimeRange(None, start + DAY)
    if name in ("EqualUserId", "NotEqualUserId"):
        return CurrentUser(negate=name.startswith("Not"))
    if name in ("Between", "NotBetween"):
        return Between(values[0], values[1], negate=name.startswith("Not"))
    if name in ("In", "NotIn"):
        return InList(list(values), negate=name.startswith("Not"))
    unit = unit_of(name)
    if unit is not None:
        x = int(value)
        if name.startswith("OlderThanX"):
            return TimeRange(None, _shift(now, unit, -x))
        if name.startswith("LastX"):
            base = now if unit in SUB_DAY_UNITS else today
            return TimeRange(_shift(base, unit, -x), now, upper_inclusive=True)
        if unit in SUB_DAY_UNITS:
            return TimeRange(now, _shift(now, unit, x), upper_inclusive=True)
        return TimeRange(now, _shift(today, unit, x) + DAY)
    for prefix, offset in (("This", 0), ("Last", -1), ("Next", 1)):
        if name.startswith(prefix):
            return _period(today, name[len(prefix) :], offset)
    raise ODataError(f"The query function '{PREFIX}{name}' is not supported.")
