"""The sandbox's HTTP face: a Starlette app speaking the Dataverse Web API v9.2.

Routes parse requests and render Dataverse's response shapes; they know no SQL (queries go to
`odata`, writes to `service`). Other parts plug in when present: `metadata.routes()`,
`batch.routes()`, `bulk.routes()`, and the `limits`/`faults` middlewares wrapped around it all.
`request.app.state.org` is the `Org`.
"""

from __future__ import annotations

import asyncio
import hmac
import importlib
import inspect
import logging
import re
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from . import errors
from .schema.model import LOOKUP_TYPES, Table
from .serialize import Annotations, Expansion, RecordWriter, context_url, output_name
from .service import Collection, Service, is_guid, parse_etag
from .store import Store

log = logging.getLogger("d365nb.sandbox")

API = "/api/data/v9.2/"
JSON_TYPE = "application/json; odata.metadata=minimal"
MAX_PAGE = 5000
# `name` or `name(key)` for one path segment.
_SEGMENT_RE = re.compile(r"^([^()]+)(?:\((.*)\))?$")
_PREFER_RE = re.compile(r'\s*([A-Za-z0-9_.\-]+)\s*(?:=\s*("(?:[^"]*)"|[^,;]*))?[^,]*,?')


@dataclass
class Org:
    """One sandbox organisation: its tables, storage, write semantics and settings."""

    schema: dict[str, Table]
    store: Store
    token: str
    user_id: str
    business_unit_id: str
    organization_id: str
    tenant_id: str
    config: dict[str, Any] = field(default_factory=dict)
    service: Service = field(init=False)
    # Every write takes it, except requests inside a `$batch` change set (the batch holds it).
    write_lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    def __post_init__(self) -> None:
        self.service = Service(self.schema, self.store, self.user_id)

    def __repr__(self) -> str:  # never show the token
        return f"Org(tables={len(self.schema)}, user_id={self.user_id!r})"


# -- responses ------------------------------------------------------------------------------------


def _headers(extra: dict[str, str] | None = None) -> dict[str, str]:
    request_id = str(uuid.uuid4())
    # Dataverse names each request; Microsoft's SDK reads `x-ms-service-request-id`.
    headers = {"OData-Version": "4.0", "REQ_ID": request_id, "x-ms-service-request-id": request_id}
    if extra:
        headers.update(extra)
    return headers


