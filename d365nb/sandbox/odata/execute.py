"""Compile a collection query to SQL, run it, expand navigation properties, page by keyset."""

from __future__ import annotations

import datetime as dt
import sqlite3
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from .. import collation
from ..schema.model import LOOKUP_TYPES, Table
from . import paging
from .errors import ODataError
from .options import (
    ExpandPlan,
    check_names,
    parse_count,
    parse_expand,
    parse_select,
    parse_top,
)
from .ordering import OrderKey, keyset, order_by_sql, order_keys, scope_of
from .parser import TOO_COMPLEX, parse_filter
from .sql import FilterCompiler, quote

MAX_PAGE_SIZE = 5000
COUNT_LIMIT = 5000  # $count and /$count stop counting here (Dataverse's cap)
EXPANDED = "$expand"  # row key holding {nav: expanded value}

# Where "now" comes from for the date query functions; tests replace it (`set_clock`).
_clock: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC)  # noqa: E731


def set_clock(clock: Callable[[], dt.datetime] | None) -> None:
    """Make the query functions' "now" come from `clock` (None restores the real time)."""
    global _clock
    _clock = clock or (lambda: dt.datetime.now(dt.UTC))


@dataclass
class Result:
    """One page of a collection query.

    `rows`: storage-form dicts keyed by column logical name (lookups by attribute name, with
    `<attr>__type`), always with the primary key and `versionnumber`; they may carry extra
    columns the engine needed (order keys, lookup ids for `$expand`) - output the ones in
    `select` (all when None). Expanded navigation properties are nested under
    `row["$expand"][nav]`: a dict or None (single-valued) or a list of dicts (collection-valued).
    (Not `row[nav]`: `primarycontactid` is both a lookup column and its navigation property.)
    """

    rows: list[dict[str, Any]]
    select: list[str] | None
    expand: dict[str, ExpandPlan]
    next_skiptoken: str | None
    count: int | None
    count_limit_exceeded: bool
    table: str = ""


@dataclass
class Query:
    """A compiled collection query (what `compile_query` returns; `execute` runs it)."""

    table: Table
    sql: str
    params: list[Any]
    columns: list[str]
    select: list[str] | None
    expand: dict[str, ExpandPlan]
    order: list[OrderKey]  # primary key last
    limit: int
    paged: bool  # False with $top: no next page
    count: bool
    where: str
    where_params: list[Any]
    page: int
    scope: str


def storage_columns(table: Table) -> list[str]:
    """SQLite columns of a table, per the storage convention (lookups add `<attr>__type`)."""
    names = []
    for col in table.columns.values():
        names.append(col.name)
        if col.type in LOOKUP_TYPES:
            names.append(f"{col.name}__type")
    return names


def _fetch_columns(table: Table, select: list[str] | None, extra: list[str]) -> list[str]:
    if select is None:
        return storage_columns(table)
    wanted = [table.primary_id]
    if "versionnumber" in table.columns:  # for @odata.etag, on expanded records too
        wanted.append("versionnumber")
    for name in [*select, *extra]:
        if name not in wanted:
            wanted.append(name)
        column = table.columns.get(name)
        if column is not None and column.is_lookup and f"{name}__type" not in wanted:
            wanted.append(f"{name}__type")
    return wanted


def _select_list(columns: list[str], order: list[OrderKey]) -> str:
    parts = [f"t0.{quote(c)}" for c in columns]
    parts += [f"{k.sql} AS {quote(k.key)}" for k in order if k.computed]
    return ", ".join(parts)


def _expand_keys(table: Table, plans: dict[str, ExpandPlan]) -> list[str]:
    """Columns of `table` that its single-valued expansions read (the lookup ids)."""
    return [
        nav.column.name for plan in plans.values() if plan.kind == "single" for nav in plan.targets
    ]


