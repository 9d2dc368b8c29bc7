"""JSON pages <-> DataFrames with dtypes from metadata.

Reading: index = the primary id; text -> ``string``; whole numbers -> ``Int64``; decimals,
doubles and money -> ``Float64``; booleans -> ``boolean``; datetimes -> UTC ``datetime64``;
choices -> ``Int64`` codes, or labels (``category``) with ``labels=True``; lookups ->
``_x_value`` (``string``) plus ``x_label`` (the record's name) with ``labels=True``. ``@odata.*``
annotations are dropped. An empty result still has its columns.

Expanded navigation properties are flattened like ``pandas.json_normalize`` (``flatten=True``,
the default): a single-valued one (``parentcustomerid_account($select=name)``) becomes
``parentcustomerid_account.name``; a collection-valued one stays a list column of dicts, or
gives one row per child (``nav.col`` columns, the parent's index repeated) with ``explode=True``.

Round trip: every frame read carries a :class:`ReadSnapshot` in ``df.attrs["d365nb"]`` (the
values as read and each row's ``@odata.etag``) so an edited frame can be written back sending
only the changed cells, with ``If-Match`` (see ``client.roundtrip``).

Writing: a DataFrame becomes a list of dicts (one per row); missing values are omitted or sent
as null, as the caller chooses.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

import numpy as np
import pandas as pd

from d365nb.client.metadata import TableMeta

__all__ = [
    "records_to_frame",
    "frame_to_records",
    "FORMATTED",
    "LOOKUP_TABLE",
    "ReadSnapshot",
    "snapshot_of",
]

FORMATTED = "@OData.Community.Display.V1.FormattedValue"
LOOKUP_TABLE = "@Microsoft.Dynamics.CRM.lookuplogicalname"

_INT_TYPES = frozenset({"Integer", "BigInt"})
_FLOAT_TYPES = frozenset({"Decimal", "Double", "Money"})
_TEXT_TYPES = frozenset({"String", "Memo", "EntityName", "Uniqueidentifier"})
_ETAG = "@odata.etag"
SNAPSHOT_KEY = "d365nb"
_ISO_DATETIME = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:\d{2})$")


class ReadSnapshot:
    """What a ``list`` read: the frame's values and each row's etag, for a later write-back.

    It lives in ``df.attrs``; pandas deep-copies ``attrs`` on every operation, so copying
    returns the same object (the snapshot is never changed after the read). Under pandas'
    copy-on-write the ``original`` frame shares memory with the returned one until edited.
    """

    def __init__(self, table: str, original: pd.DataFrame, etags: dict[str, str]) -> None:
        self.table = table
        self.original = original
        self.etags = etags

    def __deepcopy__(self, memo: dict) -> ReadSnapshot:
        return self

    def __copy__(self) -> ReadSnapshot:
        return self

    def __repr__(self) -> str:
        return f"<ReadSnapshot {self.table}: {len(self.original)} rows as read>"


def snapshot_of(frame: Any) -> ReadSnapshot | None:
    """The snapshot a ``list`` result carries (None for frames built otherwise)."""
    attrs = getattr(frame, "attrs", None) or {}
    found = attrs.get(SNAPSHOT_KEY)
    return found if isinstance(found, ReadSnapshot) else None


def expected_columns(meta: TableMeta, select: list[str] | None) -> list[str]:
    """The columns a result has even when empty: selected ones (as read names) or all."""
    if select:
        names = []
        for name in select:
            col = meta.columns.get(name)
            names.append(col.read_name if col is not None else name)
        return names
    return [
        col.read_name
        for col in meta.columns.values()
        if col.valid_for_read and not col.attribute_of and col.name != meta.primary_id
    ]


def records_to_frame(
    records: list[dict[str, Any]],
    meta: TableMeta,
    *,
    select: list[str] | None = None,
    labels: bool = False,
    flatten: bool = True,
    explode: bool = False,
) -> pd.DataFrame:
    """A DataFrame from raw Web API records (see module docstring for the dtypes)."""
    builder = FrameBuilder(meta, select=select, labels=labels, flatten=flatten, explode=explode)
    builder.add(records)
    return builder.build()


class FrameBuilder:
    """Builds the DataFrame page by page so a page's dicts can be freed as soon as it is read.

    Each page is split into one object array per column (pandas reads the dicts in C). At the
    end each column is joined and converted once to its metadata dtype, and its object arrays
    are dropped before the next column is converted. Peak memory is then one page of dicts plus
    the values, not every record's dict at once nor two copies of every column.
    """

    def __init__(
        self,
        meta: TableMeta,
        *,
        select: list[str] | None = None,
        labels: bool = False,
        flatten: bool = True,
        explode: bool = False,
    ) -> None:
        self.meta = meta
        self.select = select
        self.labels = labels
        self.flatten = flatten
        self.explode = explode
        self.rows = 0
        # column -> [(first row, values of one page)]; insertion order = order first seen
        self._parts: dict[str, list[tuple[int, np.ndarray]]] = {}

    def add(self, records: list[dict[str, Any]]) -> None:
        if not records:
            return
        # dtype=object: no per-page inference; each column is converted once, in build().
        page = pd.DataFrame(records, dtype=object)
        for name in page.columns:
            values = page[name].to_numpy(dtype=object, copy=True)
            self._parts.setdefault(str(name), []).append((self.rows, values))
        self.rows += len(records)

    def _take(self, name: str) -> np.ndarray | None:
        """All rows of column ``name`` (None where a page lacked it), forgetting the pages."""
        parts = self._parts.pop(name, None)
        if parts is None:
            return None
        if len(parts) == 1 and len(parts[0][1]) == self.rows:
            return parts[0][1]
        joined = np.full(self.rows, None, dtype=object)
        for start, values in parts:
            joined[start : start + len(values)] = values
        return joined

    def build(self) -> pd.DataFrame:
        meta, labels = self.meta, self.labels
        pk = meta.primary_id
        wanted = expected_columns(meta, self.select)
        missing = np.full(self.rows, None, dtype=object)
        columns: dict[str, Any] = {}
        for name in [*wanted, *self._parts]:
            if name in columns or name == pk or "@" in name:
                continue  # annotations are read with the column they annotate
            values = self._take(name)
            values = missing if values is None else values
            col = meta.find(name)
            if col is not None and col.is_lookup and name == col.name:
                col = None  # lookups read as _x_value: this is the navigation named like it
            if labels and col is not None and col.is_choice:
                formatted = self._take(name + FORMATTED)
                columns[name] = _choice_labels(
                    values, missing if formatted is None else formatted, col.options
                )
            else:
                columns[name] = _convert(values, col, labels)
            if labels and col is not None and col.is_lookup:
                # The record's name beside its id: `_ownerid_value`, then `ownerid_label`. Always
                # present, so the frame's shape does not depend on which rows had a value.
                formatted = self._take(name + FORMATTED)
                columns[col.name + "_label"] = pd.array(
                    missing if formatted is None else formatted, dtype="string"
                )
        ids = self._take(pk)
        etags = self._take(_ETAG)
        self._parts = {}
        index = pd.Index(pd.array([] if ids is None else ids, dtype="string"), name=pk)
        collections: list[str] = []
        if self.flatten:
            columns, collections = _flatten_columns(columns)
        frame = pd.DataFrame(columns, index=index)
        if self.explode:
            for nav in collections:
                frame = _explode(frame, nav)
        snapshot_etags = {}
        if ids is not None and etags is not None:
            snapshot_etags = {
                str(i): e for i, e in zip(ids, etags, strict=True) if isinstance(e, str)
            }
        frame.attrs["table"] = meta.logical_name
        if not self.explode or not collections:  # exploded rows repeat ids: not writable back
            frame.attrs[SNAPSHOT_KEY] = ReadSnapshot(
                meta.logical_name, frame.copy(deep=False), snapshot_etags
            )
        return frame


def _flatten_columns(columns: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """Expanded navigations (columns of dicts) -> ``nav.col`` columns; collection-valued
    ones (columns of lists) stay list columns, their names returned for ``explode``."""
    out: dict[str, Any] = {}
    collections: list[str] = []
    for name, values in columns.items():
        if not isinstance(values, list):  # a column of this table (converted to a dtype)
            out[name] = values
            continue
        kinds = {type(v) for v in values if v is not None}
        if kinds and kinds <= {dict}:
            out.update(_flatten_dicts(values, name))
        elif kinds and kinds <= {list}:
            out[name] = [_clean_children(v) if v is not None else [] for v in values]
            collections.append(name)
        else:
            out[name] = values
    return out, collections


def _clean_children(children: list[Any]) -> list[Any]:
    return [
        {k: v for k, v in child.items() if "@" not in k} if isinstance(child, dict) else child
        for child in children
    ]


def _flatten_dicts(values: list[Any], prefix: str) -> dict[str, Any]:
    """Dicts (or None) -> one column per key, ``prefix.key``, recursively; dtypes inferred."""
    keys: dict[str, None] = {}
    for value in values:
        if isinstance(value, dict):
            keys.update(dict.fromkeys(k for k in value if "@" not in k))
    out: dict[str, Any] = {}
    for key in keys:
        column = [value.get(key) if isinstance(value, dict) else None for value in values]
        name = f"{prefix}.{key}"
        kinds = {type(v) for v in column if v is not None}
        if kinds and kinds <= {dict}:
            out.update(_flatten_dicts(column, name))
        elif kinds and kinds <= {list}:
            out[name] = [_clean_children(v) if v is not None else [] for v in column]
        else:
            out[name] = _infer(column)
    return out


def _infer(values: list[Any]) -> Any:
    """A dtype for values of another table's column (its metadata is not at hand)."""
    present = [v for v in values if v is not None]
    kinds = {type(v) for v in present}
    try:
        if not kinds or kinds == {str}:
            if present and all(_ISO_DATETIME.match(v) for v in present):
                return pd.to_datetime(
                    pd.Series(values, dtype="object"), utc=True, format="ISO8601"
                ).array
            return pd.array(values, dtype="string")
        if kinds == {bool}:
            return pd.array(values, dtype="boolean")
        if kinds == {int}:
            return pd.array(values, dtype="Int64")
        if kinds <= {int, float}:
            return pd.array(values, dtype="Float64")
    except (TypeError, ValueError):
        pass
    return values


