"""`Microsoft.Dynamics.CRM.*` query-function calls -> SQL conditions on one column.

`functions` says what each function means (a time range, bounds, a value list, the current
user); this module checks the call's arguments against the column and writes the SQL, with every
value as a `?` parameter.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from ..collation import COLLATION, needs_fold
from ..values import number_text
from . import functions, set_functions
from .errors import ODataError
from .nodes import Literal, QueryFunction
from .sql import FilterCompiler, Operand, storage_datetime


def _property(compiler: FilterCompiler, node: QueryFunction) -> tuple[Operand, dict[str, Any]]:
    """The column named by `PropertyName='<column>'` and the function's other parameters."""
    args = dict(node.args)
    prop = args.pop("PropertyName", None)
    if not isinstance(prop, Literal) or prop.kind != "string":
        raise ODataError(
            f"The function '{node.name}' needs PropertyName='<column>' (position {node.pos} "
            f"in '{compiler.text}').",
            node.pos,
        )
    return compiler.column_operand(prop.value, prop.pos), args


def compile_query_function(compiler: FilterCompiler, node: QueryFunction) -> str:
    """SQL for `Microsoft.Dynamics.CRM.<name>(PropertyName=...,...)` in `compiler`'s scope."""
    qualified = node.name
    short = qualified[len(functions.PREFIX) :] if qualified.startswith(functions.PREFIX) else None
    if short in set_functions.NAMES:  # choices, hierarchy and fiscal-period functions
        target, args = _property(compiler, node)
        return set_functions.compile_set_function(compiler, node, short, target, args)
    shape = functions.arity(short) if short else None
    if shape is None:
        raise ODataError(
            f"An unknown function with name '{qualified}' was found. This may also be a "
            "function import or a key lookup on a navigation property, which is not allowed.",
            node.pos,
        )
    target, args = _property(compiler, node)
    column = target.column
    unit = functions.unit_of(short)
    if unit in functions.SUB_DAY_UNITS and target.kind == "date":
        raise ODataError(
            f"The operator '{short}' is not valid for the date-only column '{column.name}'.",
            node.pos,
        )
    value = values = None
    if shape in ("date", "x"):
        raw = args.pop("PropertyValue", None)
        if raw is None:
            raise ODataError(
                f"The function '{qualified}' needs a PropertyValue (position {node.pos} in "
                f"'{compiler.text}').",
                node.pos,
            )
        value = _date_arg(raw, qualified) if shape == "date" else _int_arg(raw, qualified)
    elif shape in ("pair", "list"):
        raw = args.pop("PropertyValues", None)
        if raw is None and shape == "pair" and "PropertyValue1" in args:
            raw = Literal(
                node.pos,
                "array",
                [
                    args.pop("PropertyValue1").value,
                    args.pop("PropertyValue2", Literal(0, "null", None)).value,
                ],
            )
        if raw is None or raw.kind != "array":
            raise ODataError(
                f"The function '{qualified}' needs PropertyValues=[...] (position {node.pos} "
                f"in '{compiler.text}').",
                node.pos,
            )
        values = [_typed(v, target, qualified) for v in raw.value]
        if shape == "pair" and len(values) != 2:
            raise ODataError(
                f"The function '{qualified}' needs exactly two PropertyValues.", node.pos
            )
        if shape == "list" and not values:
            raise ODataError(f"The function '{qualified}' needs at least one value.", node.pos)
    if args:
        extra = next(iter(args))
        raise ODataError(f"The function '{qualified}' has no parameter named '{extra}'.", node.pos)
    if (
        shape in ("none", "date", "x")
        and short not in ("EqualUserId", "NotEqualUserId")
        and target.kind not in ("datetime", "date")
    ):
        raise ODataError(
            f"The function '{qualified}' needs a date and time column, "
            f"not '{dict(node.args)['PropertyName'].value}'.",
            node.pos,
        )
    try:
        cond = functions.condition(short, compiler.now, value, values)
    except ODataError:
        raise
    except (OverflowError, ValueError):  # e.g. LastXYears(100000): before year 1
        raise ODataError(
            f"The function '{qualified}' reaches a date outside the supported range "
            f"(position {node.pos} in '{compiler.text}').",
            node.pos,
        ) from None
    return _condition(compiler, target, cond, qualified, node.pos)