def _table(schema: dict[str, Table], name: str) -> Table:
    table = schema.get(name)
    if table is None:
        for candidate in schema.values():
            if candidate.entity_set == name:
                return candidate
        raise ODataError(f"Resource not found for the segment '{name}'.")
    return table


def _aliases(params: Mapping[str, str]) -> dict[str, str]:
    return {k: v for k, v in params.items() if k.startswith("@")}


def _where(
    schema: dict[str, Table],
    table: Table,
    text: str | None,
    aliases: Mapping[str, str] | None,
    user_id: str | None,
    now: dt.datetime,
    params: list[Any],
) -> str:
    if text is None or not text.strip():
        return ""
    node = parse_filter(text, aliases)
    compiler = FilterCompiler(schema, table, text=text, user_id=user_id, now=now, params=params)
    try:
        return compiler.compile(node)
    except RecursionError:
        raise ODataError(TOO_COMPLEX) from None


def compile_query(
    schema: dict[str, Table],
    table_name: str,
    params: Mapping[str, str],
    *,
    user_id: str | None = None,
    page_size: int = MAX_PAGE_SIZE,
    skiptoken: str | None = None,
    now: dt.datetime | None = None,
) -> Query:
    """Check and translate the query options of a collection GET into one SQL statement."""
    check_names(params)
    table = _table(schema, table_name)
    aliases = _aliases(params)
    now = now or _clock()
    select = parse_select(params.get("$select"), table)
    top = parse_top(params.get("$top"))
    want_count = parse_count(params.get("$count"))
    expand = parse_expand(params.get("$expand"), schema, table)
    where_params: list[Any] = []
    where = _where(schema, table, params.get("$filter"), aliases, user_id, now, where_params)
    order = order_keys(schema, table, params.get("$orderby"), aliases)
    scope = scope_of(table, order)

    page_size = max(1, min(int(page_size or MAX_PAGE_SIZE), MAX_PAGE_SIZE))
    paged = top is None
    limit = min(top, MAX_PAGE_SIZE) if top is not None else page_size

    conditions = [where] if where else []
    sql_params = list(where_params)
    page = 1
    if skiptoken and paged:
        position = paging.decode(skiptoken, scope)
        page = position.page + 1
        conditions.append(keyset(order, [*position.values, position.last_id], sql_params))

    extra = [k.key for k in order if not k.computed] + _expand_keys(table, expand)
    columns = _fetch_columns(table, select, extra)
    sql = f"SELECT {_select_list(columns, order)} FROM {quote(table.logical_name)} t0"
    if conditions:
        sql += " WHERE " + " AND ".join(conditions)
    sql += f" ORDER BY {order_by_sql(order)} LIMIT ?"
    columns = columns + [k.key for k in order if k.computed]
    sql_params.append(limit + 1 if paged else limit)
    return Query(
        table,
        sql,
        sql_params,
        columns,
        select,
        expand,
        order,
        limit,
        paged,
        want_count,
        where,
        where_params,
        page,
        scope,
    )


# SQLite's own limits on statement size; a client's giant filter hits them, not a server fault.
_SQL_LIMITS = ("too large", "too many", "stack overflow", "too deep")


def _run(conn: sqlite3.Connection, sql: str, params: list[Any]) -> sqlite3.Cursor:
    collation.ensure(conn, sql)
    try:
        return conn.execute(sql, params)
    except sqlite3.OperationalError as exc:
        if any(s in str(exc) for s in _SQL_LIMITS):
            raise ODataError(TOO_COMPLEX) from None
        raise


def _rows(conn: sqlite3.Connection, sql: str, params: list[Any], columns: list[str]) -> list[dict]:
    cursor = _run(conn, sql, params)
    return [dict(zip(columns, values, strict=True)) for values in cursor.fetchall()]


def _count(conn: sqlite3.Connection, table: Table, where: str, params: list[Any]) -> int:
    sql = f"SELECT count(*) FROM (SELECT 1 FROM {quote(table.logical_name)} t0"
    if where:
        sql += f" WHERE {where}"
    sql += f" LIMIT {COUNT_LIMIT + 1})"
    return _run(conn, sql, params).fetchone()[0]


