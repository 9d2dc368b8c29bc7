"""Record routes: collections, records, properties, navigation properties and `$ref`s under
the API root (`leads`, `leads(<id>)`, `leads(<id>)/subject`, `accounts(<id>)/Account_Tasks`,
`.../$ref`, `/$count`). Reads go through `odata`, writes through `org.service`."""

from __future__ import annotations

import functools
import re
from collections.abc import Awaitable, Callable
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response

from . import aggregates, alternate_keys, changes, errors, fetchxml, odata
from .org import Org
from .relations import Collection
from .responses import (
    JSON_TYPE,
    MAX_PAGE,
    Prefer,
    api_base,
    base_headers,
    collection_annotations,
    column_name,
    context_select,
    error_response,
    json_response,
    method_not_allowed,
    next_link,
    odata_error,
    query_params,
    with_lines,
    writer_for,
)
from .schema.model import LOOKUP_TYPES, Table
from .serialize import Annotations, RecordWriter, context_url, output_name
from .values import check_nesting, parse_etag

# `name` or `name(key)` for one path segment.
_SEGMENT_RE = re.compile(r"^([^()]+)(?:\((.*)\))?$")


async def _run_query(
    org: Org, table: Table, params: dict[str, str], page_size: int, skiptoken: str | None
):
    try:
        return await org.off_loop(
            org.read,
            odata.execute,
            table.logical_name,
            params,
            page_size=page_size,
            skiptoken=skiptoken,
        )
    except odata.ODataError as exc:
        raise odata_error(exc) from None


async def get_collection(request: Request, org: Org, table: Table) -> Response:
    """GET a collection: one page of the query, `@odata.count`, `@odata.nextLink`."""
    params = query_params(request)
    if "$apply" in params:
        return await aggregates.get_applied(request, org, table)
    if "fetchXml" in params:
        return await fetchxml.get_fetched(request, org, table)
    prefer = Prefer(request)
    if "odata.track-changes" in prefer.values or "$deltatoken" in params:
        return await changes.handle(request, table)
    page_size = prefer.max_page_size or MAX_PAGE
    skiptoken = params.pop("$skiptoken", None)
    result = await _run_query(org, table, params, page_size, skiptoken)
    annotations = prefer.annotations
    writer = writer_for(
        org, table, result.select, result.expand, annotations, api=api_base(request)
    )
    body: dict[str, Any] = {
        "@odata.context": context_url(
            api_base(request), table, context_select(table, params, result.expand, org.schema)
        ),
    }
    count = result.count
    if count is not None:
        body["@odata.count"] = count
    body.update(collection_annotations(org, annotations, count, result.count_limit_exceeded))
    body["value"] = writer.records(result.rows)
    if result.next_skiptoken:
        body["@odata.nextLink"] = next_link(request, params, result.next_skiptoken)
    response = json_response(body)
    return with_lines(response, prefer.applied("odata.include-annotations", "odata.maxpagesize"))


async def count_collection(request: Request, org: Org, table: Table) -> Response:
    """`GET <set>/$count`: the count as text/plain."""
    params = query_params(request)
    if "$deltatoken" in params:
        return await changes.handle(request, table)
    try:
        n = await org.off_loop(_count, org, table.logical_name, params)
    except odata.ODataError as exc:
        raise odata_error(exc) from None
    return Response(str(n), 200, base_headers(), media_type="text/plain")


def _count(org: Org, logical_name: str, params: dict[str, str]) -> int:
    return org.read(odata.count, logical_name, params)


