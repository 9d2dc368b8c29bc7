"""``Dataverse`` (blocking) and ``AsyncDataverse`` (asyncio): the same operations over one
pooled HTTP client each, plus :func:`connect`.

    >>> d365 = d365nb.connect("sandbox")
    >>> leads = d365.list("leads", filter="statuscode eq 1", select="subject,lastname", top=10)
    >>> task_id = d365.create("tasks", {"subject": "Call back", "regardingobjectid": ("leads", lead_id)})
"""

from __future__ import annotations

import atexit
import contextlib
import functools
import os
import threading
import weakref
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any
from urllib.parse import urlsplit

import httpx
import pandas as pd

from d365nb.client import auth as auth_mod
from d365nb.client import transport as transport_mod
from d365nb.client.aggregate import aggregate_op
from d365nb.client.connect_options import check_connect
from d365nb.client.errors import D365Error, ValidationError
from d365nb.client.fetchxml import fetchxml_op
from d365nb.client.governor import MAX_CONCURRENCY, Governor
from d365nb.client.http import DEFAULT_TIMEOUT, AsyncSession, SyncSession
from d365nb.client.metadata import MetadataCache, TableMeta
from d365nb.client.operations import DEFAULT_CHUNK, Operations, Progress
from d365nb.client.registry import connections
from d365nb.client.results import BulkResult, Changes, Page, TruncatedRead
from d365nb.client.retry import RetryPolicy

__all__ = ["Dataverse", "AsyncDataverse", "connect"]

API_PATH = "/api/data/v9.2/"


def _split_url(url: str) -> tuple[str, str]:
    """(org URL, API root URL) from an org URL or an API URL."""
    if not isinstance(url, str) or "://" not in url:
        raise ValidationError(
            f"expected an organisation URL like 'https://contoso.crm.dynamics.com' or 'sandbox', "
            f"got {url!r}"
        )
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValidationError(f"not an http(s) URL: {url!r}")
    org = f"{parts.scheme}://{parts.netloc}"
    if "/api/data/" in parts.path:
        return org, org + parts.path.rstrip("/") + "/"
    return org, org + API_PATH


def _default_alias(org_url: str) -> str:
    """``contoso`` for ``https://contoso.crm.dynamics.com``; ``local`` for loopback/IP hosts."""
    host = urlsplit(org_url).hostname or "org"
    if host == "localhost" or host.replace(".", "").isdigit() or ":" in host:
        return "local"
    return host.split(".")[0]


def _token_source(org_url: str, auth: Any, token: Any, options: dict[str, Any]) -> Any:
    """The token source for the arguments given to connect()."""
    msal_kwargs = {
        k: options[k]
        for k in ("cache_path", "persist", "http_client", "authority_host")
        if k in options
    }
    if token is not None:
        if auth is not None:
            raise ValidationError("give either token= or auth=, not both")
        return (
            auth_mod.StaticToken(token) if isinstance(token, str) else auth_mod.CallableToken(token)
        )
    if auth is not None and hasattr(auth, "token") and hasattr(auth, "cached"):
        return auth
    if isinstance(auth, dict):
        return auth_mod.ClientSecretAuth(org_url, **auth, **msal_kwargs)
    if auth in (None, "env", "client_secret"):
        from_env = auth_mod.auth_from_env(org_url, **msal_kwargs)
        if from_env is not None:
            return from_env
        if auth is not None:
            raise ValidationError(
                "client secret sign-in needs AZURE_TENANT_ID, AZURE_CLIENT_ID and "
                "AZURE_CLIENT_SECRET (or auth={'tenant_id':..., 'client_id':..., "
                "'client_secret':...})"
            )
    if auth in (None, "device_code"):
        return auth_mod.DeviceCodeAuth(
            org_url,
            callback=options.get("device_code_callback"),
            **{k: options[k] for k in ("client_id", "tenant_id") if k in options},
            **msal_kwargs,
        )
    if auth == "interactive":
        return auth_mod.InteractiveAuth(
            org_url,
            **{k: options[k] for k in ("client_id", "tenant_id") if k in options},
            **msal_kwargs,
        )
    raise ValidationError(
        f"unknown auth {auth!r}: use 'device_code', 'interactive', 'client_secret', a dict of "
        "tenant_id/client_id/client_secret, or a token provider"
    )


