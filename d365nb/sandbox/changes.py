"""Change tracking (dataverse-wire.md §7): delta links over the store's global row versions.

`GET /leads?$select=...` with `Prefer: odata.track-changes` answers every row plus an
`@odata.deltaLink`; following it answers what changed since - created/updated rows in their
current state (new and updated are indistinguishable, as in Dataverse), then
`$deletedEntity` rows for deletes - and a fresh deltaLink.

How it stays cheap: every write in the store takes the next value of one global counter
(`versionnumber`), and a delete leaves a tombstone with its version. A token is the version
high-water mark at the time it was issued, so "changes since" is a range scan on the
`versionnumber` index of the table and the `(tablename, versionnumber)` index of the tombstones:
its cost follows the number of changes, never the size of the table.

A delta answer is bounded by `upto`, the high-water mark when its first page was read: pages of
one answer (nextLink) share it, and the final deltaLink carries it, so a write that lands while
a client pages is reported exactly once - in this answer if it was committed before `upto`, else
in the next one.

Token: `<version>!<MM/dd/yyyy HH:mm:ss>` (UTC issue time), the shape of the documented example;
tokens older than `change_tracking_expiry_days` (default 7) are refused with
`0x80044352` "Version stamp associated with the client has expired. Please perform a full sync."
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote

from starlette.requests import Request
from starlette.responses import Response

from .errors import DataverseError, InvalidArgument, PropertyNotFound, QueryError
from .org import Org
from .responses import (
    MAX_PAGE,
    Prefer,
    api_base,
    base_headers,
    column_name,
    context_select,
    json_response,
    query_params,
    with_lines,
    writer_for,
)
from .schema.model import Table
from .serialize import context_url
from .store import Store
from .values import whole_number

DEFAULT_EXPIRY_DAYS = 7.0
REFUSED_OPTIONS = ("$filter", "$orderby", "$expand", "$top")

_TOKEN = re.compile(r"^(\d{1,19})!(\d{2})/(\d{2})/(\d{4}) (\d{2}):(\d{2}):(\d{2})$")
_COOKIE_ATTR = re.compile(r'(\w+)="([^"]*)"')


class ChangeTrackingNotEnabled(DataverseError):
    """`0x80072491` ChangeTrackingNotEnabledForEntity."""

    code = "0x80072491"

    def __init__(self, logical_name: str) -> None:
        super().__init__(f"Entity {logical_name} isn't enabled for change tracking.")


class ExpiredVersionStamp(DataverseError):
    """`0x80044352` ExpiredVersionStamp: the client must start again with a full sync."""

    code = "0x80044352"

    def __init__(self) -> None:
        super().__init__(
            "Version stamp associated with the client has expired. Please perform a full sync."
        )


@dataclass(frozen=True)
class DeltaToken:
    """A decoded `$deltatoken`: the version high-water mark and when it was issued."""

    version: int
    issued: datetime

    def __str__(self) -> str:
        return f"{self.version}!{self.issued.astimezone(UTC):%m/%d/%Y %H:%M:%S}"


def make_token(version: int, issued: datetime) -> str:
    """The token text for a version issued at `issued` (UTC)."""
    return str(DeltaToken(version, issued.replace(microsecond=0)))


def parse_token(text: str) -> DeltaToken:
    """Decode a `$deltatoken`, raising InvalidArgument if it is not one the sandbox issued."""
    match = _TOKEN.match(text.strip())
    if match:
        version, month, day, year, hour, minute, second = (int(g) for g in match.groups())
        try:
            issued = datetime(year, month, day, hour, minute, second, tzinfo=UTC)
        except ValueError:
            issued = None
        if issued is not None:
            return DeltaToken(version, issued)
    raise InvalidArgument(
        f"The $deltatoken '{text[:60]}' is not valid; use the @odata.deltaLink of an earlier "
        "change-tracking response, or start a full sync without $deltatoken."
    )


@dataclass(frozen=True)
class Cursor:
    """Where a paged delta answer continues: phase ('u' upserts, 'd' deletes), last version
    returned in that phase, the answer's upper bound, and whether it is an initial sync."""

    phase: str
    after: int
    upto: int
    initial: bool
    page: int = 2

    def skiptoken(self) -> str:
        # Shaped like Dataverse's paging cookie, with istracking="True" (dataverse-wire.md §7).
        return (
            f'<cookie pagenumber="{self.page}" phase="{self.phase}" last="{self.after}" '
            f'upto="{self.upto}" initial="{int(self.initial)}" istracking="True" />'
        )

    @classmethod
    def parse(cls, text: str) -> Cursor:
        attrs = dict(_COOKIE_ATTR.findall(text))
        # whole_number: ASCII digits within SQLite's 64-bit integers (a 20-digit `last` must be
        # a 400, not an OverflowError in the query)
        numbers = [whole_number(attrs.get(k, "")) for k in ("last", "upto")]
        page = whole_number(attrs.get("pagenumber", "2"))
        if "phase" in attrs and "initial" in attrs and None not in numbers and page is not None:
            cursor = cls(attrs["phase"], numbers[0], numbers[1], attrs["initial"] == "1", page)
        else:
            cursor = None
        if cursor is None or cursor.phase not in ("u", "d"):
            raise InvalidArgument(
                "The $skiptoken of this change-tracking request is not valid; follow the "
                "@odata.nextLink exactly as it was returned."
            )
        return cursor


