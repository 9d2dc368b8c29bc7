"""`$apply` aggregation -> one SQL `GROUP BY` statement over the storage convention.

Supported, as documented for Dataverse
(https://learn.microsoft.com/power-apps/developer/data-platform/webapi/query/aggregate-data)::

    groupby((statuscode,_ownerid_value))
    groupby((statuscode),aggregate(revenue with sum as total,$count as n))
    aggregate(revenue with average as avg,name with countdistinct as names)
    filter(statecode eq 0)/groupby((primarycontactid/fullname))

Methods: `sum`, `average`, `min`, `max`, `countdistinct`; `$count as alias` counts rows. Group
properties are columns, lookups as `_x_value` (or the attribute name), and single-valued
navigation paths (`primarycontactid/fullname`, returned as `contact_fullname`). Datetime
columns cannot be grouped (Dataverse: "groupby with datetime values is not supported").

Everything is computed by SQLite; Python only types the cells of the (few) result rows. The
statement also counts the rows it aggregated (`COUNT(*)`, summed over the groups), so the
50,000-row aggregate limit is checked without a second scan.
"""

from __future__ import annotations

import datetime as dt
import sqlite3
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ..schema.model import Column, Table
from ..values import whole_number
from .errors import ODataError
from .parser import TOO_COMPLEX, parse_filter
from .sql import FilterCompiler, quote

AGGREGATE_LIMIT = 50_000  # Dataverse: aggregate functions are limited to 50,000 records
METHODS = ("sum", "average", "min", "max", "countdistinct")
_NUMERIC = {"Integer", "BigInt", "Decimal", "Double", "Money"}
_ROWS = "__rows"
# With $apply, these options are refused rather than silently ignored.
_REFUSED = ("$select", "$expand", "$skiptoken", "$count")


class AggregateLimitExceeded(Exception):
    """More rows than the aggregate limit matched (HTTP: 400 `0x8004E023`)."""

    def __init__(self, rows: int, limit: int) -> None:
        super().__init__("AggregateQueryRecordLimit exceeded. Cannot perform this operation.")
        self.rows = rows
        self.limit = limit


@dataclass(frozen=True)
class Field:
    """One property of the result records.

    `kind`: "group" (a grouped value) or "aggregate"; `column`: the column it comes from (None
    for `$count`); `method`: the aggregate method, or "count" for `$count`; `lookup`: a grouped
    lookup (its `__type` travels in `type_key`)."""

    name: str
    kind: str
    column: Column | None
    method: str | None = None
    type_key: str | None = None

    @property
    def lookup(self) -> bool:
        return self.column is not None and self.column.is_lookup and self.kind == "group"


@dataclass
class Applied:
    """A compiled `$apply`: the SQL, its parameters and the output fields in order."""

    sql: str
    params: list[Any]
    fields: list[Field]
    aggregating: bool  # an aggregate() transformation is present (the row limit applies)


# -- parsing ------------------------------------------------------------------------------------


def _split_top(text: str, sep: str) -> list[str]:
    """Split on `sep` outside parentheses and quoted strings."""
    parts, depth, quoted, start = [], 0, False, 0
    i = 0
    while i < len(text):
        c = text[i]
        if quoted:
            if c == "'":
                if text[i + 1 : i + 2] == "'":
                    i += 1
                else:
                    quoted = False
        elif c == "'":
            quoted = True
        elif c == "(":
            depth += 1
        elif c == ")":
            depth -= 1
            if depth < 0:
                raise ODataError(f"Unbalanced parentheses in $apply at position {i}.", i)
        elif c == sep and depth == 0:
            parts.append(text[start:i])
            start = i + 1
        i += 1
    if depth != 0 or quoted:
        raise ODataError("Unbalanced parentheses or quotes in $apply.", len(text))
    parts.append(text[start:])
    return parts


def _call(text: str) -> tuple[str, str]:
    """`name(args)` -> (name, args)."""
    text = text.strip()
    open_at = text.find("(")
    if open_at <= 0 or not text.endswith(")"):
        raise ODataError(
            f"Invalid $apply transformation '{text}': expected filter(...), groupby(...) or "
            "aggregate(...)."
        )
    return text[:open_at].strip(), text[open_at + 1 : -1]