class _Connection(Operations):
    """State both facades share: URLs, tokens, governor, metadata."""

    def __init__(
        self,
        url: str,
        *,
        auth: Any = None,
        token: str | Callable[[], Any] | None = None,
        verify: bool | str = True,
        timeout: float | httpx.Timeout | None = None,
        alias: str | None = None,
        max_concurrency: int = MAX_CONCURRENCY,
        retry: RetryPolicy | None = None,
        transport: Any = None,
        _shared: _Connection | None = None,
        **auth_options: Any,
    ) -> None:
        super().__init__()
        self.sandbox: Any = None
        # Any httpx transport (None: the network); each facade adapts it (client/transport.py).
        self.transport = transport
        url = check_connect(
            url=url,
            verify=verify,
            timeout=timeout,
            alias=alias,
            retry=retry,
            auth=auth,
            options=auth_options,
        )
        if url == "sandbox":
            from d365nb import sandbox as sandbox_mod

            sandbox_options = auth_options.pop("sandbox_options", None) or {}
            try:
                self.sandbox = sandbox_mod.start(**sandbox_options)
            except (TypeError, ValueError) as exc:  # a bad option: one line naming it
                raise ValidationError(f"sandbox_options: {exc}") from None
            url, token = self.sandbox.url, self.sandbox.token
            verify = self.sandbox.ca or verify
            alias = alias or "sandbox"
        self.url, self.api_url = _split_url(url)
        self.api_path = urlsplit(self.api_url).path
        self.alias = alias or _default_alias(self.url)
        self.verify = verify
        self.timeout = (
            httpx.Timeout(timeout) if isinstance(timeout, int | float) else timeout
        ) or DEFAULT_TIMEOUT
        if _shared is not None:
            self.tokens, self.governor, self.metadata = (
                _shared.tokens,
                _shared.governor,
                _shared.metadata,
            )
            self.retry = retry or _shared.retry
        else:
            if (
                isinstance(max_concurrency, bool)
                or not isinstance(max_concurrency, int)
                or not 1 <= max_concurrency <= MAX_CONCURRENCY
            ):
                # Dataverse refuses more than 52 concurrent requests per user (0x80072326).
                raise ValidationError(
                    f"max_concurrency must be 1..{MAX_CONCURRENCY}, got {max_concurrency!r}"
                )
            self.tokens = _token_source(self.url, auth, token, auth_options)
            self.governor = Governor(max_concurrency)
            self.metadata = MetadataCache()
            self.retry = retry or RetryPolicy()
        self._closed = False

    def _client_options(self) -> dict[str, Any]:
        """What the blocking and the async httpx clients are built with (one of each kind)."""
        return {
            "verify": self._verify(),
            "timeout": self.timeout,
            "limits": self._limits(),
            "transport": self.transport,
        }

    def _open_session(self, session_type: type, client_type: type) -> Any:
        """The facade's session: `SyncSession` over an ``httpx.Client``, or `AsyncSession` over
        an ``httpx.AsyncClient``, sharing this connection's sign-in, governor and retry policy."""
        client = client_type(**self._client_options())
        return session_type(self.api_url, self.tokens, client, self.governor, self.retry)

    def _limits(self) -> httpx.Limits:
        # One pool sized to the governor: no request ever waits for a socket it could have had.
        return httpx.Limits(
            max_connections=self.governor.max_limit,
            max_keepalive_connections=self.governor.max_limit,
        )

    def _verify(self) -> Any:
        if isinstance(self.verify, str | os.PathLike):
            import ssl

            return ssl.create_default_context(cafile=str(self.verify))
        if self.verify is True:
            return default_tls()
        return self.verify

    @property
    def requests_sent(self) -> int:
        """HTTP requests sent by this connection (retries included)."""
        return self._session.requests_sent

    def __repr__(self) -> str:
        state = "closed" if self._closed else "open"
        return f"{type(self).__name__}(url={self.url!r}, alias={self.alias!r}, {state})"

    _TABLE_COLUMNS = (
        "logical_name",
        "entity_set",
        "display_name",
        "primary_id",
        "primary_name",
        "change_tracking",
    )

    def _tables_frame(self) -> pd.DataFrame:
        entries = sorted(self.metadata.table_list(), key=lambda e: e.logical_name)
        rows = [[getattr(e, name) for name in self._TABLE_COLUMNS] for e in entries]
        # Built with explicit columns so an org without tables still gets the same frame shape.
        return pd.DataFrame(rows, columns=list(self._TABLE_COLUMNS)).set_index("logical_name")

    @staticmethod
    def _describe_frame(meta: TableMeta) -> pd.DataFrame:
        rows = [
            {
                "column": c.name,
                "display_name": c.display_name,
                "type": c.type,
                "required": c.required_level,
                "max_length": c.max_length,
                "min_value": c.min_value,
                "max_value": c.max_value,
                "choices": dict(c.options) if c.options else None,
                "targets": list(c.targets) if c.targets else None,
                "read_only": c.read_only,
            }
            for c in meta.columns.values()
            if not c.attribute_of
        ]
        frame = pd.DataFrame(rows).set_index("column")
        frame.attrs["table"] = meta.logical_name
        return frame

    def update_many_op(
        self,
        table: str,
        records: Any,
        *,
        chunk_size: int,
        progress: Progress,
        missing: str,
        dry_run: bool,
    ) -> Any:
        """A frame read by ``list`` goes back as a diff (``client.roundtrip``); anything else
        is a plain bulk update of every record given."""
        from d365nb.client import roundtrip

        meta = yield from self.metadata.load_op(table)
        snapshot = roundtrip.snapshot_for(records, meta)
        if snapshot is not None:
            return (
                yield from roundtrip.write_back_op(
                    self,
                    meta,
                    records,
                    snapshot,
                    chunk_size=chunk_size,
                    progress=progress,
                    dry_run=dry_run,
                )
            )
        if dry_run:
            raise ValidationError(
                "dry_run needs a DataFrame read by list() (it diffs against what was read)"
            )
        return (
            yield from self.bulk_op(
                "Update",
                table,
                records,
                chunk_size=chunk_size,
                progress=progress,
                missing=missing,
            )
        )

    # -- the calls both facades share ---------------------------------------------------------
    # Each builds an operation (`operations`) and hands it to `_run` / `_iterate`: the blocking
    # facade runs it to the end and returns the value; the asyncio facade's `_run` is a
    # coroutine function, so there the same call returns an awaitable (`await conn.get(...)`).
    # One definition, so the two facades cannot drift apart.

    def list(
        self,
        table: str,
        filter: str | None = None,
        orderby: str | list[str] | None = None,
        select: str | list[str] | None = None,
        top: int | None = None,
        expand: str | list[str] | None = None,
        count: bool = False,
        page_size: int | None = None,
        max_pages: int | None = None,
        labels: bool = False,
        progress: Progress = None,
        flatten: bool = True,
        explode: bool = False,
    ) -> pd.DataFrame:
        """Records of ``table`` as a DataFrame indexed by the primary id (all pages).

        ``df.attrs`` holds ``pages``, ``count`` (with ``count=True``, or when ``max_pages`` may
        cut the read), ``truncated`` (``max_pages`` stopped before the last row: a
        :class:`TruncatedRead` warning says so with the count), ``elapsed`` and ``table``.
        ``progress(rows_so_far, count_or_None)`` is called after each page.
        ``flatten`` (default) turns ``expand`` results into ``nav.col`` columns; ``explode``
        gives one row per child of a collection-valued expand (else a list column).
        The frame remembers what was read: edit it and ``update_many(table, df)`` sends only
        the changed cells.
        """
        return self._finish_list(
            self._run(
                self.list_op(
                    table,
                    filter=filter,
                    orderby=orderby,
                    select=select,
                    top=top,
                    expand=expand,
                    count=count,
                    page_size=page_size,
                    max_pages=max_pages,
                    labels=labels,
                    progress=progress,
                    flatten=flatten,
                    explode=explode,
                )
            )
        )

    def iter_pages(
        self,
        table: str,
        filter: str | None = None,
        orderby: str | list[str] | None = None,
        select: str | list[str] | None = None,
        top: int | None = None,
        expand: str | list[str] | None = None,
        count: bool = False,
        page_size: int | None = None,
        max_pages: int | None = None,
        labels: bool = False,
    ) -> Iterator[list[dict]]:
        """Pages of raw JSON records, following ``@odata.nextLink`` (on an
        :class:`AsyncDataverse`, an async iterator: ``async for page in conn.iter_pages(...)``)."""
        return self._iterate(
            self.pages_op(
                table,
                filter=filter,
                orderby=orderby,
                select=select,
                top=top,
                expand=expand,
                count=count,
                page_size=page_size,
                max_pages=max_pages,
                labels=labels,
            )
        )

    def get(
        self, table: str, id: Any, select: Any = None, expand: Any = None, labels: bool = True
    ) -> dict:
        """One record as JSON (with formatted-value annotations when ``labels``)."""
        return self._run(self.get_op(table, id, select=select, expand=expand, labels=labels))

    def whoami(self) -> dict:
        """``{"UserId", "BusinessUnitId", "OrganizationId"}`` of the signed-in principal."""
        return self._run(self.whoami_op())

    def aggregate(
        self,
        table: str,
        groupby: str | list[str] | None = None,
        agg: dict[str, str] | str | None = None,
        filter: str | None = None,
        labels: bool = False,
    ) -> pd.DataFrame:
        """Counts, sums, averages, min/max per group in ONE request (``$apply``, or FetchXML
        for ``count(col)`` and date parts): one row per group, group columns first.

        ``d365.aggregate("leads", groupby=["statuscode"], agg={"n": "count()",
        "total": "sum(estimatedvalue)"})``; see :mod:`d365nb.client.aggregate`.
        """
        return self._run(
            aggregate_op(self, table, groupby=groupby, agg=agg, filter=filter, labels=labels)
        )

    def fetchxml(self, xml: str, all_pages: bool = False) -> pd.DataFrame:
        """Run a FetchXML query; ``all_pages`` follows the paging cookies. Link-entity columns
        are named ``alias.column``."""
        return self._run(fetchxml_op(self, xml, all_pages=all_pages))

    def changes(self, table: str, token: str | None = None, select: Any = None) -> Changes:
        """Records created/updated and ids deleted since ``token`` (None: everything now), and
        the next token. An expired token raises :class:`ChangeTokenExpired`: call again with
        ``token=None`` to resync."""
        return self._run(self.changes_op(table, token, select))

    def validate(self, table: str, values: dict, *, for_update: bool = False) -> dict:
        """Check ``values`` for ``table`` exactly as ``create`` (or ``update`` with
        ``for_update=True``) would, without writing anything; returns the JSON body that would
        be sent (lookups as ``nav@odata.bind``, choices as values, dates as ISO 8601).

        Raises :class:`ValidationError` / :class:`UnknownColumn` naming the field, the expected
        type and an example. Only metadata is read (once per table).

        >>> d365.validate("tasks", {"prioritycode": "High", "regardingobjectid": ("leads", lead_id)})
        {'prioritycode': 2, 'regardingobjectid_lead_task@odata.bind': '/leads(...)'}
        """
        return self._run(self.validate_op(table, values, for_update=for_update))

    def create(self, table: str, values: dict, id: Any = None) -> str:
        """Create a record; returns its id (generated client-side unless given)."""
        return self._run(self.create_op(table, values, id))

    def update(self, table: str, id: Any, values: dict) -> None:
        """Update an existing record (``If-Match: *``: never creates)."""
        return self._run(self.update_op(table, id, values))

    def upsert(self, table: str, id: Any, values: dict) -> bool:
        """Update or create the record with this id; True when it was created."""
        return self._run(self.upsert_op(table, id, values))

    def delete(self, table: str, id: Any) -> None:
        """Delete a record."""
        return self._run(self.delete_op(table, id))

    def create_many(
        self,
        table: str,
        records: Any,
        chunk_size: int = DEFAULT_CHUNK,
        progress: Progress = None,
        missing: str = "null",
    ) -> BulkResult:
        """Create records from a list of dicts or a DataFrame (CreateMultiple, else $batch).

        Missing cells (NaN, ``pd.NA``, ``NaT``) are sent as explicit nulls and clear the column
        (``missing="null"``, the default); ``missing="omit"`` leaves them out instead, and an
        update left with nothing to send is refused. Ids may be GUIDs in any case, braced or
        pasted record URLs; the same record twice in one call is refused before any request.
        """
        return self._run(
            self.bulk_op(
                "Create", table, records, chunk_size=chunk_size, progress=progress, missing=missing
            )
        )

    def update_many(
        self,
        table: str,
        records: Any,
        chunk_size: int = DEFAULT_CHUNK,
        progress: Progress = None,
        missing: str = "null",
        dry_run: bool = False,
    ) -> BulkResult:
        """Update records; each carries its primary key (a column, or the DataFrame index).

        A DataFrame read by :meth:`list` (then edited) is written back: only changed cells are
        sent, each record with ``If-Match`` on the etag it was read with; columns that cannot
        be written are skipped (``result.plan.skipped_line()``). ``dry_run=True`` returns that
        plan (``result.plan.changes``: id, column, old, new) and sends nothing.

        Missing cells and ids: as in :meth:`create_many`.
        """
        return self._run(
            self.update_many_op(
                table,
                records,
                chunk_size=chunk_size,
                progress=progress,
                missing=missing,
                dry_run=dry_run,
            )
        )

    def upsert_many(
        self,
        table: str,
        records: Any,
        chunk_size: int = DEFAULT_CHUNK,
        progress: Progress = None,
        missing: str = "null",
    ) -> BulkResult:
        """Create-or-update records by primary key (UpsertMultiple, else $batch).

        Missing cells and ids: as in :meth:`create_many`.
        """
        return self._run(
            self.bulk_op(
                "Upsert", table, records, chunk_size=chunk_size, progress=progress, missing=missing
            )
        )

    def delete_many(
        self, table: str, records: Any, chunk_size: int = DEFAULT_CHUNK, progress: Progress = None
    ) -> BulkResult:
        """Delete records given as ids, dicts with the primary key, or a DataFrame."""
        return self._run(
            self.delete_many_op(table, records, chunk_size=chunk_size, progress=progress)
        )


