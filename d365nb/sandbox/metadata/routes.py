"""HTTP routes of the metadata endpoints: service document, `$metadata`, `EntityDefinitions`,
`RelationshipDefinitions` and `GlobalOptionSetDefinitions` (read-only, never paged).

Paths under `EntityDefinitions` are resolved segment by segment::

    EntityDefinitions[(LogicalName='lead') | (<MetadataId>)]
      /Attributes[(LogicalName='x') | (<MetadataId>)][/Microsoft.Dynamics.CRM.<Type>AttributeMetadata]
        [/OptionSet | /GlobalOptionSet]
      /OneToManyRelationships[(SchemaName='x')] | /ManyToOneRelationships[...]
      /ManyToManyRelationships | /Keys
"""

from __future__ import annotations

import re
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from ..errors import DataverseError, MethodNotAllowed, ResourceNotFound
from .attributes import CASTS, OPTION_SET_PROPERTIES, cast_type, navigations_of, properties_of
from .catalog import Catalog, catalog_for
from .csdl import build_csdl
from .entities import ENTITY_NAVIGATIONS, ENTITY_PROPERTIES
from .query import (
    MetadataError,
    bad_query,
    check_options,
    compile_filter,
    parse_expand,
    parse_select,
    project,
    split_top,
)
from .relationships import RELATIONSHIP_PROPERTIES

API = "/api/data/v9.2/"
JSON_TYPE = "application/json; odata.metadata=minimal"
ODATA_HEADERS = {"OData-Version": "4.0"}
_SEGMENT = re.compile(r"^([A-Za-z0-9_.$]*)(?:\((.*)\))?$", re.S)
_GUID = re.compile(r"^[0-9a-fA-F]{8}-([0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}$")
_NAMED_KEY = re.compile(r"^(\w+)\s*=\s*'((?:[^']|'')*)'$")
_EMPTY: list[dict[str, Any]] = []


# -- responses --------------------------------------------------------------------------------


def _json(body: Any, status: int = 200) -> Response:
    return Response(orjson.dumps(body), status, headers=ODATA_HEADERS, media_type=JSON_TYPE)


def _error(exc: MetadataError | DataverseError) -> Response:
    body = {"error": {"code": exc.code, "message": exc.message}}
    return _json(body, exc.status)


def _api_root(request: Request) -> str:
    return str(request.base_url).rstrip("/") + API


def _context(request: Request, path: str, select: list[str] | None, entity: bool) -> str:
    sel = f"({','.join(select)})" if select else ""
    return f"{_api_root(request)}$metadata#{path}{sel}" + ("/$entity" if entity else "")


def _catalog(request: Request) -> Catalog:
    return catalog_for(request.app.state.org.schema)


def _guarded(handler):
    """Run `handler`, turning refusals into Dataverse error bodies; metadata is read-only."""

    async def endpoint(request: Request) -> Response:
        try:
            if request.method not in ("GET", "HEAD"):
                raise MethodNotAllowed(
                    f"The sandbox serves metadata read-only; {request.method} "
                    f"{request.url.path} is not supported."
                )
            check_options(request.query_params)
            return handler(request)
        except (MetadataError, DataverseError) as exc:
            return _error(exc)

    return endpoint


# -- service document and $metadata -----------------------------------------------------------

_METADATA_SETS = ("EntityDefinitions", "GlobalOptionSetDefinitions", "RelationshipDefinitions")


def service_document(request: Request) -> Response:
    """`GET /api/data/v9.2/`: every entity set, metadata sets included."""
    names = sorted([t.entity_set for t in _catalog(request).tables] + list(_METADATA_SETS))
    return _json(
        {
            "@odata.context": f"{_api_root(request)}$metadata",
            "value": [{"name": n, "kind": "EntitySet", "url": n} for n in names],
        }
    )


def csdl_document(request: Request) -> Response:
    """`GET /api/data/v9.2/$metadata[?annotations=true]`: CSDL XML."""
    annotations = request.query_params.get("annotations", "false").lower() == "true"
    catalog = _catalog(request)
    cache = catalog.__dict__.setdefault("_csdl", {})
    if annotations not in cache:
        cache[annotations] = build_csdl(catalog.schema, annotations).encode()
    return Response(cache[annotations], headers=ODATA_HEADERS, media_type="application/xml")