def _explode(frame: pd.DataFrame, nav: str) -> pd.DataFrame:
    """One row per child of collection column ``nav`` (a parent without children keeps one
    row with missing child values); children's columns become ``nav.col``."""
    position = list(frame.columns).index(nav)
    exploded = frame.explode(nav)
    children = [v if isinstance(v, dict) else None for v in exploded[nav]]
    exploded = exploded.drop(columns=nav)
    for offset, (name, values) in enumerate(_flatten_dicts(children, nav).items()):
        exploded.insert(position + offset, name, values)
    return exploded


def _choice_labels(codes: Any, formatted: Any, options: dict[int, str]) -> pd.Categorical:
    values = [
        f if isinstance(f, str) else (options.get(c, str(c)) if _present(c) else None)
        for c, f in zip(codes, formatted, strict=True)
    ]
    categories = list(dict.fromkeys([*options.values(), *(v for v in values if v is not None)]))
    return pd.Categorical(values, categories=categories)


def _present(value: Any) -> bool:
    return value is not None and value == value  # NaN from page alignment counts as missing


def _convert(values: Any, col, labels: bool) -> Any:
    if col is None:
        # Expanded navigations, aggregates: Python objects, with None (not NaN) when missing.
        return [v if _present(v) else None for v in values]
    kind = col.type
    try:
        if col.is_lookup or kind in _TEXT_TYPES:
            return pd.array(values, dtype="string")
        if kind in _INT_TYPES or col.is_choice:
            return pd.array(values, dtype="Int64")
        if kind in _FLOAT_TYPES:
            return pd.array(values, dtype="Float64")
        if kind == "Boolean":
            return pd.array(values, dtype="boolean")
        if kind == "DateTime":
            return pd.to_datetime(
                pd.Series(values, dtype="object"), utc=True, format="ISO8601"
            ).array
    except (TypeError, ValueError):
        return values  # a value the metadata did not predict: keep it rather than fail the read
    return values


