"""``create``, ``update``, ``delete``: single records, bulk from a DataFrame, and ``--where``.

``--where`` and ``--all`` never write without ``--yes``: they show the exact number of records
that would change (every matching id is read, so no "5,000+") and a preview, and change
nothing. A bulk write never widens: a blank ``--where`` is refused before any request, and a
filter that matches every record of the table needs ``--all`` - writing a whole table is
always asked for by name.
"""

from __future__ import annotations

import time
from argparse import Namespace
from typing import Any

from IPython.core.error import UsageError

from d365nb.client.ids import normalize_id
from d365nb.notebook.commands.bulk_frames import bulk_frame as _bulk_frame
from d365nb.notebook.commands.bulk_frames import progress_for as _progress
from d365nb.notebook.commands.writeback import write_back
from d365nb.notebook.display import format_footer, remember_footer
from d365nb.notebook.hints import column_hints, translate_labels
from d365nb.notebook.values import (
    interpolate,
    interpolate_filter,
    parse_assignments,
    parse_cell_body,
)


def _keys(meta: Any) -> tuple[str, str]:
    return (meta.logical_name, meta.entity_set)


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


def where_filter(magic: Any, command: str, table: str, where: str | None) -> str | None:
    """The ``--where`` filter as sent, or None without ``--where``.

    A blank filter, typed or interpolated (``--where "{f}"`` with ``f = " "``), is refused:
    Dataverse reads a missing ``$filter`` as every row, and ``--where`` must never mean that.
    """
    if where is None:
        return None
    flt = interpolate_filter(where, magic.namespace) if where.strip() else where
    if not flt.strip():
        raise UsageError(
            f"%d365 {command} {table}: --where is blank; give a condition "
            f"(every record of the table needs --all)"
        )
    return flt


def _matching(magic: Any, conn: Any, meta: Any, flt: str | None) -> Any:
    """Every record matching ``flt`` (every record when None): primary id and name only, all
    pages, so the count is exact."""
    select = meta.primary_name or meta.primary_id  # the id is the index; the name is for people
    flt = translate_labels(flt, meta)  # choice labels -> values, as `list` does (issue 14)
    with (
        _progress(magic, meta.logical_name, "rows") as progress,
        column_hints(conn, meta.logical_name, flt),
    ):
        return conn.list(
            meta.logical_name, filter=flt, select=select, page_size=magic.page_size,
            max_pages=None, progress=progress,
        )  # fmt: skip


def _table_total(conn: Any, meta: Any, at_least: int) -> int:
    """How many records ``meta``'s table holds, exactly.

    ``$count`` answers at most 5,000 in Dataverse; only when the table may be that large (and
    the match as well) are the ids counted page by page.
    """
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # a one-row page is cut on purpose
        probe = conn.list(
            meta.logical_name, select=meta.primary_id, count=True, page_size=1, max_pages=1
        )
    count = probe.attrs.get("count")
    if count is not None and count < 5000:
        return int(count)
    if count is not None and at_least < 5000:
        return int(count)  # the table holds 5,000 or more, the match fewer: not every row
    everything = conn.list(meta.logical_name, select=meta.primary_id, max_pages=None)
    return len(everything)


def _refuse_whole_table(
    conn: Any, meta: Any, matches: Any, command: str, table: str, options: Namespace
) -> None:
    """A ``--where`` that matches every record is writing the whole table: ask for --all."""
    if options.all or not len(matches):
        return
    total = _table_total(conn, meta, len(matches))
    if len(matches) >= total:
        raise UsageError(
            f"%d365 {command} {table}: --where matches every {meta.logical_name} record "
            f"({total:,}); writing a whole table needs --all (nothing changed)"
        )


