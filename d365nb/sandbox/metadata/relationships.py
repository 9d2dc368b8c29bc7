"""One-to-many relationship metadata, derived from the lookups' `Relationship`s.

A relationship is declared once, on the lookup of the referencing ("many") table; here it is
seen from both sides: `ManyToOneRelationships` of the referencing table and
`OneToManyRelationships` of the referenced one. Clients use these to resolve navigation
properties (`regardingobjectid_lead_task`, `Lead_Tasks`).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from ..schema.model import Column, Relationship, Table
from .labels import INTRODUCED_VERSION, managed, metadata_id

RELATIONSHIP_TYPE = "#Microsoft.Dynamics.CRM.OneToManyRelationshipMetadata"


def _pairs(schema: Mapping[str, Table]) -> Iterator[tuple[Table, Column, Relationship]]:
    # A relationship two lookups carry (`user_accounts`: `ownerid` and the read-only
    # `owninguser` it fills) is described once, as the first's, like `relations.collections`.
    seen: set[str] = set()
    for table in schema.values():
        for column in table.columns.values():
            for rel in column.relationships:
                if rel.target in schema and rel.schema_name not in seen:
                    seen.add(rel.schema_name)
                    yield table, column, rel


def relationship_metadata(
    schema: Mapping[str, Table], referencing: Table, column: Column, rel: Relationship
) -> dict[str, Any]:
    referenced = schema[rel.target]
    return {
        "@odata.type": RELATIONSHIP_TYPE,
        "MetadataId": metadata_id("relationship", rel.schema_name),
        "HasChanged": None,
        "SchemaName": rel.schema_name,
        "RelationshipType": "OneToManyRelationship",
        "ReferencedEntity": referenced.logical_name,
        "ReferencedAttribute": referenced.primary_id,
        "ReferencingEntity": referencing.logical_name,
        "ReferencingAttribute": column.name,
        "ReferencedEntityNavigationPropertyName": rel.schema_name,
        "ReferencingEntityNavigationPropertyName": rel.navigation,
        "IsHierarchical": referenced.logical_name == referencing.logical_name,
        "IsCustomRelationship": False,
        "IsCustomizable": managed(True, "iscustomizable"),
        "IsManaged": True,
        "IsValidForAdvancedFind": True,
        "SecurityTypes": "Append",
        "RelationshipBehavior": 0,
        "IntroducedVersion": INTRODUCED_VERSION,
        "CascadeConfiguration": {
            "Assign": "NoCascade",
            "Delete": "RemoveLink",
            "Merge": "NoCascade",
            "Reparent": "NoCascade",
            "Share": "NoCascade",
            "Unshare": "NoCascade",
            "RollupView": "NoCascade",
            "Archive": "NoCascade",
        },
    }


def one_to_many(schema: Mapping[str, Table], table: Table) -> list[dict[str, Any]]:
    """Relationships in which `table` is the referenced ("one") side."""
    return [
        relationship_metadata(schema, t, c, r)
        for t, c, r in _pairs(schema)
        if r.target == table.logical_name
    ]


def many_to_one(schema: Mapping[str, Table], table: Table) -> list[dict[str, Any]]:
    """Relationships in which `table` holds the lookup."""
    return [
        relationship_metadata(schema, t, c, r)
        for t, c, r in _pairs(schema)
        if t.logical_name == table.logical_name
    ]


def all_relationships(schema: Mapping[str, Table]) -> list[dict[str, Any]]:
    return [relationship_metadata(schema, t, c, r) for t, c, r in _pairs(schema)]


RELATIONSHIP_PROPERTIES = frozenset(
    {
        "MetadataId",
        "HasChanged",
        "SchemaName",
        "RelationshipType",
        "ReferencedEntity",
        "ReferencedAttribute",
        "ReferencingEntity",
        "ReferencingAttribute",
        "ReferencedEntityNavigationPropertyName",
        "ReferencingEntityNavigationPropertyName",
        "IsHierarchical",
        "IsCustomRelationship",
        "IsCustomizable",
        "IsManaged",
        "IsValidForAdvancedFind",
        "SecurityTypes",
        "RelationshipBehavior",
        "IntroducedVersion",
        "CascadeConfiguration",
    }
)
