"""Shared pieces of the HTTP layer: Dataverse response shapes, `Prefer`, query options,
record writers for query results and `@odata.context`/nextLink URLs."""

from __future__ import annotations

import re
import uuid
import zlib
from collections.abc import Callable
from typing import Any
from urllib.parse import quote

import orjson
from starlette.requests import Request
from starlette.responses import Response

from . import errors, odata
from .odata.options import split_top_level
from .org import Org
from .schema.model import Table
from .serialize import Annotations, Expansion, RecordWriter, output_name
from .values import whole_number

API = "/api/data/v9.2/"
# Older versions Dataverse still serves; the routes know only API, so the version middleware
# rewrites the path and keeps the version the client used here, for the URLs we answer with.
OLDER_API = re.compile(r"^/api/data/v9\.[01](?:/|$)")
API_VERSION_KEY = "d365nb.api_root"
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
    code = (
        "0x0"
        if message.startswith("Could not find a property named")
        else getattr(exc, "code", None) or "0x80060888"
    )
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
        number = None if value is None else whole_number(value)
        if not number:  # absent, 0 or not a whole number: the default page size
            return None
        return min(number, MAX_PAGE)

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


def route_older_version(scope: dict) -> dict:
    """A `/api/data/v9.0/...` or `v9.1` request scope as the v9.2 routes see it, remembering
    the version asked for (Dataverse answers in the version of the request URL)."""
    path = scope.get("path", "")
    match = OLDER_API.match(path)
    if match is None:
        return scope
    rewritten = API + path[match.end() :]
    version = match.group(0).rstrip("/") + "/"
    return {**scope, "path": rewritten, "raw_path": rewritten.encode(), API_VERSION_KEY: version}


def api_path(request: Request) -> str:
    """The API root path the client used: `/api/data/v9.2/` or an older version."""
    return request.scope.get(API_VERSION_KEY) or API


def api_base(request: Request) -> str:
    """The absolute API root of this request (`http://host:port/api/data/v9.2/`, or the older
    version the request named)."""
    return str(request.base_url).rstrip("/") + api_path(request)


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
    org: Org,
    table: Table,
    select: list[str] | None,
    expand: Any,
    annotations: Annotations,
    *,
    api: str | None = None,
    entity: bool = False,
) -> RecordWriter:
    """A `RecordWriter` for a query result: `select` (column or `_x_value` names) and the odata
    expand plan (nav -> `odata.ExpandPlan`).

    Expanded records take Dataverse's shapes (join-tables and retrieve-entity docs): in an
    entity-set query (`api` given, `entity` False) single-valued ones carry no `@odata.etag`;
    collections expanded alone carry their lookup back to the parent (`_regardingobjectid_value`)
    and a `<nav>@odata.nextLink` to the related collection with the same options, while with a
    nested `$expand` in the query they are paged and carry neither etag nor lookup, and the link
    only when the page is full. Retrieving one record (`entity`), expanded records keep their
    etags and collections come whole. `<nav>/$ref` writes `{"@odata.id": url}` and the parent
    keeps its `_<lookup>_value`."""
    columns = None if select is None else [column_name(table, s) for s in select]
    nested: dict[str, Expansion] = {}
    in_set = api is not None and not entity
    for nav, plan in (expand or {}).items():
        many = plan.kind == "collection"
        tables = [plan.table] if many or not plan.targets else [t.target for t in plan.targets]
        child_select = plan.select
        fk = plan.collection.column.name if many and plan.collection is not None else None
        if in_set and many and not plan.paged and child_select is not None and fk:
            child_select = [*child_select, fk]
        writers = {
            name: writer_for(
                org,
                org.schema[name],
                child_select,
                plan.expand,
                annotations,
                api=api,
                entity=entity,
            )
            for name in tables
        }
        for writer in writers.values():
            writer.etag = not in_set or (many and not plan.paged)
            writer.principal = not many and writer.table.logical_name in ("systemuser", "team")
        type_column = None
        if not many and plan.targets:
            type_column = f"{plan.targets[0].column.name}__type"
            if plan.ref and columns is not None and plan.targets[0].column.name not in columns:
                columns.append(plan.targets[0].column.name)
        link = None
        if in_set and many and api is not None:
            link = _expansion_link(api, table, nav, plan)
        ref = None
        if plan.ref and api is not None:
            base = api

            def ref(entity_set: str, id: str, base: str = base) -> str:
                return f"{base}{entity_set}({id})"

        nested[nav] = Expansion(nav, writers, many, type_column, link, ref)
    return RecordWriter(org.schema, table, columns, annotations, primary_names(org), nested)


def _expansion_link(api: str, parent: Table, nav: str, plan: Any) -> Callable[[dict], str | None]:
    """`<nav>@odata.nextLink` of an expanded collection: the related collection with the
    expansion's own options; with paging, only after a full page and with its skiptoken."""
    options = [part.strip() for _, part in split_top_level(plan.options or "", ";")]
    query = "&".join(_encode_option(o) for o in options if o)
    key = odata.next_page_key(nav)

    def link(row: dict) -> str | None:
        url = f"{api}{parent.entity_set}({row[parent.primary_id]})/{nav}"
        token = (row.get(odata.EXPANDED) or {}).get(key)
        if plan.paged:
            if token is None:
                return None
            skip = f"$skiptoken={skiptoken_text(token)}"
            return f"{url}?{query}&{skip}" if query else f"{url}?{skip}"
        return f"{url}?{query}" if query else url

    return link