@dataclass
class ChangePage:
    """One page of a delta answer, in storage form."""

    rows: list[dict[str, Any]]  # created/updated rows, version order
    deleted: list[str]  # ids, version order
    next_cursor: Cursor | None  # None: this was the last page
    upto: int


def read_changes(
    store: Store,
    table: Table,
    columns: list[str],
    since: int | None,
    cursor: Cursor | None,
    size: int,
) -> ChangePage:
    """Read one page of changes to `table` after version `since` (None: an initial sync).

    Without a cursor the answer's upper bound is the store's current version.
    """
    initial = cursor.initial if cursor else since is None
    since = since or 0
    upto = cursor.upto if cursor else store.version
    phase = cursor.phase if cursor else "u"
    after = max(since, cursor.after) if cursor else since
    name = table.logical_name
    page = (cursor.page if cursor else 1) + 1
    rows: list[dict[str, Any]] = []
    deleted: list[str] = []
    # One lock over both reads: no write lands between the upserts and the deletes of a page.
    with store.lock:
        if phase == "u":
            rows = store.changed_rows(name, columns, after, upto, size + 1)
            if len(rows) > size:
                rows = rows[:size]
                return ChangePage(
                    rows, [], Cursor("u", rows[-1]["versionnumber"], upto, initial, page), upto
                )
            phase, after = "d", since
        if initial:  # a full sync reports what exists; there is nothing to delete yet
            return ChangePage(rows, [], None, upto)
        room = size - len(rows)
        # (a tombstone whose id exists again is reported as an upsert: see `deletes_sql`)
        found = store.deleted_ids(name, after, upto, room + 1)
    if len(found) > room:
        found = found[:room]
        deleted = [i for i, _ in found]
        last = found[-1][1] if found else after
        return ChangePage(rows, deleted, Cursor("d", last, upto, initial, page), upto)
    return ChangePage(rows, [i for i, _ in found], None, upto)


# -- HTTP ------------------------------------------------------------------------------------


def _expiry_days(org: Org) -> float:
    value = org.config.get("change_tracking_expiry_days")
    return DEFAULT_EXPIRY_DAYS if value is None else float(value)


def _selected(table: Table, select: str | None) -> list[str] | None:
    """Selected attribute names (lookups as `_x_value` map to `x`), or None for all."""
    if not select:
        return None
    out = []
    for raw in select.split(","):
        name = raw.strip()
        if not name:
            continue
        if column_name(table, name) not in table.columns:
            raise PropertyNotFound(name, table.logical_name)
        out.append(name)
    return out


