"""Custom tables and columns kept with the data: a file-backed sandbox (`--db`) reopened later
serves the tables and columns made through `EntityDefinitions` writes, as an org keeps its
customisations. The definitions are JSON in the store's `_meta` table (key `custom_schema`)."""

from __future__ import annotations

import json
from dataclasses import asdict, replace
from typing import Any

from ..schema.model import Column, Option, Relationship, Table
from ..store import Store

KEY = "custom_schema"


def save(store: Store, schema: dict[str, Table]) -> None:
    """Record every custom table, and the custom columns of shipped tables."""
    tables = [_table_json(t) for t in schema.values() if t.custom]
    columns = [
        [t.logical_name, asdict(c)]
        for t in schema.values()
        if not t.custom
        for c in t.columns.values()
        if c.custom
    ]
    store.set_meta(KEY, json.dumps({"tables": tables, "columns": columns}))


def restore(store: Store, schema: dict[str, Table]) -> dict[str, Table]:
    """`schema` with the recorded custom tables and columns (the same dict when none)."""
    text = store.get_meta(KEY)
    if not text:
        return schema
    data = json.loads(text)
    out = dict(schema)
    for item in data["tables"]:
        table = _table(item)
        out[table.logical_name] = table
    for name, item in data["columns"]:
        if name in out:
            current = out[name]
            out[name] = replace(current, columns={**current.columns, item["name"]: _column(item)})
    store.restore_schema(out)
    return out


def _table_json(table: Table) -> dict[str, Any]:
    data = asdict(table)
    data["columns"] = [asdict(c) for c in table.columns.values()]
    return data


def _table(data: dict[str, Any]) -> Table:
    fields = dict(data)
    fields["columns"] = {c["name"]: _column(c) for c in data["columns"]}
    fields["duplicate_rules"] = tuple(tuple(r) for r in data.get("duplicate_rules", ()))
    return Table(**fields)


def _column(data: dict[str, Any]) -> Column:
    fields = dict(data)
    fields["options"] = tuple(Option(**o) for o in data.get("options", ()))
    fields["relationships"] = tuple(Relationship(**r) for r in data.get("relationships", ()))
    fields["computed_from"] = tuple(data.get("computed_from", ()))
    return Column(**fields)
