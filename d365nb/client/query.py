"""Safe OData queries: Python values become correctly quoted OData literals.

Never paste user values into a filter with an f-string; use :func:`format_filter`::

    >>> format_filter("lastname eq {name} and createdon ge {since}",
    ...               name="O'Neil", since=datetime(2026, 1, 1, tzinfo=timezone.utc))
    "lastname eq 'O''Neil' and createdon ge 2026-01-01T00:00:00Z"

Also re-exported as ``d365nb.odata``.
"""

from __future__ import annotations

import math
import re
import string
import uuid
from collections.abc import Iterable, Mapping
from datetime import UTC, date, datetime
from decimal import Decimal
from numbers import Integral, Real
from typing import Any

from d365nb.client.errors import ValidationError

__all__ = ["literal", "format_filter", "is_guid", "build_query"]

_GUID = r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
_GUID_RE = re.compile(rf"^(?:{_GUID}|\{{{_GUID}\}})$")


def is_guid(text: Any) -> bool:
    """True when ``text`` is a GUID string (optionally in braces) or a ``uuid.UUID``."""
    return isinstance(text, uuid.UUID) or (isinstance(text, str) and bool(_GUID_RE.match(text)))


def literal(value: Any) -> str:
    """The OData literal for a Python value.

    * ``str`` -> ``'text'`` with ``'`` doubled (a GUID-shaped string is written bare, as
      Dataverse compares GUID columns and lookups with bare GUIDs);
    * ``uuid.UUID`` -> bare GUID; ``None`` -> ``null``; ``bool`` -> ``true``/``false``;
    * numbers bare (NaN/infinity refused); ``datetime`` -> ISO 8601 UTC with ``Z`` (naive values
      are taken as UTC, as Dataverse does); ``date`` -> ``YYYY-MM-DD``;
    * a list/tuple/set -> ``["a","b"]`` (the array form of ``Microsoft.Dynamics.CRM.In``).

    >>> literal("O'Neil")
    "'O''Neil'"
    """
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, str):
        if _GUID_RE.match(value):
            return value.strip("{}").lower()
        return "'" + value.replace("'", "''") + "'"
    if isinstance(value, datetime):
        if value.tzinfo is not None:
            value = value.astimezone(UTC).replace(tzinfo=None)
        text = value.isoformat(timespec="microseconds" if value.microsecond else "seconds")
        return text + "Z"
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Integral):
        return str(int(value))
    if isinstance(value, Decimal):
        if not value.is_finite():
            raise ValidationError(f"cannot use {value} in a filter: OData has no literal for it")
        return format(value, "f")
    if isinstance(value, Real):
        number = float(value)
        if math.isnan(number) or math.isinf(number):
            raise ValidationError(f"cannot use {value} in a filter: OData has no literal for it")
        return repr(number)
    if isinstance(value, list | tuple | set | frozenset):
        items = []
        for item in value:
            text = literal(item)
            if text.startswith("'"):
                # Array items are double-quoted; escape JSON-style.
                inner = text[1:-1].replace("''", "'")
                text = '"' + inner.replace("\\", "\\\\").replace('"', '\\"') + '"'
            else:
                text = f'"{text}"'
            items.append(text)
        return "[" + ",".join(items) + "]"
    raise ValidationError(
        f"cannot use a {type(value).__name__} in a filter; use str, number, bool, None, "
        "datetime, date, UUID or a list of those"
    )


class _LiteralFormatter(string.Formatter):
    def format_field(self, value: Any, format_spec: str) -> str:
        if format_spec:
            raise ValidationError(
                f"format spec ':{format_spec}' is not allowed in a filter: values are always "
                "written as OData literals"
            )
        return literal(value)

    def convert_field(self, value: Any, conversion: str | None) -> Any:
        if conversion is not None:
            raise ValidationError(
                f"conversion '!{conversion}' is not allowed in a filter: values are always "
                "written as OData literals"
            )
        return value


_FORMATTER = _LiteralFormatter()


def format_filter(text: str, namespace: Mapping[str, Any] | None = None, /, **values: Any) -> str:
    """Fill ``{name}`` placeholders in an OData filter with quoted literals.

    Values come from keyword arguments and/or a mapping (e.g. a notebook's namespace); fields
    may use attribute and index access (``{trigger[subject]}``, ``{lead.id}``). ``{{``/``}}``
    are literal braces.

    >>> format_filter("lastname eq {name}", name="O'Neil")
    "lastname eq 'O''Neil'"
    """
    scope: dict[str, Any] = dict(namespace or {})
    scope.update(values)
    try:
        return _FORMATTER.vformat(text, (), scope)
    except KeyError as exc:
        raise ValidationError(f"filter placeholder {{{exc.args[0]}}} has no value") from None
    except (IndexError, AttributeError) as exc:
        raise ValidationError(f"filter placeholder could not be resolved: {exc}") from None
    except ValueError as exc:
        if isinstance(exc, ValidationError):
            raise
        raise ValidationError(f"malformed filter template {text!r}: {exc}") from None


def _names(value: str | Iterable[str] | None) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    return [str(part).strip() for part in value]


def build_query(
    *,
    filter: str | None = None,
    orderby: str | Iterable[str] | None = None,
    select: str | Iterable[str] | None = None,
    top: int | None = None,
    expand: str | Iterable[str] | None = None,
    count: bool = False,
) -> dict[str, str]:
    """The OData system query options as a dict (httpx encodes them)."""
    params: dict[str, str] = {}
    if select is not None:
        params["$select"] = ",".join(_names(select))
    if filter:
        params["$filter"] = filter
    if orderby:
        params["$orderby"] = ",".join(_names(orderby))
    if top is not None:
        if isinstance(top, bool) or not isinstance(top, int) or top < 0:
            raise ValidationError(f"top must be a non-negative integer, got {top!r}")
        params["$top"] = str(top)
    if expand:
        params["$expand"] = ",".join(_names(expand)) if not isinstance(expand, str) else expand
    if count:
        params["$count"] = "true"
    return params
