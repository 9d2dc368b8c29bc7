"""JSON values -> storage form, checked the way Dataverse checks them (type, length, range,
option set, dates), and the small value helpers (GUIDs, etags, Edm type names)."""

from __future__ import annotations

import math
import re
from datetime import UTC, date, datetime
from typing import Any

from . import choices, errors
from .schema.model import CHOICE_TYPES, MULTI_CHOICE, Column, Table, edm_type
from .store import format_datetime

GUID_RE = re.compile(
    r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"
)
_MIN_DATE = "1753-01-01"
# Numbers as JSON strings (OData's IEEE754Compatible form): plain ASCII decimal notation only, so
# Python's extras (`nan`, `Infinity`, `1_000`, full-width or superscript digits) are refused.
_DECIMAL_TEXT = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?", re.ASCII)
_WHOLE_TEXT = re.compile(r"[0-9]{1,19}", re.ASCII)
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
# Deep insert: records nested in records (`{"parentaccountid": {"parentaccountid": {...}}}`)
# are created recursively; past this depth the body is refused rather than the stack exhausted.
MAX_NESTING = 32


def is_guid(text: Any) -> bool:
    """True for `xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx` (hex, any case)."""
    return isinstance(text, str) and GUID_RE.match(text) is not None


def parse_etag(value: str) -> int | None:
    """`W/"123"` (or `"123"`) -> 123; None when it is not a version etag."""
    v = value.strip()
    if v.startswith("W/"):
        v = v[2:]
    return whole_number(v.strip('"'))


def whole_number(text: str) -> int | None:
    """`text` as a non-negative whole number written in ASCII digits that fits SQLite's 64-bit
    integers, else None. `str.isdigit` is not enough: it accepts `²` and other digits `int()`
    refuses, and a 20-digit number overflows SQLite."""
    v = text.strip()
    if not _WHOLE_TEXT.fullmatch(v):
        return None
    number = int(v)
    return number if number <= INT64_MAX else None


def number_text(text: str) -> int | float | None:
    """A number written as text (`"42"`, `"-1.5e3"`) -> int within 64 bits or finite float;
    None for anything else (`nan`, `Infinity`, `1_000`, `²`, 20-digit integers)."""
    v = text.strip()
    if not _DECIMAL_TEXT.fullmatch(v):
        return None
    if re.fullmatch(r"[+-]?[0-9]+", v):
        number = int(v)
        return number if INT64_MIN <= number <= INT64_MAX else None
    value = float(v)
    return value if math.isfinite(value) else None


def nesting_depth(value: Any, limit: int = MAX_NESTING) -> int:
    """How many JSON objects are nested in `value` (lists do not count), stopping at `limit` + 1.
    Iterative, so a hostile body cannot exhaust the stack while being measured."""
    deepest = 0
    stack = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            depth += 1
            deepest = max(deepest, depth)
            if deepest > limit:
                return deepest
            stack.extend((v, depth) for v in item.values())
        elif isinstance(item, list):
            stack.extend((v, depth) for v in item)
    return deepest


def check_nesting(value: Any) -> None:
    """Refuse a body whose records nest deeper than MAX_NESTING (400)."""
    if nesting_depth(value) > MAX_NESTING:
        raise errors.BadRequest(
            f"The request body nests records more than {MAX_NESTING} levels deep; create the "
            "deepest related records first and bind them with @odata.bind."
        )


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
        if not INT64_MIN <= value <= INT64_MAX:  # SQLite integers are 64-bit
            raise wrong()
        return value
    if t in ("Decimal", "Money", "Double"):
        if isinstance(value, bool):
            raise wrong()
        if isinstance(value, str):  # OData's IEEE754Compatible form: "12.5"
            if not _DECIMAL_TEXT.fullmatch(value.strip()):
                raise wrong()
            value = float(value)
        if not isinstance(value, int | float):
            raise wrong()
        try:
            value = float(value)
        except (OverflowError, ValueError):
            raise wrong() from None
        if not math.isfinite(value):
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
    if t == MULTI_CHOICE:  # "1, 9" -> "1,9" (see `choices`)
        return choices.to_storage(table, column, value, wrong)
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
