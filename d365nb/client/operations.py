"""The Web API operations, written once as generators and run by the sync or async connection.

Each ``*_op`` method yields :class:`ApiRequest` objects and receives the ``httpx.Response`` (or
has the typed error thrown in); paging operations also yield :class:`Page`. ``api.py`` drives
them with a blocking session (``Dataverse``) or an async one (``AsyncDataverse``), so both
facades behave identically.
"""

from __future__ import annotations

import json
import os
import time
import uuid
from collections.abc import Callable, Generator, Iterable
from typing import Any
from urllib.parse import parse_qs, urlsplit

import orjson

from d365nb.client.batch import BatchPart, build_batch, parse_batch
from d365nb.client.errors import (
    BadRequest,
    ChangeTokenExpired,
    D365Error,
    NotFound,
    ValidationError,
    error_for_status,
)
from d365nb.client.frames import FrameBuilder, as_records
from d365nb.client.http import ApiRequest
from d365nb.client.metadata import MetadataCache, TableMeta
from d365nb.client.query import build_query
from d365nb.client.results import BulkResult, Changes, Page
from d365nb.client.values import MISSING_MODES, coerce_record, is_missing, normalize_id

Op = Generator[Any, Any, Any]
Progress = Callable[[int, int | None], Any] | None

ANNOTATIONS = 'odata.include-annotations="*"'
MAX_PAGE = 5000
MAX_INT = 2**31 - 1  # Dataverse's Int32 query options ($top, page counts)
COUNT_LIMIT = 5000  # Dataverse's $count answers at most this many
DEFAULT_CHUNK = 1000
BATCH_LIMIT = 1000
_DUPLICATE_CODES = frozenset({"0x80040237", "0x80040333"})


def is_duplicate(err: D365Error) -> bool:
    """The service refused a create because a record with that key exists."""
    text = err.message.lower()
    return (
        (err.code or "").lower() in _DUPLICATE_CODES
        or "duplicate" in text
        or ("matching key values already exists" in text)
    )


_UNKNOWN_SEGMENT = "0x8006088a"  # "Resource not found for the segment '...'"


def _action_missing(err: D365Error) -> bool:
    """The table does not offer a bulk action (CreateMultiple...): fall back to ``$batch``.

    A 404 counts only when the *action* was not found: a record a target points to that does
    not exist is also a 404 (``0x80040217 ... Does Not Exist``) and fails just that chunk.
    """
    text = err.message.lower()
    if err.status in (405, 501):
        return True
    if (err.code or "").lower() == _UNKNOWN_SEGMENT or "resource not found for the segment" in text:
        return True
    return err.status == 400 and (
        "not supported" in text or "does not support" in text or "not enabled" in text
    )


def _names(value: str | Iterable[str] | None, what: str = "select") -> list[str] | None:
    """Column names from ``"a,b"`` or ``["a", "b"]``; anything else is refused by name."""
    if value is None:
        return None
    if isinstance(value, str):
        names = [p.strip() for p in value.split(",") if p.strip()]
        if not names:
            raise ValidationError(f"{what} names no column: {value!r} (leave it out for all)")
        return names
    if not isinstance(value, list | tuple):
        raise ValidationError(
            f"{what} must be text ('a,b') or a list of column names, got {type(value).__name__}"
        )
    for part in value:
        if not isinstance(part, str) or not part.strip():
            raise ValidationError(f"{what}: every element must be a column name, got {part!r}")
    return [p.strip() for p in value]


def _keys(meta: TableMeta) -> tuple[str, str]:
    """The names a pasted record URL of ``meta``'s table may carry (see ``ids.normalize_id``)."""
    return (meta.logical_name, meta.entity_set)


def check_filter(filter: Any, what: str = "filter") -> str | None:
    """A filter as given, or None; blank text is refused, never read as "every row"."""
    if filter is None:
        return None
    if not isinstance(filter, str):
        raise ValidationError(f"{what} must be text; build it with d365nb.odata.format_filter")
    if not filter.strip():
        raise ValidationError(
            f"{what} is blank; give a condition (or leave {what} out to read every row)"
        )
    return filter


def _check_count(value: Any, what: str, low: int, high: int) -> None:
    if value is not None and (
        isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high
    ):
        raise ValidationError(f"{what} must be a whole number {low}..{high}, got {value!r}")


