"""Field values -> the JSON body Dataverse expects, checked against metadata before any request.

Accepted per the connector's field-type table: text; whole numbers (also "50"); decimals;
booleans (also yes/no/true/false/1/0 and the column's labels); dates as ``datetime``/``date``,
ISO 8601 or mm/dd/yyyy; choices by value or label; lookups as ``("systemusers", id)``,
``"systemusers(<id>)"``, ``"/systemusers(<id>)"``, a bare id when the lookup has one target, or
an explicit ``"nav@odata.bind"`` key. A refused value raises :class:`ValidationError` naming the
field, the expected type and an example.
"""

from __future__ import annotations

import math
import re
import uuid
from collections.abc import Callable, Mapping
from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation
from numbers import Integral, Real
from typing import Any

from d365nb.client.errors import UnknownColumn, ValidationError
from d365nb.client.ids import normalize_id, parse_record_ref
from d365nb.client.metadata import ColumnMeta, TableMeta, closest

__all__ = ["coerce_record", "normalize_id", "is_missing", "MIN_DATE"]

MIN_DATE = datetime(1753, 1, 1, tzinfo=UTC)
MISSING_MODES = ("null", "omit", "refuse")
_MDY_RE = re.compile(
    r"^(\d{1,2})/(\d{1,2})/(\d{4})(?:[ T](\d{1,2}):(\d{2})(?::(\d{2}))?\s*([AaPp][Mm])?)?$"
)
# Whole numbers and decimals as text: ASCII digits only, no "1_000", "nan", "Infinity", "²",
# and short enough that int() never meets Python's digit limit (the range check says the rest).
_INT_TEXT = re.compile(r"\s*[+-]?[0-9]{1,40}\s*")
_NUMBER_TEXT = re.compile(r"\s*[+-]?(?:[0-9]{1,40}(?:\.[0-9]*)?|\.[0-9]{1,40})(?:[eE][+-]?[0-9]{1,4})?\s*")
_TRUE = {"true", "yes", "1", "y"}
_FALSE = {"false", "no", "0", "n"}

EXAMPLES = {
    "String": "'Call back'",
    "Memo": "'Some longer text'",
    "Integer": "50",
    "BigInt": "50",
    "Decimal": "12.5",
    "Double": "12.5",
    "Money": "1000.00",
    "Boolean": "True",
    "DateTime": "'2026-03-01T09:00:00Z' or '03/01/2026'",
    "Uniqueidentifier": "'3f2504e0-4f89-11d3-9a0c-0305e82c3301'",
}
EXPECTED = {
    "String": "text",
    "Memo": "text",
    "Integer": "a whole number",
    "BigInt": "a whole number",
    "Decimal": "a decimal number",
    "Double": "a number",
    "Money": "an amount",
    "Boolean": "yes/no (a boolean)",
    "DateTime": "a date (ISO 8601 or mm/dd/yyyy)",
    "Uniqueidentifier": "a GUID",
}


_NEVER_MISSING = frozenset({str, int, bool, dict, list, tuple, uuid.UUID, date, datetime})


def is_missing(value: Any) -> bool:
    """True for None and the pandas/numpy missing markers (NaN, NaT, pd.NA)."""
    if value is None:
        return True
    kind = type(value)
    if kind in _NEVER_MISSING:
        return False  # the common case, without asking pandas
    if kind is float:
        return math.isnan(value)
    try:
        import pandas as pd
    except ImportError:  # pragma: no cover - pandas is a dependency
        return False
    try:
        return bool(pd.isna(value)) if not isinstance(value, list | tuple | dict) else False
    except (TypeError, ValueError):
        return False


def _refuse(table: TableMeta, col: ColumnMeta, value: Any, detail: str = "") -> ValidationError:
    expected = _expected(col)
    shown = repr(value)
    if len(shown) > 60:
        shown = shown[:57] + "..."
    extra = f" ({detail})" if detail else ""
    return ValidationError(
        f"{table.logical_name}.{col.name}: expected {expected}, got {shown}{extra}; "
        f"e.g. {col.name}={_example(col)}"
    )


def _expected(col: ColumnMeta) -> str:
    if col.is_choice:
        return "a choice value or label"
    if col.is_lookup:
        return f"a lookup to {'/'.join(col.targets) or 'a record'} (table and id)"
    return EXPECTED.get(col.type, col.type)


def _example(col: ColumnMeta) -> str:
    if col.is_choice and col.options:
        value, label = next(iter(col.options.items()))
        return f"{value} or '{label}'"
    if col.is_lookup:
        target = col.targets[0] if col.targets else "accounts"
        return f"('{target}', '<id>') or '{target}(<id>)'"
    return EXAMPLES.get(col.type, "...")


def _text(table, col, value):
    if not isinstance(value, str):
        raise _refuse(table, col, value)
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise _refuse(table, col, value, "not valid Unicode text") from None
    if col.max_length and len(value) > col.max_length:
        raise _refuse(table, col, value, f"{len(value)} characters, at most {col.max_length}")
    return value


