"""Deterministic, realistic demo data for the sandbox, inserted in bulk through the store.

    from d365nb.sandbox import demo
    counts = demo.populate(store, schema, seed=0)   # {"lead": 1200, ...}
    demo.CALLER_ID                                  # the systemuser WhoAmI returns

~10 users (the first, `CALLER_ID`, is the caller), 2 teams, 220 accounts, 600 contacts, 1200
leads across every status reason, ~1300 tasks regarding accounts, contacts and leads, 300
opportunities, 250 e-mails with their sender and recipient as activity parties - linked by
lookups, with a few awkward values (`O'Neil`, accents, missing e-mails) so filters and quoting
get exercised. Ids are sequential in `createdon` order, as Dataverse assigns them, so reading
without `$orderby` gives creation order. Same `seed` -> same ids; same `seed` and `now` -> same
values.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from ..schema.model import Table
from .records import CALLER_ID, DemoBuilder

__all__ = ["CALLER_ID", "generate", "populate"]


def generate(
    schema: Mapping[str, Table], seed: int | None = 0, now: datetime | None = None
) -> dict[str, list[dict[str, Any]]]:
    """The demo rows in storage form, keyed by table logical name, without touching a store."""
    moment = now or datetime.now(UTC)
    return DemoBuilder(schema, 0 if seed is None else seed, moment).build()


def populate(
    store: Any, schema: Mapping[str, Table], seed: int | None = 0, now: datetime | None = None
) -> dict[str, int]:
    """Insert the demo data into `store` (a `sandbox.store.Store`); returns rows per table.

    `now` anchors every date (default: the current time), so relative date queries such as
    `Microsoft.Dynamics.CRM.LastXDays` find rows whenever the demo is made.
    """
    rows = generate(schema, seed, now)
    counts: dict[str, int] = {}
    with store.transaction():
        for table, batch in rows.items():
            store.insert_many(table, batch)
            counts[table] = len(batch)
    return counts
