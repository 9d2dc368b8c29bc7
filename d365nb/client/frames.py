"""JSON pages <-> DataFrames with dtypes from metadata.

Reading: index = the primary id; text -> ``string``; whole numbers -> ``Int64``; decimals,
doubles and money -> ``Float64``; booleans -> ``boolean``; datetimes -> UTC ``datetime64``;
choices -> ``Int64`` codes, or labels (``category``) with ``labels=True``; lookups ->
``_x_value`` (``string``) plus ``x_label`` when formatted values were requested. ``@odata.*``
annotations are dropped. An empty result still has its columns.

Writing: a DataFrame becomes a list of dicts (one per row); missing values are omitted or sent
as null, as the caller chooses.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import pandas as pd

from d365nb.client.metadata import TableMeta

__all__ = ["records_to_frame", "frame_to_records", "FORMATTED", "LOOKUP_TABLE"]

FORMATTED = "@OData.Community.Display.V1.FormattedValue"
LOOKUP_TABLE = "@Microsoft.Dynamics.CRM.lookuplogicalname"

_INT_TYPES = frozenset({"Integer", "BigInt"})
_FLOAT_TYPES = frozenset({"Decimal", "Double", "Money"})
_TEXT_TYPES = frozenset({"String", "Memo", "EntityName", "Uniqueidentifier"})


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
) -> pd.DataFrame:
    """A DataFrame from raw Web API records (see module docstring for the dtypes)."""
    pk = meta.primary_id
    wanted = expected_columns(meta, select)
    # Column-wise build: one pass per key is faster than DataFrame(list_of_dicts).
    keys: dict[str, None] = dict.fromkeys(wanted)
    if records:
        for key in records[0]:
            keys.setdefault(key, None)
        if len(records) > 1:
            for key in records[-1]:
                keys.setdefault(key, None)
    keys.pop(pk, None)
    data: dict[str, Any] = {}
    label_data: dict[str, list] = {}
    for key in keys:
        if key.startswith("@"):
            continue
        if "@" in key:
            base, _, term = key.partition("@")
            if (
                labels
                and "@" + term == FORMATTED
                and base.startswith("_")
                and base.endswith("_value")
            ):
                label_data[base[1:-6] + "_label"] = [r.get(key) for r in records]
            continue
        data[key] = [r.get(key) for r in records]
    if labels:
        # choice labels replace their codes in place (below); keep their formatted values
        for key in list(data):
            col = _column(meta, key)
            if col is not None and col.is_choice:
                formatted = [r.get(key + FORMATTED) for r in records]
                data[key] = _choice_labels(data[key], formatted, col.options)
    index = pd.Index([r.get(pk) for r in records], dtype="string", name=pk)
    frame = pd.DataFrame(
        {k: _convert(v, _column(meta, k), labels) for k, v in data.items()}, index=index
    )
    for name, values in label_data.items():
        frame[name] = pd.array(values, dtype="string")
    frame.attrs["table"] = meta.logical_name
    return frame


def _column(meta: TableMeta, key: str):
    col = meta.columns.get(key)
    if col is None and key.startswith("_") and key.endswith("_value"):
        col = meta.columns.get(key[1:-6])
    return col


def _choice_labels(codes: list, formatted: list, options: dict[int, str]) -> pd.Categorical:
    values = [
        f if f is not None else (options.get(c, str(c)) if c is not None else None)
        for c, f in zip(codes, formatted, strict=True)
    ]
    categories = list(dict.fromkeys([*options.values(), *(v for v in values if v is not None)]))
    return pd.Categorical(values, categories=categories)


def _convert(values: list, col, labels: bool) -> Any:
    if col is None:
        return values  # expanded navigations, aggregates: leave as Python objects
    if isinstance(values, pd.Categorical):
        return values
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