def _encode_option(option: str) -> str:
    name, _, value = option.partition("=")
    return f"{name.strip()}={quote(value.strip(), safe=_OPTION_SAFE)}"


_OPTION_SAFE = "$,()'=/:@;*"  # what Dataverse's links show unescaped


TOTAL_COUNT = "Microsoft.Dynamics.CRM.totalrecordcount"
COUNT_EXCEEDED = "Microsoft.Dynamics.CRM.totalrecordcountlimitexceeded"
METADATA_VERSION = "Microsoft.Dynamics.CRM.globalmetadataversion"


def collection_annotations(
    org: Org, annotations: Annotations, count: int | None, exceeded: bool
) -> dict[str, Any]:
    """The annotations Dataverse puts before `value` in a collection answer when they are asked
    for (query-data and count-rows docs): the total count (-1 without `$count=true`), whether
    it passed 5000, and the schema version (a string) clients cache metadata against."""
    out: dict[str, Any] = {}
    if annotations.wants(TOTAL_COUNT) or annotations.wants(COUNT_EXCEEDED):
        out[f"@{TOTAL_COUNT}"] = count if count is not None else -1
        out[f"@{COUNT_EXCEEDED}"] = exceeded
    if annotations.wants(METADATA_VERSION):
        out[f"@{METADATA_VERSION}"] = metadata_version(org)
    return out


def metadata_version(org: Org) -> str:
    """`globalmetadataversion`: set by metadata writes (store meta), else derived from the
    schema, so it changes whenever a table or column does."""
    stored = org.store.get_meta("globalmetadataversion")
    if stored:
        return stored
    names = ",".join(f"{t}:{','.join(org.schema[t].columns)}" for t in sorted(org.schema))
    return str(zlib.crc32(names.encode()))


def column_name(table: Table, name: str) -> str:
    """The storage column behind a JSON property name (`_x_value` -> `x`; see `Table.find`)."""
    column = table.find(name)
    return name if column is None else column.name


def next_link(request: Request, params: dict[str, str], token: str) -> str:
    """The absolute `@odata.nextLink`: the same query with the new `$skiptoken`."""
    # Dataverse leaves `$count` out of its nextLinks (count-rows doc): later pages carry no count.
    # Options are written as Dataverse writes them (parentheses, commas, quotes and `$` left
    # as they are; spaces and `&` escaped), the skiptoken with `=` and `/` left unescaped.
    query = "&".join(
        f"{k}={quote(v, safe=_OPTION_SAFE)}"
        for k, v in params.items()
        if k not in ("$skiptoken", "$count")
    )
    sep = "&" if query else ""
    return f"{request_url(request)}?{query}{sep}$skiptoken={skiptoken_text(token)}"


def skiptoken_text(token: str) -> str:
    """A skiptoken as it travels in a link: `%3Ccookie%20pagenumber=%222%22%20...%20/%3E`."""
    return quote(token, safe="=/")


def request_url(request: Request) -> str:
    """The absolute URL of the request without its query, in the API version it named."""
    path = request.url.path
    if path.startswith(API):
        return api_base(request) + path[len(API) :]
    return str(request.url).split("?", 1)[0]


def context_select(
    table: Table,
    params: dict[str, str],
    expand: Any,
    schema: dict[str, Table],
    entity: bool = False,
) -> list[str] | None:
    """The `$select` names as Dataverse echoes them, then the expanded navigation properties
    with their own selections, for `@odata.context`:
    `accounts(name,_parentaccountid_value,primarycontactid(contactid,fullname))` (a lookup
    is named by the `_x_value` property the record carries, however it was selected). One
    record (`entity`) names each expanded property first, then its selection
    (`accounts(name,primarycontactid,primarycontactid(fullname))/$entity`); `<nav>/$ref` is
    `primarycontactid,primarycontactid/$ref()` in a collection (retrieve-entity, join-tables)."""
    text = params.get("$select")
    names = [n.strip() for n in text.split(",") if n.strip()] if text else []
    names = [output_name(table.columns[n]) if n in table.columns else n for n in names]
    if entity:
        names += list(expand or {})
        names += context_expand({n: p for n, p in (expand or {}).items() if not p.ref}, schema)
    else:
        names += context_expand(expand, schema)
    return names or None


def context_expand(expand: Any, schema: dict[str, Table]) -> list[str]:
    """The expanded part of an `@odata.context` select list."""
    out = []
    for nav, plan in (expand or {}).items():
        if plan.ref:
            out += [nav, f"{nav}/$ref()"]
            continue
        target = schema.get(plan.table)
        implied = odata.implied_columns(target, plan.select or []) if target else []
        inner = [
            output_name(target.columns[c]) if target and c in target.columns else c
            for c in plan.select or []
            if c not in implied  # returned beside a money column, not part of the selection
        ]
        inner += context_expand(plan.expand, schema)
        out.append(f"{nav}({','.join(inner)})")
    return out


def method_not_allowed(request: Request) -> errors.DataverseError:
    """The 405 for a verb the resource does not support."""
    return errors.MethodNotAllowed(
        f"The HTTP method '{request.method}' is not allowed for this resource."
    )
