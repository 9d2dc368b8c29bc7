"""All metadata objects of one schema, built once and looked up by name or MetadataId."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..schema.cache import PerSchema
from ..schema.model import Table
from .attributes import attribute_metadata, option_set
from .entities import entity_metadata
from .relationships import all_relationships, many_to_one, one_to_many


class Catalog:
    """EntityMetadata, AttributeMetadata, option sets and relationships of a schema.

    Objects are shared between requests and must not be mutated; responses are built from
    projections (`query.project`) of them.
    """

    def __init__(self, schema: Mapping[str, Table]) -> None:
        self.schema = schema
        self.tables = sorted(schema.values(), key=lambda t: t.logical_name)
        self.entities = {t.logical_name: entity_metadata(t) for t in self.tables}
        self.by_id = {e["MetadataId"]: name for name, e in self.entities.items()}
        self.attributes: dict[str, list[dict[str, Any]]] = {}
        self.option_sets: dict[tuple[str, str], dict[str, Any] | None] = {}
        for t in self.tables:
            self.attributes[t.logical_name] = [
                attribute_metadata(t, c, n) for n, c in enumerate(t.columns.values(), start=1)
            ]
            for c in t.columns.values():
                self.option_sets[(t.logical_name, c.name)] = option_set(t, c)
        self.one_to_many = {t.logical_name: one_to_many(schema, t) for t in self.tables}
        self.many_to_one = {t.logical_name: many_to_one(schema, t) for t in self.tables}
        self.relationships = all_relationships(schema)
        self.csdl: dict[bool, bytes] = {}  # $metadata documents, by `annotations`

    def entity_named(self, key: str, value: str) -> str | None:
        """The logical name of the table whose `key` (LogicalName or MetadataId) is `value`."""
        if key == "MetadataId":
            return self.by_id.get(value.lower())
        return value if value in self.entities else None

    def attribute(self, table: str, key: str, value: str) -> dict[str, Any] | None:
        """One attribute of `table` by `LogicalName` or `MetadataId`."""
        wanted = value.lower() if key == "MetadataId" else value
        for attr in self.attributes[table]:
            if attr[key] == wanted:
                return attr
        return None


# Schemas do not change while a sandbox runs; a metadata write publishes a new one.
catalog_for: PerSchema[Catalog] = PerSchema(Catalog)