class _Exchange:
    """One operation generator (`operations`) as both drivers step it: iterating gives what it
    yields next (an `ApiRequest` or a `Page`), resuming it with ``answer`` - the response to the
    request, or the typed error, thrown into it; ``value`` is what it returned at the end."""

    def __init__(self, op: Any) -> None:
        self._op = op
        self.answer: Any = None
        self.value: Any = None

    def __iter__(self) -> Iterator[Any]:
        while True:
            answer, self.answer = self.answer, None
            try:
                if isinstance(answer, D365Error):
                    item = self._op.throw(answer)
                else:
                    item = self._op.send(answer)
            except StopIteration as stop:
                self.value = stop.value
                return
            yield item

    @contextlib.contextmanager
    def answering(self) -> Iterator[None]:
        """Around sending a request: a typed error becomes the answer the operation sees."""
        try:
            yield
        except D365Error as exc:
            self.answer = exc


@functools.cache
def default_tls() -> Any:
    """The TLS context of ``verify=True``, made once per process and shared by every
    connection: httpx would otherwise load the whole CA bundle again for each client (~30 ms a
    connection). Same trust as httpx's default (its bundle, ``SSL_CERT_FILE``/``SSL_CERT_DIR``)."""
    return httpx.create_ssl_context()


def _warn_truncated(frame: pd.DataFrame, stacklevel: int) -> pd.DataFrame:
    """Say when a page limit cut the result, with how many rows match (the warning names the
    caller's line: `stacklevel` frames up)."""
    if frame.attrs.get("truncated"):
        import warnings

        count = frame.attrs.get("count")
        of = "more"
        if count is not None:  # Dataverse counts at most 5,000: "5,000+" then
            of = f"{count:,}" + ("+" if count <= len(frame) else "")
        warnings.warn(
            f"{frame.attrs.get('table')}: read {frame.attrs.get('pages')} page(s), "
            f"{len(frame):,} of {of} rows; max_pages=None reads them all",
            TruncatedRead,
            stacklevel=stacklevel,
        )
    return frame


