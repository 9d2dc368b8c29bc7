"""``list``, ``get`` and ``changes``: reads answered with DataFrames."""

from __future__ import annotations

import time
from argparse import Namespace
from typing import Any

from IPython.core.error import UsageError

from d365nb.notebook.display import format_footer, remember_footer
from d365nb.notebook.hints import column_hints
from d365nb.notebook.progress import Progress
from d365nb.notebook.values import interpolate, interpolate_filter

_FORMATTED = "@OData.Community.Display.V1.FormattedValue"


def _opt(value: str | None, namespace: dict[str, Any]) -> str | None:
    return interpolate(value, namespace) if value else None


def cmd_list(magic: Any, options: Namespace, cell: str | None) -> Any:
    """Query a table; one page by default (``max_pages``), ``--pages N`` or ``--all``."""
    conn = magic.connection()
    ns = magic.namespace
    table = interpolate(options.table, ns)
    if options.pages is not None and options.pages < 1:
        raise UsageError("%d365 list: --pages must be 1 or more (or use --all)")
    if options.top is not None and options.top < 0:
        raise UsageError("%d365 list: --top must be 0 or more")
    if options.all or (options.top is not None and options.pages is None):
        max_pages = None  # --top N means N rows, however many pages that takes
    else:
        max_pages = options.pages or (magic.max_pages if magic.max_pages > 0 else None)
    started = time.perf_counter()
    with (
        Progress(
            f"{table}", unit="rows", after=magic.progress_after, enabled=magic.show_progress
        ) as progress,
        column_hints(conn, table),
    ):
        frame = conn.list(
            table,
            filter=interpolate_filter(options.filter, ns) if options.filter else None,
            orderby=_opt(options.orderby, ns),
            select=_opt(options.select, ns),
            top=options.top,
            expand=_opt(options.expand, ns),
            count=options.count,
            page_size=magic.page_size,
            max_pages=max_pages,
            labels=options.labels or magic.labels,
            progress=progress,
        )
    elapsed = frame.attrs.get("elapsed") or (time.perf_counter() - started)
    pages = frame.attrs.get("pages")
    extra = []
    if frame.attrs.get("count") is not None:
        extra.append(f"count {frame.attrs['count']:,}")
    if (
        max_pages is not None
        and pages == max_pages
        and options.top is None
        and len(frame) >= max_pages * magic.page_size
    ):
        extra.append("more rows: --all or --pages N")
    footer = format_footer(
        len(frame), pages=pages, elapsed=elapsed, alias=getattr(conn, "alias", None),
        extra=" · ".join(extra),
    )  # fmt: skip
    return remember_footer(frame, footer)


def record_frame(record: dict[str, Any]) -> Any:
    """A record as a vertical DataFrame: one row per column with its value and label."""
    import pandas as pd

    labels = {
        key[: -len(_FORMATTED)]: value for key, value in record.items() if key.endswith(_FORMATTED)
    }
    rows = [
        {"column": key, "value": value, "label": labels.get(key)}
        for key, value in record.items()
        if "@" not in key
    ]
    frame = pd.DataFrame(rows, columns=["column", "value", "label"]).set_index("column")
    frame["label"] = frame["label"].astype("string")
    return frame


def cmd_get(magic: Any, options: Namespace, cell: str | None) -> Any:
    """One record by id, displayed one column per row (``df.attrs['record']`` = the JSON)."""
    conn = magic.connection()
    ns = magic.namespace
    table = interpolate(options.table, ns)
    record_id = interpolate(options.id, ns)
    started = time.perf_counter()
    with column_hints(conn, table):
        record = conn.get(
            table, record_id, select=_opt(options.select, ns), expand=_opt(options.expand, ns)
        )
    frame = record_frame(record)
    frame.attrs["record"] = record
    footer = format_footer(
        len(frame), elapsed=time.perf_counter() - started, alias=getattr(conn, "alias", None),
        extra=f"{table}({record_id})",
    )  # fmt: skip
    return remember_footer(frame, footer)


def cmd_changes(magic: Any, options: Namespace, cell: str | None) -> Any:
    """Change-tracking delta: rows with a ``change`` column (upserted/deleted).

    ``df.attrs['token']`` is the next delta token; ``--since last`` reuses it.
    """
    import pandas as pd

    from d365nb.client.frames import records_to_frame

    conn = magic.connection()
    ns = magic.namespace
    table = interpolate(options.table, ns)
    meta = conn.metadata.table(table)
    alias = getattr(conn, "alias", None)
    key = (alias or "", meta.logical_name)
    token = _opt(options.since, ns)
    if token == "last":
        token = magic.change_tokens.get(key)
        if token is None:
            raise UsageError(
                f"%d365 changes: no earlier changes call for {meta.logical_name} on this "
                "connection; run it without --since first"
            )
    select = _opt(options.select, ns)
    started = time.perf_counter()
    changes = conn.changes(table, token=token, select=select)
    names = [s.strip() for s in select.split(",")] if select else None
    read_names = None
    if names:
        read_names = [meta.column(n).read_name for n in names]
    upserted = records_to_frame(changes.upserted, meta, select=read_names)
    upserted.insert(0, "change", "upserted")
    deleted = pd.DataFrame(
        {"change": ["deleted"] * len(changes.deleted)},
        index=pd.Index(changes.deleted, name=upserted.index.name or meta.primary_id),
    )
    frame = pd.concat([upserted, deleted]) if len(deleted) else upserted
    frame["change"] = frame["change"].astype("string")
    frame.attrs.update(token=changes.token, table=meta.logical_name)
    magic.change_tokens[key] = changes.token
    footer = format_footer(
        len(frame), elapsed=time.perf_counter() - started, alias=alias,
        extra=f"{len(changes.upserted):,} upserted, {len(changes.deleted):,} deleted · "
        f"next: %d365 changes {table} --since last",
    )  # fmt: skip
    return remember_footer(frame, footer)
