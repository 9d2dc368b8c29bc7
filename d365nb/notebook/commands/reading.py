"""``list``, ``get`` and ``changes``: reads answered with DataFrames.

Every reading command takes ``--tz`` (default ``%config D365Magic.tz``) and ``--save FILE``
(csv/parquet/xlsx); :func:`finish_read` applies both, so other reading commands reuse it.
A ``list`` result that a page limit cut says so in its footer, with the count.
"""

from __future__ import annotations

import time
import warnings
from argparse import Namespace
from typing import Any

from IPython.core.error import UsageError

from d365nb.client.api import TruncatedRead
from d365nb.notebook.display import format_footer, remember_footer
from d365nb.notebook.hints import column_hints, translate_labels
from d365nb.notebook.progress import Progress
from d365nb.notebook.values import interpolate, interpolate_filter

_FORMATTED = "@OData.Community.Display.V1.FormattedValue"


def _opt(value: str | None, namespace: dict[str, Any]) -> str | None:
    return interpolate(value, namespace) if value else None


def finish_read(magic: Any, options: Namespace, frame: Any) -> Any:
    """``--tz`` (else ``D365Magic.tz``) then ``--save``; returns the frame to show."""
    from d365nb.client.saving import convert_tz, save_frame

    tz = _opt(getattr(options, "tz", None), magic.namespace) or magic.tz or "UTC"
    frame = convert_tz(frame, tz)
    target = _opt(getattr(options, "save", None), magic.namespace)
    if target:
        path = save_frame(frame, target)
        print(f"saved {len(frame):,} rows to {path}")
    return frame


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
    flt = interpolate_filter(options.filter, ns) if options.filter else None
    if flt is not None:
        if not flt.strip():
            raise UsageError("%d365 list: --filter is empty (leave it out to read every row)")
        # Choice labels are accepted in the filter and sent as their values.
        flt = translate_labels(flt, conn.metadata.table(table))
    with (
        Progress(
            f"{table}", unit="rows", after=magic.progress_after, enabled=magic.show_progress
        ) as progress,
        column_hints(conn, table, flt),
        warnings.catch_warnings(),
    ):
        warnings.simplefilter("ignore", TruncatedRead)  # the footer says it, with the count
        frame = conn.list(
            table,
            filter=flt,
            orderby=_opt(options.orderby, ns),
            select=_opt(options.select, ns),
            top=options.top,
            expand=_opt(options.expand, ns),
            count=options.count,
            page_size=magic.page_size,
            max_pages=max_pages,
            labels=options.labels or magic.labels,
            progress=progress,
            explode=options.explode,
        )
    elapsed = frame.attrs.get("elapsed") or (time.perf_counter() - started)
    pages = frame.attrs.get("pages")
    count = frame.attrs.get("count")
    extra = []
    if frame.attrs.get("truncated"):
        of = f"{count:,}" if count is not None else "more"
        if count is not None and count <= len(frame):
            of += "+"  # Dataverse counts at most 5,000
        extra.append(f"first {len(frame):,} of {of} rows · more: --all or --pages N")
    elif count is not None and options.count:
        extra.append(f"count {count:,}")
    frame = finish_read(magic, options, frame)
    footer = format_footer(
        len(frame), pages=pages, elapsed=elapsed, alias=getattr(conn, "alias", None),
        extra=" · ".join(extra),
    )  # fmt: skip
    return remember_footer(frame, footer)


def record_frame(record: dict[str, Any]) -> Any:
    """A record as a vertical DataFrame: one row per column with its value and label."""
    import pandas as pd

    record = _flat_record(record)
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


def _flat_record(record: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """An expanded single-valued navigation's fields as ``nav.col`` keys (as ``list`` names
    them); collection-valued ones stay lists."""
    flat: dict[str, Any] = {}
    for key, value in record.items():
        if isinstance(value, dict) and "@" not in key:
            flat.update(_flat_record(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


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
    frame = finish_read(magic, options, frame)
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
    frame = finish_read(magic, options, frame)
    footer = format_footer(
        len(frame), elapsed=time.perf_counter() - started, alias=alias,
        extra=f"{len(changes.upserted):,} upserted, {len(changes.deleted):,} deleted · "
        f"next: %d365 changes {table} --since last",
    )  # fmt: skip
    return remember_footer(frame, footer)
