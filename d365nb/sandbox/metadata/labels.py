"""Small building blocks of metadata objects: stable MetadataIds, labels, managed properties.

Dataverse gives every metadata item a `MetadataId` GUID that never changes. The sandbox derives
them from names with uuid5, so the same table or column has the same id in every run and every
process - clients may cache them, as they do against a real organisation.
"""

from __future__ import annotations

import uuid
from typing import Any

LANGUAGE_CODE = 1033  # en-US, the only language the sandbox speaks
INTRODUCED_VERSION = "5.0.0.0"
_NAMESPACE = uuid.UUID("5f0c3c4e-5a52-4a53-9d36-0d365b5a9d01")


def metadata_id(*parts: str) -> str:
    """A stable GUID for the metadata item named by `parts`, e.g. ("attribute", "lead", "subject")."""
    return str(uuid.uuid5(_NAMESPACE, "/".join(parts)))


def label(text: str | None, *key: str) -> dict[str, Any]:
    """A `Label` complex value in the shape Dataverse returns (one en-US localized label).

    >>> label("Lead", "entity", "lead")["UserLocalizedLabel"]["Label"]
    'Lead'
    """
    if not text:
        return {"LocalizedLabels": [], "UserLocalizedLabel": None}
    localized = {
        "Label": text,
        "LanguageCode": LANGUAGE_CODE,
        "IsManaged": True,
        "MetadataId": metadata_id("label", *key),
        "HasChanged": None,
    }
    return {"LocalizedLabels": [localized], "UserLocalizedLabel": dict(localized)}


def managed(value: Any, logical_name: str, can_be_changed: bool = False) -> dict[str, Any]:
    """A managed-property complex value (`BooleanManagedProperty` and friends)."""
    return {
        "Value": value,
        "CanBeChanged": can_be_changed,
        "ManagedPropertyLogicalName": logical_name,
    }


def schema_name(logical_name: str) -> str:
    """A PascalCase schema name for a logical name the definition gives none for.

    Dataverse's own schema names are not mechanically derivable (`EMailAddress1`), so a
    definition may carry `schema_name`; otherwise the first letter is upper-cased.
    """
    return logical_name[:1].upper() + logical_name[1:]