def execute(
    conn: sqlite3.Connection,
    schema: dict[str, Table],
    table_name: str,
    params: Mapping[str, str],
    *,
    user_id: str | None,
    page_size: int = MAX_PAGE_SIZE,
    skiptoken: str | None = None,
    now: dt.datetime | None = None,
) -> Result:
    """Run a collection query: one page of rows (+ expansions), its next skiptoken and count."""
    now = now or _clock()
    query = compile_query(
        schema,
        table_name,
        params,
        user_id=user_id,
        page_size=page_size,
        skiptoken=skiptoken,
        now=now,
    )
    rows = _rows(conn, query.sql, query.params, query.columns)
    next_token = None
    if query.paged and len(rows) > query.limit:
        rows = rows[: query.limit]
        last, first = rows[-1], rows[0]
        pk = query.table.primary_id
        next_token = paging.encode(
            query.scope,
            query.page,
            [last[k.key] for k in query.order[:-1]],
            pk,
            last[pk],
            first[pk],
        )
    if query.expand and rows:
        _expand(conn, schema, query.table, rows, query.expand, user_id, now, page_size)
    count = None
    exceeded = False
    if query.count:
        total = _count(conn, query.table, query.where, query.where_params)
        exceeded = total > COUNT_LIMIT
        count = min(total, COUNT_LIMIT)
    return Result(
        rows, query.select, query.expand, next_token, count, exceeded, query.table.logical_name
    )


def count(
    conn: sqlite3.Connection,
    schema: dict[str, Table],
    table_name: str,
    params: Mapping[str, str],
    *,
    user_id: str | None,
    now: dt.datetime | None = None,
) -> int:
    """`/$count`: the number of rows matching `$filter` (capped at 5000, as Dataverse)."""
    check_names(params)
    table = _table(schema, table_name)
    where_params: list[Any] = []
    where = _where(
        schema,
        table,
        params.get("$filter"),
        _aliases(params),
        user_id,
        now or _clock(),
        where_params,
    )
    return min(_count(conn, table, where, where_params), COUNT_LIMIT)


# -- $expand: one query per navigation property and level (never one per row) ---------------


def _expand(
    conn: sqlite3.Connection,
    schema: dict[str, Table],
    table: Table,
    rows: list[dict],
    plans: dict[str, ExpandPlan],
    user_id: str | None,
    now: dt.datetime,
    page_size: int = MAX_PAGE_SIZE,
) -> None:
    for plan in plans.values():
        if plan.kind == "single":
            _expand_single(conn, schema, rows, plan, user_id, now, page_size)
        else:
            _expand_collection(conn, schema, table, rows, plan, user_id, now, page_size)


def _expand_single(conn, schema, rows, plan: ExpandPlan, user_id, now, page_size) -> None:
    found: dict[tuple[str, str], dict] = {}
    for nav in plan.targets:
        target = schema[nav.target]
        key, type_key = nav.column.name, f"{nav.column.name}__type"
        ids = sorted(
            {
                row[key]
                for row in rows
                if row.get(key) and (not nav.polymorphic or row.get(type_key) == nav.target)
            }
        )
        if not ids:
            continue
        select = plan.select
        if select is not None and len(plan.targets) > 1:
            select = [c for c in select if c in target.columns]
        columns = _fetch_columns(target, select, _expand_keys(target, plan.expand))
        marks = ", ".join("?" * len(ids))
        sql = (
            f"SELECT {', '.join(f't0.{quote(c)}' for c in columns)} FROM "
            f"{quote(target.logical_name)} t0 WHERE t0.{quote(target.primary_id)} IN ({marks})"
        )
        fetched = _rows(conn, sql, ids, columns)
        if plan.expand and fetched:
            _expand(conn, schema, target, fetched, plan.expand, user_id, now, page_size)
        for item in fetched:
            found[(nav.target, item[target.primary_id])] = item
    for row in rows:
        value = None
        for nav in plan.targets:
            ref = row.get(nav.column.name)
            if ref and (not nav.polymorphic or row.get(f"{nav.column.name}__type") == nav.target):
                value = found.get((nav.target, ref))
                break
        _nest(row, plan.nav, value)