def _condition(compiler: FilterCompiler, target: Operand, cond, qualified: str, pos: int) -> str:
    sql = target.sql
    if isinstance(cond, functions.TimeRange):
        parts = []
        if cond.lower is not None:
            compiler.params.append(_bound(cond.lower, target.kind, upper=False))
            parts.append(f"{sql} >= ?")
        if cond.upper is not None:
            inclusive = cond.upper_inclusive
            bound = cond.upper
            if target.kind == "date" and not inclusive:
                # exclusive midnight bound on a date-only column: compare dates
                compiler.params.append(bound.date().isoformat())
                parts.append(f"{sql} < ?")
            else:
                compiler.params.append(_bound(bound, target.kind, upper=True))
                parts.append(f"{sql} {'<=' if inclusive or target.kind == 'date' else '<'} ?")
        return "(" + " AND ".join(parts) + ")"
    if isinstance(cond, functions.CurrentUser):
        if target.kind != "guid":
            raise ODataError(f"The function '{qualified}' needs a lookup column.", pos)
        compiler.params.append((compiler.user_id or "").lower())
        return f"({sql} {'<>' if cond.negate else '='} ?)"
    collate = ""
    if target.kind == "text":
        values = [getattr(cond, "low", None), getattr(cond, "high", None)]
        values += list(getattr(cond, "values", None) or ())
        unicode = any(needs_fold(v) for v in values)
        collate = f" COLLATE {COLLATION}" if unicode else " COLLATE NOCASE"
    if isinstance(cond, functions.Between):
        low, high = cond.low, cond.high
        if (
            target.kind == "datetime"
            and isinstance(high, dt.date)
            and not isinstance(high, dt.datetime)
        ):
            high_sql, high_value = (
                "<",
                storage_datetime(
                    dt.datetime.combine(high, dt.time(), tzinfo=dt.UTC) + functions.DAY
                ),
            )
        else:
            high_sql, high_value = "<=", _storage(high, target.kind)
        compiler.params.extend([_storage(low, target.kind), high_value])
        inside = f"{sql} >= ?{collate} AND {sql} {high_sql} ?{collate}"
        return f"(NOT ({inside}))" if cond.negate else f"({inside})"
    marks = ", ".join("?" * len(cond.values))
    compiler.params.extend(_storage(v, target.kind) for v in cond.values)
    # `IN` compares with the left operand's collation (a trailing COLLATE would only apply
    # to the result)
    return f"({sql}{collate} {'NOT IN' if cond.negate else 'IN'} ({marks}))"


def _bound(moment: dt.datetime, kind: str, *, upper: bool) -> str:
    if kind == "date":
        return moment.date().isoformat()
    return storage_datetime(moment)


def _date_arg(raw: Literal, qualified: str) -> dt.date:
    if raw.kind == "date":
        return raw.value
    if raw.kind == "datetime":
        return raw.value.date()
    if raw.kind == "string":
        try:
            return dt.date.fromisoformat(raw.value[:10])
        except ValueError:
            pass
    raise ODataError(
        f"The PropertyValue of '{qualified}' must be a date such as '2026-01-31'.", raw.pos
    )


def _int_arg(raw: Literal, qualified: str) -> int:
    if raw.kind == "int":
        return raw.value
    if raw.kind == "string" and isinstance(number := number_text(raw.value), int):
        return number
    raise ODataError(f"The PropertyValue of '{qualified}' must be a whole number.", raw.pos)


def _typed(value: Any, target: Operand, qualified: str) -> Any:
    """A PropertyValues item (JSON string or number) typed for the target column."""
    kind = target.kind
    try:
        if kind == "text":
            return str(value)
        if kind == "number":
            number = number_text(str(value))  # 64-bit ints, finite floats: what SQLite holds
            if number is None:
                raise ValueError(value)
            return number
        if kind == "bool":
            return {"true": 1, "false": 0, "1": 1, "0": 0}[str(value).lower()]
        if kind == "guid":
            return str(value).lower()
        if kind in ("datetime", "date"):
            text = str(value)
            if len(text) == 10:
                return dt.date.fromisoformat(text)
            moment = dt.datetime.fromisoformat(text)
            return moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)
    except (ValueError, KeyError):
        pass
    raise ODataError(
        f"The value '{value}' given to '{qualified}' is not valid for the column "
        f"'{target.column.name if target.column else '?'}' ({target.edm})."
    )


def _storage(value: Any, kind: str) -> Any:
    if kind == "datetime":
        if isinstance(value, dt.datetime):
            return storage_datetime(value)
        if isinstance(value, dt.date):
            return value.isoformat() + "T00:00:00Z"
    if kind == "date" and isinstance(value, dt.date):
        return (value.date() if isinstance(value, dt.datetime) else value).isoformat()
    return value