async def _query_one(
    request: Request,
    org: Org,
    table: Table,
    id: str,
    params: dict[str, str],
    annotations: Annotations,
    written: bool = False,
) -> dict[str, Any] | None:
    """One record through the query engine (so `$select`/`$expand` behave as on collections).
    `written`: the answer to a write with `return=representation`, whose context Dataverse
    writes `accounts/$entity` (with `$expand`: `accounts(name,nav(...))/$entity`) - see the
    create-entity and update-delete docs."""
    unknown = set(params) - {"$select", "$expand"}
    unknown = {k for k in unknown if k.startswith("$")}
    if unknown:
        raise errors.QueryError(f"The query parameter {sorted(unknown)[0]} is not supported.")
    if "$expand" in params:  # the query engine knows how to expand
        query = dict(params)
        query["$filter"] = f"{table.primary_id} eq {id}"
        # one row matches; MAX_PAGE keeps expanded collections whole (no paging on a record)
        result = await _run_query(org, table, query, MAX_PAGE, None)
        if not result.rows:
            return None
        row, select, expand = result.rows[0], result.select, result.expand
    else:
        row = await org.off_loop(org.store.get, table.logical_name, id)
        if row is None:
            return None
        select, expand = _parse_select(table, params.get("$select")), None
    writer = writer_for(org, table, select, expand, annotations, api=api_base(request), entity=True)
    record = writer.record(row)
    if written:
        shown = context_select(table, params, expand, org.schema) if expand else None
    else:
        shown = context_select(table, params, expand, org.schema, entity=True)
    ctx = context_url(api_base(request), table, shown, entity=True)
    return {"@odata.context": ctx, **record}


def _parse_select(table: Table, text: str | None) -> list[str] | None:
    """`$select` of a single record: column names, `_x_value` for lookups."""
    if text is None:
        return None
    names = [n.strip() for n in text.split(",")]
    if len(names) > 1 and not names[-1]:
        names.pop()  # Dataverse accepts a trailing comma (`$select=name,`)
    if not any(names):
        raise errors.QueryError("The $select query option is empty.")
    for name in names:
        col = table.columns.get(column_name(table, name))
        if col is None or (
            col.type in LOOKUP_TYPES and name == col.name and len(col.relationships) > 1
        ):
            raise errors.PropertyNotFound(name, table.logical_name)
    return names + [n for n in odata.implied_columns(table, names) if n not in names]


async def get_entity(request: Request, org: Org, table: Table, id: str) -> Response:
    """GET one record (`$select`/`$expand`; 304 for a current `If-None-Match`)."""
    params = query_params(request)
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
        # As the conditional-operations doc shows it: the JSON content type and OData-Version
        # (no body), plus the current ETag.
        return Response(
            status_code=304, headers=base_headers({"ETag": etag, "Content-Type": JSON_TYPE})
        )
    response = json_response(record, headers={"ETag": etag} if etag else None)
    return with_lines(response, prefer.applied("odata.include-annotations"))


async def get_property(request: Request, org: Org, table: Table, id: str, prop: str) -> Response:
    """`GET <set>(<id>)/<prop>`: `{"value": ...}` (204 when null)."""
    row = await org.off_loop(org.service.get, table, id)
    col = table.columns.get(column_name(table, prop))
    if col is None:
        raise errors.PropertyNotFound(prop, table.logical_name)
    writer = RecordWriter(org.schema, table, [col.name])
    value = writer.record(row).get(output_name(col))
    if value is None:
        return Response(status_code=204, headers=base_headers())
    ctx = f"{api_base(request)}$metadata#{table.entity_set}({id})/{prop}"
    return json_response({"@odata.context": ctx, "value": value})


async def get_navigation(
    request: Request, org: Org, table: Table, id: str, nav: str, ref: bool
) -> Response:
    """`GET leads(<id>)/parentaccountid` (the related record) or `.../$ref` (its URL)."""
    row = await org.off_loop(org.service.get, table, id)
    navigation = org.service.navigations(table).get(nav)
    if navigation is None:
        raise errors.PropertyNotFound(nav, table.logical_name)
    col = navigation.column
    target_id, target_type = row.get(col.name), row.get(f"{col.name}__type")
    target_name = target_type or (col.relationships[0].target if col.relationships else None)
    if target_id is None or navigation.target_for(target_name) is None:
        return Response(status_code=204, headers=base_headers())
    target = org.schema[target_name]
    if ref:
        return json_response(
            {
                "@odata.context": f"{api_base(request)}$metadata#$ref",
                "@odata.id": f"{api_base(request)}{target.entity_set}({target_id})",
            }
        )
    return await get_entity(request, org, target, target_id)


# -- writing --------------------------------------------------------------------------------------


async def _body(request: Request) -> Any:
    raw = await request.body()
    if not raw.strip():
        raise errors.BadRequest("The request body is empty: send the record as a JSON object.")
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise errors.BadRequest(f"The request body is not valid JSON: {exc}.") from None
    check_nesting(body)
    return body