@dataclass
class _Aggregate:
    path: str | None  # None for $count
    method: str  # sum average min max countdistinct | count
    alias: str


def _parse_aggregates(text: str) -> list[_Aggregate]:
    out = []
    for item in _split_top(text, ","):
        words = item.split()
        if len(words) == 3 and words[0] == "$count" and words[1] == "as":
            out.append(_Aggregate(None, "count", words[2]))
            continue
        if len(words) != 5 or words[1] != "with" or words[3] != "as":
            raise ODataError(
                f"Invalid aggregate expression '{item.strip()}': expected "
                "'<property> with <method> as <alias>' or '$count as <alias>'."
            )
        if words[2] not in METHODS:
            raise ODataError(
                f"The aggregation method '{words[2]}' is not supported; use one of "
                f"{', '.join(METHODS)}."
            )
        out.append(_Aggregate(words[0], words[2], words[4]))
    if not out:
        raise ODataError("aggregate() needs at least one aggregate expression.")
    return out


@dataclass
class _Plan:
    filters: list[str] = field(default_factory=list)
    groups: list[str] = field(default_factory=list)
    aggregates: list[_Aggregate] = field(default_factory=list)
    grouped: bool = False


def parse_apply(text: str) -> _Plan:
    """The transformations of a `$apply` value, checked for shape (names are bound later)."""
    if not text or not text.strip():
        raise ODataError("The $apply query option is empty.")
    plan = _Plan()
    shaped = False
    for step in _split_top(text, "/"):
        name, args = _call(step)
        if name == "filter":
            if shaped:
                raise ODataError("filter() after groupby() or aggregate() is not supported.")
            plan.filters.append(args)
        elif name == "groupby":
            if shaped:
                raise ODataError("Only one groupby() or aggregate() transformation is supported.")
            shaped = plan.grouped = True
            parts = _split_top(args, ",")
            first = parts[0].strip()
            if not (first.startswith("(") and first.endswith(")")):
                raise ODataError(
                    "groupby needs a parenthesised list of properties: groupby((name1,name2))."
                )
            plan.groups = [g.strip() for g in first[1:-1].split(",")]
            if not all(plan.groups):
                raise ODataError("groupby has an empty property name.")
            rest = [p.strip() for p in parts[1:]]
            if len(rest) > 1:
                raise ODataError("groupby takes the properties and at most one aggregate().")
            if rest:
                inner, inner_args = _call(rest[0])
                if inner != "aggregate":
                    raise ODataError(f"groupby does not support the transformation '{inner}'.")
                plan.aggregates = _parse_aggregates(inner_args)
        elif name == "aggregate":
            if shaped:
                raise ODataError("Only one groupby() or aggregate() transformation is supported.")
            shaped = True
            plan.aggregates = _parse_aggregates(args)
        else:
            raise ODataError(
                f"The $apply transformation '{name}' is not supported; use filter, groupby or "
                "aggregate."
            )
    if not shaped:
        raise ODataError("$apply needs a groupby() or aggregate() transformation.")
    names = [a.alias for a in plan.aggregates]
    if len(set(names)) != len(names):
        raise ODataError("Each aggregate alias must be unique.")
    return plan


# -- binding and SQL ---------------------------------------------------------------------------


def _group_name(compiler: FilterCompiler, table: Table, path: str) -> str:
    """The JSON name of a grouped path: `statuscode`, `_ownerid_value`, `contact_fullname`."""
    segments = path.split("/")
    if len(segments) == 1:
        column = table.columns.get(path)
        return f"_{path}_value" if column is not None and column.is_lookup else path
    navs = compiler.navs.single[table.logical_name].get(segments[0])
    target = navs[0].target if navs else segments[0]
    return f"{target}_{segments[-1]}"


def _bind(compiler: FilterCompiler, path: str):
    if path.startswith("$"):
        raise ODataError(f"'{path}' cannot be used here.")
    return compiler.column_operand(path, 0)


