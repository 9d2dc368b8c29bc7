"""Run a FetchXML query: compile, execute, type the cells, and describe the next page."""

from __future__ import annotations

import datetime as dt
import sqlite3
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote
from xml.etree import ElementTree as ET

from ..errors import AggregateLimitExceeded
from ..odata.apply import Field, typed_value
from ..schema.model import Column, Table
from .compile import Compiled, Compiler
from .parse import parse


@dataclass
class FetchResult:
    """One page of a FetchXML answer (see the package docstring)."""

    rows: list[dict[str, Any]]
    fields: list[Field]
    lookup_types: list[dict[str, str]]  # per row: JSON name of a lookup -> its target table
    more: bool
    cookie: str | None
    context: list[str]
    aggregate: bool


def run(
    conn: sqlite3.Connection,
    schema: dict[str, Table],
    table: Table,
    text: str,
    *,
    user_id: str | None = None,
    now: dt.datetime | None = None,
    aggregate_limit: int | None = 50_000,
) -> FetchResult:
    fetch = parse(text)
    now = now or dt.datetime.now(dt.UTC)
    compiled = Compiler(schema, table, user_id=user_id, now=now).compile(fetch, aggregate_limit)
    raw = conn.execute(compiled.sql, compiled.params).fetchall()
    more = compiled.paged and len(raw) > compiled.page_size
    if more:
        raw = raw[: compiled.page_size]
    rows, kinds, total = _records(compiled, raw)
    limit = compiled.aggregate_limit
    if compiled.aggregate and limit is not None and total > limit:
        raise AggregateLimitExceeded()
    cookie = _cookie(compiled, raw) if more and compiled.cookie_keys else None
    fields = [o.field for o in compiled.outputs]
    return FetchResult(rows, fields, kinds, more, cookie, compiled.names, compiled.aggregate)


def _records(compiled: Compiled, raw: list[tuple]) -> tuple[list[dict], list[dict], int]:
    """Storage tuples -> JSON records (nulls left out) and the lookup target of each cell."""
    outputs = compiled.outputs
    # position of each output in the SELECT list; lookups' `__type` columns follow the outputs
    n = len(outputs)
    type_at: dict[int, int] = {}
    position = n
    for i, o in enumerate(outputs):
        if o.type_sql:
            type_at[i] = position
            position += 1
    rows, kinds, total = [], [], 0
    for tup in raw:
        record: dict[str, Any] = {}
        if compiled.etag and tup[position] is not None:
            record["@odata.etag"] = f'W/"{tup[position]}"'
        targets: dict[str, str] = {}
        for i in range(n):
            f = outputs[i].field
            value = typed_value(tup[i], f)
            if value is None:
                continue
            record[f.name] = value
            if i in type_at:
                column = f.column
                target = tup[type_at[i]] or (column.targets[0] if column and column.targets else "")
                targets[f.name] = target
        if compiled.aggregate:
            total += tup[position]
        rows.append(record)
        kinds.append(targets)
    return rows, kinds, total


def _cookie(compiled: Compiled, raw: list[tuple]) -> str:
    """`<cookie pagenumber="N+1" pagingcookie="<url-encoded twice>" istracking="False" />` with
    `<cookie page="N"><sortcolumn last=".." first=".."/>...<pk last="{GUID}" .../></cookie>`
    inside, the shape of Microsoft's page-results example; a null value has no attribute."""
    inner = ET.Element("cookie", page=str(compiled.page))
    for i, (name, column) in enumerate(compiled.cookie_keys):
        at = compiled.cookie_at + i
        attrs = {}
        for which, tup in (("last", raw[-1]), ("first", raw[0])):
            if tup[at] is not None:
                attrs[which] = _cookie_text(tup[at], column)
        ET.SubElement(inner, name, attrs)
    encoded = quote(quote(ET.tostring(inner, encoding="unicode"), safe=""), safe="")
    return (
        f'<cookie pagenumber="{compiled.page + 1}" pagingcookie="{encoded}" istracking="False" />'
    )


def _cookie_text(value: Any, column: Column) -> str:
    if column.type == "Uniqueidentifier" or column.is_lookup:
        return "{" + str(value).upper() + "}"
    return str(value)
