"""`EntityDefinitions(...)/Attributes` responses: the collection, one attribute, the
`Microsoft.Dynamics.CRM.<Type>AttributeMetadata` casts and their `OptionSet`s."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from ..errors import ResourceNotFound
from .attributes import (
    CASTS,
    NAMESPACE,
    OPTION_SET_PROPERTIES,
    cast_type,
    navigations_of,
    properties_of,
)
from .catalog import Catalog
from .paths import Segment, not_found, parse_key
from .query import aliases_of, arrange, bad_query, parse_expand, parse_select, project
from .responses import collection, headers, single

OPTION_SET_TYPE = "OptionSetMetadataBase"


def attributes(
    request: Request,
    catalog: Catalog,
    logical: str,
    ref: str,
    key_text: str | None,
    rest: list[Segment],
) -> Response:
    """`Attributes[(key)][/<cast>][/OptionSet|/GlobalOptionSet]` of table `logical`."""
    cast = None
    if rest and rest[0][0].startswith("Microsoft."):
        segment, segment_key = rest[0]
        cast = cast_type(segment)
        if cast is None or segment_key is not None:
            raise ResourceNotFound(segment)
        rest = rest[1:]
    path = f"EntityDefinitions({ref})/Attributes" + (f"/{NAMESPACE}.{cast}" if cast else "")
    if key_text is None:
        if rest:
            raise ResourceNotFound(rest[0][0])
        return _collection(request, catalog, logical, cast, path)
    return _one(request, catalog, logical, ref, cast, path, key_text, rest)


def _collection(
    request: Request, catalog: Catalog, logical: str, cast: str | None, path: str
) -> Response:
    params = request.query_params
    type_name, allowed = cast or "AttributeMetadata", properties_of(cast)
    select = parse_select(params.get("$select"), allowed, type_name)
    expand = parse_expand(params.get("$expand"), navigations_of(cast), type_name)
    wanted = CASTS[cast] if cast else None
    typed = [a for a in catalog.attributes[logical] if not wanted or a["AttributeType"] in wanted]
    chosen = arrange(typed, params, allowed, type_name, aliases_of(params))
    items = [_view(catalog, logical, a, select, expand, cast) for a in chosen]
    return collection(request, path, _context_select(select, expand), items)


def _one(
    request: Request,
    catalog: Catalog,
    logical: str,
    ref: str,
    cast: str | None,
    path: str,
    key_text: str,
    rest: list[Segment],
) -> Response:
    params = request.query_params
    type_name, allowed, navs = (
        cast or "AttributeMetadata",
        properties_of(cast),
        navigations_of(cast),
    )
    key, value = parse_key(key_text, "LogicalName")
    attr = catalog.attribute(logical, key, value)
    if attr is None:
        raise not_found(f"attribute '{value}' on entity '{logical}'")
    if cast and attr["AttributeType"] not in CASTS[cast]:
        own = attr["@odata.type"].rsplit(".", 1)[1]
        raise bad_query(
            f"The attribute '{attr['LogicalName']}' is a {own}, not a {cast}; "
            "cast to its own type or leave the cast out."
        )
    for option in ("$filter", "$orderby", "$top"):
        if option in params:
            raise bad_query(f"The query option {option} is not allowed on a single entity.")
    if rest:
        nav, nav_key = rest[0]
        if nav not in navs or nav_key is not None or len(rest) > 1:
            raise ResourceNotFound(nav)
        metadata_id = attr["MetadataId"]
        nav_path = f"EntityDefinitions({ref})/Attributes({metadata_id})/{NAMESPACE}.{cast}/{nav}"
        return _option_set(request, catalog, logical, attr, nav, nav_path)
    select = parse_select(params.get("$select"), allowed, type_name)
    expand = parse_expand(params.get("$expand"), navs, type_name)
    item = _view(catalog, logical, attr, select, expand, cast)
    return single(request, path, _context_select(select, expand), item)


def _context_select(
    select: list[str] | None, expand: Mapping[str, Mapping[str, str]]
) -> list[str] | None:
    """The context URL's projection: `LogicalName,OptionSet,OptionSet(Options)` as Dataverse
    writes it for `$select=LogicalName&$expand=OptionSet($select=Options)`."""
    if select is None:
        return None
    nested = [f"{nav}({opts['$select']})" for nav, opts in expand.items() if "$select" in opts]
    return [*select, *expand, *nested]


def _view(
    catalog: Catalog,
    logical: str,
    attr: dict[str, Any],
    select: list[str] | None,
    expand: Mapping[str, Mapping[str, str]],
    cast: str | None,
) -> dict[str, Any]:
    item = project(attr, select)
    if cast:
        # Items of a cast collection have its declared type: minimal metadata omits @odata.type.
        item.pop("@odata.type", None)
    for nav, options in expand.items():
        item[nav] = _option_set_value(catalog, logical, attr, nav, options)
    return item


def _option_set_value(
    catalog: Catalog, logical: str, attr: dict[str, Any], nav: str, options: Mapping[str, str]
) -> dict[str, Any] | None:
    if "$filter" in options:
        raise bad_query(f"The query option $filter is not allowed on {nav}.")
    select = parse_select(options.get("$select"), OPTION_SET_PROPERTIES, OPTION_SET_TYPE)
    if nav == "GlobalOptionSet":
        return None  # every option set of the sandbox is local to its column
    value = catalog.option_sets[(logical, attr["LogicalName"])]
    return None if value is None else project(value, select)


def _option_set(
    request: Request, catalog: Catalog, logical: str, attr: dict[str, Any], nav: str, path: str
) -> Response:
    params = request.query_params
    value = _option_set_value(catalog, logical, attr, nav, params)
    if value is None:
        return Response(status_code=204, headers=headers())  # a null single-valued navigation
    select = parse_select(params.get("$select"), OPTION_SET_PROPERTIES, OPTION_SET_TYPE)
    return single(request, path, select, value)