class Dataverse(_Connection):
    """A blocking connection to one Dataverse organisation (or the sandbox).

    Thread-safe: a notebook cell and a background flow may share it; they share one connection
    pool and one throttle governor. Use as a context manager or call :meth:`close`.
    """

    def __init__(self, url: str, **kwargs: Any) -> None:
        super().__init__(url, **kwargs)
        self.transport = transport_mod.for_sync(self.transport)
        self._session = self._open_session(SyncSession, httpx.Client)
        self.metadata._runner = self._run
        if self.sandbox is not None:
            _close_at_exit(self)

    # -- drivers -------------------------------------------------------------------------------

    def _drive(self, op: Any) -> Iterator[list[dict]]:
        """Run an operation generator: send its requests (typed errors are thrown back into it),
        yield the pages it hands out, and return its value."""
        exchange = _Exchange(op)
        for item in exchange:
            if isinstance(item, Page):
                yield item.records
            else:
                with exchange.answering():
                    exchange.answer = self._session.send(item)
        return exchange.value

    def _run(self, op: Any) -> Any:
        driver = self._drive(op)
        while True:
            try:
                next(driver)  # pages of a non-paging call are not wanted
            except StopIteration as stop:
                return stop.value

    def _iterate(self, op: Any) -> Iterator[list[dict]]:
        return self._drive(op)

    def _finish_list(self, frame: pd.DataFrame) -> pd.DataFrame:
        # warn -> _warn_truncated -> here -> list -> the caller
        return _warn_truncated(frame, stacklevel=4)

    # -- reads ---------------------------------------------------------------------------------

    def tables(self) -> pd.DataFrame:
        """Every table: logical name (index), entity set, display name, keys, change tracking."""
        self._run(self.metadata.entries_op())
        return self._tables_frame()

    def describe(self, table: str) -> pd.DataFrame:
        """The columns of ``table``: display name, type, required level, limits, choices."""
        return self._describe_frame(self.metadata.table(table))

    # -- lifecycle -----------------------------------------------------------------------------

    def aio(self) -> AsyncDataverse:
        """An :class:`AsyncDataverse` sharing this connection's sign-in, throttle governor and
        metadata cache (for asyncio code such as the flows engine)."""
        return AsyncDataverse(
            self.api_url,
            alias=self.alias,
            verify=self.verify,
            timeout=self.timeout,
            retry=self.retry,
            transport=self.transport,
            _shared=self,
        )

    def close(self) -> None:
        """Close the connection pool (and stop the sandbox ``connect('sandbox')`` started)."""
        if self._closed:
            return
        self._closed = True
        self._session.close()
        connections.remove(self)
        if self.sandbox is not None:
            self.sandbox.stop()

    def __enter__(self) -> Dataverse:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


