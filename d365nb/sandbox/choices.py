"""Choices (multi-select) columns: values written and read as comma-separated option values.

The Web API sends and receives a choices value as text, `"1,9"` (a client may write `"1, 9"`);
its formatted value joins the labels with `"; "` ("Swimming; Camping"). The store keeps the
normalised text, so `ContainValues`/`DoesNotContainValues` test membership with one `LIKE`.
See https://learn.microsoft.com/power-apps/developer/data-platform/multi-select-picklist
"""

from __future__ import annotations

from typing import Any

from . import errors
from .schema.model import Column, Table

MAX_SELECTED = 150  # "only 150 options can be selected for a single column"


def to_storage(table: Table, column: Column, value: Any, wrong: Any) -> str | None:
    """`"1, 9"` -> `"1,9"` (each value one of the column's options, no repeats); `""` is null."""
    if not isinstance(value, str):
        raise wrong()
    parts = [p.strip() for p in value.split(",")]
    if parts == [""]:
        return None
    try:
        numbers = [int(p) for p in parts]
    except ValueError:
        raise wrong() from None
    allowed = {o.value for o in column.options}
    for number in numbers:
        if number not in allowed:
            raise errors.ValidationFailed(
                f"A validation error occurred.  The value {number} of '{column.name}' on "
                f"record of type '{table.logical_name}' is outside the valid range."
            )
    chosen = list(dict.fromkeys(numbers))
    if len(chosen) > MAX_SELECTED:
        raise errors.ValidationFailed(
            f"A validation error occurred.  At most {MAX_SELECTED} options can be selected in "
            f"'{column.name}'."
        )
    return ",".join(str(n) for n in chosen)


def formatted(column: Column, stored: str | None) -> str | None:
    """The formatted value: the selected options' labels joined by "; "."""
    if not stored:
        return None
    labels = {str(o.value): o.label for o in column.options}
    return "; ".join(labels.get(v, v) for v in stored.split(","))