def _entity_id_url(request: Request, table: Table, id: str) -> str:
    return f"{api_base(request)}{table.entity_set}({id})"


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
    params = _representation_params(request)
    if params is not None:
        record = await _query_one(request, org, table, id, params, prefer.annotations, True)
        response = json_response(record, representation_status)
        return with_lines(response, prefer.applied("return", "odata.include-annotations"))
    return Response(
        status_code=204,
        headers=base_headers({"OData-EntityId": _entity_id_url(request, table, id)}),
    )


def _representation_params(request: Request) -> dict[str, str] | None:
    """The `$select`/`$expand` of the record a write returns (None: no representation asked)."""
    if not Prefer(request).representation:
        return None
    params = {k: v for k, v in query_params(request).items() if k in ("$select", "$expand")}
    if request.method == "PATCH":
        params.pop("$expand", None)  # ignored on update (dataverse-wire.md §6)
    return params


def _check_representation(request: Request, org: Org, table: Table) -> None:
    """Refuse bad `$select`/`$expand` of a `return=representation` write BEFORE writing: a 400
    sent after the write would leave a record the client was told failed."""
    params = _representation_params(request)
    if not params:
        return
    if "$expand" in params:
        try:
            odata.compile_query(org.schema, table.logical_name, params, user_id=org.user_id)
        except odata.ODataError as exc:
            raise odata_error(exc) from None
    else:
        _parse_select(table, params.get("$select"))


async def post_collection(request: Request, org: Org, table: Table) -> Response:
    """POST: create (204 + OData-EntityId, or 201 with return=representation)."""
    body = await _body(request)
    _check_representation(request, org, table)
    async with org.writing(request.scope):
        row = await org.off_loop(
            org.service.create, table, body, detect_duplicates=_detect_duplicates(request)
        )
    return await _written(request, org, table, row, True, 201)


async def patch_entity(request: Request, org: Org, table: Table, id: str) -> Response:
    """PATCH on a key: update or upsert, with `If-Match`/`If-None-Match`."""
    body = await _body(request)
    _check_representation(request, org, table)
    async with org.writing(request.scope):
        row, created = await org.off_loop(
            org.service.upsert,
            table,
            id,
            body,
            if_match=request.headers.get("if-match"),
            if_none_match=_if_none_match(request),
            detect_duplicates=_detect_duplicates(request),
        )
    return await _written(request, org, table, row, created, 201 if created else 200)


async def upsert_by_key(
    request: Request, org: Org, table: Table, key_values: dict[str, Any]
) -> Response:
    """PATCH on an alternate key no record has: create the record, the key's values set from
    the URL (use-upsert-insert-update-record doc); `If-Match` forbids the create."""
    body = await _body(request)
    if not isinstance(body, dict):
        raise errors.BadRequest(
            "The request body must be a JSON object with the record's properties."
        )
    if request.headers.get("if-match") is not None:
        raise alternate_keys.KeyNotFound(table.logical_name)
    _check_representation(request, org, table)
    async with org.writing(request.scope):
        row = await org.off_loop(
            org.service.create,
            table,
            {**body, **key_values},
            detect_duplicates=_detect_duplicates(request),
        )
    return await _written(request, org, table, row, True, 201)


def _detect_duplicates(request: Request) -> bool:
    """Duplicate detection is off unless `MSCRM.SuppressDuplicateDetection: false` is sent."""
    value = request.headers.get("mscrm.suppressduplicatedetection")
    return value is not None and value.strip().lower() == "false"


def _if_none_match(request: Request) -> str | None:
    value = request.headers.get("if-none-match")
    # Clients send `If-None-Match: null` on every request to defeat caching; it means nothing.
    return None if value is None or value.strip().lower() == "null" else value


async def _no_content(
    request: Request, org: Org, write: Callable[..., Any], *args: Any
) -> Response:
    """Run one service write (holding the write lock, off the event loop); answer 204."""
    async with org.writing(request.scope):
        await org.off_loop(write, *args)
    return Response(status_code=204, headers=base_headers())


async def _member(request: Request, name: str, shape: str) -> Any:
    """`name` of a JSON object body (`{"value": ...}`, `{"@odata.id": ...}`), else a 400."""
    body = await _body(request)
    if not isinstance(body, dict) or name not in body:
        raise errors.BadRequest(f"Send the {shape}.")
    return body[name]