def _expand(value: Any) -> Any:
    """``$expand`` text as given (it may hold nested options), or a list of navigation names."""
    if value is None or isinstance(value, str):
        return value or None
    return _names(value, "expand")


def _read_page(response: Any) -> dict[str, Any]:
    """A page of up to 5,000 records as JSON.

    The stdlib parser, not orjson: orjson briefly needs ~14x a page's size (67 MiB for 5,000
    leads in 4.7 MB) against ~3x, and that set list()'s peak memory; it is ~1.5x slower to
    parse, a few percent of a list().
    """
    return json.loads(response.content)


def _deltatoken(link: str | None) -> str | None:
    if not link:
        return None
    values = parse_qs(urlsplit(link).query).get("$deltatoken")
    return values[0] if values else None


class Operations:
    """Mixin holding the operation generators; needs ``self.metadata`` and ``self.api_path``."""

    metadata: MetadataCache
    api_path: str  # e.g. "/api/data/v9.2/" - for $batch part URLs

    def __init__(self) -> None:
        self._no_multiple: set[tuple[str, str]] = set()

    # -- names ---------------------------------------------------------------------------------

    def _target(self, name: str) -> tuple[str, str] | None:
        """(logical, entity_set) of a lookup target named either way, from the cache."""
        entries = {e.logical_name: e for e in self.metadata.table_list()}
        if name in entries:
            return name, entries[name].entity_set
        for entry in entries.values():
            if name.lower() in (entry.entity_set.lower(), entry.logical_name.lower()):
                return entry.logical_name, entry.entity_set
        return None

    def _select(self, meta: TableMeta, select: Any) -> list[str] | None:
        names = _names(select, "select")
        if names is None:
            return None
        return [meta.column(n).read_name if "/" not in n else n for n in names]

    def _coerce(self, meta: TableMeta, values: Any, *, for_update: bool, missing: str = "omit"):
        return coerce_record(
            meta, values, for_update=for_update, resolve_target=self._target, missing=missing
        )

    # -- reads ---------------------------------------------------------------------------------

    def pages_op(
        self,
        table: str,
        *,
        filter: str | None = None,
        orderby: Any = None,
        select: Any = None,
        top: int | None = None,
        expand: Any = None,
        count: bool = False,
        page_size: int | None = None,
        max_pages: int | None = None,
        labels: bool = False,
        sink: Callable[[Page], Any] | None = None,
        meta_out: list | None = None,
    ) -> Op:
        """Yield requests for every page; pages go to ``sink`` or are yielded as Page."""
        meta = yield from self.metadata.load_op(table)
        if meta_out is not None:
            meta_out.append(meta)
        _check_count(page_size, "page_size", 1, MAX_PAGE)
        _check_count(max_pages, "max_pages", 1, MAX_INT)
        _check_count(top, "top", 0, MAX_INT)
        params = build_query(
            filter=check_filter(filter),
            orderby=_names(orderby, "orderby"),
            select=self._select(meta, select),
            top=top,
            expand=_expand(expand),
            count=count,
        )
        prefer = [f"odata.maxpagesize={page_size or MAX_PAGE}"]
        if labels:
            prefer.append(ANNOTATIONS)
        headers = {"Prefer": ",".join(prefer)}
        path: str | None = meta.entity_set
        pages = 0
        while path:
            response = yield ApiRequest("GET", path, params=params, headers=headers)
            body = _read_page(response)
            response = None  # free the raw bytes before the next page arrives
            pages += 1
            next_link = body.get("@odata.nextLink")
            page = Page(body.get("value", []), body.get("@odata.count"))
            body = None
            if sink is not None:
                sink(page)
            else:
                yield page
            page = None  # one page of dicts alive at a time
            if not next_link or (max_pages is not None and pages >= max_pages):
                break
            # The nextLink carries every query option already encoded: send it verbatim.
            path, params = next_link, None
        return meta

    def list_op(
        self,
        table: str,
        *,
        progress: Progress = None,
        labels: bool = False,
        select: Any = None,
        flatten: bool = True,
        explode: bool = False,
        **options: Any,
    ) -> Op:
        started = time.perf_counter()
        frame_options = {"labels": labels, "flatten": flatten, "explode": explode}
        if options.get("max_pages") is not None:
            options["count"] = True  # a page limit may cut the result: say of how many rows
        state: dict[str, Any] = {"pages": 0, "count": None, "builder": None}
        metas: list[TableMeta] = []

        def sink(page: Page) -> None:
            builder = state["builder"]
            if builder is None:
                meta = metas[0]
                builder = state["builder"] = FrameBuilder(
                    meta, select=self._select(meta, select), **frame_options
                )
            builder.add(page.records)
            state["pages"] += 1
            if page.count is not None:
                state["count"] = page.count
            if progress is not None:
                progress(builder.rows, state["count"])

        meta = yield from self.pages_op(
            table, sink=sink, labels=labels, select=select, meta_out=metas, **options
        )
        builder = state["builder"] or FrameBuilder(
            meta, select=self._select(meta, select), **frame_options
        )
        rows = builder.rows
        frame = builder.build()
        frame.attrs.update(
            pages=state["pages"],
            count=state["count"],
            elapsed=time.perf_counter() - started,
            table=meta.logical_name,
            truncated=_truncated(rows, state["pages"], state["count"], options),
        )
        return frame

    def get_op(
        self, table: str, id: Any, *, select: Any = None, expand: Any = None, labels: bool = True
    ) -> Op:
        meta = yield from self.metadata.load_op(table)
        record_id = normalize_id(id, what=f"{meta.logical_name} id", table=_keys(meta))
        params = build_query(select=self._select(meta, select), expand=_expand(expand))
        headers = {"Prefer": ANNOTATIONS} if labels else {}
        try:
            response = yield ApiRequest(
                "GET", f"{meta.entity_set}({record_id})", params=params or None, headers=headers
            )
        except NotFound as err:
            raise self._not_found(meta, record_id, err) from None
        return orjson.loads(response.content)

    @staticmethod
    def _not_found(meta: TableMeta, record_id: str, err: D365Error) -> NotFound:
        return NotFound(
            f"no {meta.logical_name} record with id {record_id}",
            status=err.status,
            code=err.code,
            request_id=err.request_id,
            method=err.method,
            url=err.url,
        )

    def whoami_op(self) -> Op:
        response = yield ApiRequest("GET", "WhoAmI")
        body = orjson.loads(response.content)
        return {k: body.get(k) for k in ("UserId", "BusinessUnitId", "OrganizationId")}

    def changes_op(self, table: str, token: str | None = None, select: Any = None) -> Op:
        meta = yield from self.metadata.load_op(table)
        if token is not None and (not isinstance(token, str) or not token):
            raise ValidationError("token must be the text returned by a previous changes() call")
        params = build_query(select=self._select(meta, select))
        if token:
            params["$deltatoken"] = token
        # Formatted values ride along: change-tracking flow triggers expose them (issue 6).
        headers = {"Prefer": f"odata.track-changes,odata.maxpagesize={MAX_PAGE},{ANNOTATIONS}"}
        upserted: list[dict] = []
        deleted: list[str] = []
        path: str | None = meta.entity_set
        next_token = None
        while path:
            try:
                response = yield ApiRequest("GET", path, params=params, headers=headers)
            except BadRequest as err:
                if token and (
                    "expire" in err.message.lower() or isinstance(err, ChangeTokenExpired)
                ):
                    raise ChangeTokenExpired(
                        f"the change token for {meta.logical_name} has expired; call "
                        f"changes({meta.entity_set!r}) without a token for a full resync",
                        status=err.status,
                        code=err.code,
                        request_id=err.request_id,
                    ) from None
                raise
            body = _read_page(response)
            for item in body.get("value", []):
                context = item.get("@odata.context", "")
                if context.endswith("$deletedEntity") or item.get("reason") == "deleted":
                    deleted.append(item.get("id") or item.get(meta.primary_id))
                else:
                    upserted.append(item)
            next_token = _deltatoken(body.get("@odata.deltaLink")) or next_token
            path, params = body.get("@odata.nextLink"), None
        if next_token is None:
            raise BadRequest(
                f"the service returned no delta link for {meta.logical_name}; is change "
                "tracking enabled for it?"
            )
        return Changes(upserted, deleted, next_token)

    def validate_op(self, table: str, values: Any, *, for_update: bool = False) -> Op:
        """The JSON body ``values`` would be sent as (metadata may be loaded; nothing written)."""
        meta = yield from self.metadata.load_op(table)
        return self._coerce(meta, values, for_update=for_update, missing="refuse")

    # -- single writes -------------------------------------------------------------------------

    def create_op(self, table: str, values: Any, id: Any = None) -> Op:
        meta = yield from self.metadata.load_op(table)
        body = self._coerce(meta, values, for_update=False, missing="refuse")
        given = id if id is not None else body.get(meta.primary_id)
        record_id = (
            normalize_id(given, what=f"{meta.logical_name} id", table=_keys(meta))
            if given is not None
            else str(uuid.uuid4())
        )
        # The id travels in the body: a retried POST then cannot create a second record.
        body[meta.primary_id] = record_id
        try:
            yield ApiRequest("POST", meta.entity_set, json=body, idempotent=True)
        except D365Error as err:
            if err.attempts > 1 and is_duplicate(err):
                return record_id  # an earlier attempt created it
            raise
        return record_id

    def update_op(self, table: str, id: Any, values: Any) -> Op:
        meta = yield from self.metadata.load_op(table)
        record_id = normalize_id(id, what=f"{meta.logical_name} id", table=_keys(meta))
        body = self._coerce(meta, values, for_update=True, missing="refuse")
        try:
            yield ApiRequest(
                "PATCH", f"{meta.entity_set}({record_id})", json=body, headers={"If-Match": "*"}
            )
        except NotFound as err:
            raise self._not_found(meta, record_id, err) from None

    def upsert_op(self, table: str, id: Any, values: Any) -> Op:
        meta = yield from self.metadata.load_op(table)
        record_id = normalize_id(id, what=f"{meta.logical_name} id", table=_keys(meta))
        body = self._coerce(meta, values, for_update=False, missing="refuse")
        if meta.primary_id in body and body[meta.primary_id] != record_id:
            raise ValidationError(
                f"{meta.logical_name}: the values name {meta.primary_id} "
                f"{body[meta.primary_id]}, the id argument {record_id}; give one"
            )
        body.pop(meta.primary_id, None)
        response = yield ApiRequest(
            "PATCH",
            f"{meta.entity_set}({record_id})",
            params={"$select": meta.primary_id},
            json=body,
            headers={"Prefer": "return=representation"},
        )
        return response.status_code == 201

    def delete_op(self, table: str, id: Any) -> Op:
        meta = yield from self.metadata.load_op(table)
        record_id = normalize_id(id, what=f"{meta.logical_name} id", table=_keys(meta))
        try:
            yield ApiRequest("DELETE", f"{meta.entity_set}({record_id})")
        except NotFound as err:
            if err.attempts > 1:
                return None  # an earlier attempt deleted it
            raise self._not_found(meta, record_id, err) from None
        return None

    # -- bulk writes ---------------------------------------------------------------------------

    def _prepare(
        self, meta: TableMeta, records: Any, *, for_update: bool, need_id: bool, missing: str
    ) -> tuple[list[str], list[dict]]:
        """Coerce every record before any request; ids from the primary key column or new."""
        rows = as_records(_bulk_input(records), index_as=meta.primary_id)
        new_ids = _IdBatch(len(rows))
        ids: list[str] = []
        bodies: list[dict] = []
        for index, row in enumerate(rows):
            try:
                if not isinstance(row, dict):
                    raise ValidationError(
                        f"expected a dict of column: value, got {type(row).__name__}"
                    )
                row = dict(row)
                raw_id = row.pop(meta.primary_id, None)
                if raw_id is not None and is_missing(raw_id):
                    raw_id = None
                if raw_id is None and need_id:
                    raise ValidationError(f"missing the primary key {meta.primary_id!r}")
                body = self._coerce(meta, row, for_update=for_update, missing=missing)
                if for_update and not body:
                    # An empty PATCH would be reported as a success that changed nothing.
                    raise ValidationError(
                        "nothing to update (no values, or every value missing with "
                        "missing='omit'; missing='null' clears them)"
                    )
                record_id = (
                    normalize_id(raw_id, what=meta.primary_id, table=_keys(meta))
                    if raw_id is not None
                    else new_ids.next()
                )
            except ValidationError as err:
                raise type(err)(f"record {index}: {err.message}") from None
            ids.append(record_id)
            bodies.append(body)
        _refuse_duplicates(meta, ids)
        return ids, bodies

    def bulk_op(
        self,
        action: str,
        table: str,
        records: Any,
        *,
        chunk_size: int = DEFAULT_CHUNK,
        progress: Progress = None,
        missing: str = "omit",
    ) -> Op:
        """create/update/upsert many: the table's *Multiple action, else ``$batch``."""
        meta = yield from self.metadata.load_op(table)
        _check_count(chunk_size, "chunk_size", 1, BATCH_LIMIT)
        if missing not in MISSING_MODES:
            raise ValidationError(
                f"missing must be one of {', '.join(map(repr, MISSING_MODES))}, got {missing!r}"
            )
        for_update = action == "Update"
        ids, bodies = self._prepare(
            meta, records, for_update=for_update, need_id=action != "Create", missing=missing
        )
        result = BulkResult(meta.logical_name, list(ids))
        total = len(ids)
        done = 0
        for start in range(0, total, chunk_size):
            stop = min(start + chunk_size, total)
            positions = range(start, stop)
            handled = False
            if (meta.logical_name, action) not in self._no_multiple:
                handled = yield from self._multiple_chunk(
                    action, meta, ids, bodies, positions, result
                )
            if not handled:
                parts = [self._write_part(action, meta, ids[i], bodies[i]) for i in positions]
                yield from self._batch_chunk(parts, list(positions), action, result)
            done = stop
            if progress is not None:
                progress(done, total)
        for index in result.errors:
            result.ids[index] = None
        return result

    def _multiple_chunk(self, action, meta, ids, bodies, positions, result) -> Op:
        targets = []
        type_name = f"Microsoft.Dynamics.CRM.{meta.logical_name}"
        for i in positions:
            targets.append({"@odata.type": type_name, **bodies[i], meta.primary_id: ids[i]})
        result.requests += 1
        try:
            response = yield ApiRequest(
                "POST",
                f"{meta.entity_set}/Microsoft.Dynamics.CRM.{action}Multiple",
                json={"Targets": targets},
                idempotent=True,  # ids are in the targets: replaying cannot duplicate
            )
        except D365Error as err:
            result.requests += err.attempts - 1
            if _action_missing(err):
                self._no_multiple.add((meta.logical_name, action))
                return False
            if action == "Create" and err.attempts > 1 and is_duplicate(err):
                return True  # all-or-nothing: an earlier attempt created the whole chunk
            if err.status is not None and err.status < 500 and not err.is_transient:
                return False  # one bad record fails the chunk: redo it per record
            for i in positions:
                result.errors[i] = err
            return True
        result.requests += response.extensions.get("d365nb.attempts", 1) - 1
        if action == "Create" and response.content:
            returned = orjson.loads(response.content).get("Ids")
            if isinstance(returned, list) and len(returned) == len(positions):
                for i, rid in zip(positions, returned, strict=True):
                    result.ids[i] = str(rid).lower()
        return True

    def _write_part(self, action: str, meta: TableMeta, record_id: str, body: dict) -> BatchPart:
        if action == "Create":
            return BatchPart("POST", meta.entity_set, {**body, meta.primary_id: record_id})
        headers = {"If-Match": "*"} if action == "Update" else None
        return BatchPart("PATCH", f"{meta.entity_set}({record_id})", body, headers)

    def _batch_chunk(
        self,
        parts: list[BatchPart],
        positions: list[int],
        action: str,
        result: BulkResult,
        rounds: int = 6,
    ) -> Op:
        """Send parts in ``$batch`` requests; re-send parts that failed transiently."""
        pending = list(range(len(parts)))
        replayed: set[int] = set()
        for round_number in range(rounds):
            if not pending:
                return
            retry_later = []
            for offset in range(0, len(pending), BATCH_LIMIT):
                group = pending[offset : offset + BATCH_LIMIT]
                content, content_type = build_batch([parts[g] for g in group], self.api_path)
                result.requests += 1
                try:
                    response = yield ApiRequest(
                        "POST",
                        "$batch",
                        content=content,
                        idempotent=True,
                        headers={"Content-Type": content_type, "Prefer": "odata.continue-on-error"},
                    )
                except D365Error as err:
                    result.requests += err.attempts - 1
                    for g in group:
                        result.errors[positions[g]] = err
                    continue
                attempts = response.extensions.get("d365nb.attempts", 1)
                result.requests += attempts - 1
                if attempts > 1:
                    replayed.update(group)
                answers = parse_batch(response.content, response.headers.get("content-type", ""))
                for g, answer in zip(group, answers, strict=False):
                    position = positions[g]
                    if answer.ok:
                        result.errors.pop(position, None)
                        continue
                    err = _part_error(answer)
                    if g in replayed and (
                        (action == "Create" and is_duplicate(err))
                        or (action == "Delete" and err.status == 404)
                    ):
                        result.errors.pop(position, None)  # an earlier attempt applied it
                        continue
                    result.errors[position] = err
                    if err.is_transient and round_number < rounds - 1:
                        retry_later.append(g)
                        replayed.add(g)
                for g in group[len(answers) :]:
                    result.errors[positions[g]] = D365Error("no answer for this record in $batch")
            pending = retry_later

    def delete_many_op(
        self,
        table: str,
        records: Any,
        *,
        chunk_size: int = DEFAULT_CHUNK,
        progress: Progress = None,
    ) -> Op:
        meta = yield from self.metadata.load_op(table)
        _check_count(chunk_size, "chunk_size", 1, BATCH_LIMIT)
        ids: list[str] = []
        import pandas as pd

        records = _bulk_input(records, "a list of ids, of dicts, or a DataFrame")
        if isinstance(records, pd.DataFrame):
            raw = (
                list(records[meta.primary_id])
                if meta.primary_id in records.columns
                else list(records.index)
            )
        else:
            raw = list(records)
        for index, item in enumerate(raw):
            value = item.get(meta.primary_id) if isinstance(item, dict) else item
            ids.append(
                normalize_id(
                    value, what=f"record {index}: {meta.logical_name} id", table=_keys(meta)
                )
            )
        _refuse_duplicates(meta, ids)
        result = BulkResult(meta.logical_name, list(ids))
        for start in range(0, len(ids), chunk_size):
            positions = list(range(start, min(start + chunk_size, len(ids))))
            parts = [BatchPart("DELETE", f"{meta.entity_set}({ids[i]})") for i in positions]
            yield from self._batch_chunk(parts, positions, "Delete", result)
            if progress is not None:
                progress(positions[-1] + 1, len(ids))
        for index in result.errors:
            result.ids[index] = None
        return result