def _expand_collection(
    conn, schema, table: Table, rows, plan: ExpandPlan, user_id, now, page_size
) -> None:
    nav = plan.collection
    child = schema[nav.child]
    fk = nav.column.name
    parent_ids = [row[table.primary_id] for row in rows]
    params: list[Any] = list(parent_ids)
    conditions = [f"t0.{quote(fk)} IN ({', '.join('?' * len(parent_ids))})"]
    if nav.polymorphic:
        conditions.append(f"t0.{quote(fk + '__type')} = ?")
        params.append(table.logical_name)
    where = _where(schema, child, plan.filter, None, user_id, now, params)
    if where:
        conditions.append(where)
    order = order_keys(schema, child, plan.orderby, None)
    columns = _fetch_columns(
        child,
        plan.select,
        [fk] + [k.key for k in order if not k.computed] + _expand_keys(child, plan.expand),
    )
    col_sql = _select_list(columns, [])
    order_sql = order_by_sql(order)
    base = f"FROM {quote(child.logical_name)} t0 WHERE {' AND '.join(conditions)}"
    # $top applies per parent row, and without it Dataverse still stops at 5000 related rows
    # per parent: number each parent's children and keep the first n. With a nested $expand
    # in the query Dataverse pages every expanded collection by odata.maxpagesize instead.
    inner = (
        f"SELECT {col_sql}, row_number() OVER (PARTITION BY t0.{quote(fk)} ORDER BY "
        f"{order_sql}) AS _rn {base}"
    )
    outer_cols = ", ".join(quote(c) for c in columns)
    sql = f"SELECT {outer_cols} FROM ({inner}) WHERE _rn <= ? ORDER BY {quote(fk)}, _rn"
    limit = MAX_PAGE_SIZE if plan.top is None else min(plan.top, MAX_PAGE_SIZE)
    if plan.paged:
        limit = max(1, min(page_size, MAX_PAGE_SIZE))
    params.append(limit)
    fetched = _rows(conn, sql, params, columns)
    if plan.expand and fetched:
        _expand(conn, schema, child, fetched, plan.expand, user_id, now, page_size)
    groups: dict[str, list[dict]] = {pid: [] for pid in parent_ids}
    for item in fetched:
        groups[item[fk]].append(item)
    scope = scope_of(child, order)
    for row in rows:
        children = groups[row[table.primary_id]]
        _nest(row, plan.nav, children)
        if plan.paged and len(children) == limit:
            # A full page: Dataverse links the next one (`<nav>@odata.nextLink` with a
            # skiptoken) without looking ahead; the related-collection route reads the token.
            last, first = children[-1], children[0]
            token = paging.encode(
                scope,
                1,
                [last[k.key] for k in order[:-1]],
                child.primary_id,
                last[child.primary_id],
                first[child.primary_id],
            )
            _nest(row, next_page_key(plan.nav), token)


def next_page_key(nav: str) -> str:
    """Where an expanded collection's next-page skiptoken sits in `row["$expand"]`."""
    return f"{nav}@skiptoken"


def _nest(row: dict, nav: str, value: Any) -> None:
    # Under row["$expand"], not row[nav]: a single-valued nav is often named like its lookup
    # column (`primarycontactid`), whose id must stay in the row.
    expanded = row.get(EXPANDED)
    if expanded is None:
        expanded = row[EXPANDED] = {}
    expanded[nav] = value


def expanded(row: dict, nav: str) -> Any:
    """The expanded value of `nav` in a result row (dict/None or list), None if not expanded."""
    return (row.get(EXPANDED) or {}).get(nav)