class AsyncDataverse(_Connection):
    """The asyncio twin of :class:`Dataverse`: the same methods, awaited (``iter_pages`` is an
    async iterator). Most are the very definitions of :class:`Dataverse` (see `_Connection`):
    here `_run` is a coroutine function, so each call returns an awaitable.
    ``await conn.load_table(name)`` fills ``conn.metadata``."""

    def __init__(self, url: str, **kwargs: Any) -> None:
        super().__init__(url, **kwargs)
        # From aio(): the blocking connection's transport, which that connection closes.
        borrowed = kwargs.get("_shared") is not None
        self.transport = transport_mod.for_async(self.transport, borrowed=borrowed)
        self._session = self._open_session(AsyncSession, httpx.AsyncClient)
        if self.sandbox is not None:
            _close_at_exit(self)

    async def _run(self, op: Any) -> Any:
        result: list[Any] = []
        async for _ in self._iterate(op, result):
            pass  # pages of a non-paging call are not wanted
        return result[0]

    async def _iterate(self, op: Any, result: list[Any] | None = None) -> AsyncIterator[list[dict]]:
        """The asyncio twin of `Dataverse._drive`. An async generator cannot return a value, so
        the operation's value is appended to `result` (for `_run`)."""
        exchange = _Exchange(op)
        for item in exchange:
            if isinstance(item, Page):
                yield item.records
            else:
                with exchange.answering():
                    exchange.answer = await self._session.send(item)
        if result is not None:
            result.append(exchange.value)

    async def _finish_list(self, pending: Any) -> pd.DataFrame:
        # warn -> _warn_truncated -> here -> the caller awaiting (list has returned already)
        return _warn_truncated(await pending, stacklevel=3)

    async def load_table(self, table: str) -> TableMeta:
        """Metadata of ``table`` (loaded once, then cached in ``self.metadata``)."""
        return await self._run(self.metadata.load_op(table))

    async def tables(self) -> pd.DataFrame:
        """See :meth:`Dataverse.tables`."""
        await self._run(self.metadata.entries_op())
        return self._tables_frame()

    async def describe(self, table: str) -> pd.DataFrame:
        """See :meth:`Dataverse.describe`."""
        return self._describe_frame(await self.load_table(table))

    async def aclose(self) -> None:
        """Close the connection pool (and stop a sandbox this connection started)."""
        if self._closed:
            return
        self._closed = True
        await self._session.aclose()
        connections.remove(self)
        if self.sandbox is not None:
            self.sandbox.stop()

    async def __aenter__(self) -> AsyncDataverse:
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.aclose()


