"""`$select`, `$filter`, `$orderby`, `$top` and `$expand` over metadata objects, in Python.

Metadata is small (a few tables, a few hundred attributes) and never paged, so filters are parsed
once by the OData parser and evaluated over the dicts. Text compares case-insensitively, as data
queries do.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from ..errors import DataverseError
from ..odata.errors import ODataError
from ..odata.nodes import And, Call, Compare, Literal, Node, Not, Or, Property
from ..odata.parser import parse_filter, parse_orderby
from ..values import whole_number

NAMESPACE = "Microsoft.Dynamics.CRM"
_SUPPORTED_OPTIONS = frozenset({"$select", "$filter", "$expand", "$orderby", "$top"})


class MetadataError(DataverseError):
    """A request the metadata endpoints refuse: HTTP status, Dataverse code and message."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message, code=code, status=status)


def bad_query(message: str) -> MetadataError:
    return MetadataError(400, ODataError.code, message)


def no_property(name: str, type_name: str) -> MetadataError:
    # Code 0x0, as Microsoft's Web API troubleshooting page shows for an unknown $select name.
    return MetadataError(
        400, "0x0", f"Could not find a property named '{name}' on type '{NAMESPACE}.{type_name}'."
    )


def check_options(params: Mapping[str, str]) -> None:
    """Refuse system query options the metadata endpoints do not support."""
    for key in params:
        if key.startswith("$") and key not in _SUPPORTED_OPTIONS:
            raise bad_query(f"The query parameter {key} is not supported for metadata queries.")


def split_top(text: str, sep: str) -> list[str]:
    """Split on `sep` outside parentheses and quotes."""
    parts, depth, quoted, start = [], 0, False, 0
    for i, ch in enumerate(text):
        if ch == "'":
            quoted = not quoted
        elif quoted:
            continue
        elif ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        elif ch == sep and depth == 0:
            parts.append(text[start:i])
            start = i + 1
    parts.append(text[start:])
    return [p.strip() for p in parts]


def parse_select(text: str | None, allowed: frozenset[str], type_name: str) -> list[str] | None:
    """`$select` -> property names (None = all); unknown names -> 400."""
    if text is None:
        return None
    names = [n for n in split_top(text, ",") if n]
    if not names:
        raise bad_query("The $select query option has no value.")
    for name in names:
        if name not in allowed:
            raise no_property(name, type_name)
    return names


def parse_expand(
    text: str | None, allowed: frozenset[str], type_name: str
) -> dict[str, dict[str, str]]:
    """`$expand=OptionSet($select=Options),GlobalOptionSet` -> {nav: {option: value}}."""
    if text is None:
        return {}
    plan: dict[str, dict[str, str]] = {}
    for item in split_top(text, ","):
        name, _, rest = item.partition("(")
        name = name.strip()
        if name not in allowed:
            raise no_property(name, type_name)
        options: dict[str, str] = {}
        if rest:
            if not rest.endswith(")"):
                raise bad_query(f"Syntax error in the $expand option at '{item}'.")
            for opt in split_top(rest[:-1], ";"):
                key, eq, value = opt.partition("=")
                if not eq or key.strip() not in _SUPPORTED_OPTIONS - {"$expand"}:
                    raise bad_query(
                        f"The option '{opt}' is not supported inside $expand of {name}."
                    )
                options[key.strip()] = value
        plan[name] = options
    return plan


def aliases_of(params: Mapping[str, str]) -> dict[str, str]:
    """Parameter aliases (`@p1=...`) given with the request."""
    return {k: v for k, v in params.items() if k.startswith("@")}


def arrange(
    items: list[dict[str, Any]],
    params: Mapping[str, str],
    allowed: frozenset[str],
    type_name: str,
    aliases: Mapping[str, str] | None = None,
) -> list[dict[str, Any]]:
    """Apply `$filter`, `$orderby` and `$top` of `params` to a metadata collection."""
    keep = compile_filter(params.get("$filter"), allowed, type_name, aliases)
    chosen = [i for i in items if keep(i)]
    order = params.get("$orderby")
    if order:
        try:
            keys = parse_orderby(order, aliases)
        except ODataError as exc:
            raise bad_query(exc.message) from None
        for key in reversed(keys):  # stable sorts, last key first
            if key.path[0] not in allowed:
                raise no_property(key.path[0], type_name)
            chosen.sort(key=lambda i, p=key.path: _sort_key(i, p), reverse=key.descending)
    top = params.get("$top")
    if top is not None:
        count = whole_number(top)
        if count is None:
            raise bad_query(f"Invalid value '{top}' for $top query option found.")
        chosen = chosen[:count]
    return chosen


