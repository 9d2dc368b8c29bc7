"""`EntityMetadata` objects (what `GET EntityDefinitions` returns), derived from `Table`s."""

from __future__ import annotations

from typing import Any

from ..schema.model import Table
from .labels import INTRODUCED_VERSION, label, managed, metadata_id, schema_name

ENTITY_TYPE = "Microsoft.Dynamics.CRM.EntityMetadata"

# Collection-valued navigation properties of EntityMetadata the sandbox serves.
ENTITY_NAVIGATIONS = (
    "Attributes",
    "OneToManyRelationships",
    "ManyToOneRelationships",
    "ManyToManyRelationships",
    "Keys",
)


def table_schema_name(table: Table) -> str:
    return getattr(table, "schema_name", None) or schema_name(table.logical_name)


def entity_metadata(table: Table) -> dict[str, Any]:
    """Every structural (non-navigation) property of the table's EntityMetadata."""
    name = table.logical_name
    schema = table_schema_name(table)
    return {
        "MetadataId": metadata_id("entity", name),
        "HasChanged": None,
        "LogicalName": name,
        "SchemaName": schema,
        "EntitySetName": table.entity_set,
        # The sandbox keeps entity set and collection names equal, as standard tables do.
        "LogicalCollectionName": table.entity_set,
        "CollectionSchemaName": schema + "s"
        if table.entity_set == name + "s"
        else schema_name(table.entity_set),
        "PrimaryIdAttribute": table.primary_id,
        "PrimaryNameAttribute": table.primary_name,
        "PrimaryImageAttribute": None,
        "ObjectTypeCode": table.object_type_code,
        "DisplayName": label(table.display, "entity", name, "display"),
        "DisplayCollectionName": label(
            table.display_collection, "entity", name, "displaycollection"
        ),
        "Description": label(table.description, "entity", name, "description"),
        "OwnershipType": table.ownership,
        "ChangeTrackingEnabled": table.change_tracking,
        "IsActivity": table.is_activity,
        "IsActivityParty": False,
        "IsAvailableOffline": True,
        "IsBusinessProcessEnabled": False,
        "IsBPFEntity": False,
        "IsChildEntity": False,
        "IsCustomEntity": table.custom,
        "IsCustomizable": managed(True, "iscustomizable"),
        "IsAuditEnabled": managed(False, "canmodifyauditsettings", True),
        "IsIntersect": False,
        "IsKnowledgeManagementEnabled": False,  # query-metadata-web-api doc: account is false
        "IsLogicalEntity": False,
        "IsManaged": not table.custom,
        "IsOptimisticConcurrencyEnabled": True,
        "IsPrivate": False,
        "IsValidForAdvancedFind": True,
        "IsValidForQueue": table.is_activity,
        "HasActivities": not table.is_activity,
        "HasNotes": True,
        "CanCreateAttributes": managed(True, "cancreateattributes"),
        "CanCreateViews": managed(True, "cancreateviews"),
        "CanChangeTrackingBeEnabled": managed(True, "canchangetrackingbeenabled"),
        "TableType": "Standard",
        "IntroducedVersion": INTRODUCED_VERSION,
        "EntityColor": None,
        "ExternalName": None,
        "ExternalCollectionName": None,
    }


ENTITY_PROPERTIES = frozenset(
    entity_metadata(
        Table("x", "xs", "xid", "name", "X", "Xs", 10000),
    )
)
