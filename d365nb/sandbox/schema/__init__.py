"""The sandbox's tables, as data (`model.Table` objects defined in `tables/`)."""

from __future__ import annotations

import importlib
import pkgutil

from . import tables as _tables
from .model import Column, Option, Relationship, Table

__all__ = ["Column", "Option", "Relationship", "Table", "by_entity_set", "load"]


def load() -> dict[str, Table]:
    """Every table definition in `tables/`, keyed by logical name (checked for dangling lookups)."""
    schema: dict[str, Table] = {}
    for info in pkgutil.iter_modules(_tables.__path__):
        if info.name.startswith("_"):
            continue
        module = importlib.import_module(f"{_tables.__name__}.{info.name}")
        table: Table = module.TABLE
        schema[table.logical_name] = table
    for table in schema.values():
        for column in table.columns.values():
            for rel in column.relationships:
                if rel.target not in schema:
                    raise ValueError(
                        f"{table.logical_name}.{column.name} refers to unknown table {rel.target!r}"
                    )
    return schema


def by_entity_set(schema: dict[str, Table]) -> dict[str, Table]:
    """The same tables keyed by entity-set name (`leads`)."""
    return {t.entity_set: t for t in schema.values()}
