"""`EntityDefinitions` responses: the collection (with `$filter`) and one table by key, both with
`$select` and `$expand` of Attributes / relationships."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from .attributes import properties_of
from .catalog import Catalog
from .entities import ENTITY_NAVIGATIONS, ENTITY_PROPERTIES
from .query import aliases_of, arrange, bad_query, parse_expand, parse_select, project
from .relationships import RELATIONSHIP_PROPERTIES
from .responses import collection, single
from .writes import KEY_PROPERTIES, key_metadata

TYPE = "EntityMetadata"


def entity_collection(request: Request, catalog: Catalog) -> Response:
    params = request.query_params
    chosen = arrange(
        list(catalog.entities.values()), params, ENTITY_PROPERTIES, TYPE, aliases_of(params)
    )
    names = [e["LogicalName"] for e in chosen]
    items, select = _items(catalog, params, names, _keys_of(request))
    return collection(request, "EntityDefinitions", select, items)


def single_entity(request: Request, catalog: Catalog, logical: str) -> Response:
    params = request.query_params
    for option in ("$filter", "$orderby", "$top"):
        if option in params:
            raise bad_query(f"The query option {option} is not allowed on a single entity.")
    items, select = _items(catalog, params, [logical], _keys_of(request))
    return single(request, "EntityDefinitions", select, items[0])


def _keys_of(request: Request) -> Callable[[str], list[dict[str, Any]]]:
    """The organisation's alternate keys of a table, as EntityKeyMetadata (`$expand=Keys`)."""
    org = request.app.state.org
    return lambda name: [key_metadata(org.schema[name], k) for k in org.store.alternate_keys(name)]


def _items(
    catalog: Catalog,
    params: Mapping[str, str],
    names: list[str],
    keys: Callable[[str], list[dict[str, Any]]],
) -> tuple[list[dict[str, Any]], list[str] | None]:
    select = parse_select(params.get("$select"), ENTITY_PROPERTIES, TYPE)
    expand = parse_expand(params.get("$expand"), frozenset(ENTITY_NAVIGATIONS), TYPE)
    out = []
    for name in names:
        item = project(catalog.entities[name], select)
        for nav, options in expand.items():
            if nav == "Keys":
                item[nav] = _expanded_keys(keys(name), options)
            else:
                item[nav] = _expanded(catalog, name, nav, options)
        out.append(item)
    return out, select


def _expanded_keys(items: list[dict[str, Any]], options: Mapping[str, str]) -> list[dict]:
    """`$expand=Keys($select=KeyAttributes)` (define-alternate-keys-entity doc's example)."""
    text = options.get("$select")
    select = [n.strip() for n in text.split(",") if n.strip()] if text else None
    for name in select or ():
        if name not in KEY_PROPERTIES:
            raise bad_query(
                f"Could not find a property named '{name}' on type "
                "'Microsoft.Dynamics.CRM.EntityKeyMetadata'."
            )
    return [project(i, select) for i in items]


def _expanded(
    catalog: Catalog, name: str, nav: str, options: Mapping[str, str]
) -> list[dict[str, Any]]:
    """An expanded collection navigation (nested `$select`/`$filter`, base types only)."""
    if nav == "Attributes":
        items, allowed, type_name = (
            catalog.attributes[name],
            properties_of(None),
            "AttributeMetadata",
        )
    elif nav in ("OneToManyRelationships", "ManyToOneRelationships"):
        table = catalog.one_to_many if nav.startswith("One") else catalog.many_to_one
        items, allowed, type_name = (
            table[name],
            RELATIONSHIP_PROPERTIES,
            "OneToManyRelationshipMetadata",
        )
    else:
        return []  # ManyToManyRelationships, Keys: the sandbox has none
    select = parse_select(options.get("$select"), allowed, type_name)
    return [project(i, select) for i in arrange(items, options, allowed, type_name)]
