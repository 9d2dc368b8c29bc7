"""Write an edited ``list`` result back: only the changed cells, with optimistic concurrency.

A frame read by ``list`` carries a :class:`~d365nb.client.frames.ReadSnapshot` (the values as
read and each row's ``@odata.etag``). :func:`plan` compares the edited frame with it cell by
cell and keeps, per record, only the columns whose value changed. Columns that cannot be
written (read-only/system columns, formatted ``x_label`` columns, flattened ``nav.col``
columns of another table, names that are not columns) are skipped and reported once, never
sent. Each changed record is sent as a ``PATCH`` in ``$batch`` with ``If-Match: <etag as
read>``: a record someone changed since the read fails alone with 412 instead of being
overwritten (https://learn.microsoft.com/power-apps/developer/data-platform/webapi/perform-conditional-operations-using-web-api).
Rows whose id was not in the read are sent whole with ``If-Match: *`` (update, never create).
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from d365nb.client.errors import PreconditionFailed, ValidationError
from d365nb.client.frames import SNAPSHOT_KEY, ReadSnapshot, _plain, snapshot_of
from d365nb.client.metadata import TableMeta
from d365nb.client.results import BulkResult

__all__ = ["Plan", "WriteBackResult", "plan", "write_back_op", "snapshot_for"]


@dataclass
class Plan:
    """What a write-back would send: per record its changed values and the etag to match."""

    table: str
    ids: list[str] = field(default_factory=list)
    values: list[dict[str, Any]] = field(default_factory=list)
    etags: list[str] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)  # column -> why it is not written
    skipped_edits: int = 0  # edited cells in skipped columns (not sent)
    unchanged: int = 0  # rows with nothing to send
    changes: pd.DataFrame | None = None  # one row per changed cell: id, column, old, new

    @property
    def cells(self) -> int:
        return sum(len(v) for v in self.values)

    def skipped_line(self) -> str:
        """One summary line of the columns left out ('' when none)."""
        if not self.skipped:
            return ""
        by_reason: dict[str, list[str]] = {}
        for column, reason in self.skipped.items():
            by_reason.setdefault(reason, []).append(column)
        parts = [f"{reason}: {', '.join(cols)}" for reason, cols in by_reason.items()]
        edits = (
            f"; {self.skipped_edits} edited cell{'s' if self.skipped_edits != 1 else ''} "
            "in them not sent"
            if self.skipped_edits
            else ""
        )
        count = len(self.skipped)
        return f"skipped {count} column{'s' if count != 1 else ''} ({'; '.join(parts)}){edits}"


@dataclass
class WriteBackResult(BulkResult):
    """A :class:`BulkResult` for the records sent, with the plan that chose them."""

    plan: Plan | None = None


def snapshot_for(frame: Any, meta: TableMeta) -> ReadSnapshot | None:
    """The frame's read snapshot when it was read from ``meta``'s table, else None."""
    snap = snapshot_of(frame)
    if snap is None or snap.table != meta.logical_name:
        return None
    return snap


def _why_not(meta: TableMeta, name: str) -> str | None:
    """Why column ``name`` of a frame cannot be written (None: it can)."""
    col = meta.find(name)
    if col is None:
        if "." in name:
            return "expanded"
        if name.endswith("_label") and meta.columns.get(name[: -len("_label")]) is not None:
            return "formatted"
        return "not columns"
    if col.attribute_of or not col.valid_for_update or col.read_only:
        return "read-only"
    if col.is_lookup and len(col.targets) != 1:
        return f"lookups to several tables (use update {meta.logical_name} <id> col=table(<id>))"
    return None


def _as_object(series: pd.Series) -> pd.Series:
    return series.astype(object) if isinstance(series.dtype, pd.CategoricalDtype) else series


def _changed(new: pd.Series, old: pd.Series) -> pd.Series:
    """True where a cell differs (missing == missing; both aligned on the same index)."""
    new, old = _as_object(new), _as_object(old)
    try:
        equal = (new == old).astype("boolean").fillna(False)
        both_missing = new.isna() & old.isna()
        return ~(equal | both_missing).astype(bool)
    except (TypeError, ValueError):  # a dtype the user changed: compare cell by cell
        return pd.Series(
            [not _same(a, b) for a, b in zip(new, old, strict=True)], index=new.index
        )


def _same(a: Any, b: Any) -> bool:
    a_missing, b_missing = _missing(a), _missing(b)
    if a_missing or b_missing:
        return a_missing and b_missing
    try:
        return bool(a == b)
    except (TypeError, ValueError):
        return False


def _missing(value: Any) -> bool:
    try:
        return bool(pd.isna(value))
    except (TypeError, ValueError):
        return False


def _value(value: Any) -> Any:
    """A cell as the client's coercers take it; missing -> None (sent as null)."""
    if _missing(value):
        return None
    return _plain(value)


