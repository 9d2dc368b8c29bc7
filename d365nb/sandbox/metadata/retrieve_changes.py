"""The `RetrieveMetadataChanges` function: one query over tables, their attributes (with the
properties of every derived type, no cast needed) and relationships.

    GET RetrieveMetadataChanges(Query=@p1)?@p1={"Criteria":{...},"Properties":{...},
                                               "AttributeQuery":{...}}

`Query` is an `EntityQueryExpression`: `Criteria` (a `MetadataFilterExpression` of conditions
`{"PropertyName","ConditionOperator","Value":{"Type","Value"}}` joined by `FilterOperator`, with
nested `Filters`), `Properties` (`{"AllProperties": true}` or `{"PropertyNames": [...]}`) and the
same pair for `AttributeQuery` and `RelationshipQuery`. Attributes come back typed as
`Microsoft.Dynamics.CRM.Complex<Type>AttributeMetadata`, as Dataverse returns them here.
The sandbox's metadata never changes, so `ServerVersionStamp` is constant and a request that
sends it back as `ClientVersionStamp` gets no entities.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response

from .attributes import NAMESPACE
from .catalog import Catalog
from .query import bad_query
from .responses import api_root, catalog_of, json_response

SERVER_VERSION_STAMP = "1!01/01/2026 00:00:00"
_ALIAS = re.compile(r"^@\w+$")
_NAVIGATIONS = {
    "Attributes": "AttributeQuery",
    "OneToManyRelationships": "RelationshipQuery",
    "ManyToOneRelationships": "RelationshipQuery",
}


def retrieve_metadata_changes(request: Request) -> Response:
    args = _arguments(request.path_params["rest"], request.query_params)
    query = _json_argument(args, "Query") or {}
    catalog = catalog_of(request)
    if args.get("ClientVersionStamp", "").strip("'\"") == SERVER_VERSION_STAMP:
        entities: list[dict[str, Any]] = []  # nothing changed since the client's stamp
    else:
        entities = _entities(catalog, query)
    return json_response(
        {
            "@odata.context": f"{api_root(request)}$metadata#{NAMESPACE}.RetrieveMetadataChangesResponse",
            "EntityMetadata": entities,
            "ServerVersionStamp": SERVER_VERSION_STAMP,
            "DeletedMetadata": None,
        }
    )


def _arguments(rest: str, params: Mapping[str, str]) -> dict[str, str]:
    """`(Query=@p1,ClientVersionStamp='x')` + aliases -> {"Query": "<json>", ...}."""
    if not (rest.startswith("(") and rest.endswith(")")):
        raise bad_query("Call it as RetrieveMetadataChanges(Query=@p1) with @p1 the query JSON.")
    args: dict[str, str] = {}
    for part in _split_arguments(rest[1:-1]):
        if not part:
            continue
        name, eq, value = part.partition("=")
        if not eq:
            raise bad_query(f"RetrieveMetadataChanges: bad parameter '{part}'.")
        value = value.strip()
        if _ALIAS.match(value):
            value = params.get(value, "null")
        args[name.strip()] = value
    return args


def _split_arguments(text: str) -> list[str]:
    """Split on commas outside JSON brackets and quotes (inline JSON values contain commas)."""
    parts, depth, quote, start = [], 0, "", 0
    for i, ch in enumerate(text):
        if quote:
            if ch == quote:
                quote = ""
        elif ch in "'\"":
            quote = ch
        elif ch in "{[(":
            depth += 1
        elif ch in "}])":
            depth -= 1
        elif ch == "," and depth == 0:
            parts.append(text[start:i].strip())
            start = i + 1
    parts.append(text[start:].strip())
    return parts


def _json_argument(args: Mapping[str, str], name: str) -> Any:
    text = args.get(name)
    if text is None or text == "null":
        return None
    try:
        value = orjson.loads(text)
    except orjson.JSONDecodeError:
        raise bad_query(f"RetrieveMetadataChanges: {name} is not valid JSON.") from None
    if not isinstance(value, dict):
        raise bad_query(f"RetrieveMetadataChanges: {name} must be a JSON object.")
    return value


# -- evaluating the query ---------------------------------------------------------------------

_OPERATORS: dict[str, Callable[[Any, Any], bool]] = {
    "Equals": lambda a, b: a == b,
    "NotEquals": lambda a, b: a != b,
    "In": lambda a, b: a in b,
    "NotIn": lambda a, b: a not in b,
    "GreaterThan": lambda a, b: a is not None and a > b,
    "LessThan": lambda a, b: a is not None and a < b,
}


def _matches(criteria: Mapping[str, Any] | None, item: Mapping[str, Any]) -> bool:
    """Evaluate a MetadataFilterExpression (text compares case-insensitively)."""
    if not criteria:
        return True
    results = []
    for condition in criteria.get("Conditions") or []:
        op = _OPERATORS.get(condition.get("ConditionOperator", "Equals"))
        if op is None:
            raise bad_query(
                f"RetrieveMetadataChanges: unsupported ConditionOperator "
                f"'{condition.get('ConditionOperator')}'."
            )
        wanted = (condition.get("Value") or {}).get("Value")
        results.append(op(_fold(item.get(condition.get("PropertyName"))), _fold(wanted)))
    results.extend(_matches(nested, item) for nested in criteria.get("Filters") or [])
    if criteria.get("FilterOperator", "And") == "Or":
        return any(results) if results else True
    return all(results)


def _fold(value: Any) -> Any:
    if isinstance(value, str):
        return value.casefold()
    if isinstance(value, list):
        return [_fold(v) for v in value]
    return value


def _wanted(properties: Mapping[str, Any] | None) -> set[str] | None:
    """Property names to return, or None for all."""
    if not properties or properties.get("AllProperties"):
        return None
    return set(properties.get("PropertyNames") or [])


def _project(item: Mapping[str, Any], names: set[str] | None) -> dict[str, Any]:
    if names is None:
        return dict(item)
    out = {k: v for k, v in item.items() if k in names}
    if "@odata.type" in item:
        out["@odata.type"] = item["@odata.type"]
    out["MetadataId"] = item.get("MetadataId")
    return out


def _entities(catalog: Catalog, query: Mapping[str, Any]) -> list[dict[str, Any]]:
    names = _wanted(query.get("Properties"))
    out = []
    for logical, entity in catalog.entities.items():
        if not _matches(query.get("Criteria"), entity):
            continue
        item = _project(entity, names)
        for nav, sub_query_name in _NAVIGATIONS.items():
            if names is None or nav in names:
                item[nav] = _children(catalog, logical, nav, query.get(sub_query_name) or {})
        out.append(item)
    return out


def _children(
    catalog: Catalog, logical: str, nav: str, sub_query: Mapping[str, Any]
) -> list[dict[str, Any]]:
    names = _wanted(sub_query.get("Properties"))
    if nav == "Attributes":
        out = []
        for attr in catalog.attributes[logical]:
            if not _matches(sub_query.get("Criteria"), attr):
                continue
            item = _project(attr, names)
            item["@odata.type"] = attr["@odata.type"].replace(
                f"{NAMESPACE}.", f"{NAMESPACE}.Complex"
            )
            option_set = catalog.option_sets[(logical, attr["LogicalName"])]
            if option_set is not None and (names is None or "OptionSet" in names):
                item["OptionSet"] = option_set
            out.append(item)
        return out
    items = catalog.one_to_many if nav.startswith("One") else catalog.many_to_one
    return [_project(r, names) for r in items[logical] if _matches(sub_query.get("Criteria"), r)]