async def delete_entity(request: Request, org: Org, table: Table, id: str) -> Response:
    """DELETE a record (`If-Match` honoured)."""
    delete = functools.partial(org.service.delete, if_match=request.headers.get("if-match"))
    return await _no_content(request, org, delete, table, id)


async def put_property(request: Request, org: Org, table: Table, id: str, prop: str) -> Response:
    """`PUT <set>(<id>)/<prop>` with `{"value": ...}`."""
    value = await _member(request, "value", 'new value as {"value": ...}')
    return await _no_content(request, org, org.service.set_property, table, id, prop, value)


async def delete_property(request: Request, org: Org, table: Table, id: str, prop: str) -> Response:
    """`DELETE <set>(<id>)/<prop>`: clear the value."""
    return await _no_content(request, org, org.service.clear_property, table, id, prop)


async def put_reference(request: Request, org: Org, table: Table, id: str, nav: str) -> Response:
    """`PUT <set>(<id>)/<nav>/$ref`: point a lookup at another record."""
    ref = await _member(request, "@odata.id", 'reference as {"@odata.id": "<entityset>(<id>)"}')
    return await _no_content(request, org, org.service.set_reference, table, id, nav, ref)


async def delete_reference(request: Request, org: Org, table: Table, id: str, nav: str) -> Response:
    """`DELETE <set>(<id>)/<nav>/$ref`: clear a lookup."""
    return await _no_content(request, org, org.service.delete_reference, table, id, nav)


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
            raise method_not_allowed(request)
        if rest == ["$count"] and method == "GET":
            return await count_collection(request, org, table)
        raise errors.ResourceNotFound(rest[0])
    if key.startswith(f"{table.primary_id}="):
        id = org.service.parse_key(key.split("=", 1)[1])
    elif alternate_keys.is_alternate(key):  # `accounts(accountnumber='ABC')`
        found, values = await org.off_loop(alternate_keys.find, org.store, table, key)
        if found is None:
            if method == "PATCH" and not rest:  # upsert: create with the key's values
                return await upsert_by_key(request, org, table, values)
            raise alternate_keys.KeyNotFound(table.logical_name)
        id = found
    else:
        id = org.service.parse_key(key)
    if not rest:
        handler: dict[str, Callable[..., Awaitable[Response]]] = {
            "GET": get_entity,
            "PATCH": patch_entity,
            "DELETE": delete_entity,
        }
        if method not in handler:
            raise method_not_allowed(request)
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
        raise method_not_allowed(request)
    if len(rest) > 1:
        raise errors.ResourceNotFound(rest[1])
    if prop in navs:  # a navigation property (single-target lookups share the column name)
        if method == "GET":
            return await get_navigation(request, org, table, id, prop, ref=False)
        if method == "DELETE" and prop in table.columns:
            return await delete_property(request, org, table, id, prop)
        raise method_not_allowed(request)
    col = table.columns.get(column_name(table, prop))
    if col is None:
        raise errors.ResourceNotFound(prop)
    if method == "GET":
        return await get_property(request, org, table, id, prop)
    if col.type in LOOKUP_TYPES:
        if method == "DELETE":
            return await delete_property(request, org, table, id, col.name)
        raise method_not_allowed(request)
    if method == "PUT":
        return await put_property(request, org, table, id, col.name)
    if method == "DELETE":
        return await delete_property(request, org, table, id, col.name)
    raise method_not_allowed(request)


# The one table whose rows can be sent as a whole collection on update (PUT
# `emails(<id>)/email_activity_parties`, associate-disassociate-entities-using-web-api).
PARTY = "activityparty"


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
        if method == "GET" and child_id is None:
            return await get_related_refs(request, org, table, id, collection)
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
            async with org.writing(request.scope):
                await org.off_loop(_associate, org, table, id, collection, ref_id, True)
            return Response(status_code=204, headers=base_headers())
        if method == "DELETE":
            if child_id is None:
                ref = request.query_params.get("$id")
                if ref is None:
                    raise errors.BadRequest("Name the related record: add ?$id=<entityset>(<id>).")
                target, child_id = org.service.parse_reference(ref, table, "$id")
            async with org.writing(request.scope):
                await org.off_loop(_associate, org, table, id, collection, child_id, False)
            return Response(status_code=204, headers=base_headers())
    if method == "PUT" and child_id is None and not rest and collection.child.logical_name == PARTY:
        body = await _body(request)
        value = body.get("value") if isinstance(body, dict) else None
        async with org.writing(request.scope):
            await org.off_loop(org.service.replace_parties, collection, id, value)
        return Response(status_code=204, headers=base_headers())
    if method not in ("GET", "POST", "PUT", "DELETE"):
        raise method_not_allowed(request)
    raise errors.ResourceNotFound(rest[0] if rest else collection.name)


