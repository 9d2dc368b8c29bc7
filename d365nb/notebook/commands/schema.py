"""``tables`` and ``describe``: the organisation's schema as DataFrames."""

from __future__ import annotations

import time
from argparse import Namespace
from typing import Any

from d365nb.notebook.display import format_footer, remember_footer
from d365nb.notebook.values import interpolate


def cmd_tables(magic: Any, options: Namespace, cell: str | None) -> Any:
    """Every table (logical name, entity set, display name, ...)."""
    conn = magic.connection()
    started = time.perf_counter()
    frame = conn.tables()
    footer = format_footer(
        len(frame), elapsed=time.perf_counter() - started, alias=getattr(conn, "alias", None)
    )
    return remember_footer(frame, footer)


def cmd_describe(magic: Any, options: Namespace, cell: str | None) -> Any:
    """Columns of a table: type, required level, choices, lookup targets."""
    conn = magic.connection()
    table = interpolate(options.table, magic.namespace)
    started = time.perf_counter()
    frame = conn.describe(table)
    footer = format_footer(
        len(frame),
        elapsed=time.perf_counter() - started,
        alias=getattr(conn, "alias", None),
        extra=table,
    )
    return remember_footer(frame, footer)
