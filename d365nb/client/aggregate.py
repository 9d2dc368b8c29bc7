"""``d365.aggregate(table, groupby=[...], agg={...}, filter=..., labels=False)`` -> DataFrame.

One row per group, the group columns first, then the aggregates in the order given::

    d365.aggregate("leads", groupby=["statuscode"],
                   agg={"n": "count()", "total": "sum(estimatedvalue)", "u": "countdistinct(ownerid)"})

Aggregates: ``count()`` (rows), ``count(col)`` (rows where col has a value), ``countdistinct(col)``,
``sum(col)``, ``avg(col)``, ``min(col)``, ``max(col)``. ``groupby`` takes columns and date parts
``createdon:year|quarter|month|day``. The query is ONE request: ``$apply`` when OData can say
it (https://learn.microsoft.com/power-apps/developer/data-platform/webapi/query/aggregate-data),
else FetchXML (``count(col)`` and date parts, which ``$apply`` cannot express). Every name is
checked against the table's metadata before anything is sent.
"""

from __future__ import annotations

import re
import time
import xml.etree.ElementTree as ET
from collections.abc import Generator
from dataclasses import dataclass
from typing import Any

import orjson
import pandas as pd

from d365nb.client.errors import BadRequest, ValidationError
from d365nb.client.fetchxml import FORMATTED
from d365nb.client.http import ApiRequest
from d365nb.client.metadata import ColumnMeta, TableMeta, closest

Op = Generator[Any, Any, Any]

NUMERIC = frozenset({"Integer", "BigInt", "Decimal", "Double", "Money"})
WHOLE = frozenset({"Integer", "BigInt"})
METHODS = {
    "count": "count",
    "countdistinct": "countdistinct",
    "sum": "sum",
    "avg": "average",
    "average": "average",
    "mean": "average",
    "min": "min",
    "max": "max",
}
DATE_PARTS = ("year", "quarter", "month", "day")
AGGREGATE_LIMIT_CODE = "0x8004e023"
_SPEC = re.compile(r"^\s*(\w+)\s*\(\s*([\w.]*)\s*\)\s*$")
_ITEM = re.compile(r"^\s*([A-Za-z_]\w*)\s*=\s*(.+?)\s*$")


@dataclass(frozen=True)
class Aggregate:
    """One aggregate: output ``alias``, ``method`` (count countdistinct sum average min max) and
    ``column`` (None for ``count()``)."""

    alias: str
    method: str
    column: ColumnMeta | None


@dataclass(frozen=True)
class Group:
    """One group key: the column, an optional date part, and its name in the frame."""

    column: ColumnMeta
    part: str | None
    name: str


def parse_agg(agg: Any) -> list[tuple[str, str, str | None]]:
    """``{"n": "count()", "t": "sum(x)"}`` or ``"n=count(),t=sum(x)"`` -> (alias, method, column)
    triples; a one-line ``ValidationError`` for anything else."""
    if isinstance(agg, str):
        items = []
        for part in _split(agg):
            match = _ITEM.match(part)
            if match is None:
                raise ValidationError(
                    f"agg: expected alias=method(column) items like n=count(),total=sum(col); "
                    f"got {part.strip()!r}"
                )
            items.append((match.group(1), match.group(2)))
    elif isinstance(agg, dict):
        items = list(agg.items())
    else:
        raise ValidationError(
            'agg must be a dict like {"n": "count()", "total": "sum(col)"} or text like '
            f'"n=count(),total=sum(col)", got {type(agg).__name__}'
        )
    out = []
    for alias, spec in items:
        if not isinstance(alias, str) or not alias.isidentifier():
            raise ValidationError(f"agg: the name {alias!r} must be an identifier like total_value")
        match = _SPEC.match(spec) if isinstance(spec, str) else None
        if match is None:
            raise ValidationError(
                f"agg {alias}: expected method(column) like sum(estimatedvalue) or count(), "
                f"got {spec!r}"
            )
        method, column = match.group(1).lower(), match.group(2) or None
        if method not in METHODS:
            hint = closest(method, list(METHODS))
            more = f"; did you mean {hint[0]}?" if hint else ""
            raise ValidationError(
                f"agg {alias}: unknown method {method!r} (count, countdistinct, sum, avg, min, "
                f"max){more}"
            )
        if column is None and method != "count":
            raise ValidationError(f"agg {alias}: {method}() needs a column, e.g. {method}(revenue)")
        out.append((alias, METHODS[method], column))
    return out