def compile_apply(
    schema: dict[str, Table],
    table: Table,
    params: Mapping[str, str],
    *,
    user_id: str | None = None,
    now: dt.datetime | None = None,
) -> Applied:
    """Check `$apply` (and `$filter`, `$orderby`, `$top` beside it) and write the SQL."""
    for name in _REFUSED:
        if name in params:
            raise ODataError(f"The query option {name} is not supported together with $apply.")
    plan = parse_apply(params["$apply"])
    aliases = {k: v for k, v in params.items() if k.startswith("@")}
    now = now or dt.datetime.now(dt.UTC)
    sql_params: list[Any] = []
    compiler = FilterCompiler(
        schema, table, text=params["$apply"], user_id=user_id, now=now, params=sql_params
    )
    selects: list[str] = []
    fields: list[Field] = []
    group_sql: list[str] = []
    for path in plan.groups:
        operand = _bind(compiler, path)
        column = operand.column
        if column is not None and column.type == "DateTime":
            raise ODataError(f"groupby with datetime values is not supported ('{path}').")
        name = _group_name(compiler, table, path)
        key = f"g{len(fields)}"
        selects.append(f"{operand.sql} AS {quote(key)}")
        group_sql.append(operand.sql)
        type_key = None
        if column is not None and column.is_lookup and "/" not in path:
            type_key = f"{key}__type"
            type_sql = f"t0.{quote(column.name + '__type')}"
            selects.append(f"{type_sql} AS {quote(type_key)}")
            group_sql.append(type_sql)
        fields.append(Field(name, "group", column, None, type_key))
    for agg in plan.aggregates:
        key = f"g{len(fields)}"
        if agg.path is None:
            selects.append(f"COUNT(*) AS {quote(key)}")
            fields.append(Field(agg.alias, "aggregate", None, "count"))
            continue
        operand = _bind(compiler, agg.path)
        column = operand.column
        ctype = column.type if column is not None else ""
        if agg.method == "countdistinct":
            expr = f"COUNT(DISTINCT {operand.sql})"
        elif agg.method in ("sum", "average"):
            if ctype not in _NUMERIC:
                raise ODataError(
                    f"The aggregation method '{agg.method}' needs a number or currency column; "
                    f"'{agg.path}' is {ctype or 'not a column'}."
                )
            func = "SUM" if agg.method == "sum" else "AVG"
            expr = f"{func}({operand.sql})"
            if agg.method == "average" and ctype in ("Integer", "BigInt"):
                # SQL Server averages whole-number columns in whole numbers (truncated).
                expr = f"CAST(AVG({operand.sql}) AS INTEGER)"
        else:  # min / max
            if ctype not in _NUMERIC and ctype != "DateTime":
                raise ODataError(
                    f"The aggregation method '{agg.method}' needs a number, currency or date "
                    f"column; '{agg.path}' is {ctype or 'not a column'}."
                )
            expr = f"{agg.method.upper()}({operand.sql})"
        selects.append(f"{expr} AS {quote(key)}")
        fields.append(Field(agg.alias, "aggregate", column, agg.method))
    names = [f.name for f in fields]
    if len(set(names)) != len(names):
        raise ODataError("An aggregate alias repeats the name of a grouped property.")
    selects.append(f"COUNT(*) AS {quote(_ROWS)}")

    conditions = []
    texts = list(plan.filters)
    if params.get("$filter") is not None:
        texts.append(params["$filter"])
    for text in texts:
        if not text.strip():
            raise ODataError("The filter expression is empty.")
        node = parse_filter(text, aliases)
        compiler.text = text
        try:
            conditions.append(compiler.compile(node))
        except RecursionError:
            raise ODataError(TOO_COMPLEX) from None

    sql = f"SELECT {', '.join(selects)} FROM {quote(table.logical_name)} t0"
    if conditions:
        sql += " WHERE " + " AND ".join(conditions)
    if group_sql:
        sql += " GROUP BY " + ", ".join(group_sql)
    order = _order(params.get("$orderby"), fields, plan)
    if order:
        sql += " ORDER BY " + order
    if params.get("$top") is not None:
        top = params["$top"].strip()
        number = whole_number(top)  # `²` passes str.isdigit; 30 digits overflow SQLite
        if number is None:
            raise ODataError(f"Invalid value '{top}' for $top query option found.")
        sql += " LIMIT ?"
        sql_params.append(number)
    return Applied(sql, sql_params, fields, bool(plan.aggregates))


