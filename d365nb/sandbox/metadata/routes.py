"""HTTP routes of the metadata endpoints: service document, `$metadata`, `EntityDefinitions`,
`RelationshipDefinitions`, `GlobalOptionSetDefinitions` and the `RetrieveMetadataChanges`
function (never paged). Reads only, except the POSTs under `EntityDefinitions` that create
custom tables, columns and alternate keys (`writes`).

Paths under `EntityDefinitions` are resolved segment by segment::

    EntityDefinitions[(LogicalName='lead') | (<MetadataId>)]
      /Attributes[(LogicalName='x') | (<MetadataId>)][/Microsoft.Dynamics.CRM.<Type>AttributeMetadata]
        [/OptionSet | /GlobalOptionSet]
      /OneToManyRelationships[(SchemaName='x')] | /ManyToOneRelationships[...]
      /ManyToManyRelationships                            (always empty)
      /Keys[(LogicalName='x') | (<MetadataId>)]           (alternate keys, see `writes`)
"""

from __future__ import annotations

from collections.abc import Callable

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from ..errors import DataverseError, MethodNotAllowed, ResourceNotFound
from . import writes
from .attribute_views import attributes
from .csdl import build_csdl
from .entity_views import entity_collection, single_entity
from .paths import entity_not_found, not_found, parse_key, segments
from .query import bad_query, check_options, split_top
from .relationship_views import relationships
from .responses import API, api_root, catalog_of, collection, error_response, headers, json_response
from .retrieve_changes import retrieve_metadata_changes

_METADATA_SETS = ("EntityDefinitions", "GlobalOptionSetDefinitions", "RelationshipDefinitions")
# Every verb reaches the handler, which answers writes with a clean "read-only" error
# (Starlette would otherwise answer them with a plain-text 405 of its own).
_ALL_METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"]


def _guarded(handler: Callable[[Request], Response]) -> Callable:
    """Run `handler`, turning refusals into Dataverse error bodies; metadata is read-only."""

    async def endpoint(request: Request) -> Response:
        try:
            if request.method == "POST" and handler is entity_definitions:
                return await _entity_definitions_post(request)
            if request.method == "DELETE" and handler is entity_definitions:
                deleted = await _entity_definitions_delete(request)
                if deleted is not None:
                    return deleted
            if request.method not in ("GET", "HEAD"):
                raise MethodNotAllowed(
                    f"The sandbox serves metadata read-only; {request.method} "
                    f"{request.url.path} is not supported."
                )
            check_options(request.query_params)
            return handler(request)
        except DataverseError as exc:  # MetadataError included
            return error_response(exc)

    return endpoint


def service_document(request: Request) -> Response:
    """`GET /api/data/v9.2/`: every entity set, metadata sets included."""
    names = sorted([t.entity_set for t in catalog_of(request).tables] + list(_METADATA_SETS))
    return json_response(
        {
            "@odata.context": f"{api_root(request)}$metadata",
            "value": [{"name": n, "kind": "EntitySet", "url": n} for n in names],
        }
    )


def csdl_document(request: Request) -> Response:
    """`GET /api/data/v9.2/$metadata[?annotations=true]`: CSDL XML, built once per schema."""
    annotations = request.query_params.get("annotations", "false").lower() == "true"
    catalog = catalog_of(request)
    if annotations not in catalog.csdl:
        catalog.csdl[annotations] = build_csdl(catalog.schema, annotations).encode()
    return Response(catalog.csdl[annotations], headers=headers(), media_type="application/xml")


def entity_definitions(request: Request) -> Response:
    catalog = catalog_of(request)
    parts = segments(request.path_params["rest"])
    name, key_text = parts[0]
    if name:
        raise ResourceNotFound("EntityDefinitions" + name)
    if key_text is None:
        if len(parts) > 1:
            raise bad_query("Address one table first, e.g. EntityDefinitions(LogicalName='lead').")
        return entity_collection(request, catalog)
    key, value = parse_key(key_text, "LogicalName")
    logical = catalog.entity_named(key, value)
    if logical is None:
        raise entity_not_found(key, value)
    if len(parts) == 1:
        return single_entity(request, catalog, logical)
    ref = f"'{logical}'" if key == "LogicalName" else value
    (nav, nav_key), rest = parts[1], parts[2:]
    if nav == "Attributes":
        return attributes(request, catalog, logical, ref, nav_key, rest)
    if nav in ("OneToManyRelationships", "ManyToOneRelationships"):
        items = (catalog.one_to_many if nav.startswith("One") else catalog.many_to_one)[logical]
        return relationships(request, items, f"EntityDefinitions({ref})/{nav}", nav_key, rest)
    if nav == "Keys":
        return writes.list_keys(request, catalog.schema[logical], ref, nav_key, rest)
    if nav == "ManyToManyRelationships":
        if nav_key is not None or rest:
            raise ResourceNotFound(f"{nav}({nav_key})" if nav_key else rest[0][0])
        return collection(request, f"EntityDefinitions({ref})/{nav}", _loose_select(request), [])
    raise ResourceNotFound(nav)


