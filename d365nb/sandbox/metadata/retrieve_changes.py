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

from ..odata.options import split_top_level
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
    _check_query(query)
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
    return [part.strip() for _, part in split_top_level(text, ",", "{[(", "}])")]


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


# -- checking the query's shape ---------------------------------------------------------------

# Nested `Filters` deeper than this are refused (real queries nest two or three levels).
MAX_FILTER_DEPTH = 16


def _check_query(query: Mapping[str, Any]) -> None:
    """Refuse an EntityQueryExpression of the wrong shape with a 400 naming the part, before
    anything evaluates it (a number where an object belongs must not become a 500)."""
    _check_part(query, "Query")
    for name in ("AttributeQuery", "RelationshipQuery"):
        sub = query.get(name)
        if sub is not None:
            _expect(sub, dict, f"Query.{name}", "an object")
            _check_part(sub, f"Query.{name}")


def _check_part(part: Mapping[str, Any], where: str) -> None:
    properties = part.get("Properties")
    if properties is not None:
        _expect(properties, dict, f"{where}.Properties", "an object")
        names = properties.get("PropertyNames")
        if names is not None and not (
            isinstance(names, list) and all(isinstance(n, str) for n in names)
        ):
            raise bad_query(
                f"RetrieveMetadataChanges: {where}.Properties.PropertyNames must be a list of "
                "property names."
            )
    criteria = part.get("Criteria")
    if criteria is not None:
        _check_filter(criteria, f"{where}.Criteria", 1)


def _check_filter(criteria: Any, where: str, depth: int) -> None:
    _expect(criteria, dict, where, "an object")
    if depth > MAX_FILTER_DEPTH:
        raise bad_query(
            f"RetrieveMetadataChanges: {where} nests Filters more than {MAX_FILTER_DEPTH} deep."
        )
    operator = criteria.get("FilterOperator", "And")
    if operator not in ("And", "Or"):
        raise bad_query(f"RetrieveMetadataChanges: {where}.FilterOperator must be 'And' or 'Or'.")
    conditions = criteria.get("Conditions") or []
    _expect(conditions, list, f"{where}.Conditions", "a list")
    for index, condition in enumerate(conditions):
        at = f"{where}.Conditions[{index}]"
        _expect(condition, dict, at, "an object")
        _expect(condition.get("PropertyName"), str, f"{at}.PropertyName", "a property name")
        operator = condition.get("ConditionOperator", "Equals")
        if operator not in _OPERATORS:
            raise bad_query(
                f"RetrieveMetadataChanges: unsupported ConditionOperator {str(operator)[:40]!r}."
            )
        value = condition.get("Value")
        if value is not None:
            _expect(value, dict, f"{at}.Value", 'an object like {"Type": ..., "Value": ...}')
        if operator in ("In", "NotIn") and not isinstance((value or {}).get("Value"), list):
            raise bad_query(f"RetrieveMetadataChanges: {at}.Value.Value must be a list.")
    filters = criteria.get("Filters") or []
    _expect(filters, list, f"{where}.Filters", "a list")
    for index, nested in enumerate(filters):
        _check_filter(nested, f"{where}.Filters[{index}]", depth + 1)


def _expect(value: Any, kind: type, where: str, described: str) -> None:
    if not isinstance(value, kind):
        raise bad_query(f"RetrieveMetadataChanges: {where} must be {described}.")


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
        try:
            results.append(op(_fold(item.get(condition.get("PropertyName"))), _fold(wanted)))
        except TypeError:  # e.g. GreaterThan between a text property and a number
            raise bad_query(
                f"RetrieveMetadataChanges: {condition.get('PropertyName')} cannot be compared "
                f"with {str(wanted)[:40]!r}."
            ) from None
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
