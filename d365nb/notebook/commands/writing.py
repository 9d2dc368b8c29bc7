"""``create``, ``update``, ``delete``: single records, bulk from a DataFrame, and ``--where``.

``--where`` never writes without ``--yes``: it shows how many records match and a preview, and
changes nothing.
"""

from __future__ import annotations

import time
from argparse import Namespace
from typing import Any

from IPython.core.error import UsageError

from d365nb.notebook.display import format_footer, remember_footer
from d365nb.notebook.hints import column_hints
from d365nb.notebook.progress import Progress
from d365nb.notebook.values import (
    interpolate,
    interpolate_filter,
    parse_assignments,
    parse_cell_body,
)


def _frame_source(magic: Any, name: str, command: str) -> Any:
    """The DataFrame (or list of dicts) named by ``--from``."""
    name = name.strip()
    if name.startswith("{") and name.endswith("}"):
        name = name[1:-1].strip()
    if name not in magic.namespace:
        raise UsageError(f"%d365 {command} --from: no variable {name!r} in the notebook")
    source = magic.namespace[name]
    if type(source).__name__ != "DataFrame" and not isinstance(source, list):
        raise UsageError(
            f"%d365 {command} --from {name}: expected a DataFrame or a list of dicts, "
            f"got {type(source).__name__}"
        )
    return source


def _progress(magic: Any, table: str, unit: str = "records") -> Progress:
    return Progress(table, unit=unit, after=magic.progress_after, enabled=magic.show_progress)


def _bulk_frame(result: Any, index: Any, conn: Any, verb: str, elapsed: float) -> Any:
    """A BulkResult as a DataFrame (input index; id and error per record) with a footer."""
    import pandas as pd

    errors = {pos: str(getattr(err, "message", err)) for pos, err in result.errors.items()}
    frame = pd.DataFrame(
        {
            "id": pd.array(result.ids, dtype="string"),
            "error": pd.array([errors.get(i) for i in range(len(result.ids))], dtype="string"),
        },
        index=index if index is not None and len(index) == len(result.ids) else None,
    )
    frame.attrs.update(table=result.table, requests=result.requests)
    requests = f"{result.requests} request" + ("" if result.requests == 1 else "s")
    extra = f"{result.succeeded:,} {verb}, {result.failed:,} failed · {requests}"
    footer = format_footer(
        len(frame), elapsed=elapsed, alias=getattr(conn, "alias", None), extra=extra
    )
    return remember_footer(frame, footer)


def _bulk_from(magic: Any, conn: Any, table: str, name: str, command: str) -> Any:
    """``create/update --from DF``: one bulk write of every row, results indexed like the input."""
    source = _frame_source(magic, name, command)
    write = conn.create_many if command == "create" else conn.update_many
    started = time.perf_counter()
    with _progress(magic, table) as progress:
        result = write(table, source, progress=progress)
    elapsed = time.perf_counter() - started
    return _bulk_frame(result, getattr(source, "index", None), conn, f"{command}d", elapsed)


def _values(magic: Any, meta: Any, words: list[str], cell: str | None) -> Any:
    """Values from the cell body (JSON or field: value lines) then the line's field=value words."""
    body = parse_cell_body(cell, meta, magic.namespace) if cell and cell.strip() else {}
    line_values = parse_assignments(words, meta, magic.namespace)
    if isinstance(body, list):
        if line_values:
            body = [{**record, **line_values} for record in body]
        return body
    return {**body, **line_values}


def cmd_create(magic: Any, options: Namespace, cell: str | None) -> Any:
    """One record (returns its id), or many from ``--from DF`` / a JSON array cell."""
    conn = magic.connection()
    table = interpolate(options.table, magic.namespace)
    started = time.perf_counter()
    if options.source:
        if options.values or (cell and cell.strip()):
            raise UsageError("%d365 create --from DF takes no field=value words or cell body")
        return _bulk_from(magic, conn, table, options.source, "create")
    meta = conn.metadata.table(table)
    values = _values(magic, meta, options.values, cell)
    if isinstance(values, list):
        with _progress(magic, table) as progress:
            result = conn.create_many(table, values, progress=progress)
        return _bulk_frame(result, None, conn, "created", time.perf_counter() - started)
    if not values:
        raise UsageError(
            f"%d365 create {table}: nothing to create; give field=value words, a %%d365 cell "
            "body or --from DF"
        )
    record_id = conn.create(table, values)
    elapsed = time.perf_counter() - started
    print(f"created {meta.logical_name} {record_id} · {elapsed:.2f} s · {conn.alias}")
    return record_id


