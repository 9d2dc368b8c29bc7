"""Relationship responses: `EntityDefinitions(...)/OneToManyRelationships`,
`.../ManyToOneRelationships` and `RelationshipDefinitions`, by key or filtered."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from ..errors import ResourceNotFound
from .paths import Segment, not_found, parse_key
from .query import aliases_of, arrange, parse_select, project
from .relationships import RELATIONSHIP_PROPERTIES
from .responses import collection, single

TYPE = "RelationshipMetadataBase"


def relationships(
    request: Request,
    items: list[dict[str, Any]],
    path: str,
    key_text: str | None,
    rest: list[Segment],
) -> Response:
    params = request.query_params
    if rest:
        raise ResourceNotFound(rest[0][0])
    select = parse_select(params.get("$select"), RELATIONSHIP_PROPERTIES, TYPE)
    if key_text is None:
        chosen = arrange(items, params, RELATIONSHIP_PROPERTIES, TYPE, aliases_of(params))
        return collection(request, path, select, [project(i, select) for i in chosen])
    key, wanted = parse_key(key_text, "SchemaName")
    for item in items:
        if item[key] == wanted:
            return single(request, path, select, project(item, select))
    raise not_found(f"relationship '{wanted}'")