def _truncated(rows: int, pages: int, count: int | None, options: dict[str, Any]) -> bool:
    """Whether ``max_pages`` stopped the read before the last matching row.

    Dataverse's ``$count`` stops at 5,000 (``COUNT_LIMIT``): a full read of that many rows
    that hit the page limit may have more behind it."""
    max_pages, top = options.get("max_pages"), options.get("top")
    if max_pages is None or pages < max_pages or (top is not None and rows >= top):
        return False
    if count is None:
        return True
    return rows < count or (count >= COUNT_LIMIT and rows == count)


def _bulk_input(records: Any, expected: str = "a list of dicts or a DataFrame") -> Any:
    """``records`` of a bulk call when it is a DataFrame or an iterable of records."""
    import pandas as pd

    if isinstance(records, pd.DataFrame):
        return records
    if isinstance(records, str | bytes | dict) or not isinstance(records, Iterable):
        raise ValidationError(f"records must be {expected}, got {type(records).__name__}")
    return records


def _refuse_duplicates(meta: TableMeta, ids: list[str]) -> None:
    """One record twice in a bulk call is refused whole, as CreateMultiple/UpdateMultiple do:
    which of the two values should win is the caller's decision, not the chunking's."""
    seen: dict[str, int] = {}
    for index, record_id in enumerate(ids):
        first = seen.setdefault(record_id, index)
        if first != index:
            raise ValidationError(
                f"records {first} and {index} have the same {meta.primary_id} {record_id}; "
                "a bulk call takes each record once (nothing was written)"
            )


class _IdBatch:
    """Random (version 4) GUIDs for many records from one ``os.urandom`` call."""

    def __init__(self, count: int) -> None:
        self._bytes = os.urandom(16 * max(count, 1))
        self._next = 0

    def next(self) -> str:
        chunk = self._bytes[self._next : self._next + 16]
        self._next += 16
        if len(chunk) < 16:
            return str(uuid.uuid4())
        return str(uuid.UUID(bytes=chunk, version=4))


def _part_error(answer) -> D365Error:
    message, code = f"HTTP {answer.status}", None
    if isinstance(answer.body, dict) and isinstance(answer.body.get("error"), dict):
        message = answer.body["error"].get("message") or message
        code = answer.body["error"].get("code") or None
    retry_after = answer.headers.get("retry-after")
    return error_for_status(
        answer.status,
        message,
        code=code,
        retry_after=float(retry_after) if retry_after and retry_after.isdigit() else None,
    )