def _matching(magic: Any, conn: Any, meta: Any, where: str) -> Any:
    """Every record matching ``where`` (primary id and name only)."""
    flt = interpolate_filter(where, magic.namespace)
    select = meta.primary_name or meta.primary_id  # the id is the index; the name is for people
    with (
        _progress(magic, meta.logical_name, "rows") as progress,
        column_hints(conn, meta.logical_name),
    ):
        return conn.list(
            meta.logical_name, filter=flt, select=select, page_size=magic.page_size,
            progress=progress,
        )  # fmt: skip


def _preview(magic: Any, conn: Any, matches: Any, verb: str, what: str) -> Any:
    """The --where preview: count, first rows, and how to really do it. Nothing is written."""
    count = len(matches)
    action = verb[:-1]  # "updated" -> "update"
    print(f"{count:,} {what} would be {verb}; nothing changed. Re-run with --yes to {action} them.")
    preview = matches.head(magic.preview_rows)
    footer = format_footer(
        count, alias=getattr(conn, "alias", None),
        extra=f"preview of {len(preview)} · add --yes to {action}",
    )  # fmt: skip
    return remember_footer(preview, footer)


def cmd_update(magic: Any, options: Namespace, cell: str | None) -> Any:
    """One record (``<id> field=value``), many (``--from DF``) or all matching ``--where``."""
    conn = magic.connection()
    table = interpolate(options.table, magic.namespace)
    words = list(options.values)
    started = time.perf_counter()
    if options.source:
        if words or options.where or (cell and cell.strip()):
            raise UsageError("%d365 update --from DF takes no id, field=value, --where or cell")
        return _bulk_from(magic, conn, table, options.source, "update")
    meta = conn.metadata.table(table)
    record_id = None
    if words and "=" not in words[0]:
        record_id = interpolate(words.pop(0), magic.namespace)
    if record_id is not None and options.where:
        raise UsageError(f"%d365 update {table}: give a record id or --where, not both")
    values = _values(magic, meta, words, cell)
    if isinstance(values, list):
        raise UsageError("%d365 update: a JSON array body needs --from; give one object")
    if not values:
        raise UsageError(f"%d365 update {table}: nothing to update; give field=value words")
    if options.where:
        # A bad value fails before the preview (nothing read, nothing written), not after it.
        conn.validate(meta.logical_name, values, for_update=True)
        matches = _matching(magic, conn, meta, options.where)
        if not options.yes:
            return _preview(magic, conn, matches, "updated", f"{meta.logical_name} records")
        records = [{meta.primary_id: rid, **values} for rid in matches.index]
        with _progress(magic, table) as progress:
            result = conn.update_many(table, records, progress=progress)
        return _bulk_frame(result, None, conn, "updated", time.perf_counter() - started)
    if record_id is None:
        raise UsageError(
            f"%d365 update {table}: which record? give its id, --where F or --from DF\n"
            "usage: %d365 update table [id] field=value ... [--where F --yes] [--from DF]"
        )
    conn.update(table, record_id, values)
    elapsed = time.perf_counter() - started
    print(f"updated {meta.logical_name} {record_id} · {elapsed:.2f} s · {conn.alias}")
    return None


def cmd_delete(magic: Any, options: Namespace, cell: str | None) -> Any:
    """One record by id, or every record matching ``--where`` (with ``--yes``)."""
    conn = magic.connection()
    table = interpolate(options.table, magic.namespace)
    started = time.perf_counter()
    if options.id and options.where:
        raise UsageError(f"%d365 delete {table}: give a record id or --where, not both")
    if options.where:
        meta = conn.metadata.table(table)
        matches = _matching(magic, conn, meta, options.where)
        if not options.yes:
            return _preview(magic, conn, matches, "deleted", f"{meta.logical_name} records")
        with _progress(magic, table) as progress:
            result = conn.delete_many(table, list(matches.index), progress=progress)
        return _bulk_frame(result, None, conn, "deleted", time.perf_counter() - started)
    if not options.id:
        raise UsageError(
            f"%d365 delete {table}: which record? give its id or --where F\n"
            "usage: %d365 delete table [id] [--where F] [--yes]"
        )
    record_id = interpolate(options.id, magic.namespace)
    meta = conn.metadata.table(table)
    conn.delete(table, record_id)
    elapsed = time.perf_counter() - started
    print(f"deleted {meta.logical_name} {record_id} · {elapsed:.2f} s · {conn.alias}")
    return None
