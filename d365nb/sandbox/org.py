"""The sandbox organisation: everything one running sandbox serves from."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from typing import Any

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

    def __repr__(self) -> str:  # never show the token
        return f"Org(tables={len(self.schema)}, user_id={self.user_id!r})"
