"""Metadata writes and the metadata the organisation makes at run time: alternate keys
(`EntityKeyMetadata`) under `EntityDefinitions(...)/Keys`.

    GET  EntityDefinitions(LogicalName='account')/Keys[(LogicalName='x') | (<MetadataId>)]
    POST EntityDefinitions(LogicalName='account')/Keys   {SchemaName, DisplayName, KeyAttributes}

Keys are kept by the organisation's store (not the shared catalog), each backed by a unique
index. Dataverse builds the index in a background job; the sandbox builds it at once, so a new
key is `Active` when the POST answers (and the POST fails when rows already share values).
See https://learn.microsoft.com/power-apps/developer/data-platform/define-alternate-keys-entity
"""

from __future__ import annotations

import re
import sqlite3
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response

from ..errors import BadRequest, ResourceNotFound
from ..schema.model import AlternateKey, Table
from .labels import label, metadata_id
from .paths import not_found, parse_key
from .query import MetadataError
from .responses import api_root, collection, headers, single

# Column types an alternate key may use (define-alternate-keys-entity: "Valid columns").
_KEY_TYPES = frozenset({"Decimal", "Integer", "String", "DateTime", "Lookup", "Picklist"})
_MAX_KEYS = 10  # "up to ten alternate key definitions for a table"
_MAX_KEY_COLUMNS = 16
_SCHEMA_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")


def key_metadata(table: Table, key: AlternateKey) -> dict[str, Any]:
    """An `EntityKeyMetadata` object as Dataverse returns it."""
    ident = metadata_id("key", table.logical_name, key.logical_name)
    return {
        "MetadataId": ident,
        "HasChanged": None,
        "LogicalName": key.logical_name,
        "SchemaName": key.schema_name,
        "EntityLogicalName": table.logical_name,
        "DisplayName": label(key.display, "key", table.logical_name, key.logical_name),
        "KeyAttributes": list(key.attributes),
        "EntityKeyIndexStatus": "Active",
        "AsyncJob": None,
        "IsManaged": False,
        "IsCustomizable": {
            "Value": True,
            "CanBeChanged": True,
            "ManagedPropertyLogicalName": "iscustomizable",
        },
        "IsSecondaryKey": False,
        "IsExportKey": False,
        "IsSynchronous": True,
        "IntroducedVersion": "1.0",
    }


def list_keys(
    request: Request, table: Table, ref: str, key_text: str | None, rest: list
) -> Response:
    """`GET EntityDefinitions(...)/Keys` and `.../Keys(LogicalName='x')`."""
    if rest:
        raise ResourceNotFound(rest[0][0])
    store = request.app.state.org.store
    items = [key_metadata(table, k) for k in store.alternate_keys(table.logical_name)]
    path = f"EntityDefinitions({ref})/Keys"
    if key_text is None:
        return collection(request, path, None, items)
    prop, value = parse_key(key_text, "LogicalName")
    for item in items:
        if item[prop] == value:
            return single(request, path, None, item)
    raise not_found(f"key '{value}' of entity '{table.logical_name}'")


async def create_key(request: Request, table: Table, ref: str) -> Response:
    """`POST EntityDefinitions(...)/Keys`: 204 with `OData-EntityId` of the new key."""
    org = request.app.state.org
    body = _json_object(await request.body())
    schema_name = body.get("SchemaName")
    if not isinstance(schema_name, str) or not _SCHEMA_NAME.match(schema_name):
        raise _invalid("SchemaName is required: a name of letters, digits and '_'.")
    attributes = body.get("KeyAttributes")
    if (
        not isinstance(attributes, list)
        or not attributes
        or not all(isinstance(a, str) for a in attributes)
    ):
        raise _invalid("KeyAttributes is required: a non-empty array of column logical names.")
    if len(set(attributes)) != len(attributes) or len(attributes) > _MAX_KEY_COLUMNS:
        raise _invalid(f"KeyAttributes must name distinct columns, at most {_MAX_KEY_COLUMNS}.")
    for name in attributes:
        column = table.columns.get(name)
        if column is None:
            raise _invalid(
                f"The attribute '{name}' does not exist on entity '{table.logical_name}'."
            )
        if column.type not in _KEY_TYPES or name == table.primary_id:
            raise _invalid(
                f"The attribute '{name}' of type {column.type} cannot be part of an entity key."
            )
    display = _label_text(body.get("DisplayName")) or schema_name
    key = AlternateKey(table.logical_name, schema_name, display, tuple(attributes))
    existing = org.store.alternate_keys(table.logical_name)
    if any(k.logical_name == key.logical_name for k in existing):
        raise _invalid(
            f"An entity key with the name {schema_name} already exists.", code="0x80047013"
        )
    if any(set(k.attributes) == set(key.attributes) for k in existing):
        raise _invalid("An entity key with the same set of attributes already exists.")
    if len(existing) >= _MAX_KEYS:
        raise _invalid(f"An entity can have at most {_MAX_KEYS} keys.")
    async with org.writing(request.scope):
        try:
            await org.off_loop(org.store.add_alternate_key, key)
        except sqlite3.IntegrityError:
            raise _invalid(
                f"The index for entity key {schema_name} cannot be created: records of "
                f"{table.logical_name} already share values of {', '.join(attributes)}.",
                code="0x80060892",
            ) from None
    ident = key_metadata(table, key)["MetadataId"]
    location = f"{api_root(request)}EntityDefinitions({ref})/Keys({ident})"
    return Response(status_code=204, headers={**headers(), "OData-EntityId": location})


def _json_object(raw: bytes) -> dict[str, Any]:
    if not raw.strip():
        raise BadRequest("The request body is empty: send the definition as a JSON object.")
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise BadRequest(f"The request body is not valid JSON: {exc}.") from None
    if not isinstance(body, dict):
        raise BadRequest("The request body must be a JSON object.")
    return body


def _label_text(value: Any) -> str | None:
    """The en-US text of a `Label` body value (`{"LocalizedLabels": [{"Label": ...}]}`)."""
    if isinstance(value, dict):
        labels = value.get("LocalizedLabels")
        if isinstance(labels, list):
            for item in labels:
                if isinstance(item, dict) and isinstance(item.get("Label"), str):
                    return item["Label"]
    return None


def _invalid(message: str, code: str = "0x80044331") -> MetadataError:
    return MetadataError(400, code, message)