def frame_to_records(frame: pd.DataFrame, *, index_as: str | None = None) -> list[dict[str, Any]]:
    """Rows of ``frame`` as dicts; the index becomes column ``index_as`` when given.

    Missing values stay as NaN/NA/NaT markers: the caller decides to omit them or send null.
    """
    if index_as is not None:
        frame = frame.reset_index(names=index_as)
    columns = [str(c) for c in frame.columns]
    out = []
    for row in frame.itertuples(index=False, name=None):
        out.append({c: _plain(v) for c, v in zip(columns, row, strict=True)})
    return out


def _plain(value: Any) -> Any:
    """numpy/pandas scalars -> Python (orjson and the coercers expect plain values)."""
    if hasattr(value, "item") and not isinstance(value, str | bytes):
        try:
            if isinstance(value, pd.Timestamp):
                return value.to_pydatetime()
            return value.item()
        except (ValueError, AttributeError):
            return value
    return value


def as_records(records: Iterable[Any] | pd.DataFrame, *, index_as: str | None) -> list[Any]:
    """Bulk input as a list: DataFrame rows (index -> ``index_as`` when it is named so or is
    not a default RangeIndex), or the given iterable."""
    if isinstance(records, pd.DataFrame):
        use_index = index_as is not None and (
            records.index.name == index_as or not isinstance(records.index, pd.RangeIndex)
        )
        return frame_to_records(records, index_as=index_as if use_index else None)
    if isinstance(records, dict):
        raise TypeError("records must be a list of dicts or a DataFrame, not a single dict")
    return list(records)
