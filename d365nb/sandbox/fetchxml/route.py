"""`GET <set>?fetchXml=...`: the answer as Microsoft's FetchXML-over-Web-API pages show it
(https://learn.microsoft.com/power-apps/developer/data-platform/fetchxml/retrieve-data,
.../fetchxml/page-results): `@odata.context`, the records, and - when the request asks for
them with `Prefer: odata.include-annotations` - `@Microsoft.Dynamics.CRM.fetchxmlpagingcookie`
and `@Microsoft.Dynamics.CRM.morerecords`."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from ..aggregates import aggregate_limit, annotate
from ..errors import QueryError
from ..org import Org
from ..responses import Prefer, api_base, json_response, query_params, with_lines
from ..schema.model import Table
from .query import FetchResult, run

PAGING_COOKIE = "Microsoft.Dynamics.CRM.fetchxmlpagingcookie"
MORE_RECORDS = "Microsoft.Dynamics.CRM.morerecords"


async def get_fetched(request: Request, org: Org, table: Table) -> Response:
    params = query_params(request)
    others = sorted(k for k in params if k.startswith("$"))
    if others:
        raise QueryError(f"The query option {others[0]} can't be used together with fetchXml.")
    prefer = Prefer(request)
    annotations = prefer.annotations

    def query() -> tuple[FetchResult, list[dict[str, Any]]]:
        result = org.read(run, table, params["fetchXml"], aggregate_limit=aggregate_limit(org))
        rows = annotate(org, result, result.rows, annotations)
        return result, rows

    result, rows = await org.off_loop(query)  # SQLite work off the event loop
    target = table.entity_set
    if result.context and not result.aggregate:
        target += "(" + ",".join(result.context) + ")"
    body: dict[str, Any] = {"@odata.context": f"{api_base(request)}$metadata#{target}"}
    if result.cookie and annotations.wants(PAGING_COOKIE):
        body[f"@{PAGING_COOKIE}"] = result.cookie
    if annotations.wants(MORE_RECORDS):
        body[f"@{MORE_RECORDS}"] = result.more
    body["value"] = rows
    return with_lines(json_response(body), prefer.applied("odata.include-annotations"))
