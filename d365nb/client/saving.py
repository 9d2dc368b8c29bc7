"""Frames that export anywhere: time zones of datetime columns, and saving to csv/parquet/xlsx.

Dataverse returns datetimes in UTC and frames hold them tz-aware (UTC). Excel cannot store a
time zone (``to_excel`` refuses tz-aware values), so :func:`convert_tz` offers ``"UTC"``
(default), ``"local"`` (the machine's zone), an IANA zone name (``"Europe/Paris"``) or
``"naive"`` (UTC wall time, zone dropped; a naive value written back is read as UTC, as
Dataverse does). :func:`save_frame` writes by extension; parquet needs ``pyarrow`` and xlsx
``openpyxl`` (the ``d365nb[save]`` extra), with a one-line hint when missing.
"""

from __future__ import annotations

import json
import os
from datetime import datetime
from pathlib import Path
from typing import Any

import pandas as pd

from d365nb.client.errors import ValidationError
from d365nb.client.frames import SNAPSHOT_KEY, ReadSnapshot, snapshot_of

__all__ = ["convert_tz", "save_frame", "SAVE_FORMATS", "MissingExtra"]

SAVE_FORMATS = {".csv": None, ".parquet": "pyarrow", ".xlsx": "openpyxl"}


class MissingExtra(ValidationError):
    """An optional dependency needed for this format is not installed."""


def _local_zone() -> Any:
    """The machine's time zone: ``TZ``, else /etc/localtime's zone, else its current offset."""
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    name = os.environ.get("TZ", "").lstrip(":")
    if not name:
        try:
            target = os.path.realpath("/etc/localtime")
            if "zoneinfo/" in target:
                name = target.split("zoneinfo/", 1)[1]
        except OSError:
            name = ""
    if name:
        try:
            return ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError):
            pass
    return datetime.now().astimezone().tzinfo


def _zone(tz: str) -> Any:
    """The zone object for a ``tz`` option; None for ``naive``."""
    key = (tz or "UTC").strip()
    if key.lower() == "naive":
        return None
    if key.lower() == "utc":
        return "UTC"
    if key.lower() == "local":
        return _local_zone()
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    try:
        return ZoneInfo(key)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValidationError(
            f"unknown time zone {tz!r}: use UTC, local, naive or a zone name like Europe/Paris"
        ) from None


def _converted(frame: pd.DataFrame, zone: Any) -> pd.DataFrame:
    out = frame.copy(deep=False)
    for name in out.columns:
        column = out[name]
        if isinstance(column.dtype, pd.DatetimeTZDtype):
            utc = column.dt.tz_convert("UTC")
            out[name] = utc.dt.tz_localize(None) if zone is None else utc.dt.tz_convert(zone)
    return out


def convert_tz(frame: pd.DataFrame, tz: str) -> pd.DataFrame:
    """``frame`` with every tz-aware datetime column in zone ``tz`` (see module docstring).

    A frame read by ``list`` keeps its write-back snapshot, converted the same way, so an
    edited frame still sends only its changed cells.
    """
    zone = _zone(tz)
    if zone == "UTC" and not any(
        isinstance(t, pd.DatetimeTZDtype) and str(t.tz) != "UTC" for t in frame.dtypes
    ):
        frame.attrs["tz"] = "UTC"
        return frame
    out = _converted(frame, zone)
    snap = snapshot_of(frame)
    if snap is not None:
        out.attrs[SNAPSHOT_KEY] = ReadSnapshot(
            snap.table, _converted(snap.original, zone), snap.etags
        )
    out.attrs["tz"] = "naive" if zone is None else str(tz)
    return out


def _check_extra(suffix: str) -> None:
    module = SAVE_FORMATS[suffix]
    if module is None:
        return
    import importlib

    try:
        importlib.import_module(module)
    except ImportError:
        raise MissingExtra(
            f"saving {suffix} needs {module}: pip install 'd365nb[save]' (or pip install {module})"
        ) from None


def _cell_text(value: Any) -> Any:
    """Lists/dicts (collection-valued expands) as JSON text, for formats without nesting."""
    if isinstance(value, list | dict):
        return json.dumps(value, ensure_ascii=False, default=str)
    return value


def _flat_for_files(frame: pd.DataFrame, *, naive: bool) -> pd.DataFrame:
    out = frame.copy(deep=False)
    out.attrs = {}
    for name in out.columns:
        column = out[name]
        if column.dtype == object:
            out[name] = column.map(_cell_text)
        elif naive and isinstance(column.dtype, pd.DatetimeTZDtype):
            out[name] = column.dt.tz_localize(None)  # wall time in the frame's zone
    return out


def save_frame(frame: pd.DataFrame, path: str | os.PathLike) -> Path:
    """Write ``frame`` (index included) to ``path``: ``.csv``, ``.parquet`` or ``.xlsx``.

    xlsx cannot hold time zones: datetimes are written as wall time in the frame's zone
    (choose it with ``convert_tz``). Refuses an unknown extension or a missing folder in one
    line, before writing anything.
    """
    target = Path(path).expanduser()
    suffix = target.suffix.lower()
    if suffix not in SAVE_FORMATS:
        raise ValidationError(
            f"cannot save {str(path)!r}: use a .csv, .parquet or .xlsx file name"
        )
    if not target.parent.is_dir():
        raise ValidationError(
            f"cannot save {str(path)!r}: folder {str(target.parent)!r} does not exist"
        )
    _check_extra(suffix)
    if suffix == ".csv":
        _flat_for_files(frame, naive=False).to_csv(target)
    elif suffix == ".parquet":
        _flat_for_files(frame, naive=False).to_parquet(target)
    else:
        _flat_for_files(frame, naive=True).to_excel(target)
    return target
