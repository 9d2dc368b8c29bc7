"""Shared pieces of the HTTP layer: Dataverse response shapes, `Prefer`, query options,
record writers for query results and `@odata.context`/nextLink URLs."""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from typing import Any
from urllib.parse import quote

import orjson
from starlette.requests import Request
from starlette.responses import Response

from . import errors
from .org import Org
from .schema.model import Table
from .serialize import Annotations, Expansion, RecordWriter, output_name

API = "/api/data/v9.2/"
JSON_TYPE = "application/json; odata.metadata=minimal"
MAX_PAGE = 5000
_PREFER_RE = re.compile(r'\s*([A-Za-z0-9_.\-]+)\s*(?:=\s*("(?:[^"]*)"|[^,;]*))?[^,]*,?')


def base_headers(extra: dict[str, str] | None = None) -> dict[str, str]:
    """Headers on every answer: `OData-Version` and a request id."""
    request_id = str(uuid.uuid4())
    # Dataverse names each request; Microsoft's SDK reads `x-ms-service-request-id`.
    headers = {"OData-Version": "4.0", "REQ_ID": request_id, "x-ms-service-request-id": request_id}
    if extra:
        headers.update(extra)
    return headers


def json_response(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    """A Dataverse JSON response (orjson-encoded, `odata.metadata=minimal`)."""
    return Response(orjson.dumps(data), status, base_headers(headers), media_type=JSON_TYPE)


def error_response(exc: errors.DataverseError, headers: dict[str, str] | None = None) -> Response:
    """The Dataverse error body for a `DataverseError`, with its status."""
    return json_response(exc.body(), exc.status, headers)


def odata_error(exc: Exception) -> errors.DataverseError:
    """An `odata.ODataError` as Dataverse words it (400; `0x0` for unknown properties as in
    Microsoft's troubleshooting page, `0x80060888` for other query errors)."""
    message = getattr(exc, "message", None) or str(exc)
    code = "0x0" if message.startswith("Could not find a property named") else "0x80060888"
    return errors.QueryError(message, code=code)


class Prefer:
    """The request's `Prefer` preferences (several headers or comma lists)."""

    def __init__(self, request: Request) -> None:
        self.values: dict[str, str | None] = {}
        for header in request.headers.getlist("prefer"):
            for match in _PREFER_RE.finditer(header):
                name, value = match.group(1), match.group(2)
                if value is not None:
                    value = value.strip().strip('"')
                self.values[name.lower()] = value

    @property
    def representation(self) -> bool:
        return self.values.get("return") == "representation"

    @property
    def annotations(self) -> Annotations:
        value = self.values.get("odata.include-annotations")
        return Annotations(value.split(",") if value else ())

    @property
    def max_page_size(self) -> int | None:
        value = self.values.get("odata.maxpagesize")
        if value is None or not value.strip().isdigit() or int(value) <= 0:
            return None
        return min(int(value), MAX_PAGE)

    def applied(self, *names: str) -> list[tuple[str, str]]:
        """`Preference-Applied` lines for the named preferences that were sent."""
        out = []
        for name in names:
            if name in self.values:
                value = self.values[name]
                if name == "odata.include-annotations":
                    value = f'"{value}"'
                elif name == "odata.maxpagesize":
                    value = str(self.max_page_size or MAX_PAGE)
                out.append(("Preference-Applied", name if value is None else f"{name}={value}"))
        return out


def with_lines(response: Response, lines: list[tuple[str, str]]) -> Response:
    """Append header lines (one per preference, as Dataverse sends them)."""
    for name, value in lines:
        response.headers.append(name, value)
    return response


def api_base(request: Request) -> str:
    """The absolute API root of this request (`http://host:port/api/data/v9.2/`)."""
    return str(request.base_url).rstrip("/") + API


def query_params(request: Request) -> dict[str, str]:
    """The query options of a request; an option given twice is refused."""
    params: dict[str, str] = {}
    for key, value in request.query_params.multi_items():
        if key in params:
            raise errors.QueryError(f"Query option '{key}' was specified more than once.")
        params[key] = value
    return params


def primary_names(org: Org) -> Callable:
    """The lookup of primary names (lookup FormattedValues) for an org."""
    return org.store.primary_names


def writer_for(
    org: Org, table: Table, select: list[str] | None, expand: Any, annotations: Annotations
) -> RecordWriter:
    """A `RecordWriter` for a query result: `select` (column or `_x_value` names) and the odata
    expand plan (nav -> `odata.ExpandPlan`)."""
    columns = None if select is None else [column_name(table, s) for s in select]
    nested: dict[str, Expansion] = {}
    for nav, plan in (expand or {}).items():
        many = plan.kind == "collection"
        tables = [plan.table] if many or not plan.targets else [t.target for t in plan.targets]
        writers = {
            name: writer_for(org, org.schema[name], plan.select, plan.expand, annotations)
            for name in tables
        }
        type_column = None
        if not many and plan.targets:
            type_column = f"{plan.targets[0].column.name}__type"
        nested[nav] = Expansion(nav, writers, many, type_column)
    return RecordWriter(org.schema, table, columns, annotations, primary_names(org), nested)


def column_name(table: Table, name: str) -> str:
    """The storage column behind a JSON property name (`_x_value` -> `x`)."""
    if name.startswith("_") and name.endswith("_value") and name[1:-6] in table.columns:
        return name[1:-6]
    return name


def next_link(request: Request, params: dict[str, str], token: str) -> str:
    """The absolute `@odata.nextLink`: the same query with the new `$skiptoken`."""
    query = "&".join(f"{k}={quote(v, safe='')}" for k, v in params.items() if k != "$skiptoken")
    sep = "&" if query else ""
    base = str(request.url).split("?", 1)[0]
    return f"{base}?{query}{sep}$skiptoken={quote(token, safe='')}"


def context_select(
    table: Table, params: dict[str, str], expand: Any, schema: dict[str, Table]
) -> list[str] | None:
    """The `$select` names as Dataverse echoes them, then the expanded navigation properties
    with their own selections, for `@odata.context`:
    `accounts(name,_parentaccountid_value,primarycontactid(contactid,fullname))` (a lookup
    is named by the `_x_value` property the record carries, however it was selected)."""
    text = params.get("$select")
    names = [n.strip() for n in text.split(",") if n.strip()] if text else []
    names = [output_name(table.columns[n]) if n in table.columns else n for n in names]
    names += context_expand(expand, schema)
    return names or None


def context_expand(expand: Any, schema: dict[str, Table]) -> list[str]:
    """The expanded part of an `@odata.context` select list."""
    out = []
    for nav, plan in (expand or {}).items():
        target = schema.get(plan.table)
        inner = [
            output_name(target.columns[c]) if target and c in target.columns else c
            for c in plan.select or []
        ]
        inner += context_expand(plan.expand, schema)
        out.append(f"{nav}({','.join(inner)})")
    return out


def method_not_allowed(request: Request) -> errors.DataverseError:
    """The 405 for a verb the resource does not support."""
    return errors.MethodNotAllowed(
        f"The HTTP method '{request.method}' is not allowed for this resource."
    )
