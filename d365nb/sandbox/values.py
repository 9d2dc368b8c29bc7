"""JSON values -> storage form, checked the way Dataverse checks them (type, length, range,
option set, dates), and the small value helpers (GUIDs, etags, Edm type names)."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime
from typing import Any

from . import errors
from .schema.model import CHOICE_TYPES, Column, Table, edm_type
from .store import format_datetime

GUID_RE = re.compile(
    r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"
)
_MIN_DATE = "1753-01-01"


def is_guid(text: Any) -> bool:
    """True for `xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx` (hex, any case)."""
    return isinstance(text, str) and GUID_RE.match(text) is not None


def parse_etag(value: str) -> int | None:
    """`W/"123"` (or `"123"`) -> 123; None when it is not a version etag."""
    v = value.strip()
    if v.startswith("W/"):
        v = v[2:]
    v = v.strip('"')
    return int(v) if v.isdigit() else None


def payload_error(table: Table, inner: str) -> errors.BadRequest:
    """The OData payload error, worded as Dataverse wraps it (code 0x80048d19)."""
    return errors.BadRequest(
        f"Error identified in Payload provided by the user for Entity :'{table.entity_set}'"
        f"  ---->  InnerException : Microsoft.OData.ODataException: {inner}"
    )


def convert(table: Table, column: Column, value: Any) -> Any:
    """A JSON value -> storage form, checked against the column's type and limits."""
    if value is None:
        return None
    t = column.type

    def wrong() -> errors.DataverseError:
        shown = str(value).lower() if isinstance(value, bool) else value
        return payload_error(
            table,
            f"Cannot convert the literal '{shown}' to the expected type '{edm_type(column)}'.",
        )

    if t in ("String", "Memo"):
        if not isinstance(value, str):
            raise wrong()
        if column.max_length is not None and len(value) > column.max_length:
            raise errors.ValidationFailed(
                f"A validation error occurred.  The length of the '{column.name}' attribute "
                f"of the '{table.logical_name}' entity exceeded the maximum allowed length "
                f"of '{column.max_length}'."
            )
        return value
    if t in ("Integer", "BigInt") or t in CHOICE_TYPES:
        if isinstance(value, bool) or not isinstance(value, int):
            if isinstance(value, float) and value.is_integer():
                value = int(value)
            else:
                raise wrong()
        if t in CHOICE_TYPES:
            if value not in {o.value for o in column.options}:
                raise errors.ValidationFailed(
                    f"A validation error occurred.  The value {value} of '{column.name}' on "
                    f"record of type '{table.logical_name}' is outside the valid range."
                )
        else:
            _check_range(table, column, value)
        return value
    if t in ("Decimal", "Money", "Double"):
        if isinstance(value, bool):
            raise wrong()
        if isinstance(value, str):
            try:
                value = float(value)
            except ValueError:
                raise wrong() from None
        if not isinstance(value, int | float):
            raise wrong()
        _check_range(table, column, value)
        return float(value)
    if t == "Boolean":
        if not isinstance(value, bool):
            raise wrong()
        return int(value)
    if t == "DateTime":
        if not isinstance(value, str):
            raise wrong()
        return _convert_datetime(table, column, value, wrong)
    if t == "Uniqueidentifier":
        if not is_guid(value):
            raise wrong()
        return value.lower()
    raise wrong()


def _check_range(table: Table, column: Column, value: float) -> None:
    lo, hi = column.min_value, column.max_value
    if (lo is not None and value < lo) or (hi is not None and value > hi):
        lo_s = f"{lo:g}" if lo is not None else ""
        hi_s = f"{hi:g}" if hi is not None else ""
        raise errors.ValidationFailed(
            f"A validation error occurred.  The value {value} of '{column.name}' on record "
            f"of type '{table.logical_name}' is outside the valid range "
            f"({lo_s} to {hi_s})."
        )


def _convert_datetime(table: Table, column: Column, value: str, wrong: Any) -> str:
    date_only = column.date_behavior == "DateOnly"
    try:
        if date_only and len(value) == 10:
            stored = date.fromisoformat(value).isoformat()
        else:
            moment = datetime.fromisoformat(value.replace("z", "Z"))
            if moment.tzinfo is None:  # no offset: stored as UTC (dataverse-wire.md §6)
                moment = moment.replace(tzinfo=UTC)
            stored = moment.date().isoformat() if date_only else format_datetime(moment)
    except ValueError:
        raise wrong() from None
    if stored < _MIN_DATE:
        raise errors.ValidationFailed(
            f"A validation error occurred.  The value of '{column.name}' on record of type "
            f"'{table.logical_name}' is before the minimum allowed date 1/1/1753."
        )
    return stored