def _associate(
    org: Org, table: Table, id: str, collection: Collection, child_id: str, link: bool
) -> None:
    org.service.get(table, id)
    if link:
        org.service.associate(collection, id, child_id)
    else:
        org.service.disassociate(collection, id, child_id)


def _related_params(
    request: Request, org: Org, table: Table, id: str, collection: Collection
) -> dict[str, str]:
    """The request's query options with a filter to the parent's children added. The client's
    filter is parsed alone first so its error positions refer to what the client wrote."""
    org.service.get(table, id)
    params = query_params(request)
    own = f"_{collection.column.name}_value eq {id}"
    given = params.get("$filter")
    if given:
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
    """`GET <set>(<id>)/<Collection>`: the children, queried like a collection."""
    params = _related_params(request, org, table, id, collection)
    prefer = Prefer(request)
    page_size = prefer.max_page_size or MAX_PAGE
    skiptoken = params.pop("$skiptoken", None)
    child = collection.child
    result = await _run_query(org, child, params, page_size, skiptoken)
    writer = writer_for(
        org, child, result.select, result.expand, prefer.annotations, api=api_base(request)
    )
    body: dict[str, Any] = {
        "@odata.context": context_url(
            api_base(request), child, context_select(child, params, result.expand, org.schema)
        ),
    }
    if result.count is not None:
        body["@odata.count"] = result.count
    body.update(
        collection_annotations(org, prefer.annotations, result.count, result.count_limit_exceeded)
    )
    body["value"] = writer.records(result.rows)
    if result.next_skiptoken:
        original = query_params(request)
        original.pop("$skiptoken", None)
        body["@odata.nextLink"] = next_link(request, original, result.next_skiptoken)
    response = json_response(body)
    return with_lines(response, prefer.applied("odata.include-annotations", "odata.maxpagesize"))


async def get_related_refs(
    request: Request, org: Org, table: Table, id: str, collection: Collection
) -> Response:
    """`GET accounts(<id>)/Account_Tasks/$ref`: the related records' URLs (retrieve-entity doc:
    `{"@odata.context": ".../$metadata#Collection($ref)", "value": [{"@odata.id": ...}]}`)."""
    params = _related_params(request, org, table, id, collection)
    params["$select"] = collection.child.primary_id
    prefer = Prefer(request)
    skiptoken = params.pop("$skiptoken", None)
    child = collection.child
    result = await _run_query(org, child, params, prefer.max_page_size or MAX_PAGE, skiptoken)
    api = api_base(request)
    body: dict[str, Any] = {
        "@odata.context": f"{api}$metadata#Collection($ref)",
        "value": [
            {"@odata.id": f"{api}{child.entity_set}({row[child.primary_id]})"}
            for row in result.rows
        ],
    }
    if result.next_skiptoken:
        original = query_params(request)
        original.pop("$skiptoken", None)
        body["@odata.nextLink"] = next_link(request, original, result.next_skiptoken)
    return with_lines(json_response(body), prefer.applied("odata.maxpagesize"))


async def count_related(
    request: Request, org: Org, table: Table, id: str, collection: Collection
) -> Response:
    """`GET <set>(<id>)/<Collection>/$count`."""
    params = _related_params(request, org, table, id, collection)
    try:
        n = await org.off_loop(_count, org, collection.child.logical_name, params)
    except odata.ODataError as exc:
        raise odata_error(exc) from None
    # Dataverse answers a related-collection count with a UTF-8 BOM (dataverse-wire.md §4).
    return Response("\ufeff" + str(n), 200, base_headers(), media_type="text/plain")