def _split(text: str) -> list[str]:
    parts, depth, start = [], 0, 0
    for i, c in enumerate(text):
        depth += c == "("
        depth -= c == ")"
        if c == "," and depth == 0:
            parts.append(text[start:i])
            start = i + 1
    parts.append(text[start:])
    return [p for p in parts if p.strip()]


def _group_names(groupby: Any) -> list[str]:
    if groupby is None:
        return []
    if isinstance(groupby, str):
        return [g.strip() for g in groupby.split(",") if g.strip()]
    if isinstance(groupby, list | tuple) and all(isinstance(g, str) and g.strip() for g in groupby):
        return [g.strip() for g in groupby]
    raise ValidationError(f"groupby must be a column name or a list of them, got {groupby!r}")


def plan(meta: TableMeta, groupby: Any, agg: Any) -> tuple[list[Group], list[Aggregate]]:
    """Check every name and type against the metadata: (groups, aggregates)."""
    groups = []
    for name in _group_names(groupby):
        col_name, _, part = name.partition(":")
        column = meta.column(col_name.strip())  # UnknownColumn with the closest names
        part = part.strip().lower() or None
        if part is not None and part not in DATE_PARTS:
            raise ValidationError(
                f"groupby {name}: unknown date part {part!r}; use {', '.join(DATE_PARTS)}"
            )
        if part is not None and column.type != "DateTime":
            raise ValidationError(f"groupby {name}: {column.name} is not a date column")
        if part is None and column.type == "DateTime":
            raise ValidationError(
                f"groupby {name}: dates are grouped by a part, e.g. {column.name}:month "
                f"({', '.join(DATE_PARTS)})"
            )
        label = f"{column.name}_{part}" if part else column.read_name
        groups.append(Group(column, part, label))
    aggregates = []
    for alias, method, col_name in parse_agg(agg if agg is not None else {}):
        column = meta.column(col_name) if col_name else None
        ctype = column.type if column is not None else ""
        if method in ("sum", "average") and ctype not in NUMERIC:
            raise ValidationError(
                f"agg {alias}: {method} needs a number or currency column; {col_name} is {ctype}"
            )
        if method in ("min", "max") and ctype not in NUMERIC and ctype != "DateTime":
            raise ValidationError(
                f"agg {alias}: {method} needs a number, currency or date column; {col_name} is "
                f"{ctype}"
            )
        aggregates.append(Aggregate(alias, method, column))
    if not groups and not aggregates:
        raise ValidationError("aggregate needs groupby columns, agg, or both")
    names = [g.name for g in groups] + [a.alias for a in aggregates]
    clash = sorted({n for n in names if names.count(n) > 1})
    if clash:
        raise ValidationError(f"aggregate: the name {clash[0]!r} is used twice; rename the agg")
    return groups, aggregates


def needs_fetchxml(groups: list[Group], aggregates: list[Aggregate]) -> bool:
    """``$apply`` has no count of non-null values and no date parts."""
    return any(g.part for g in groups) or any(
        a.method == "count" and a.column is not None for a in aggregates
    )


def apply_text(groups: list[Group], aggregates: list[Aggregate], filter: str | None) -> str:
    """The ``$apply`` value: ``filter(...)/groupby((a,b),aggregate(x with sum as t,...))``."""
    items = [
        "$count as " + a.alias
        if a.column is None
        else f"{a.column.read_name} with {a.method} as {a.alias}"
        for a in aggregates
    ]
    if groups:
        text = "groupby((" + ",".join(g.name for g in groups) + ")"
        text += f",aggregate({','.join(items)}))" if items else ")"
    else:
        text = f"aggregate({','.join(items)})"
    return f"filter({filter})/{text}" if filter else text


