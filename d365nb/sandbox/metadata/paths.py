"""Resource paths under the metadata sets: segments and keys.

(LogicalName='lead')/Attributes(LogicalName='x')/Microsoft.Dynamics.CRM.PicklistAttributeMetadata
-> [("", "LogicalName='lead'"), ("Attributes", "LogicalName='x'"),
    ("Microsoft.Dynamics.CRM.PicklistAttributeMetadata", None)]
"""

from __future__ import annotations

import re

from ..errors import ResourceNotFound
from .query import MetadataError, bad_query, split_top

_SEGMENT = re.compile(r"^([A-Za-z0-9_.$]*)(?:\((.*)\))?$", re.S)
_GUID = re.compile(r"^[0-9a-fA-F]{8}-([0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}$")
_NAMED_KEY = re.compile(r"^(\w+)\s*=\s*'((?:[^']|'')*)'$")

Segment = tuple[str, str | None]  # (name, key text or None)


def segments(rest: str) -> list[Segment]:
    """Split a path (the part after the set name) into (name, key) segments."""
    out = []
    for raw in split_top(rest, "/"):
        match = _SEGMENT.match(raw)
        if not match:
            raise ResourceNotFound(raw)
        out.append((match.group(1), match.group(2)))
    return out


def parse_key(text: str, named: str) -> tuple[str, str]:
    """Key text -> (property, value): a bare GUID is the MetadataId, else `<named>='value'`."""
    text = text.strip()
    if _GUID.match(text):
        return "MetadataId", text.lower()
    match = _NAMED_KEY.match(text)
    if match and match.group(1) == named:
        value = match.group(2).replace("''", "'")
        # Logical names are lower case; Dataverse finds `LogicalName='Lead'` all the same.
        return named, value.lower() if named == "LogicalName" else value
    raise bad_query(
        f"Bad key '{text}': use a MetadataId GUID or {named}='value' "
        f"(e.g. EntityDefinitions(LogicalName='lead'))."
    )


def entity_not_found(key: str, value: str) -> MetadataError:
    # Dataverse answers a missing table with its metadata-cache miss ("The entity with a name =
    # 'x' with namemapping = 'Logical' was not found in the MetadataCache.", 0x80041102
    # QueryBuilderNoEntity) - seen in MscrmTools/MscrmTools.PortalCodeEditor#15 and in clients
    # handling the 404 from GET EntityDefinitions(...).
    if key == "MetadataId":
        message = f"The entity with id = '{value}' was not found in the MetadataCache."
    else:
        message = (
            f"The entity with a name = '{value}' with namemapping = 'Logical' was not found "
            "in the MetadataCache."
        )
    return MetadataError(404, "0x80041102", message)


def not_found(what: str) -> MetadataError:
    return MetadataError(404, "0x80040217", f"Could not find {what}.")