def _storage_columns(store: Store, table: Table, select: list[str] | None) -> list[str]:
    all_columns = store.columns(table.logical_name)
    if select is None:
        return all_columns
    wanted = {table.primary_id}
    for name in select:
        column = column_name(table, name)
        wanted.add(column)
        wanted.add(f"{column}__type")
    return [c for c in all_columns if c in wanted]


def _since(org: Org, token_text: str | None) -> int | None:
    """The version a `$deltatoken` stands for (None without one), refusing bad or old tokens."""
    if token_text is None:
        return None
    store = org.store
    token = parse_token(token_text)
    if token.version > store.version:
        raise InvalidArgument(
            f"The $deltatoken '{token_text[:60]}' was not issued by this organization; "
            "start a full sync without $deltatoken."
        )
    if store.clock() - token.issued > timedelta(days=_expiry_days(org)):
        raise ExpiredVersionStamp()
    return token.version


def count_changes(store: Store, table: Table, since: int) -> int:
    """How many rows a delta from `since` would report (`<set>/$count?$deltatoken=...`)."""
    return store.count_changes(table.logical_name, since, store.version)


async def handle(request: Request, table: Table) -> Response:
    """Answer a collection GET with `Prefer: odata.track-changes` or a `$deltatoken` (also
    `<set>/$count?$deltatoken=...`, which counts the changes)."""
    org: Org = request.app.state.org
    params = query_params(request)
    for option in REFUSED_OPTIONS:
        if option in params:
            raise QueryError(
                f'The "{option}" query parameter isn\'t supported when Change Tracking is enabled.'
            )
    if not table.change_tracking:
        raise ChangeTrackingNotEnabled(table.logical_name)
    store = org.store
    now = store.clock()
    token_text = params.get("$deltatoken")
    since = _since(org, token_text)
    if request.url.path.endswith("/$count"):
        n = count_changes(store, table, since or 0)
        return Response(str(n), 200, base_headers(), media_type="text/plain")
    skiptoken = params.get("$skiptoken")
    cursor = Cursor.parse(skiptoken) if skiptoken else None
    prefer = Prefer(request)
    size = prefer.max_page_size or MAX_PAGE
    select_text = params.get("$select")
    select = _selected(table, select_text)
    columns = _storage_columns(store, table, select)
    # A `$batch` change set writes across awaits while holding the write lock; reading under
    # it means a delta never reports rows that a rolled-back change set wrote.
    async with org.write_lock:
        page = await org.off_loop(read_changes, store, table, columns, since, cursor, size)

    writer = writer_for(org, table, select, None, prefer.annotations)
    api = api_base(request)
    entity_set = table.entity_set
    delta = token_text is not None and not (cursor is not None and cursor.initial)
    body: dict[str, Any] = {
        "@odata.context": context_url(api, table, context_select(table, params, None, org.schema))
        + ("/$delta" if delta else ""),
    }
    base = f"{api}{entity_set}?" + (
        f"$select={quote(select_text, safe=',_')}&" if select_text else ""
    )
    if page.next_cursor is not None:
        # Pages of one answer carry the same $deltatoken so they route back here.
        carried = token_text if token_text is not None else make_token(0, now)
        body["@odata.nextLink"] = (
            f"{base}$deltatoken={quote(carried, safe='')}"
            f"&$skiptoken={quote(page.next_cursor.skiptoken(), safe='')}"
        )
    else:
        body["@odata.deltaLink"] = f"{base}$deltatoken={quote(make_token(page.upto, now), safe='')}"
    value = writer.records(page.rows)
    deleted_context = f"{api}$metadata#{entity_set}/$deletedEntity"
    value.extend(
        {"@odata.context": deleted_context, "id": id, "reason": "deleted"} for id in page.deleted
    )
    body["value"] = value
    response = json_response(body)
    # one Preference-Applied line each, as Dataverse answers
    return with_lines(
        response,
        prefer.applied("odata.track-changes", "odata.maxpagesize", "odata.include-annotations"),
    )