async def _entity_definitions_post(request: Request) -> Response:
    """The writes under `EntityDefinitions`: a custom table, a column (`(...)/Attributes`),
    an alternate key (`(...)/Keys`)."""
    catalog = catalog_of(request)
    parts = segments(request.path_params["rest"])
    if parts == [("", None)]:
        return await writes.create_entity(request)
    if len(parts) == 2 and parts[0][0] == "" and parts[0][1] is not None:
        key, value = parse_key(parts[0][1], "LogicalName")
        logical = catalog.entity_named(key, value)
        if logical is None:
            raise entity_not_found(key, value)
        (nav, nav_key) = parts[1]
        ref = f"'{logical}'" if key == "LogicalName" else value
        if nav == "Keys" and nav_key is None:
            return await writes.create_key(request, catalog.schema[logical], ref)
        if nav == "Attributes" and nav_key is None:
            return await writes.create_attribute(request, catalog.schema[logical], ref)
    raise MethodNotAllowed(f"The sandbox does not support POST {request.url.path}.")


async def _entity_definitions_delete(request: Request) -> Response | None:
    """`DELETE EntityDefinitions(...)/Keys(...)` deletes an alternate key; None: any other
    DELETE (refused as read-only)."""
    catalog = catalog_of(request)
    parts = segments(request.path_params["rest"])
    if len(parts) != 2 or parts[0][0] or parts[0][1] is None or parts[1][0] != "Keys":
        return None
    if parts[1][1] is None:
        return None
    key, value = parse_key(parts[0][1], "LogicalName")
    logical = catalog.entity_named(key, value)
    if logical is None:
        raise entity_not_found(key, value)
    return await writes.delete_key(request, catalog.schema[logical], parts[1][1])


def relationship_definitions(request: Request) -> Response:
    parts = segments(request.path_params["rest"])
    name, key_text = parts[0]
    if name:
        raise ResourceNotFound("RelationshipDefinitions" + name)
    items = catalog_of(request).relationships
    path, rest = "RelationshipDefinitions", parts[1:]
    if key_text is None and rest and rest[0][1] is None and rest[0][0].startswith(_NS):
        # A type cast (query-metadata-web-api doc): every relationship of the sandbox is
        # one-to-many, so that cast keeps them all and the many-to-many one finds none.
        cast = rest[0][0]
        if cast not in (
            _NS + "OneToManyRelationshipMetadata",
            _NS + "ManyToManyRelationshipMetadata",
        ):
            raise ResourceNotFound(cast)
        items = items if cast.endswith("OneToManyRelationshipMetadata") else []
        path, rest = f"{path}/{cast}", rest[1:]
    return relationships(request, items, path, key_text, rest)


_NS = "Microsoft.Dynamics.CRM."


def global_option_sets(request: Request) -> Response:
    """Every option set of the sandbox is local to its column: this set is empty."""
    parts = segments(request.path_params["rest"])
    name, key_text = parts[0]
    if name or len(parts) > 1:
        raise ResourceNotFound("GlobalOptionSetDefinitions" + request.path_params["rest"])
    if key_text is not None:
        raise not_found(f"global option set '{parse_key(key_text, 'Name')[1]}'")
    return collection(request, "GlobalOptionSetDefinitions", _loose_select(request), [])


def _loose_select(request: Request) -> list[str] | None:
    # Collections the sandbox keeps empty: no item can lack a selected property.
    text = request.query_params.get("$select")
    return [n for n in split_top(text, ",") if n] if text else None


def routes() -> list[Route]:
    """The metadata routes, to be placed before the entity-set routes of the app."""
    table = [
        (API, service_document),
        (API.rstrip("/"), service_document),
        (API + "$metadata", csdl_document),
        (API + "EntityDefinitions{rest:path}", entity_definitions),
        (API + "RelationshipDefinitions{rest:path}", relationship_definitions),
        (API + "GlobalOptionSetDefinitions{rest:path}", global_option_sets),
        (API + "RetrieveMetadataChanges{rest:path}", retrieve_metadata_changes),
    ]
    return [Route(path, _guarded(handler), methods=_ALL_METHODS) for path, handler in table]