def _order(text: str | None, fields: list[Field], plan: _Plan) -> str:
    """`ORDER BY`: the `$orderby` group properties, else the group columns in order (as SQL
    Server's grouping returns them)."""
    keys = {f.name: f"g{i}" for i, f in enumerate(fields)}
    groups = {f.name for f in fields if f.kind == "group"}
    if text is None:
        return ", ".join(quote(f"g{i}") for i, f in enumerate(fields) if f.kind == "group")
    out = []
    for item in text.split(","):
        words = item.split()
        if not words or len(words) > 2 or (len(words) == 2 and words[1] not in ("asc", "desc")):
            raise ODataError(f"Invalid $orderby item '{item.strip()}'.")
        if words[0] not in keys:
            raise ODataError(f"Could not find a property named '{words[0]}' in the $apply result.")
        if words[0] not in groups:
            # Dataverse's words for ordering by an aggregate value.
            raise ODataError("The query node SingleValueOpenPropertyAccess is not supported")
        out.append(f"{quote(keys[words[0]])} {'DESC' if words[-1] == 'desc' else 'ASC'}")
    return ", ".join(out)


# -- running -------------------------------------------------------------------------------------


@dataclass
class AppliedResult:
    """The result rows (JSON names -> typed values, nulls left out) and what produced them.

    `types`: for grouped lookups, JSON name -> target logical name per row (for formatted values);
    `rows_aggregated`: how many table rows the statement went through."""

    rows: list[dict[str, Any]]
    fields: list[Field]
    lookup_types: list[dict[str, str]]
    rows_aggregated: int


def typed_value(value: Any, f: Field) -> Any:
    """A result cell as its JSON value: counts as ints, booleans as bools, currency as floats."""
    if value is None:
        return None
    if f.method in ("count", "countdistinct"):
        return int(value)
    column = f.column
    if column is None:
        return value
    t = column.type
    if t == "Boolean":
        return value == 1
    if t in ("Money", "Decimal", "Double") and not isinstance(value, float):
        return float(value)
    if t in ("Integer", "BigInt", "Picklist", "State", "Status") and isinstance(value, float):
        return int(value) if value.is_integer() else value
    return value


def run_apply(
    conn: sqlite3.Connection,
    schema: dict[str, Table],
    table: Table,
    params: Mapping[str, str],
    *,
    user_id: str | None = None,
    now: dt.datetime | None = None,
    limit: int | None = AGGREGATE_LIMIT,
) -> AppliedResult:
    """Compile and run a `$apply` query. Raises `ODataError` or `AggregateLimitExceeded`."""
    applied = compile_apply(schema, table, params, user_id=user_id, now=now)
    cursor = conn.execute(applied.sql, applied.params)
    fields = applied.fields
    width = len(fields)
    rows: list[dict[str, Any]] = []
    types: list[dict[str, str]] = []
    total = 0
    # column index of each field in the SELECT list (a grouped lookup adds its __type column)
    index, position = [], 0
    for f in fields:
        index.append(position)
        position += 2 if f.type_key else 1
    for raw in cursor:
        total += raw[-1]
        record: dict[str, Any] = {}
        kinds: dict[str, str] = {}
        for i in range(width):
            f = fields[i]
            value = typed_value(raw[index[i]], f)
            if value is None:
                continue  # Dataverse leaves out null group values and aggregates
            record[f.name] = value
            if f.type_key:
                target = raw[index[i] + 1] or (f.column.targets[0] if f.column.targets else "")
                kinds[f.name] = target
        rows.append(record)
        types.append(kinds)
    if applied.aggregating and limit is not None and total > limit:
        raise AggregateLimitExceeded(total, limit)
    return AppliedResult(rows, fields, types, total)
