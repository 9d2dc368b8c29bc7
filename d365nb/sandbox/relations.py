"""Navigation properties derived from the schema: single-valued ones (lookups, per target for
multi-table lookups) and collection-valued ones (one-to-many, by relationship schema name)."""

from __future__ import annotations

from .schema.model import Column, Relationship, Table


class Navigation:
    """A single-valued navigation property and the lookup column + relationships behind it."""

    def __init__(self, name: str, column: Column, relationships: list[Relationship]):
        self.name = name
        self.column = column
        self.relationships = relationships

    def target_for(self, table: str) -> Relationship | None:
        for rel in self.relationships:
            if rel.target == table:
                return rel
        return None


def navigations(table: Table) -> dict[str, Navigation]:
    """Single-valued navigation properties of a table, by name (`regardingobjectid_lead_task`;
    `ownerid` covers both owner targets, as in Dataverse)."""
    navs: dict[str, Navigation] = {}
    for col in table.columns.values():
        for rel in col.relationships:
            nav = navs.get(rel.navigation)
            if nav is None:
                navs[rel.navigation] = Navigation(rel.navigation, col, [rel])
            else:
                nav.relationships.append(rel)
    return navs


class Collection:
    """A collection-valued navigation property (`Account_Tasks`): the child table and the lookup
    column on it that points back at the parent."""

    def __init__(self, name: str, parent: Table, child: Table, column: Column) -> None:
        self.name = name
        self.parent = parent
        self.child = child
        self.column = column


def collections(schema: dict[str, Table], table: Table) -> dict[str, Collection]:
    """One-to-many navigation properties of `table`, by relationship schema name. A name two
    lookups carry (`user_accounts`: `ownerid` and the read-only `owninguser` it fills) is the
    first one's, the writable `ownerid`."""
    out: dict[str, Collection] = {}
    for child in schema.values():
        for col in child.columns.values():
            for rel in col.relationships:
                if rel.target == table.logical_name and rel.schema_name not in out:
                    out[rel.schema_name] = Collection(rel.schema_name, table, child, col)
    return out