# -- path parsing -----------------------------------------------------------------------------


def _segments(rest: str) -> list[tuple[str, str | None]]:
    """`(LogicalName='lead')/Attributes` -> [("", "LogicalName='lead'"), ("Attributes", None)]."""
    out = []
    for raw in split_top(rest, "/"):
        match = _SEGMENT.match(raw)
        if not match:
            raise ResourceNotFound(raw)
        out.append((match.group(1), match.group(2)))
    return out


def _key(text: str, named: str) -> tuple[str, str]:
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


def _not_found_entity(key: str, value: str) -> MetadataError:
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


# -- EntityDefinitions ------------------------------------------------------------------------


def entity_definitions(request: Request) -> Response:
    catalog = _catalog(request)
    params = request.query_params
    segments = _segments(request.path_params["rest"])
    name, key_text = segments[0]
    if name:
        raise ResourceNotFound("EntityDefinitions" + name)
    if key_text is None:
        if len(segments) > 1:
            raise bad_query("Address one table first, e.g. EntityDefinitions(LogicalName='lead').")
        return _entity_collection(request, catalog, params)
    key, value = _key(key_text, "LogicalName")
    logical = catalog.entity(
        **({"metadata_id": value} if key == "MetadataId" else {"logical_name": value})
    )
    if logical is None:
        raise _not_found_entity(key, value)
    ref = f"'{logical}'" if key == "LogicalName" else value
    if len(segments) == 1:
        return _single_entity(request, catalog, logical, params)
    nav, nav_key = segments[1]
    rest = segments[2:]
    if nav == "Attributes":
        return _attributes(request, catalog, logical, ref, nav_key, rest)
    if nav in ("OneToManyRelationships", "ManyToOneRelationships"):
        items = getattr(catalog, "one_to_many" if nav[0] == "O" else "many_to_one")[logical]
        return _relationships(request, items, f"EntityDefinitions({ref})/{nav}", nav_key, rest)
    if nav in ("ManyToManyRelationships", "Keys"):
        if nav_key is not None or rest:
            raise ResourceNotFound(f"{nav}({nav_key})" if nav_key else rest[0][0])
        select = _plain_select(params)
        return _json(
            {
                "@odata.context": _context(
                    request, f"EntityDefinitions({ref})/{nav}", select, False
                ),
                "value": [],
            }
        )
    raise ResourceNotFound(nav)


def _plain_select(params) -> list[str] | None:
    # Collections the sandbox keeps empty: any $select is accepted, nothing can be wrong in it.
    text = params.get("$select")
    return [n for n in split_top(text, ",") if n] if text else None


def _entity_items(
    request: Request, catalog: Catalog, params, names: list[str]
) -> tuple[list[dict[str, Any]], list[str] | None]:
    select = parse_select(params.get("$select"), ENTITY_PROPERTIES, "EntityMetadata")
    expand = parse_expand(params.get("$expand"), frozenset(ENTITY_NAVIGATIONS), "EntityMetadata")
    out = []
    for name in names:
        item = project(catalog.entities[name], select)
        for nav, options in expand.items():
            item[nav] = _expanded_entity_nav(catalog, name, nav, options)
        out.append(item)
    return out, select


def _expanded_entity_nav(
    catalog: Catalog, name: str, nav: str, options: dict[str, str]
) -> list[dict[str, Any]]:
    if nav == "Attributes":
        items, allowed, type_name = (
            catalog.attributes[name],
            properties_of(None),
            "AttributeMetadata",
        )
    elif nav == "OneToManyRelationships":
        items, allowed, type_name = (
            catalog.one_to_many[name],
            RELATIONSHIP_PROPERTIES,
            "OneToManyRelationshipMetadata",
        )
    elif nav == "ManyToOneRelationships":
        items, allowed, type_name = (
            catalog.many_to_one[name],
            RELATIONSHIP_PROPERTIES,
            "OneToManyRelationshipMetadata",
        )
    else:
        return []
    keep = compile_filter(options.get("$filter"), allowed, type_name)
    select = parse_select(options.get("$select"), allowed, type_name)
    return [project(i, select) for i in items if keep(i)]


