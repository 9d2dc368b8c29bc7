"""The sandbox organisation: everything one running sandbox serves from."""

from __future__ import annotations

import asyncio
import contextlib
import functools
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from starlette.concurrency import run_in_threadpool

from .schema.model import Table
from .service import Service
from .store import Store

# ASGI scope key `$batch` sets on requests it dispatches inside a change set (which holds the
# write lock for the whole change set).
IN_CHANGESET = "d365nb.changeset"


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

    @contextlib.asynccontextmanager
    async def writing(self, scope: Mapping[str, Any]) -> AsyncIterator[None]:
        """Hold `write_lock` for one write, unless the request (its ASGI `scope`) runs inside a
        `$batch` change set, which already holds it."""
        if scope.get(IN_CHANGESET):
            yield
            return
        async with self.write_lock:
            yield

    async def off_loop(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """Run store work (`fn(*args, **kwargs)`: SQLite, validation, serialising rows) on a
        worker thread, so the event loop keeps serving other clients meanwhile (a 1000-part
        `$batch` must not stall them). `store.lock` still serialises the SQLite connection."""
        return await run_in_threadpool(functools.partial(fn, *args, **kwargs))

    def read(self, query: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """Run a query engine entry point (`odata.execute`, `odata.count`, `apply.run_apply`,
        `fetchxml.query.run`) as `query(conn, schema, *args, user_id=, now=, **kwargs)`: under
        `store.lock`, as the caller, with the store's clock as "now" (so date query functions
        and `createdon` agree). The one way routes reach the database for reads."""
        with self.store.lock:
            return query(
                self.store.conn,
                self.schema,
                *args,
                user_id=self.user_id,
                now=self.store.clock(),
                **kwargs,
            )

    def __repr__(self) -> str:  # never show the token
        return f"Org(tables={len(self.schema)}, user_id={self.user_id!r})"