def json_response(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    """A Dataverse JSON response (orjson-encoded, `odata.metadata=minimal`)."""
    return Response(orjson.dumps(data), status, _headers(headers), media_type=JSON_TYPE)


def error_response(exc: errors.DataverseError, headers: dict[str, str] | None = None) -> Response:
    return json_response(exc.body(), exc.status, headers)


def odata_error(exc: Exception) -> errors.DataverseError:
    """An `odata.ODataError` as Dataverse words it (400; `0x0` for unknown properties as in
    Microsoft's troubleshooting page, `0x80060888` for other query errors)."""
    message = getattr(exc, "message", None) or str(exc)
    code = "0x0" if message.startswith("Could not find a property named") else "0x80060888"
    return errors.QueryError(message, code=code)


def _odata():
    return importlib.import_module("d365nb.sandbox.odata")


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


def _with_lines(response: Response, lines: list[tuple[str, str]]) -> Response:
    for name, value in lines:
        response.headers.append(name, value)
    return response


def _api_base(request: Request) -> str:
    return str(request.base_url).rstrip("/") + API


# -- reading --------------------------------------------------------------------------------------


def _query_params(request: Request) -> dict[str, str]:
    params: dict[str, str] = {}
    for key, value in request.query_params.multi_items():
        if key in params:
            raise errors.QueryError(f"Query option '{key}' was specified more than once.")
        params[key] = value
    return params


def _names(org: Org) -> Callable:
    return org.store.primary_names


def writer_for(
    org: Org, table: Table, select: list[str] | None, expand: Any, annotations: Annotations
) -> RecordWriter:
    """A `RecordWriter` for a query result: `select` (column or `_x_value` names) and the odata
    expand plan (nav -> `odata.ExpandPlan`)."""
    columns = None if select is None else [_column_name(table, s) for s in select]
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
    return RecordWriter(org.schema, table, columns, annotations, _names(org), nested)


def _column_name(table: Table, name: str) -> str:
    if name.startswith("_") and name.endswith("_value") and name[1:-6] in table.columns:
        return name[1:-6]
    return name


async def _run_query(
    org: Org, table: Table, params: dict[str, str], page_size: int, skiptoken: str | None
):
    odata = _odata()
    try:
        with org.store.lock:
            return odata.execute(
                org.store.conn,
                org.schema,
                table.logical_name,
                params,
                user_id=org.user_id,
                page_size=page_size,
                skiptoken=skiptoken,
            )
    except odata.ODataError as exc:
        raise odata_error(exc) from None


def _next_link(request: Request, params: dict[str, str], token: str) -> str:
    query = "&".join(f"{k}={quote(v, safe='')}" for k, v in params.items() if k != "$skiptoken")
    sep = "&" if query else ""
    base = str(request.url).split("?", 1)[0]
    return f"{base}?{query}{sep}$skiptoken={quote(token, safe='')}"


async def get_collection(request: Request, org: Org, table: Table) -> Response:
    params = _query_params(request)
    prefer = Prefer(request)
    if "odata.track-changes" in prefer.values or "$deltatoken" in params:
        return await _changes(request, table)
    page_size = prefer.max_page_size or MAX_PAGE
    skiptoken = params.pop("$skiptoken", None)
    result = await _run_query(org, table, params, page_size, skiptoken)
    annotations = prefer.annotations
    writer = writer_for(org, table, result.select, getattr(result, "expand", None), annotations)
    body: dict[str, Any] = {
        "@odata.context": context_url(
            _api_base(request), table, _context_select(params, result.expand, org.schema)
        ),
    }
    count = getattr(result, "count", None)
    if count is not None:
        body["@odata.count"] = count
    if annotations.wants("Microsoft.Dynamics.CRM.totalrecordcount"):
        body["@Microsoft.Dynamics.CRM.totalrecordcount"] = count if count is not None else -1
        body["@Microsoft.Dynamics.CRM.totalrecordcountlimitexceeded"] = bool(
            getattr(result, "count_limit_exceeded", False)
        )
    body["value"] = writer.records(result.rows)
    if result.next_skiptoken:
        body["@odata.nextLink"] = _next_link(request, params, result.next_skiptoken)
    response = json_response(body)
    return _with_lines(response, prefer.applied("odata.include-annotations", "odata.maxpagesize"))


def _context_select(
    params: dict[str, str], expand: Any = None, schema: dict[str, Table] | None = None
) -> list[str] | None:
    """The `$select` names as the client wrote them, then the expanded navigation properties
    with their own selections, for `@odata.context`:
    `accounts(name,primarycontactid(contactid,fullname))`."""
    text = params.get("$select")
    names = [n.strip() for n in text.split(",") if n.strip()] if text else []
    names += _context_expand(expand, schema or {})
    return names or None


def _context_expand(expand: Any, schema: dict[str, Table]) -> list[str]:
    out = []
    for nav, plan in (expand or {}).items():
        target = schema.get(plan.table)
        inner = [
            output_name(target.columns[c]) if target and c in target.columns else c
            for c in plan.select or []
        ]
        inner += _context_expand(plan.expand, schema)
        out.append(f"{nav}({','.join(inner)})")
    return out


async def _changes(request: Request, table: Table) -> Response:
    try:
        changes = importlib.import_module("d365nb.sandbox.changes")
    except ModuleNotFoundError:
        raise errors.BadRequest("Change tracking is not available in this sandbox.") from None
    result = changes.handle(request, table)
    if inspect.isawaitable(result):
        result = await result
    return result


async def count_collection(request: Request, org: Org, table: Table) -> Response:
    params = _query_params(request)
    if "$deltatoken" in params:
        return await _changes(request, table)
    odata = _odata()
    try:
        with org.store.lock:
            n = odata.count(
                org.store.conn, org.schema, table.logical_name, params, user_id=org.user_id
            )
    except odata.ODataError as exc:
        raise odata_error(exc) from None
    return Response(str(n), 200, _headers(), media_type="text/plain")


async def _query_one(
    request: Request,
    org: Org,
    table: Table,
    id: str,
    params: dict[str, str],
    annotations: Annotations,
) -> dict[str, Any] | None:
    """One record through the query engine (so `$select`/`$expand` behave as on collections)."""
    unknown = set(params) - {"$select", "$expand"}
    unknown = {k for k in unknown if k.startswith("$")}
    if unknown:
        raise errors.QueryError(f"The query parameter {sorted(unknown)[0]} is not supported.")
    if "$expand" in params:  # the query engine knows how to expand
        query = dict(params)
        query["$filter"] = f"{table.primary_id} eq {id}"
        result = await _run_query(org, table, query, 1, None)
        if not result.rows:
            return None
        row, select, expand = result.rows[0], result.select, getattr(result, "expand", None)
    else:
        with org.store.lock:
            row = org.store.get(table.logical_name, id)
        if row is None:
            return None
        select, expand = _parse_select(table, params.get("$select")), None
    writer = writer_for(org, table, select, expand, annotations)
    record = writer.record(row)
    ctx = context_url(
        _api_base(request), table, _context_select(params, expand, org.schema), entity=True
    )
    return {"@odata.context": ctx, **record}


def _parse_select(table: Table, text: str | None) -> list[str] | None:
    """`$select` of a single record: column names, `_x_value` for lookups."""
    if text is None:
        return None
    names = [n.strip() for n in text.split(",") if n.strip()]
    if not names:
        raise errors.QueryError("The $select query option is empty.")
    for name in names:
        col = table.columns.get(_column_name(table, name))
        if col is None or (
            col.type in LOOKUP_TYPES and name == col.name and len(col.relationships) > 1
        ):
            raise errors.PropertyNotFound(name, table.logical_name)
    return names


async def get_entity(request: Request, org: Org, table: Table, id: str) -> Response:
    params = _query_params(request)
    prefer = Prefer(request)
    annotations = prefer.annotations
    record = await _query_one(request, org, table, id, params, annotations)
    if record is None:
        raise errors.RecordNotFound(table.logical_name, id)
    etag = record.get("@odata.etag")
    if_none_match = request.headers.get("if-none-match")
    # No 304 with $expand or annotations requested (dataverse-wire.md §5).
    if (
        if_none_match
        and etag
        and "$expand" not in params
        and not prefer.values.get("odata.include-annotations")
        and parse_etag(if_none_match) == parse_etag(etag)
    ):
        return Response(status_code=304, headers=_headers({"ETag": etag}))
    response = json_response(record, headers={"ETag": etag} if etag else None)
    return _with_lines(response, prefer.applied("odata.include-annotations"))


async def get_property(request: Request, org: Org, table: Table, id: str, prop: str) -> Response:
    row = org.service.get(table, id)
    col = table.columns.get(_column_name(table, prop))
    if col is None:
        raise errors.PropertyNotFound(prop, table.logical_name)
    writer = RecordWriter(org.schema, table, [col.name])
    value = writer.record(row).get(output_name(col))
    if value is None:
        return Response(status_code=204, headers=_headers())
    ctx = f"{_api_base(request)}$metadata#{table.entity_set}({id})/{prop}"
    return json_response({"@odata.context": ctx, "value": value})


async def get_navigation(
    request: Request, org: Org, table: Table, id: str, nav: str, ref: bool
) -> Response:
    """`GET leads(<id>)/parentaccountid` (the related record) or `.../$ref` (its URL)."""
    row = org.service.get(table, id)
    navigation = org.service.navigations(table).get(nav)
    if navigation is None:
        raise errors.PropertyNotFound(nav, table.logical_name)
    col = navigation.column
    target_id, target_type = row.get(col.name), row.get(f"{col.name}__type")
    target_name = target_type or (col.relationships[0].target if col.relationships else None)
    if target_id is None or navigation.target_for(target_name) is None:
        return Response(status_code=204, headers=_headers())
    target = org.schema[target_name]
    if ref:
        return json_response(
            {
                "@odata.context": f"{_api_base(request)}$metadata#$ref",
                "@odata.id": f"{_api_base(request)}{target.entity_set}({target_id})",
            }
        )
    return await get_entity(request, org, target, target_id)


# -- writing --------------------------------------------------------------------------------------


async def _body(request: Request) -> Any:
    raw = await request.body()
    if not raw.strip():
        raise errors.BadRequest("The request body is empty: send the record as a JSON object.")
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise errors.BadRequest(f"The request body is not valid JSON: {exc}.") from None


class _Writing:
    """Hold `org.write_lock` unless this request runs inside a `$batch` change set."""

    def __init__(self, request: Request, org: Org) -> None:
        self.lock = None if request.scope.get("d365nb.changeset") else org.write_lock

    async def __aenter__(self) -> None:
        if self.lock is not None:
            await self.lock.acquire()

    async def __aexit__(self, *exc: object) -> None:
        if self.lock is not None:
            self.lock.release()


def _entity_id_url(request: Request, table: Table, id: str) -> str:
    return f"{_api_base(request)}{table.entity_set}({id})"


async def _written(
    request: Request,
    org: Org,
    table: Table,
    row: dict[str, Any],
    created: bool,
    representation_status: int,
) -> Response:
    """The answer to a write: 204 + OData-EntityId, or the record under return=representation."""
    prefer = Prefer(request)
    id = row[table.primary_id]
    if prefer.representation:
        params = {k: v for k, v in _query_params(request).items() if k in ("$select", "$expand")}
        if request.method == "PATCH":
            params.pop("$expand", None)  # ignored on update (dataverse-wire.md §6)
        record = await _query_one(request, org, table, id, params, prefer.annotations)
        response = json_response(record, representation_status)
        return _with_lines(response, prefer.applied("return", "odata.include-annotations"))
    return Response(
        status_code=204, headers=_headers({"OData-EntityId": _entity_id_url(request, table, id)})
    )


async def post_collection(request: Request, org: Org, table: Table) -> Response:
    body = await _body(request)
    async with _Writing(request, org):
        row = org.service.create(table, body, detect_duplicates=_detect_duplicates(request))
    return await _written(request, org, table, row, True, 201)


async def patch_entity(request: Request, org: Org, table: Table, id: str) -> Response:
    body = await _body(request)
    async with _Writing(request, org):
        row, created = org.service.upsert(
            table,
            id,
            body,
            if_match=request.headers.get("if-match"),
            if_none_match=_if_none_match(request),
            detect_duplicates=_detect_duplicates(request),
        )
    return await _written(request, org, table, row, created, 201 if created else 200)


def _detect_duplicates(request: Request) -> bool:
    """Duplicate detection is off unless `MSCRM.SuppressDuplicateDetection: false` is sent."""
    value = request.headers.get("mscrm.suppressduplicatedetection")
    return value is not None and value.strip().lower() == "false"


def _if_none_match(request: Request) -> str | None:
    value = request.headers.get("if-none-match")
    # Clients send `If-None-Match: null` on every request to defeat caching; it means nothing.
    return None if value is None or value.strip().lower() == "null" else value


async def delete_entity(request: Request, org: Org, table: Table, id: str) -> Response:
    async with _Writing(request, org):
        org.service.delete(table, id, if_match=request.headers.get("if-match"))
    return Response(status_code=204, headers=_headers())


async def put_property(request: Request, org: Org, table: Table, id: str, prop: str) -> Response:
    body = await _body(request)
    if not isinstance(body, dict) or "value" not in body:
        raise errors.BadRequest('Send the new value as {"value": ...}.')
    async with _Writing(request, org):
        org.service.set_property(table, id, prop, body["value"])
    return Response(status_code=204, headers=_headers())


async def delete_property(request: Request, org: Org, table: Table, id: str, prop: str) -> Response:
    async with _Writing(request, org):
        org.service.clear_property(table, id, prop)
    return Response(status_code=204, headers=_headers())


async def put_reference(request: Request, org: Org, table: Table, id: str, nav: str) -> Response:
    body = await _body(request)
    if not isinstance(body, dict) or "@odata.id" not in body:
        raise errors.BadRequest('Send the reference as {"@odata.id": "<entityset>(<id>)"}.')
    async with _Writing(request, org):
        org.service.set_reference(table, id, nav, body["@odata.id"])
    return Response(status_code=204, headers=_headers())


async def delete_reference(request: Request, org: Org, table: Table, id: str, nav: str) -> Response:
    async with _Writing(request, org):
        org.service.delete_reference(table, id, nav)
    return Response(status_code=204, headers=_headers())


# -- dispatch -------------------------------------------------------------------------------------


def _method_not_allowed(request: Request) -> errors.DataverseError:
    return errors.MethodNotAllowed(
        f"The HTTP method '{request.method}' is not allowed for this resource."
    )


async def whoami(request: Request) -> Response:
    org: Org = request.app.state.org
    if request.method != "GET":
        return error_response(errors.NoHttpResource(str(request.url).split("?")[0]))
    return json_response(
        {
            "@odata.context": f"{_api_base(request)}$metadata#Microsoft.Dynamics.CRM.WhoAmIResponse",
            "BusinessUnitId": org.business_unit_id,
            "UserId": org.user_id,
            "OrganizationId": org.organization_id,
        }
    )


async def resource(request: Request) -> Response:
    """Everything under the API root that is an entity set: collections, records, properties,
    navigation properties and `$ref`s."""
    org: Org = request.app.state.org
    try:
        return await _dispatch(request, org)
    except errors.DataverseError as exc:
        return error_response(exc)


async def _dispatch(request: Request, org: Org) -> Response:
    path = request.path_params["path"]
    segments = [s for s in path.split("/") if s != ""]
    if not segments:
        raise errors.ResourceNotFound("")
    match = _SEGMENT_RE.match(segments[0])
    if match is None:
        raise errors.ResourceNotFound(segments[0])
    name, key = match.group(1), match.group(2)
    table = org.service.table_for_set(name)
    method = request.method
    rest = segments[1:]
    if key is None:
        if not rest:
            if method == "GET":
                return await get_collection(request, org, table)
            if method == "POST":
                return await post_collection(request, org, table)
            raise _method_not_allowed(request)
        if rest == ["$count"] and method == "GET":
            return await count_collection(request, org, table)
        raise errors.ResourceNotFound(rest[0])
    id = (
        org.service.parse_key(key)
        if not key.startswith(f"{table.primary_id}=")
        else (org.service.parse_key(key.split("=", 1)[1]))
    )
    if not rest:
        handler: dict[str, Callable[..., Awaitable[Response]]] = {
            "GET": get_entity,
            "PATCH": patch_entity,
            "DELETE": delete_entity,
        }
        if method not in handler:
            raise _method_not_allowed(request)
        return await handler[method](request, org, table, id)
    prop = rest[0]
    related = _SEGMENT_RE.match(prop)
    if related is not None and related.group(1) in org.service.collections(table):
        collection = org.service.collections(table)[related.group(1)]
        return await _collection_nav(
            request, org, table, id, collection, related.group(2), rest[1:]
        )
    navs = org.service.navigations(table)
    if len(rest) == 2 and rest[1] == "$ref":
        if prop not in navs:
            if prop not in table.columns:
                raise errors.ResourceNotFound(prop)
            raise errors.QueryError(
                "Expand with $ref is only supported on lookup type navigation property."
            )
        if method == "GET":
            return await get_navigation(request, org, table, id, prop, ref=True)
        if method in ("PUT", "POST"):
            return await put_reference(request, org, table, id, prop)
        if method == "DELETE":
            return await delete_reference(request, org, table, id, prop)
        raise _method_not_allowed(request)
    if len(rest) > 1:
        raise errors.ResourceNotFound(rest[1])
    if prop in navs:  # a navigation property (single-target lookups share the column name)
        if method == "GET":
            return await get_navigation(request, org, table, id, prop, ref=False)
        if method == "DELETE" and prop in table.columns:
            return await delete_property(request, org, table, id, prop)
        raise _method_not_allowed(request)
    col = table.columns.get(_column_name(table, prop))
    if col is None:
        raise errors.ResourceNotFound(prop)
    if method == "GET":
        return await get_property(request, org, table, id, prop)
    if col.type in LOOKUP_TYPES:
        if method == "DELETE":
            return await delete_property(request, org, table, id, col.name)
        raise _method_not_allowed(request)
    if method == "PUT":
        return await put_property(request, org, table, id, col.name)
    if method == "DELETE":
        return await delete_property(request, org, table, id, col.name)
    raise _method_not_allowed(request)


async def _collection_nav(
    request: Request,
    org: Org,
    table: Table,
    id: str,
    collection: Collection,
    child_key: str | None,
    rest: list[str],
) -> Response:
    """`accounts(<id>)/Account_Tasks[...]`: related rows, their `$count`, and `$ref`s."""
    method = request.method
    child_id = org.service.parse_key(child_key) if child_key is not None else None
    if child_id is None and not rest and method == "GET":
        return await get_related(request, org, table, id, collection)
    if child_id is None and rest == ["$count"] and method == "GET":
        return await count_related(request, org, table, id, collection)
    if rest == ["$ref"]:
        if method in ("POST", "PUT") and child_id is None:
            body = await _body(request)
            if not isinstance(body, dict) or "@odata.id" not in body:
                raise errors.BadRequest('Send the reference as {"@odata.id": "<entityset>(<id>)"}.')
            target, ref_id = org.service.parse_reference(body["@odata.id"], table, "@odata.id")
            if target is not collection.child:
                raise errors.BadRequest(
                    f"'{collection.name}' holds {collection.child.entity_set}, not "
                    f"{target.entity_set}."
                )
            async with _Writing(request, org):
                org.service.get(table, id)
                org.service.associate(collection, id, ref_id)
            return Response(status_code=204, headers=_headers())
        if method == "DELETE":
            if child_id is None:
                ref = request.query_params.get("$id")
                if ref is None:
                    raise errors.BadRequest("Name the related record: add ?$id=<entityset>(<id>).")
                target, child_id = org.service.parse_reference(ref, table, "$id")
            async with _Writing(request, org):
                org.service.get(table, id)
                org.service.disassociate(collection, id, child_id)
            return Response(status_code=204, headers=_headers())
    if method not in ("GET", "POST", "PUT", "DELETE"):
        raise _method_not_allowed(request)
    raise errors.ResourceNotFound(rest[0] if rest else collection.name)


def _related_params(
    request: Request, org: Org, table: Table, id: str, collection: Collection
) -> dict[str, str]:
    """The request's query options with a filter to the parent's children added. The client's
    filter is parsed alone first so its error positions refer to what the client wrote."""
    org.service.get(table, id)
    params = _query_params(request)
    own = f"_{collection.column.name}_value eq {id}"
    given = params.get("$filter")
    if given:
        odata = _odata()
        aliases = {k: v for k, v in params.items() if k.startswith("@")}
        try:
            odata.parse_filter(given, aliases)
        except odata.ODataError as exc:
            raise odata_error(exc) from None
        params["$filter"] = f"({given}) and {own}"
    else:
        params["$filter"] = own
    return params


async def get_related(
    request: Request, org: Org, table: Table, id: str, collection: Collection
) -> Response:
    params = _related_params(request, org, table, id, collection)
    prefer = Prefer(request)
    page_size = prefer.max_page_size or MAX_PAGE
    skiptoken = params.pop("$skiptoken", None)
    child = collection.child
    result = await _run_query(org, child, params, page_size, skiptoken)
    writer = writer_for(org, child, result.select, result.expand, prefer.annotations)
    body: dict[str, Any] = {
        "@odata.context": context_url(_api_base(request), child, _context_select(params)),
    }
    if result.count is not None:
        body["@odata.count"] = result.count
    body["value"] = writer.records(result.rows)
    if result.next_skiptoken:
        original = _query_params(request)
        original.pop("$skiptoken", None)
        body["@odata.nextLink"] = _next_link(request, original, result.next_skiptoken)
    response = json_response(body)
    return _with_lines(response, prefer.applied("odata.include-annotations", "odata.maxpagesize"))


async def count_related(
    request: Request, org: Org, table: Table, id: str, collection: Collection
) -> Response:
    params = _related_params(request, org, table, id, collection)
    odata = _odata()
    try:
        with org.store.lock:
            n = odata.count(
                org.store.conn,
                org.schema,
                collection.child.logical_name,
                params,
                user_id=org.user_id,
            )
    except odata.ODataError as exc:
        raise odata_error(exc) from None
    # Dataverse answers a related-collection count with a UTF-8 BOM (dataverse-wire.md §4).
    return Response("\ufeff" + str(n), 200, _headers(), media_type="text/plain")


async def not_found(request: Request) -> Response:
    return error_response(errors.ResourceNotFound(request.url.path.rsplit("/", 1)[-1]))


# -- assembly -------------------------------------------------------------------------------------


class AuthMiddleware:
    """Every request needs `Authorization: Bearer <token>`; else 401 with the Entra ID
    `WWW-Authenticate` challenge Dataverse sends and a Dataverse error body."""

    def __init__(self, app: Any, org: Org) -> None:
        self.app = app
        self.org = org

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        given = b""
        for name, value in scope["headers"]:
            if name == b"authorization":
                given = value
                break
        expected = f"Bearer {self.org.token}".encode()
        if hmac.compare_digest(given, expected):
            await self.app(scope, receive, send)
            return
        message = (
            "Bearer token missing or invalid: send 'Authorization: Bearer <token>'."
            if given
            else "The request has no bearer token: send 'Authorization: Bearer <token>'."
        )
        body = orjson.dumps({"error": {"code": "0x80072560", "message": message}})
        # As Dataverse sends it (seen in third-party tenant-discovery code):
        # `Bearer authorization_uri=https://login.microsoftonline.com/<tenant>/oauth2/authorize,
        # resource_id=https://<org>.crm.dynamics.com/`
        host = next((v for k, v in scope["headers"] if k == b"host"), b"").decode("latin-1")
        resource = f"{scope.get('scheme', 'http')}://{host}/" if host else ""
        challenge = (
            "Bearer authorization_uri=https://login.microsoftonline.com/"
            f"{self.org.tenant_id}/oauth2/authorize"
            + (f", resource_id={resource}" if resource else "")
        )
        await send(
            {
                "type": "http.response.start",
                "status": 401,
                "headers": [
                    (b"content-type", JSON_TYPE.encode()),
                    (b"content-length", str(len(body)).encode()),
                    (b"www-authenticate", challenge.encode()),
                    (b"odata-version", b"4.0"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})


_OLDER_API = re.compile(r"^/api/data/v9\.[01]/")


class ApiVersionMiddleware:
    """Serve `/api/data/v9.0/` and `/api/data/v9.1/` (still used by older samples and by
    Power Automate's webhook registration) as v9.2: the differences do not matter here."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] == "http" and _OLDER_API.match(scope["path"]):
            path = API + scope["path"][len(API) :]
            scope = {**scope, "path": path, "raw_path": path.encode()}
        await self.app(scope, receive, send)


def _optional(module: str) -> Any:
    try:
        return importlib.import_module(f"d365nb.sandbox.{module}")
    except ModuleNotFoundError as exc:
        if exc.name != f"d365nb.sandbox.{module}":
            raise
        return None


async def _dataverse_error(request: Request, exc: Exception) -> Response:
    return error_response(exc)  # type: ignore[arg-type]


async def _unexpected(request: Request, exc: Exception) -> Response:
    log.exception("unexpected error serving %s %s", request.method, request.url.path)
    return json_response(
        {"error": {"code": "0x80040216", "message": "An unexpected error occurred."}}, 500
    )


def build_router(org: Org) -> Starlette:
    """The Starlette app (no auth/limits/faults): `$batch` dispatches parts into this."""
    routes: list[Any] = []
    for name in ("metadata", "batch", "bulk"):
        module = _optional(name)
        if module is not None and hasattr(module, "routes"):
            routes.extend(module.routes())
    routes += [
        Route(API + "WhoAmI", whoami, methods=["GET", "POST", "PATCH", "PUT", "DELETE"]),
        Route(API + "WhoAmI()", whoami, methods=["GET", "POST", "PATCH", "PUT", "DELETE"]),
        Route(API + "{path:path}", resource, methods=["GET", "POST", "PATCH", "PUT", "DELETE"]),
        # anything else (another API version, a typo in the root): Dataverse's 404 body
        Route("/{path:path}", not_found, methods=["GET", "POST", "PATCH", "PUT", "DELETE"]),
    ]
    odata_error_cls = getattr(_optional("odata"), "ODataError", None)
    handlers: dict[Any, Callable] = {
        errors.DataverseError: _dataverse_error,
        Exception: _unexpected,
    }
    if odata_error_cls is not None:

        async def _odata_error(request: Request, exc: Exception) -> Response:
            return error_response(odata_error(exc))

        handlers[odata_error_cls] = _odata_error
    app = Starlette(routes=routes, exception_handlers=handlers)
    app.state.org = org
    return app


def build_app(org: Org) -> Any:
    """The full ASGI app: faults (outermost, so it can drop connections) -> limits -> auth ->
    router. `org.router` keeps the inner Starlette app."""
    router = build_router(org)
    org.router = router  # type: ignore[attr-defined]
    app: Any = ApiVersionMiddleware(AuthMiddleware(router, org))
    limits = _optional("limits")
    if limits is not None and "limiter" in org.config:
        app = limits.LimitsMiddleware(app, org.config["limiter"])
    faults = _optional("faults")
    if faults is not None and "faults" in org.config:
        app = faults.FaultsMiddleware(app, org.config["faults"], lambda: org.token)
    return app


def new_ids() -> dict[str, str]:
    return {k: str(uuid.uuid4()) for k in ("business_unit_id", "organization_id", "tenant_id")}


__all__ = ["API", "Org", "build_app", "build_router", "json_response", "error_response", "is_guid"]