def _entity_collection(request: Request, catalog: Catalog, params) -> Response:
    keep = compile_filter(params.get("$filter"), ENTITY_PROPERTIES, "EntityMetadata")
    names = [n for n, e in catalog.entities.items() if keep(e)]
    items, select = _entity_items(request, catalog, params, names)
    return _json(
        {"@odata.context": _context(request, "EntityDefinitions", select, False), "value": items}
    )


def _single_entity(request: Request, catalog: Catalog, logical: str, params) -> Response:
    if "$filter" in params:
        raise bad_query("The query option $filter is not allowed on a single entity.")
    items, select = _entity_items(request, catalog, params, [logical])
    body = {"@odata.context": _context(request, "EntityDefinitions", select, True), **items[0]}
    return _json(body)


# -- Attributes -------------------------------------------------------------------------------


def _attributes(
    request: Request, catalog: Catalog, logical: str, ref: str, key_text: str | None, rest
) -> Response:
    params = request.query_params
    cast = None
    if rest and rest[0][0].startswith("Microsoft."):
        seg, seg_key = rest[0]
        cast = cast_type(seg)
        if cast is None or seg_key is not None:
            raise ResourceNotFound(seg)
        rest = rest[1:]
    type_name = cast or "AttributeMetadata"
    allowed = properties_of(cast)
    navs = navigations_of(cast)
    path = f"EntityDefinitions({ref})/Attributes" + (
        f"/Microsoft.Dynamics.CRM.{cast}" if cast else ""
    )

    if key_text is None:
        if rest:
            raise ResourceNotFound(rest[0][0])
        keep = compile_filter(params.get("$filter"), allowed, type_name)
        select = parse_select(params.get("$select"), allowed, type_name)
        expand = parse_expand(params.get("$expand"), navs, type_name)
        wanted = CASTS[cast] if cast else None
        items = [
            _attribute_view(catalog, logical, a, select, expand, cast)
            for a in catalog.attributes[logical]
            if (wanted is None or a["AttributeType"] in wanted) and keep(a)
        ]
        return _json({"@odata.context": _context(request, path, select, False), "value": items})

    key, value = _key(key_text, "LogicalName")
    attr = catalog.attribute(logical, key, value)
    if attr is None:
        raise MetadataError(
            404, "0x80040217", f"Could not find attribute '{value}' on entity '{logical}'."
        )
    if cast and attr["AttributeType"] not in CASTS[cast]:
        raise bad_query(
            f"The attribute '{attr['LogicalName']}' is a {attr['@odata.type'][1:].rsplit('.', 1)[1]}, "
            f"not a {cast}; cast to its own type or leave the cast out."
        )
    if "$filter" in params:
        raise bad_query("The query option $filter is not allowed on a single entity.")
    if rest:
        nav, nav_key = rest[0]
        if nav not in navs or nav_key is not None or len(rest) > 1:
            raise ResourceNotFound(nav)
        return _option_set_response(
            request,
            catalog,
            logical,
            attr,
            nav,
            f"{path.rsplit('/Attributes', 1)[0]}/Attributes({attr['MetadataId']})/Microsoft.Dynamics.CRM.{cast}/{nav}",
        )
    select = parse_select(params.get("$select"), allowed, type_name)
    expand = parse_expand(params.get("$expand"), navs, type_name)
    body = _attribute_view(catalog, logical, attr, select, expand, cast)
    context_path = path if cast else f"EntityDefinitions({ref})/Attributes"
    return _json({"@odata.context": _context(request, context_path, select, True), **body})


def _attribute_view(
    catalog: Catalog, logical: str, attr: dict[str, Any], select, expand, cast
) -> dict[str, Any]:
    item = project(attr, select)
    if cast:
        # The declared type of a cast collection: OData's minimal metadata omits @odata.type.
        item.pop("@odata.type", None)
    for nav, options in expand.items():
        item[nav] = _option_set_value(catalog, logical, attr, nav, options)
    return item


