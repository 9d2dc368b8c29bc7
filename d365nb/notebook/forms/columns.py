"""How a column's metadata decides its input: kind, required-ness, labels, values.

Everything here reads only the documented `ColumnMeta` attributes (``name, type, display_name,
required, max_length, min_value, max_value, options, targets, read_only, valid_for_create,
valid_for_update``), so forms work for any table without table-specific code.
"""

from __future__ import annotations

import re
from datetime import date, datetime
from typing import Any

TEXT = "text"
MEMO = "memo"
WHOLE = "whole"
DECIMAL = "decimal"
DATE = "date"
BOOLEAN = "boolean"
CHOICE = "choice"
LOOKUP = "lookup"

_KINDS = {
    "string": TEXT,
    "memo": MEMO,
    "integer": WHOLE,
    "bigint": WHOLE,
    "decimal": DECIMAL,
    "double": DECIMAL,
    "money": DECIMAL,
    "datetime": DATE,
    "boolean": BOOLEAN,
    "picklist": CHOICE,
    "state": CHOICE,
    "status": CHOICE,
    "lookup": LOOKUP,
    "customer": LOOKUP,
    "owner": LOOKUP,
}


def kind(column: Any) -> str | None:
    """The input kind for a column (``text``, ``whole``, ``date``, ...), None when not editable
    through a form (ids, virtual columns)."""
    return _KINDS.get(str(getattr(column, "type", "")).lower())


def is_required(column: Any) -> bool:
    """True for columns a person must fill in (``ColumnMeta.required``: Application- or
    SystemRequired).

    Owner, State and Status are never required of the person: left blank, Dataverse makes the
    caller the owner and starts the record in its default state.
    """
    if str(getattr(column, "type", "")).lower() in ("owner", "state", "status"):
        return False
    return bool(getattr(column, "required", False))


def label(column: Any) -> str:
    """The column's display name, falling back to its logical name."""
    return getattr(column, "display_name", None) or column.name


def options(column: Any) -> dict[int, str]:
    """Choice options as ``{value: label}`` (``ColumnMeta.options``), in metadata order."""
    return {int(k): str(v) for k, v in (getattr(column, "options", None) or {}).items()}


def targets(column: Any) -> list[str]:
    """The logical names of the tables a lookup can point to."""
    return list(getattr(column, "targets", None) or [])


def editable(column: Any, mode: str) -> bool:
    """Whether a form in ``mode`` ("create" or "update") should offer this column."""
    if kind(column) is None or getattr(column, "read_only", False):
        return False
    if getattr(column, "attribute_of", None) or getattr(column, "is_primary_id", False):
        return False
    flag = "valid_for_create" if mode == "create" else "valid_for_update"
    return bool(getattr(column, flag, True))


_MDY = re.compile(r"^\s*(\d{1,2})/(\d{1,2})/(\d{4})\s*$")


def parse_date(text: str) -> date | datetime:
    """A date typed by a person: ``mm/dd/yyyy`` (the seed's format) or ISO 8601.

    Raises ValueError with a message naming both accepted formats.
    """
    match = _MDY.match(text)
    try:
        if match:
            month, day, year = (int(g) for g in match.groups())
            return date(year, month, day)
        stripped = text.strip()
        if "T" in stripped or " " in stripped:
            return datetime.fromisoformat(stripped.replace("Z", "+00:00"))
        return date.fromisoformat(stripped)
    except ValueError:
        pass
    raise ValueError(f"not a date: {text!r} (use mm/dd/yyyy, e.g. 03/31/2026, or 2026-03-31)")


def format_mdy(value: date) -> str:
    """``mm/dd/yyyy``, the way the date box shows a picked date."""
    return f"{value.month:02d}/{value.day:02d}/{value.year:04d}"