def plan(meta: TableMeta, frame: pd.DataFrame, snapshot: ReadSnapshot) -> Plan:
    """The changed cells of ``frame`` against ``snapshot`` (see the module docstring)."""
    pk = meta.primary_id
    if pk in frame.columns:
        frame = frame.set_index(pk)
    index = frame.index.astype(str)
    if index.has_duplicates:
        dup = index[index.duplicated()][0]
        raise ValidationError(f"{meta.logical_name} id {dup} is in the frame more than once")
    frame = frame.set_axis(index, axis=0)
    original = snapshot.original
    original = original.set_axis(original.index.astype(str), axis=0)
    result = Plan(meta.logical_name)
    writable: list[str] = []
    for name in map(str, frame.columns):
        reason = _why_not(meta, name)
        if name == pk:
            continue
        if reason is None:
            writable.append(name)
        else:
            result.skipped[name] = reason
    known = index[index.isin(original.index)]
    per_row: dict[str, dict[str, Any]] = {}
    change_rows: list[tuple[str, str, Any, Any]] = []
    for name in map(str, frame.columns):
        if name == pk or name not in original.columns:
            continue
        changed = _changed(frame.loc[known, name], original.loc[known, name])
        if not changed.any():
            continue
        ids = list(changed.index[changed.to_numpy()])
        if name in result.skipped:
            result.skipped_edits += len(ids)
            continue
        new, old = frame.loc[ids, name], original.loc[ids, name]
        for record_id, after, before in zip(ids, new, old, strict=True):
            per_row.setdefault(record_id, {})[name] = _value(after)
            change_rows.append((record_id, name, _value(before), _value(after)))
    # Rows the read did not have: every writable, present value (If-Match: *).
    for record_id in index[~index.isin(original.index)]:
        row = frame.loc[record_id]
        values = {n: _value(row[n]) for n in writable if not _missing(row[n])}
        if values:
            per_row[record_id] = values
            change_rows += [(record_id, n, None, v) for n, v in values.items()]
    order = {rid: i for i, rid in enumerate(index)}
    for record_id in sorted(per_row, key=order.__getitem__):
        result.ids.append(record_id)
        result.values.append(per_row[record_id])
        known_row = record_id in original.index
        result.etags.append(snapshot.etags.get(record_id, "*") if known_row else "*")
    result.unchanged = len(index) - len(result.ids)
    result.changes = pd.DataFrame(
        change_rows, columns=[pk, "column", "old", "new"]
    ).astype({pk: "string", "column": "string"})
    return result


def write_back_op(
    ops: Any,
    meta: TableMeta,
    frame: pd.DataFrame,
    snapshot: ReadSnapshot,
    *,
    chunk_size: int,
    progress: Any = None,
    dry_run: bool = False,
):
    """Operation generator (see ``client.operations``): plan, check every body, then send the
    changed records in ``$batch`` parts with ``If-Match``. Returns a :class:`WriteBackResult`."""
    from d365nb.client.batch import BatchPart

    the_plan = plan(meta, frame, snapshot)
    bodies = []
    for position, values in enumerate(the_plan.values):
        try:
            bodies.append(ops._coerce(meta, values, for_update=True, missing="null"))
        except ValidationError as err:
            rid = the_plan.ids[position]
            raise type(err)(f"record {rid}: {err.message}") from None
    result = WriteBackResult(meta.logical_name, list(the_plan.ids), plan=the_plan)
    if dry_run or not bodies:
        return result
    total = len(bodies)
    for start in range(0, total, chunk_size):
        positions = list(range(start, min(start + chunk_size, total)))
        parts = [
            BatchPart(
                "PATCH",
                f"{meta.entity_set}({the_plan.ids[i]})",
                bodies[i],
                {"If-Match": the_plan.etags[i]},
            )
            for i in positions
        ]
        yield from ops._batch_chunk(parts, positions, "Update", result)
        if progress is not None:
            progress(positions[-1] + 1, total)
    for index, err in list(result.errors.items()):
        if err.status == 412:
            result.errors[index] = PreconditionFailed(
                f"{meta.logical_name} {the_plan.ids[index]} was changed by someone else since "
                "it was read; read it again and re-apply the edit",
                status=412,
                code=getattr(err, "code", None),
            )
        result.ids[index] = None
    _remember_written(frame, snapshot, the_plan, result)
    return result


def _remember_written(
    frame: pd.DataFrame, snapshot: ReadSnapshot, the_plan: Plan, result: WriteBackResult
) -> None:
    """After a write, the frame's snapshot holds the values now on the server, so the same
    edits are not sent twice. Written rows match any etag next time (the server's new etag is
    not returned by an update)."""
    written = [rid for rid, ok in zip(the_plan.ids, result.ids, strict=True) if ok is not None]
    if not written:
        return
    original = snapshot.original.copy()
    original.index = original.index.astype(str)
    current = frame.set_axis(frame.index.astype(str), axis=0)
    present = [rid for rid in written if rid in original.index]
    for name in original.columns:
        if name in current.columns and present:
            with contextlib.suppress(TypeError, ValueError):
                original.loc[present, name] = current.loc[present, name]
    etags = {k: v for k, v in snapshot.etags.items() if k not in set(written)}
    frame.attrs[SNAPSHOT_KEY] = ReadSnapshot(snapshot.table, original, etags)