def _option_set_value(
    catalog: Catalog, logical: str, attr: dict[str, Any], nav: str, options: dict[str, str]
) -> dict[str, Any] | None:
    if nav == "GlobalOptionSet":
        return None  # every option set of the sandbox is local to its column
    if "$filter" in options:
        raise bad_query("The query option $filter is not allowed on OptionSet.")
    opts = catalog.option_sets[(logical, attr["LogicalName"])]
    select = parse_select(options.get("$select"), OPTION_SET_PROPERTIES, "OptionSetMetadataBase")
    return None if opts is None else project(opts, select)


def _option_set_response(
    request: Request, catalog: Catalog, logical: str, attr, nav: str, path: str
) -> Response:
    value = _option_set_value(
        catalog,
        logical,
        attr,
        nav,
        {k: v for k, v in request.query_params.items() if k == "$select"},
    )
    if value is None:
        return Response(status_code=204, headers=ODATA_HEADERS)
    select = parse_select(
        request.query_params.get("$select"), OPTION_SET_PROPERTIES, "OptionSetMetadataBase"
    )
    return _json({"@odata.context": _context(request, path, select, True), **value})


# -- relationships ----------------------------------------------------------------------------


def _relationships(
    request: Request, items: list[dict[str, Any]], path: str, key_text: str | None, rest
) -> Response:
    params = request.query_params
    if rest:
        raise ResourceNotFound(rest[0][0])
    type_name = "RelationshipMetadataBase"
    select = parse_select(params.get("$select"), RELATIONSHIP_PROPERTIES, type_name)
    if key_text is None:
        keep = compile_filter(params.get("$filter"), RELATIONSHIP_PROPERTIES, type_name)
        value = [project(i, select) for i in items if keep(i)]
        return _json({"@odata.context": _context(request, path, select, False), "value": value})
    key, wanted = _key(key_text, "SchemaName")
    for item in items:
        if item[key] == wanted:
            return _json(
                {"@odata.context": _context(request, path, select, True), **project(item, select)}
            )
    raise MetadataError(404, "0x80040217", f"Could not find relationship '{wanted}'.")


def relationship_definitions(request: Request) -> Response:
    segments = _segments(request.path_params["rest"])
    name, key_text = segments[0]
    if name:
        raise ResourceNotFound("RelationshipDefinitions" + name)
    items = _catalog(request).relationships
    return _relationships(request, items, "RelationshipDefinitions", key_text, segments[1:])


def global_option_sets(request: Request) -> Response:
    segments = _segments(request.path_params["rest"])
    name, key_text = segments[0]
    if name or len(segments) > 1:
        raise ResourceNotFound("GlobalOptionSetDefinitions" + request.path_params["rest"])
    if key_text is not None:
        key, value = _key(key_text, "Name")
        raise MetadataError(404, "0x80040217", f"Could not find global option set '{value}'.")
    select = _plain_select(request.query_params)
    return _json(
        {
            "@odata.context": _context(request, "GlobalOptionSetDefinitions", select, False),
            "value": _EMPTY,
        }
    )


# Every verb reaches the handler, which answers the writes with a clean "read-only" error
# (Starlette would otherwise answer them with a plain-text 405 of its own).
_ALL_METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"]


def routes() -> list[Route]:
    """The metadata routes, to be placed before the entity-set routes of the app."""
    return [
        Route(API, _guarded(service_document), methods=_ALL_METHODS),
        Route(API.rstrip("/"), _guarded(service_document), methods=_ALL_METHODS),
        Route(API + "$metadata", _guarded(csdl_document), methods=_ALL_METHODS),
        Route(
            API + "EntityDefinitions{rest:path}", _guarded(entity_definitions), methods=_ALL_METHODS
        ),
        Route(
            API + "RelationshipDefinitions{rest:path}",
            _guarded(relationship_definitions),
            methods=None,
        ),
        Route(
            API + "GlobalOptionSetDefinitions{rest:path}",
            _guarded(global_option_sets),
            methods=None,
        ),
    ]
