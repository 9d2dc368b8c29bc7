"""System query options: which are allowed, and `$select`, `$expand`, `$top`, `$count`.

`$filter` and `$orderby` text is parsed by `parser`; this module reads the rest and checks every
name against the schema, so the SQL layer only ever sees known tables and columns.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from ..schema.model import Table
from ..values import whole_number
from .errors import ODataError
from .navigation import CollectionNav, SingleNav, navigations
from .sql import not_found

SUPPORTED = {"$select", "$filter", "$orderby", "$top", "$count", "$expand"}
# Handled elsewhere (paging, change tracking, request routing): accepted and ignored here.
PASSED_THROUGH = {"$skiptoken", "$deltatoken"}
# Dataverse documents $skip, $search and $format as unsupported; $apply on an entity set is
# answered by `apply` (routed before this engine), not inside $expand or related collections.
UNSUPPORTED = {"$skip", "$search", "$format", "$apply", "$levels", "$compute", "$index"}
# Dataverse's named-query parameters: `fetchXml` on an entity set is answered by the `fetchxml`
# package (routed before this engine); anywhere else, and saved views, are refused - ignoring
# one would answer the query with every row of the table.
NAMED_QUERIES = {"fetchXml", "savedQuery", "userQuery"}
EXPAND_OPTIONS = {"$select", "$filter", "$orderby", "$top", "$expand"}
MAX_EXPANDS = 15
ONLY_SELECT_FILTER = (
    "Only $select and $filter clause can be provided while doing $expand on many-to-one "
    "relationship or nested one-to-many relationship."
)


@dataclass
class ExpandPlan:
    """One `$expand` item, checked against the schema.

    `kind` is "single" (lookup -> a dict or None per row) or "collection" (one-to-many -> a
    list). Single: `targets` lists one `SingleNav` per possible target table (owner lookups have
    two). Collection: `collection` describes the child table and its lookup column. `select` is
    None for all columns (exactly what the client selected: the writer adds what Dataverse
    adds); `filter`/`orderby`/`top` only for collections; `options` keeps the nested option
    text as written (for `<nav>@odata.nextLink`). `ref`: `<nav>/$ref` (references only).
    `paged`: a collection in a query with a nested `$expand` somewhere, which Dataverse pages
    with `odata.maxpagesize` (join-tables doc); without one it returns up to 5000 children.
    """

    nav: str
    kind: str
    table: str  # the table the expanded rows come from (first target for single-valued)
    select: list[str] | None = None
    filter: str | None = None
    orderby: str | None = None
    top: int | None = None
    expand: dict[str, ExpandPlan] = field(default_factory=dict)
    options: str = ""
    targets: list[SingleNav] = field(default_factory=list)
    collection: CollectionNav | None = None
    ref: bool = False
    paged: bool = False


def check_names(params: Mapping[str, str]) -> None:
    """Refuse options Dataverse does not support, in its words."""
    for name in params:
        if name in NAMED_QUERIES:
            raise ODataError(
                f"The query parameter {name} is not supported by the sandbox; "
                "use $filter, $orderby and $expand instead."
            )
        if not name.startswith("$") or name in SUPPORTED or name in PASSED_THROUGH:
            continue
        if name in UNSUPPORTED:
            raise ODataError(f"The query parameter {name} is not supported")
        raise ODataError(f"The query parameter '{name}' is not supported.")


def split_top_level(
    text: str, separator: str, opening: str = "([", closing: str = ")]"
) -> list[tuple[int, str]]:
    """Split on `separator` outside brackets (`opening`/`closing`: parentheses and square
    brackets by default) and quotes: [(offset, part)]."""
    parts, depth, start, quote_char = [], 0, 0, ""
    for i, c in enumerate(text):
        if quote_char:
            if c == quote_char:
                quote_char = ""
            continue
        if c in "'\"":
            quote_char = c
        elif c in opening:
            depth += 1
        elif c in closing:
            depth -= 1
        elif c == separator and depth == 0:
            parts.append((start, text[start:i]))
            start = i + 1
    parts.append((start, text[start:]))
    return parts


def parse_select(text: str | None, table: Table) -> list[str] | None:
    """`$select` -> column logical names (lookups by `_x_value` or their own name); None = all."""
    if text is None or text.strip() in ("", "*"):
        return None
    columns: list[str] = []
    items = split_top_level(text, ",")
    if len(items) > 1 and not items[-1][1].strip():
        items = items[:-1]  # Dataverse accepts a trailing comma (`$select=name,`)
    for offset, raw in items:
        name = raw.strip()
        pos = offset + (len(raw) - len(raw.lstrip()))
        column = table.find(name)
        if column is None:
            raise not_found(name, table, pos)
        if column.name not in columns:
            columns.append(column.name)
    return columns + [c for c in implied_columns(table, columns) if c not in columns]


CURRENCY = "transactioncurrencyid"


def implied_columns(table: Table, selected: list[str]) -> list[str]:
    """Columns Dataverse returns beside the selected ones (retrieve-entity-using-web-api and
    query-data-web-api docs): a money column brings the record's currency lookup
    `_transactioncurrencyid_value`; a part of an address (`address1_line1`) brings its
    composite (`address1_composite`). Only the parts the composite is made of: the
    create-entity-web-api example selects `address1_latitude` and gets no composite."""
    out = []
    money = any((c := table.find(n)) is not None and c.type == "Money" for n in selected)
    if money and CURRENCY in table.columns:
        out.append(CURRENCY)
    for name in selected:
        prefix = name.partition("_")[0]
        composite = table.columns.get(f"{prefix}_composite")
        if (
            prefix.startswith("address")
            and composite is not None
            and name in composite.computed_from
            and composite.name not in out
        ):
            out.append(composite.name)
    return out


def parse_top(text: str | None) -> int | None:
    if text is None:
        return None
    value = whole_number(text)
    if value is None:
        raise ODataError(
            f"Invalid value '{text}' for $top query option found. The $top query option requires "
            "a non-negative integer value."
        )
    return value


def parse_count(text: str | None) -> bool:
    if text is None:
        return False
    value = text.strip().lower()
    if value not in ("true", "false"):
        raise ODataError(f"'{text}' is not a valid count option.")
    return value == "true"


def parse_expand(
    text: str | None, schema: dict[str, Table], table: Table, counter: list[int] | None = None
) -> dict[str, ExpandPlan]:
    """`$expand` -> plans keyed by navigation property (nested options checked too)."""
    if text is None or not text.strip():
        return {}
    top_level = counter is None
    counter = counter if counter is not None else [0]
    navs = navigations(schema)
    plans: dict[str, ExpandPlan] = {}
    for offset, raw in split_top_level(text, ","):
        item = raw.strip()
        pos = offset + (len(raw) - len(raw.lstrip()))
        name, options = item, ""
        if "(" in item:
            if not item.endswith(")"):
                raise ODataError(f"')' expected at position {offset + len(raw)} in '{text}'.", pos)
            name, options = item[: item.index("(")].strip(), item[item.index("(") + 1 : -1]
        ref = name.endswith("/$ref")
        if ref:
            name = name[: -len("/$ref")]
        counter[0] += 1
        if counter[0] > MAX_EXPANDS:
            raise ODataError("Number of link entities in query exceeded maximum limit.")
        single = navs.single[table.logical_name].get(name)
        collection = navs.collection[table.logical_name].get(name)
        if single is None and collection is None:
            raise not_found(name, table, pos)
        if ref and collection is not None:
            raise ODataError(
                "Expand with $ref is only supported on lookup type navigation property."
            )
        nested = _nested_options(options, name)
        if single is not None:
            target = schema[single[0].target]
            if set(nested) & {"$orderby", "$top"}:
                raise ODataError(ONLY_SELECT_FILTER)
            plan = ExpandPlan(
                name, "single", target.logical_name, options=options, targets=single, ref=ref
            )
            plan.select = (
                []
                if ref
                else _select_any(nested.get("$select"), [schema[n.target] for n in single])
            )
        else:
            target = schema[collection.child]
            plan = ExpandPlan(
                name, "collection", target.logical_name, options=options, collection=collection
            )
            plan.select = parse_select(nested.get("$select"), target)
            plan.filter = nested.get("$filter")
            plan.orderby = nested.get("$orderby")
            top = parse_top(nested.get("$top"))
            plan.top = None if top is None else min(top, 5000)
        plan.expand = parse_expand(nested.get("$expand"), schema, target, counter)
        plans[name] = plan
    if top_level and any(p.expand for p in plans.values()):
        # With a nested $expand anywhere, collections take no $top/$orderby (join-tables doc).
        for plan in _all_plans(plans):
            if plan.kind == "collection" and (plan.top is not None or plan.orderby):
                raise ODataError(ONLY_SELECT_FILTER)
            plan.paged = plan.kind == "collection"
    return plans


def _all_plans(plans: dict[str, ExpandPlan]):
    for plan in plans.values():
        yield plan
        yield from _all_plans(plan.expand)


def _nested_options(text: str, nav: str) -> dict[str, str]:
    found: dict[str, str] = {}
    if not text.strip():
        return found
    for _, raw in split_top_level(text, ";"):
        part = raw.strip()
        if not part:
            continue
        key, eq, value = part.partition("=")
        key = key.strip()
        if not eq or key not in EXPAND_OPTIONS:
            if key in ("$skip", "$count", "$search", "$levels"):
                raise ODataError(f"The query option {key} is not supported inside $expand.")
            raise ODataError(f"The option '{key}' is not valid inside $expand of '{nav}'.")
        found[key] = value
    return found


def _select_any(text: str | None, tables: list[Table]) -> list[str] | None:
    """Nested $select of a lookup with several targets: a name must exist on at least one."""
    if len(tables) == 1:
        return parse_select(text, tables[0])
    if text is None or not text.strip():
        return None
    names: list[str] = []
    for offset, raw in split_top_level(text, ","):
        name = raw.strip()
        for t in tables:
            try:
                names.extend(n for n in parse_select(name, t) or [] if n not in names)
                break
            except ODataError:
                continue
        else:
            raise not_found(name, tables[0], offset)
    return names