def _sort_key(item: Mapping[str, Any], path: tuple[str, ...]) -> tuple:
    value: Any = item
    for step in path:
        value = value.get(step) if isinstance(value, Mapping) else None
    if isinstance(value, Mapping):  # a label sorts by its text, a managed property by its value
        label = value.get("UserLocalizedLabel")
        value = label.get("Label") if isinstance(label, Mapping) else value.get("Value")
    if value is None:
        return (0, "")  # nulls first when ascending, as Dataverse orders them
    return (1, _fold(value))


def compile_filter(
    text: str | None,
    allowed: frozenset[str],
    type_name: str,
    aliases: Mapping[str, str] | None = None,
) -> Callable[[Mapping[str, Any]], bool]:
    """`$filter` text -> a predicate over metadata dicts; bad syntax or names -> 400."""
    if text is None:
        return lambda item: True
    try:
        tree = parse_filter(text, aliases)
    except ODataError as exc:
        raise bad_query(exc.message) from None
    _check_names(tree, allowed, type_name)
    return lambda item: bool(_eval(tree, item))


def _check_names(node: Node, allowed: frozenset[str], type_name: str) -> None:
    if isinstance(node, Property):
        if node.path[0] not in allowed:
            raise no_property(node.path[0], type_name)
    elif isinstance(node, (And, Or)):
        _check_names(node.left, allowed, type_name)
        _check_names(node.right, allowed, type_name)
    elif isinstance(node, Not):
        _check_names(node.operand, allowed, type_name)
    elif isinstance(node, Compare):
        _check_names(node.left, allowed, type_name)
        _check_names(node.right, allowed, type_name)
    elif isinstance(node, Call):
        for arg in node.args:
            _check_names(arg, allowed, type_name)
    elif not isinstance(node, Literal):
        raise bad_query(
            f"The query at position {node.pos} is not supported in metadata queries; "
            "use comparisons, and/or/not and contains/startswith/endswith."
        )


def _value(node: Node, item: Mapping[str, Any]) -> Any:
    if isinstance(node, Literal):
        return node.value
    if isinstance(node, Property):
        value: Any = item
        for step in node.path:
            value = value.get(step) if isinstance(value, Mapping) else None
        return value
    return _eval(node, item)


def _fold(value: Any) -> Any:
    return value.casefold() if isinstance(value, str) else value


_COMPARE = {
    "eq": lambda a, b: a == b,
    "ne": lambda a, b: a != b,
    "gt": lambda a, b: a > b,
    "ge": lambda a, b: a >= b,
    "lt": lambda a, b: a < b,
    "le": lambda a, b: a <= b,
}


def _eval(node: Node, item: Mapping[str, Any]) -> Any:
    if isinstance(node, And):
        return _eval(node.left, item) and _eval(node.right, item)
    if isinstance(node, Or):
        return _eval(node.left, item) or _eval(node.right, item)
    if isinstance(node, Not):
        return not _eval(node.operand, item)
    if isinstance(node, Compare):
        left = _fold(_value(node.left, item))
        right = _fold(_value(node.right, item))
        if node.op in ("eq", "ne"):
            return _COMPARE[node.op](left, right)
        if left is None or right is None:
            return False
        try:
            return _COMPARE[node.op](left, right)
        except TypeError:
            raise bad_query(f"Incompatible types compared at position {node.pos}.") from None
    if isinstance(node, Call):
        if node.name not in ("contains", "startswith", "endswith") or len(node.args) != 2:
            raise bad_query(f"Unknown function '{node.name}' at position {node.pos}.")
        text, part = (_fold(_value(a, item)) for a in node.args)
        if not isinstance(text, str) or not isinstance(part, str):
            return False
        return {
            "contains": lambda: part in text,
            "startswith": lambda: text.startswith(part),
            "endswith": lambda: text.endswith(part),
        }[node.name]()
    return _value(node, item)


def project(item: Mapping[str, Any], select: list[str] | None) -> dict[str, Any]:
    """Keep the selected properties (plus `@odata.type` and `MetadataId`, always returned)."""
    if select is None:
        return dict(item)
    out = {k: item[k] for k in ("@odata.type",) if k in item}
    out.update({name: item.get(name) for name in select})
    if "MetadataId" in item:
        out["MetadataId"] = item["MetadataId"]
    return out
