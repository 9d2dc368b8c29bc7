"""What the tab-completion tests share: a connection with metadata cached, and lines a user
types, to check that completing them sends no request (completion reads the cache only)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

# Tables, columns, a filter and a field name, one keystroke short of a candidate.
TYPED = [
    "%d365 list le",
    "%d365 list leads --select la",
    '%d365 list accounts --filter "na',
    "%d365 describe contacts",
    "%d365 create tasks prio",
]


def warmed(alias: str = "nbtest") -> Any:
    """The connection ``alias`` with lead and task metadata cached (as after a list or describe
    of them)."""
    from d365nb.client.registry import connections

    conn = connections.get(alias)
    conn.metadata.table("leads")
    conn.metadata.table("tasks")
    return conn


def requests_while_typing(conn: Any, complete: Callable[[str], Any]) -> int:
    """How many requests ``conn`` sent while ``complete`` answered each line of ``TYPED``."""
    before = conn.requests_sent
    for line in TYPED:
        complete(line)
    return conn.requests_sent - before
