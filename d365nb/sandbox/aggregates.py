"""`GET <set>?$apply=...`: the aggregated answer as Dataverse shapes it.

    {"@odata.context": "<api>$metadata#accounts",
     "value": [{"statuscode@OData.Community.Display.V1.FormattedValue": "Active",
                "statuscode": 1, "count@OData.Community.Display.V1.FormattedValue": "8",
                "count": 8}]}

(https://learn.microsoft.com/power-apps/developer/data-platform/webapi/query/aggregate-data).
Null group values and aggregates are left out of a record; formatted values come only when the
request asks for them with `Prefer: odata.include-annotations`. The SQL is `odata.apply`'s.

The 50,000-row aggregate limit is `org.config["aggregate_limit"]` (None: no limit), so a
benchmark can measure aggregation over more rows than a real org would aggregate.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from . import errors
from .odata import apply as odata_apply
from .odata.errors import ODataError
from .org import Org
from .responses import Prefer, api_base, json_response, odata_error, query_params, with_lines
from .schema.model import Table
from .serialize import FORMATTED, LOOKUP_LOGICAL_NAME, Annotations, formatter


def aggregate_limit(org: Org) -> int | None:
    return org.config.get("aggregate_limit", odata_apply.AGGREGATE_LIMIT)


def _count_text(value: int) -> str:
    return f"{value:,}"


def annotate(
    org: Org, result: Any, rows: list[dict[str, Any]], annotations: Annotations
) -> list[dict[str, Any]]:
    """Records with the annotations asked for before each value: the formatted value
    (`<name>@OData.Community.Display.V1.FormattedValue`) and, for lookups, the target table
    (`<name>@Microsoft.Dynamics.CRM.lookuplogicalname`). `result` is an `odata.apply`
    `AppliedResult` or a `fetchxml.FetchResult` (fields + per-row lookup targets)."""
    formatted, logical = annotations.wants(FORMATTED), annotations.wants(LOOKUP_LOGICAL_NAME)
    if not (formatted or logical):
        return rows
    fmts = {}
    for f in result.fields:
        if f.method in ("count", "countdistinct", "dategrouping"):
            fmts[f.name] = _count_text
        elif f.lookup:
            fmts[f.name] = None  # names come from the related rows, below
        elif f.column is not None:
            fmts[f.name] = formatter(f.column)
    names: dict[tuple[str, str], str | None] = {}
    wanted: dict[str, set[str]] = {}
    for row, kinds in zip(rows, result.lookup_types, strict=True):
        for name, target in kinds.items():
            wanted.setdefault(target, set()).add(row[name])
    for target, ids in wanted.items():
        if formatted and target in org.schema:
            for id_, text in org.store.primary_names(target, ids).items():
                names[(target, id_)] = text
    out = []
    for row, kinds in zip(rows, result.lookup_types, strict=True):
        record: dict[str, Any] = {}
        for name, value in row.items():
            if name in kinds:
                text = names.get((kinds[name], value))
                if logical:
                    record[f"{name}@{LOOKUP_LOGICAL_NAME}"] = kinds[name]
            else:
                fmt = fmts.get(name)
                text = fmt(value) if fmt is not None else None
            if text is not None and formatted:
                record[f"{name}@{FORMATTED}"] = text
            record[name] = value
        out.append(record)
    return out


async def get_applied(request: Request, org: Org, table: Table) -> Response:
    """Answer a collection GET that carries `$apply`."""
    params = query_params(request)
    prefer = Prefer(request)

    def run() -> odata_apply.AppliedResult:
        result = org.read(odata_apply.run_apply, table, params, limit=aggregate_limit(org))
        result.rows = annotate(org, result, result.rows, prefer.annotations)
        return result

    try:
        # a GROUP BY over many rows takes a while: off the event loop, like other queries
        result = await org.off_loop(run)
    except ODataError as exc:
        raise odata_error(exc) from None
    except odata_apply.AggregateLimitExceeded:
        raise errors.AggregateLimitExceeded() from None
    body = {
        "@odata.context": f"{api_base(request)}$metadata#{table.entity_set}",
        "value": result.rows,
    }
    return with_lines(json_response(body), prefer.applied("odata.include-annotations"))