def _range(table, col, value, number):
    if col.min_value is not None and number < col.min_value:
        raise _refuse(table, col, value, f"below the minimum {_num(col.min_value)}")
    if col.max_value is not None and number > col.max_value:
        raise _refuse(table, col, value, f"above the maximum {_num(col.max_value)}")
    return number


def _num(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else str(x)


def _integer(table, col, value):
    if isinstance(value, bool):
        raise _refuse(table, col, value)
    number: int | None = None
    try:
        if (
            isinstance(value, Integral)
            or isinstance(value, Real | Decimal)
            and float(value).is_integer()
            or isinstance(value, str)
            and _INT_TEXT.fullmatch(value)
        ):
            number = int(value)
    except (ValueError, OverflowError, ArithmeticError):
        number = None
    if number is None:
        raise _refuse(table, col, value)
    return _range(table, col, value, number)


def _decimal(table, col, value):
    if isinstance(value, bool):
        raise _refuse(table, col, value)
    try:
        if isinstance(value, Real | Decimal):
            number = float(value)
        elif isinstance(value, str) and _NUMBER_TEXT.fullmatch(value):
            number = float(Decimal(value.strip()))
        else:
            raise ValueError
    except (ValueError, InvalidOperation, OverflowError, ArithmeticError):
        raise _refuse(table, col, value) from None
    if math.isnan(number) or math.isinf(number):
        raise _refuse(table, col, value)
    return _range(table, col, value, number)


def _boolean(table, col, value):
    if isinstance(value, bool):
        return value
    if isinstance(value, Integral) and int(value) in (0, 1):
        return bool(value)
    if isinstance(value, str):
        text = value.strip().lower()
        if text in _TRUE:
            return True
        if text in _FALSE:
            return False
        for code, label in col.options.items():
            if label.lower() == text:
                return bool(code)
    raise _refuse(table, col, value)


def _parse_date_text(text: str) -> datetime | date | None:
    text = text.strip()
    match = _MDY_RE.match(text)
    if match:
        month, day, year, hour, minute, second, ampm = match.groups()
        try:
            if hour is None:
                return date(int(year), int(month), int(day))
            h = int(hour)
            if ampm:
                h = h % 12 + (12 if ampm.lower() == "pm" else 0)
            return datetime(
                int(year),
                int(month),
                int(day),
                h,
                int(minute),
                int(second or 0),
                tzinfo=UTC,
            )
        except ValueError:
            return None
    try:
        if len(text) == 10:
            return date.fromisoformat(text)
        return datetime.fromisoformat(text.replace("z", "Z"))
    except ValueError:
        return None


def _datetime(table, col, value):
    if isinstance(value, str):
        parsed = _parse_date_text(value)
        if parsed is None:
            raise _refuse(table, col, value)
        value_dt = parsed
    elif isinstance(value, datetime | date):
        value_dt = value
    else:
        raise _refuse(table, col, value)
    if isinstance(value_dt, datetime):
        if value_dt.tzinfo is None:
            value_dt = value_dt.replace(tzinfo=UTC)  # Dataverse stores naive as UTC
        try:
            value_dt = value_dt.astimezone(UTC)
        except (OverflowError, ValueError):  # e.g. 9999-12-31T23:00-05:00 is past year 9999
            raise _refuse(table, col, value, "outside the dates Dataverse stores") from None
        if value_dt < MIN_DATE:
            raise _refuse(table, col, value, "dates start at 1753-01-01")
        if col.date_only:
            return value_dt.date().isoformat()
        return value_dt.replace(microsecond=0).strftime("%Y-%m-%dT%H:%M:%SZ")
    if value_dt.year < 1753:
        raise _refuse(table, col, value, "dates start at 1753-01-01")
    if col.date_only:
        return value_dt.isoformat()
    return f"{value_dt.isoformat()}T00:00:00Z"


def _choice(table, col, value):
    if isinstance(value, bool):
        raise _refuse(table, col, value)
    code: int | None = None
    try:
        if isinstance(value, Integral) or isinstance(value, Real) and float(value).is_integer():
            code = int(value)
    except (ValueError, OverflowError):
        code = None
    if isinstance(value, str):
        text = value.strip()
        if _INT_TEXT.fullmatch(text):
            code = int(text)
        else:
            for option_value, label in col.options.items():
                if label.lower() == text.lower():
                    code = option_value
                    break
    if code is None or (col.options and code not in col.options):
        valid = ", ".join(f"{v} {lbl!r}" for v, lbl in col.options.items())
        raise _refuse(table, col, value, f"valid: {valid}" if valid else "")
    return code


def _uniqueidentifier(table, col, value):
    try:
        return normalize_id(value, table=(table.logical_name, table.entity_set))
    except ValidationError:
        raise _refuse(table, col, value) from None


_COERCERS: dict[str, Callable[[TableMeta, ColumnMeta, Any], Any]] = {
    "String": _text,
    "Memo": _text,
    "EntityName": _text,
    "Integer": _integer,
    "BigInt": _integer,
    "Decimal": _decimal,
    "Double": _decimal,
    "Money": _decimal,
    "Boolean": _boolean,
    "DateTime": _datetime,
    "Picklist": _choice,
    "State": _choice,
    "Status": _choice,
    "Uniqueidentifier": _uniqueidentifier,
}


def _is_id(value: str) -> bool:
    try:
        normalize_id(value)
    except ValidationError:
        return False
    return True


def _lookup(
    table: TableMeta,
    col: ColumnMeta,
    value: Any,
    resolve_target: Callable[[str], tuple[str, str] | None],
) -> tuple[str, Any]:
    """(``nav@odata.bind``, ``/entityset(id)``) for a lookup value."""
    if value is None:
        return (
            f"{table.navigation(col.name, col.targets[0]) if col.targets else col.name}@odata.bind",
            None,
        )
    target_name: str | None = None
    raw_id: Any = None
    named: str | None = None
    if isinstance(value, str):
        named, raw_id = parse_record_ref(value)
    if isinstance(value, tuple | list) and len(value) == 2:
        target_name, raw_id = value
    elif named is not None:
        # "systemusers(<id>)", "/systemusers(<id>)", a Web API URL or an app record URL (etn).
        target_name = named
    elif isinstance(value, uuid.UUID) or (isinstance(value, str) and _is_id(value)):
        if len(col.targets) != 1:
            raise _refuse(
                table,
                col,
                value,
                f"this lookup can point to {'/'.join(col.targets)}: say which",
            )
        target_name, raw_id = col.targets[0], value
    else:
        raise _refuse(table, col, value)
    if not isinstance(target_name, str):
        raise _refuse(table, col, value)
    resolved = resolve_target(target_name)
    if resolved is None or (col.targets and resolved[0] not in col.targets):
        raise _refuse(
            table, col, value, f"lookup type {target_name!r} is not one of {', '.join(col.targets)}"
        )
    logical, entity_set = resolved
    try:
        record_id = normalize_id(
            raw_id, what=f"{table.logical_name}.{col.name} id", table=(logical, entity_set)
        )
    except ValidationError:
        raise _refuse(table, col, value, "the id is not a GUID") from None
    return f"{table.navigation(col.name, logical)}@odata.bind", f"/{entity_set}({record_id})"


def coerce_record(
    table: TableMeta,
    values: Mapping[str, Any],
    *,
    for_update: bool,
    resolve_target: Callable[[str], tuple[str, str] | None],
    missing: str = "omit",
) -> dict[str, Any]:
    """The JSON body for ``values`` on ``table``; raises before any request on bad input.

    ``resolve_target(name)`` maps a lookup type (logical or entity-set name) to
    ``(logical, entity_set)`` or None. ``missing`` says what NaN/NA/NaT (pandas' missing
    markers) mean: ``"omit"`` drops the column, ``"null"`` sends null (clears it), ``"refuse"``
    raises (single-record writes: a NaN there is a mistake, not a gap in a frame). Plain
    ``None`` is always sent as null.
    """
    if missing not in MISSING_MODES:
        raise ValidationError(
            f"missing must be one of {', '.join(map(repr, MISSING_MODES))}, got {missing!r}"
        )
    if not isinstance(values, Mapping):
        raise ValidationError(
            f"values for {table.logical_name} must be a dict of column: value, "
            f"got {type(values).__name__}"
        )
    body: dict[str, Any] = {}
    for name, value in values.items():
        if not isinstance(name, str):
            raise ValidationError(f"{table.logical_name}: column names must be text, got {name!r}")
        if "@" in name:
            # Explicit annotations ("nav@odata.bind", "@odata.type") are passed through as given.
            if name.endswith("@odata.bind") and value is not None and not isinstance(value, str):
                raise ValidationError(
                    f"{table.logical_name}.{name}: expected '/entityset(<id>)' or None, "
                    f"got {type(value).__name__}"
                )
            body[name] = value
            continue
        if value is not None and is_missing(value):
            if missing == "omit":
                continue
            if missing == "refuse":
                raise ValidationError(
                    f"{table.logical_name}.{name}: got {value!r}, a missing-value marker; "
                    "pass None to clear the column"
                )
            value = None
        col = table.find(name)
        if col is None:
            hint = closest(name, [c for c, m in table.columns.items() if not m.read_only])
            more = f"; did you mean {', '.join(hint)}?" if hint else ""
            raise UnknownColumn(f"table {table.logical_name!r} has no column {name!r}{more}")
        if col.is_primary_id and not for_update:
            body[col.name] = _uniqueidentifier(table, col, value)
            continue
        allowed = col.valid_for_update if for_update else col.valid_for_create
        if not allowed:
            action = "updated" if for_update else "set on create"
            raise ValidationError(
                f"{table.logical_name}.{col.name} is read-only and cannot be {action}"
            )
        if col.is_lookup:
            key, bound = _lookup(table, col, value, resolve_target)
            body[key] = bound
            continue
        if value is None:
            body[col.name] = None
            continue
        coercer = _COERCERS.get(col.type)
        body[col.name] = coercer(table, col, value) if coercer else value
    return body
