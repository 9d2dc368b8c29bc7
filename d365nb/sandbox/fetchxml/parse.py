"""FetchXML text -> a small query model (`Fetch`), checked for shape but not yet for names.

Elements and attributes read (https://learn.microsoft.com/power-apps/developer/data-platform/
fetchxml/reference/): `fetch` (top count page paging-cookie aggregate distinct aggregatelimit),
`entity`/`link-entity` (name from to alias link-type), `attribute` (name alias groupby aggregate
distinct dategrouping), `all-attributes`, `order` (attribute alias descending), `filter` (type)
and `condition` (attribute entityname operator value, `<value>` children). Other attributes
that do not change the result (`mapping`, `version`, `no-lock`, `output-format`, ...) are
accepted and ignored.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass, field

from ..errors import InvalidFetchXml
from ..values import whole_number

MAX_PAGE = 5000


@dataclass
class Attribute:
    name: str
    alias: str | None = None
    groupby: bool = False
    aggregate: str | None = None  # count countcolumn sum avg min max
    distinct: bool = False
    dategrouping: str | None = None


@dataclass
class Order:
    attribute: str | None
    alias: str | None
    descending: bool


@dataclass
class Condition:
    attribute: str
    operator: str
    values: list[str]
    entityname: str | None = None


@dataclass
class Filter:
    type: str  # "and" | "or"
    items: list[Condition | Filter] = field(default_factory=list)


@dataclass
class Entity:
    name: str
    alias: str | None = None
    attributes: list[Attribute] = field(default_factory=list)
    all_attributes: bool = False
    orders: list[Order] = field(default_factory=list)
    filters: list[Filter] = field(default_factory=list)
    links: list[Link] = field(default_factory=list)


@dataclass
class Link(Entity):
    from_: str = ""  # column of the linked entity
    to: str = ""  # column of the parent entity
    link_type: str = "inner"


@dataclass
class Fetch:
    entity: Entity
    top: int | None = None
    count: int | None = None
    page: int | None = None
    paging_cookie: str | None = None
    aggregate: bool = False
    distinct: bool = False
    aggregate_limit: int | None = None


def _bool(element: ET.Element, name: str) -> bool:
    value = (element.get(name) or "false").strip().lower()
    if value in ("true", "1"):
        return True
    if value in ("false", "0"):
        return False
    raise InvalidFetchXml(f"The '{name}' attribute of <{element.tag}> must be true or false.")


def _int(element: ET.Element, name: str, low: int = 1, high: int | None = None) -> int | None:
    value = element.get(name)
    if value is None:
        return None
    number = whole_number(value)  # ASCII digits within 64 bits: `²` or 30 digits are refused
    if number is None or number < low or (high is not None and number > high):
        bound = f" and {high}" if high is not None else ""
        raise InvalidFetchXml(
            f"The '{name}' attribute of <{element.tag}> must be a whole number between {low}"
            f"{bound}; got '{value}'."
        )
    return number


def _required(element: ET.Element, name: str) -> str:
    value = (element.get(name) or "").strip()
    if not value:
        raise InvalidFetchXml(f"<{element.tag}> needs a '{name}' attribute.")
    return value


def parse(text: str) -> Fetch:
    """Parse FetchXML; raises `errors.InvalidFetchXml` for anything that is not a query."""
    if not text or not text.strip():
        raise InvalidFetchXml("The fetchXml parameter is empty.")
    try:
        root = ET.fromstring(text)
    except ET.ParseError as exc:
        raise InvalidFetchXml(f"Invalid XML. {exc}.") from None
    if root.tag != "fetch":
        raise InvalidFetchXml(f"The root element must be <fetch>, not <{root.tag}>.")
    entities = [child for child in root if child.tag == "entity"]
    others = [child.tag for child in root if child.tag != "entity"]
    if len(entities) != 1 or others:
        raise InvalidFetchXml("<fetch> must contain exactly one <entity> element.")
    fetch = Fetch(
        entity=_entity(entities[0], Entity(_required(entities[0], "name"))),
        top=_int(root, "top", 1, MAX_PAGE),
        count=_int(root, "count", 1, MAX_PAGE),
        page=_int(root, "page", 1),
        paging_cookie=root.get("paging-cookie"),
        aggregate=_bool(root, "aggregate"),
        distinct=_bool(root, "distinct"),
        aggregate_limit=_int(root, "aggregatelimit", 1),
    )
    if fetch.top is not None and (fetch.count is not None or fetch.page is not None):
        raise InvalidFetchXml(
            "The 'top' attribute can't be used with the 'count' or 'page' attributes: use "
            "'count' and 'page' to page results."
        )
    return fetch


def _entity(element: ET.Element, entity: Entity) -> Entity:
    for child in element:
        tag = child.tag
        if tag == "attribute":
            entity.attributes.append(
                Attribute(
                    _required(child, "name"),
                    alias=child.get("alias"),
                    groupby=_bool(child, "groupby"),
                    aggregate=(child.get("aggregate") or None),
                    distinct=_bool(child, "distinct"),
                    dategrouping=child.get("dategrouping"),
                )
            )
        elif tag == "all-attributes":
            entity.all_attributes = True
        elif tag == "order":
            attribute, alias = child.get("attribute"), child.get("alias")
            if not attribute and not alias:
                raise InvalidFetchXml("<order> needs an 'attribute' or an 'alias'.")
            entity.orders.append(Order(attribute, alias, _bool(child, "descending")))
        elif tag == "filter":
            entity.filters.append(_filter(child))
        elif tag == "link-entity":
            link_type = (child.get("link-type") or "inner").strip()
            if link_type not in ("inner", "outer"):
                raise InvalidFetchXml(
                    f"The link-type '{link_type}' is not supported by the sandbox; use inner or "
                    "outer."
                )
            link = Link(
                _required(child, "name"),
                alias=child.get("alias"),
                from_=_required(child, "from"),
                to=_required(child, "to"),
                link_type=link_type,
            )
            entity.links.append(_entity(child, link))  # type: ignore[arg-type]
        else:
            raise InvalidFetchXml(f"The element <{tag}> is not valid inside <{element.tag}>.")
    return entity


def _filter(element: ET.Element) -> Filter:
    kind = (element.get("type") or "and").strip().lower()
    if kind not in ("and", "or"):
        raise InvalidFetchXml(f"The filter type '{kind}' is not valid; use 'and' or 'or'.")
    out = Filter(kind)
    for child in element:
        if child.tag == "condition":
            values = [v.text or "" for v in child if v.tag == "value"]
            if child.get("value") is not None:
                values.insert(0, child.get("value") or "")
            out.items.append(
                Condition(
                    _required(child, "attribute"),
                    _required(child, "operator").strip().lower(),
                    values,
                    child.get("entityname"),
                )
            )
        elif child.tag == "filter":
            out.items.append(_filter(child))
        else:
            raise InvalidFetchXml(f"The element <{child.tag}> is not valid inside <filter>.")
    return out
