"""`$orderby` keys and the keyset condition that starts the next page after a given row.

Columns sort by their stored value (choices by their integer value, as Dataverse's Web API
does); lookups sort by the related row's primary name, as Dataverse documents ("the results are
sorted using the primary name field for the related table"). The primary key always ends the
order, so the order is total and a page can resume strictly after its last row.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ..schema.model import Table
from . import paging
from .errors import ODataError
from .parser import parse_orderby
from .sql import not_found, quote

# Columns the store always fills: a descending keyset over them needs no "or null" branch.
_ALWAYS_SET = {"createdon", "modifiedon", "versionnumber", "statecode"}


@dataclass(frozen=True, slots=True)
class OrderKey:
    """One sort key: `key` names its value in result rows, `sql` computes it (alias t0)."""

    key: str
    sql: str
    descending: bool
    never_null: bool
    computed: bool  # not a stored column: selected as `<sql> AS "<key>"`


def _never_null(table: Table, column: str) -> bool:
    col = table.columns.get(column)
    return (
        column == table.primary_id
        or column in _ALWAYS_SET
        or (col is not None and col.required == "SystemRequired")
    )


def _lookup_name_sql(schema: dict[str, Table], column) -> str:
    """The primary name of the row a lookup points to (the first target that has it)."""
    parts = []
    for rel in column.relationships:
        target = schema[rel.target]
        check = (
            f" AND t0.{quote(column.name + '__type')} = '{target.logical_name}'"
            if len(column.relationships) > 1
            else ""
        )
        parts.append(
            f"(SELECT o.{quote(target.primary_name)} FROM {quote(target.logical_name)} o "
            f"WHERE o.{quote(target.primary_id)} = t0.{quote(column.name)}{check})"
        )
    # Names compare case-insensitively, like the columns they come from.
    expr = parts[0] if len(parts) == 1 else f"COALESCE({', '.join(parts)})"
    return f"{expr} COLLATE NOCASE"


def order_keys(
    schema: dict[str, Table], table: Table, text: str | None, aliases: Mapping[str, str] | None
) -> list[OrderKey]:
    """Parse and bind `$orderby`; the primary key is appended as the final tie-breaker."""
    keys: list[OrderKey] = []
    if text is not None and text.strip():
        for item in parse_orderby(text, aliases):
            if len(item.path) != 1:
                raise ODataError(
                    f"Ordering by a related table's column ('{'/'.join(item.path)}') is not "
                    "supported; order by a column of this table.",
                    item.pos,
                )
            name = item.path[0]
            column = table.find(name)
            if column is None:
                raise not_found(name, table, item.pos)
            if column.name == table.primary_id:
                continue  # added below as the tie-breaker
            if column.is_lookup:
                key = OrderKey(
                    f"$order.{column.name}",
                    _lookup_name_sql(schema, column),
                    item.descending,
                    False,
                    True,
                )
            else:
                key = OrderKey(
                    column.name,
                    f"t0.{quote(column.name)}",
                    item.descending,
                    _never_null(table, column.name),
                    False,
                )
            if all(k.key != key.key for k in keys):
                keys.append(key)
    # The primary key follows the last key's direction so an index on (key, primary key)
    # serves the whole ORDER BY.
    pk = table.primary_id
    keys.append(
        OrderKey(pk, f"t0.{quote(pk)}", keys[-1].descending if keys else False, True, False)
    )
    return keys


def order_by_sql(keys: list[OrderKey]) -> str:
    return ", ".join(f"{k.sql}{' DESC' if k.descending else ''}" for k in keys)


def scope_of(table: Table, keys: list[OrderKey]) -> str:
    """What a skiptoken's values mean: the table and its sort keys (bound into the token)."""
    return f"{table.logical_name}|" + ",".join(
        f"{k.key}:{'d' if k.descending else 'a'}" for k in keys
    )


def keyset(keys: list[OrderKey], values: list[Any], params: list[Any]) -> str:
    """Rows strictly after `values` in `keys` order (nulls first ascending, last descending)."""
    if len(values) != len(keys):
        raise ODataError(paging.INVALID)
    directions = {k.descending for k in keys}
    if (
        len(directions) == 1
        and None not in values
        and (not keys[0].descending or all(k.never_null for k in keys))
    ):
        # One row-value comparison: SQLite turns it into a range of the (key, pk) index, so
        # page 100 costs what page 1 does. (Ascending, nulls sort first and are already past.)
        cols = ", ".join(k.sql for k in keys)
        params.extend(values)
        op = "<" if keys[0].descending else ">"
        return f"(({cols}) {op} ({', '.join('?' * len(keys))}))"
    terms = []
    for i, key in enumerate(keys):
        value = values[i]
        if key.descending and value is None:
            continue  # nothing sorts after null when descending (nulls come last)
        parts = []
        for j, previous in enumerate(keys[:i]):
            if values[j] is None:
                parts.append(f"{previous.sql} IS NULL")
            else:
                parts.append(f"{previous.sql} = ?")
                params.append(values[j])
        if key.descending:
            parts.append(f"({key.sql} < ? OR {key.sql} IS NULL)")
            params.append(value)
        elif value is None:
            parts.append(f"{key.sql} IS NOT NULL")
        else:
            parts.append(f"{key.sql} > ?")
            params.append(value)
        terms.append("(" + " AND ".join(parts) + ")")
    return "(" + (" OR ".join(terms) or "0") + ")"
