"""Query functions that test membership in a set, not a value range: choices values
(`ContainValues`, `DoesNotContainValues`), hierarchies (`Under`, `UnderOrEqual`, `Above`,
`AboveOrEqual`, `NotUnder`) and fiscal periods (`InFiscalYear`, `ThisFiscalPeriod`, ...).

* Choices: a choices column holds its values as text "1,9" (see `choices`), so "contains 2" is
  `',' || col || ',' LIKE '%,2,%'`; several values: any of them (ContainValues) / none of them
  (DoesNotContainValues; a row with no value contains none, so it is kept - Dataverse keeps the
  selected values as rows of their own and tests that none matches).
  https://learn.microsoft.com/power-apps/developer/data-platform/multi-select-picklist
* Hierarchies: the table's hierarchical relationship is its self-referencing `parent*` lookup
  (account: `parentaccountid`); the set is a recursive CTE over it, at most 100 levels deep
  (query-hierarchical-data doc: "a default limit of 100 recursions").
  https://learn.microsoft.com/power-apps/developer/data-platform/query-hierarchical-data
* Fiscal periods: ASSUMPTION - the organisation keeps Dataverse's default fiscal settings as
  the sandbox models them: the fiscal year starts on 1 January and is named after the calendar
  year it starts in, and is divided into quarters (periods 1-4). Times are UTC, as elsewhere.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from .errors import ODataError
from .nodes import Literal, QueryFunction
from .sql import FilterCompiler, quote, storage_datetime

CHOICES = frozenset({"ContainValues", "DoesNotContainValues"})
HIERARCHY = frozenset({"Under", "UnderOrEqual", "Above", "AboveOrEqual", "NotUnder"})
FISCAL = frozenset(
    {
        "ThisFiscalYear",
        "LastFiscalYear",
        "NextFiscalYear",
        "ThisFiscalPeriod",
        "LastFiscalPeriod",
        "NextFiscalPeriod",
        "InFiscalYear",
        "InFiscalPeriod",
        "InFiscalPeriodAndYear",
        "InOrBeforeFiscalPeriodAndYear",
        "InOrAfterFiscalPeriodAndYear",
    }
)
NAMES = CHOICES | HIERARCHY | FISCAL
MAX_DEPTH = 100
PERIOD_MONTHS = 3  # quarters (see the module docstring)
PERIODS = 12 // PERIOD_MONTHS


def compile_set_function(
    compiler: FilterCompiler, node: QueryFunction, short: str, target: Any, args: dict[str, Any]
) -> str:
    """SQL for one of `NAMES` (called by `function_sql.compile_query_function`, which has read
    `PropertyName` into `target`; `args` are the other parameters, consumed here)."""
    if short in CHOICES:
        sql = _choices(compiler, node, short, target, args.pop("PropertyValues", None))
    elif short in HIERARCHY:
        sql = _hierarchy(compiler, node, short, target, args.pop("PropertyValue", None))
    else:
        sql = _fiscal(compiler, node, short, target, args)
    if args:
        extra = next(iter(args))
        raise ODataError(f"The function '{node.name}' has no parameter named '{extra}'.", node.pos)
    return sql


# -- choices ----------------------------------------------------------------------------------


def _choices(compiler, node, short, target, raw) -> str:
    column = target.column
    if column is None or column.type != "MultiSelectPicklist":
        raise ODataError(
            f"The function '{node.name}' needs a choices (multi-select) column, not "
            f"'{column.name if column else '?'}'.",
            node.pos,
        )
    if raw is None or raw.kind != "array" or not raw.value:
        raise ODataError(
            f"The function '{node.name}' needs PropertyValues=['<value>',...] (position "
            f"{node.pos} in '{compiler.text}').",
            node.pos,
        )
    allowed = {o.value for o in column.options}
    tests = []
    for item in raw.value:
        try:
            number = int(str(item).strip())
        except ValueError:
            number = None
        if number is None or number not in allowed:
            raise ODataError(
                f"The value '{item}' given to '{node.name}' is not an option of '{column.name}'.",
                node.pos,
            )
        compiler.params.append(f"%,{number},%")
        tests.append(f"(',' || {target.sql} || ',') LIKE ?")
    contains = "(" + " OR ".join(tests) + ")"
    if short == "ContainValues":
        return contains
    # A row without a value contains none of them.
    return f"({target.sql} IS NULL OR NOT {contains})"


# -- hierarchies ------------------------------------------------------------------------------


def hierarchy_column(table) -> str | None:
    """The lookup of a table's hierarchical relationship: its self-referencing `parent*` lookup
    (account: `parentaccountid`), or None."""
    for column in table.columns.values():
        if (
            column.is_lookup
            and column.name.startswith("parent")
            and column.targets == (table.logical_name,)
        ):
            return column.name
    return None


def _hierarchy(compiler, node, short, target, raw) -> str:
    table = compiler.table
    parent = hierarchy_column(table)
    pk = table.primary_id
    if parent is None:
        raise ODataError(
            f"The function '{node.name}' needs a table with a hierarchical relationship; "
            f"{table.logical_name} has none.",
            node.pos,
        )
    if target.column is None or target.column.name != pk:
        raise ODataError(
            f"The function '{node.name}' applies to the primary key: use PropertyName='{pk}'.",
            node.pos,
        )
    if raw is None or raw.kind not in ("string", "guid"):
        raise ODataError(
            f"The function '{node.name}' needs PropertyValue='<{pk}>' (position {node.pos} in "
            f"'{compiler.text}').",
            node.pos,
        )
    value = str(raw.value).strip("{}").lower()
    if len(value) != 36:
        raise ODataError(f"The PropertyValue of '{node.name}' must be a GUID.", raw.pos)
    name, pk_q, parent_q = quote(table.logical_name), quote(pk), quote(parent)
    if short in ("Under", "UnderOrEqual", "NotUnder"):
        # descendants: seed with the record (depth 0) or its children, then their children
        seed = f"SELECT {pk_q}, 0 FROM {name} WHERE {pk_q} = ?"
        step = f"SELECT c.{pk_q}, h.d + 1 FROM {name} c JOIN h ON c.{parent_q} = h.id"
    else:
        # ancestors: seed with the record, then each one's parent
        seed = f"SELECT {pk_q}, 0 FROM {name} WHERE {pk_q} = ?"
        step = (
            f"SELECT p.{pk_q}, h.d + 1 FROM {name} p JOIN {name} c ON c.{parent_q} = p.{pk_q} "
            f"JOIN h ON c.{pk_q} = h.id"
        )
    keep = "d >= 0" if short in ("UnderOrEqual", "AboveOrEqual") else "d > 0"
    compiler.params.append(value)
    subquery = (
        f"WITH RECURSIVE h(id, d) AS ({seed} UNION {step} WHERE h.d < {MAX_DEPTH}) "
        f"SELECT id FROM h WHERE {keep}"
    )
    negate = "NOT " if short == "NotUnder" else ""
    return f"({target.sql} {negate}IN ({subquery}))"


# -- fiscal periods -----------------------------------------------------------------------------


def _fiscal(compiler, node, short, target, args: dict[str, Any]) -> str:
    if target.kind not in ("datetime", "date"):
        raise ODataError(
            f"The function '{node.name}' needs a date and time column, not "
            f"'{target.column.name if target.column else '?'}'.",
            node.pos,
        )
    now = compiler.now.astimezone(dt.UTC)
    year, period = now.year, (now.month - 1) // PERIOD_MONTHS + 1
    if short in ("ThisFiscalYear", "LastFiscalYear", "NextFiscalYear"):
        y = year + {"This": 0, "Last": -1, "Next": 1}[short[:4]]
        return _between(compiler, target, (y, 1), (y + 1, 1))
    if short in ("ThisFiscalPeriod", "LastFiscalPeriod", "NextFiscalPeriod"):
        start = _shift((year, period), {"This": 0, "Last": -1, "Next": 1}[short[:4]])
        return _between(compiler, target, start, _shift(start, 1))
    if short == "InFiscalYear":
        y = _int(node, args.pop("PropertyValue", None), 1753, 9998)
        return _between(compiler, target, (y, 1), (y + 1, 1))
    if short == "InFiscalPeriod":  # that period of any year
        p = _int(node, args.pop("PropertyValue", None), 1, PERIODS)
        first = (p - 1) * PERIOD_MONTHS + 1
        compiler.params.extend([first, first + PERIOD_MONTHS - 1])
        month = f"CAST(substr({target.sql}, 6, 2) AS INTEGER)"
        return f"({target.sql} IS NOT NULL AND {month} BETWEEN ? AND ?)"
    p = _int(node, args.pop("PropertyValue1", None), 1, PERIODS)
    y = _int(node, args.pop("PropertyValue2", None), 1753, 9998)
    start = (y, p)
    if short == "InFiscalPeriodAndYear":
        return _between(compiler, target, start, _shift(start, 1))
    if short == "InOrBeforeFiscalPeriodAndYear":
        return _between(compiler, target, None, _shift(start, 1))
    return _between(compiler, target, start, None)  # InOrAfterFiscalPeriodAndYear


def _shift(year_period: tuple[int, int], periods: int) -> tuple[int, int]:
    index = year_period[0] * PERIODS + year_period[1] - 1 + periods
    return index // PERIODS, index % PERIODS + 1


def _start(year_period: tuple[int, int]) -> dt.datetime:
    year, period = year_period
    return dt.datetime(year, (period - 1) * PERIOD_MONTHS + 1, 1, tzinfo=dt.UTC)


def _between(compiler, target, low, high) -> str:
    """`low <= column < high` for fiscal (year, period) bounds (None: open)."""
    parts = []
    for bound, op in ((low, ">="), (high, "<")):
        if bound is None:
            continue
        moment = _start(bound)
        text = moment.date().isoformat() if target.kind == "date" else storage_datetime(moment)
        compiler.params.append(text)
        parts.append(f"{target.sql} {op} ?")
    return "(" + " AND ".join(parts) + ")"


def _int(node: QueryFunction, raw: Any, low: int, high: int) -> int:
    value = raw.value if isinstance(raw, Literal) else None
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ODataError(
            f"The function '{node.name}' needs whole-number PropertyValues from {low} to {high}.",
            node.pos,
        )
    return value