def _scope(command: str, table: str, options: Namespace, record_id: Any) -> None:
    """One way to name the records: an id, ``--where``, ``--all`` or ``--from``."""
    given = [
        name
        for name, value in (
            ("a record id", record_id),
            ("--where", options.where),
            ("--all", options.all or None),
        )
        if value is not None
    ]
    if len(given) > 1:
        raise UsageError(f"%d365 {command} {table}: give {' or '.join(given)}, not both")


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
        if words or options.where is not None or options.all or (cell and cell.strip()):
            raise UsageError(
                "%d365 update --from DF takes no id, field=value, --where, --all or cell"
            )
        source = _frame_source(magic, options.source, "update")
        if (shown := write_back(magic, conn, table, source, yes=options.yes)) is not None:
            return shown  # a frame read by list: only its changed cells (preview unless --yes)
        if getattr(source, "attrs", {}).get("d365nb") is not None:
            return None  # nothing changed (said by write_back)
        return _bulk_from(magic, conn, table, options.source, "update")
    record_id = None
    if words and "=" not in words[0]:
        record_id = interpolate(words.pop(0), magic.namespace)
    _scope("update", table, options, record_id)
    flt = where_filter(magic, "update", table, options.where)  # before any request
    meta = conn.metadata.table(table)
    values = _values(magic, meta, words, cell)
    if isinstance(values, list):
        raise UsageError("%d365 update: a JSON array body needs --from; give one object")
    if not values:
        raise UsageError(f"%d365 update {table}: nothing to update; give field=value words")
    if flt is not None or options.all:
        # A bad value fails before the preview (nothing read, nothing written), not after it.
        conn.validate(meta.logical_name, values, for_update=True)
        matches = _matching(magic, conn, meta, flt)
        _refuse_whole_table(conn, meta, matches, "update", table, options)
        if not options.yes:
            return _preview(magic, conn, matches, "updated", f"{meta.logical_name} records")
        records = [{meta.primary_id: rid, **values} for rid in matches.index]
        with _progress(magic, table) as progress:
            result = conn.update_many(table, records, progress=progress)
        return _bulk_frame(result, None, conn, "updated", time.perf_counter() - started)
    if record_id is None:
        raise UsageError(
            f"%d365 update {table}: which record? give its id, --where F, --all or --from DF "
            "(usage: %d365 update table [id] field=value ... [--where F | --all] [--yes])"
        )
    record_id = normalize_id(record_id, what=f"{meta.logical_name} id", table=_keys(meta))
    conn.update(table, record_id, values)
    elapsed = time.perf_counter() - started
    print(f"updated {meta.logical_name} {record_id} · {elapsed:.2f} s · {conn.alias}")
    return None


def cmd_delete(magic: Any, options: Namespace, cell: str | None) -> Any:
    """One record by id, or every record matching ``--where`` (with ``--yes``)."""
    conn = magic.connection()
    table = interpolate(options.table, magic.namespace)
    started = time.perf_counter()
    _scope("delete", table, options, options.id)
    flt = where_filter(magic, "delete", table, options.where)  # before any request
    if flt is not None or options.all:
        meta = conn.metadata.table(table)
        matches = _matching(magic, conn, meta, flt)
        _refuse_whole_table(conn, meta, matches, "delete", table, options)
        if not options.yes:
            return _preview(magic, conn, matches, "deleted", f"{meta.logical_name} records")
        with _progress(magic, table) as progress:
            result = conn.delete_many(table, list(matches.index), progress=progress)
        return _bulk_frame(result, None, conn, "deleted", time.perf_counter() - started)
    if not options.id:
        raise UsageError(
            f"%d365 delete {table}: which record? give its id, --where F or --all "
            "(usage: %d365 delete table [id] [--where F | --all] [--yes])"
        )
    meta = conn.metadata.table(table)
    record_id = normalize_id(
        interpolate(options.id, magic.namespace), what=f"{meta.logical_name} id", table=_keys(meta)
    )
    conn.delete(table, record_id)
    elapsed = time.perf_counter() - started
    print(f"deleted {meta.logical_name} {record_id} · {elapsed:.2f} s · {conn.alias}")
    return None