def fetch_text(meta: TableMeta, groups: list[Group], aggregates: list[Aggregate]) -> str:
    """The equivalent FetchXML (aggregate='true'), groups ordered by their alias."""
    fetch = ET.Element("fetch", aggregate="true")
    entity = ET.SubElement(fetch, "entity", name=meta.logical_name)
    for g in groups:
        attrs = {"name": g.column.name, "alias": g.name, "groupby": "true"}
        if g.part:
            attrs["dategrouping"] = g.part
        ET.SubElement(entity, "attribute", attrs)
    for a in aggregates:
        column = a.column.name if a.column is not None else meta.primary_id
        how = {"count": "countcolumn" if a.column is not None else "count", "average": "avg"}
        attrs = {"name": column, "alias": a.alias, "aggregate": how.get(a.method, a.method)}
        if a.method == "countdistinct":
            attrs.update(aggregate="countcolumn", distinct="true")
        ET.SubElement(entity, "attribute", attrs)
    for g in groups:
        ET.SubElement(entity, "order", alias=g.name)
    return ET.tostring(fetch, encoding="unicode")


def aggregate_op(
    conn: Any,
    table: str,
    *,
    groupby: Any = None,
    agg: Any = None,
    filter: str | None = None,
    labels: bool = False,
) -> Op:
    """The whole ``aggregate`` call: check, send one request, build the frame."""
    from d365nb.client.operations import check_filter

    started = time.perf_counter()
    meta: TableMeta = yield from conn.metadata.load_op(table)
    groups, aggregates = plan(meta, groupby, agg)
    filter = check_filter(filter)
    headers = {"Prefer": 'odata.include-annotations="*"'} if labels else {}
    if needs_fetchxml(groups, aggregates):
        if filter is not None:
            raise ValidationError(
                "aggregate: count(col) and date parts are computed with FetchXML, which takes no "
                "OData filter; write the query with d365.fetchxml(...) and a <filter>"
            )
        query = {"fetchXml": fetch_text(meta, groups, aggregates)}
    else:
        query = {"$apply": apply_text(groups, aggregates, filter)}
    try:
        response = yield ApiRequest("GET", meta.entity_set, params=query, headers=headers)
    except BadRequest as err:
        if (err.code or "").lower() == AGGREGATE_LIMIT_CODE:
            err.add_note("the service aggregates at most 50,000 rows: narrow it with filter=")
        raise
    records = orjson.loads(response.content).get("value", [])
    frame = result_frame(records, groups, aggregates, labels)
    frame.attrs.update(
        table=meta.logical_name,
        elapsed=time.perf_counter() - started,
        query=query,
        requests=1,
    )
    return frame


def result_frame(
    records: list[dict], groups: list[Group], aggregates: list[Aggregate], labels: bool
) -> pd.DataFrame:
    """One row per group; group columns first. Nulls (left out by the service) become NA."""
    data: dict[str, Any] = {}
    for g in groups:
        values = [r.get(g.name) for r in records]
        column = g.column
        if g.part:
            data[g.name] = pd.array(values, dtype="Int64")
        elif labels and column.is_choice:
            data[g.name] = pd.Categorical(
                [column.options.get(v, r.get(f"{g.name}{FORMATTED}")) if v is not None else None
                 for v, r in zip(values, records, strict=True)],
                categories=list(dict.fromkeys(column.options.values())),
            )  # fmt: skip
        else:
            data[g.name] = _typed(values, column, None)
        if labels and column.is_lookup and not g.part:
            data[f"{column.name}_label"] = pd.array(
                [r.get(f"{g.name}{FORMATTED}") for r in records], dtype="string"
            )
    for a in aggregates:
        data[a.alias] = _typed([r.get(a.alias) for r in records], a.column, a.method)
    return pd.DataFrame(data, index=pd.RangeIndex(len(records)))


def _typed(values: list[Any], column: ColumnMeta | None, method: str | None) -> Any:
    if method in ("count", "countdistinct"):
        return pd.array(values, dtype="Int64")
    ctype = column.type if column is not None else ""
    if ctype == "DateTime":
        return pd.to_datetime(pd.Series(values, dtype="object"), utc=True, errors="coerce").array
    if method == "average" and ctype in WHOLE:
        return pd.array(values, dtype="Int64")
    if ctype in WHOLE or (column is not None and column.is_choice):
        return pd.array(values, dtype="Int64")
    if ctype in NUMERIC:
        return pd.array(values, dtype="Float64")
    if ctype == "Boolean":
        return pd.array(values, dtype="boolean")
    if ctype in ("String", "Memo") or (column is not None and column.is_lookup):
        return pd.array(values, dtype="string")
    return values