_open_sandboxes: weakref.WeakSet = weakref.WeakSet()
_atexit_lock = threading.Lock()
_atexit_registered = False


def _close_at_exit(conn: _Connection) -> None:
    """Stop embedded sandboxes when the interpreter exits, even if nobody called close()."""
    global _atexit_registered
    _open_sandboxes.add(conn)
    with _atexit_lock:
        if not _atexit_registered:
            atexit.register(_stop_sandboxes)
            _atexit_registered = True


def _stop_sandboxes() -> None:
    for conn in list(_open_sandboxes):
        if conn.sandbox is not None and not conn._closed:
            with contextlib.suppress(Exception):  # best effort at exit
                conn.sandbox.stop()


def connect(
    url: str = "sandbox", *, alias: str | None = None, transport: Any = None, **kwargs: Any
) -> Dataverse:
    """Open a :class:`Dataverse` connection and make it the current one.

    * ``connect("sandbox")`` starts an embedded sandbox with demo data (stopped on ``close()``
      or at exit); ``sandbox_options={...}`` are passed to ``d365nb.sandbox.start``.
    * ``connect(url)`` signs in with msal: client secret from ``AZURE_TENANT_ID`` /
      ``AZURE_CLIENT_ID`` / ``AZURE_CLIENT_SECRET`` if set, else device code.
      ``auth="device_code" | "interactive" | "client_secret" | {tenant_id, client_id,
      client_secret} | provider``; ``device_code_callback=``, ``cache_path=``.
    * ``connect(url, token="..." | callable)``; ``verify=ca_path`` for a private CA.
    * ``transport=`` any httpx transport instead of the network, e.g.
      ``httpx.ASGITransport(app=...)`` over an in-process sandbox app (``client/transport.py``).
    """
    conn = Dataverse(url, alias=alias, transport=transport, **kwargs)
    connections.add(conn, conn.alias)
    return conn
