"""``field=value`` words, ``%%d365`` cell bodies and ``{expr}`` interpolation.

IPython's own ``$name``/``{name}`` expansion is switched off for ``%d365`` (``no_var_expand``),
because ``$`` is OData's prefix (``$filter``, ``$select``). Python values come in only through
``{expr}``, handled here:

* in a filter (``--filter``/``--where``), a value outside quotes becomes an OData literal
  (``{name}`` with ``name = "O'Neil"`` -> ``'O''Neil'``, GUIDs bare, datetimes ISO 8601); inside a
  quoted OData string (``contains(fullname,'{part}')``) it is escaped, never pasted raw;
* in a ``field=value`` word, a value that is exactly ``{expr}`` keeps its Python type; otherwise
  the text is formatted (``subject="Follow up: {lead_name}"``).

``{{`` and ``}}`` are literal braces. ``{expr}`` is any Python expression evaluated in the user
namespace; as a fallback, ``str.format`` field syntax works too (``{trigger[subject]}``).
Typing of values (numbers, dates, choices by label, lookups) is the client's job
(``d365nb.client.values``), which refuses a bad value before any request.
"""

from __future__ import annotations

import json
import re
import string
from collections.abc import Callable, Iterable, Mapping
from typing import Any

__all__ = [
    "BadValue",
    "interpolate",
    "interpolate_filter",
    "parse_assignments",
    "parse_cell_body",
    "evaluate",
]


class BadValue(ValueError):
    """A ``field=value`` word, cell body or ``{expr}`` the user must fix (one-line message)."""


_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(@[A-Za-z0-9_.]+)?$")
_FORMATTER = string.Formatter()


def evaluate(expr: str, namespace: Mapping[str, Any]) -> Any:
    """Value of ``expr`` in ``namespace``: a Python expression, else ``str.format`` field syntax."""
    expr = expr.strip()
    if not expr:
        raise BadValue("empty {} in the command; write {{ and }} for literal braces")
    try:
        # The namespace is the globals (as in a cell), so comprehensions and lambdas see user
        # names; a copy, so evaluating never adds to (or rebinds in) the user's namespace.
        return eval(expr, dict(namespace))  # noqa: S307 - the user's own code, in their kernel
    except Exception as first:  # noqa: BLE001 - fall back to format syntax, else report the first
        try:
            value, _ = _FORMATTER.get_field(expr, (), namespace)
            return value
        except Exception:  # noqa: BLE001
            raise BadValue(f"cannot evaluate {{{expr}}}: {type(first).__name__}: {first}") from None


def _pieces(text: str) -> Iterable[tuple[str, str | None]]:
    """Split ``text`` into (literal text, expression or None) pieces, honouring ``{{``/``}}``."""
    out: list[str] = []
    i = 0
    while i < len(text):
        ch = text[i]
        if ch == "{" and text.startswith("{{", i):
            out.append("{")
            i += 2
        elif ch == "}" and text.startswith("}}", i):
            out.append("}")
            i += 2
        elif ch == "{":
            depth, j = 1, i + 1
            while j < len(text) and depth:
                depth += {"{": 1, "}": -1}.get(text[j], 0)
                j += 1
            if depth:
                raise BadValue(f"unclosed {{ in {text!r}; write {{{{ for a literal brace")
            yield "".join(out), text[i + 1 : j - 1]
            out = []
            i = j
        elif ch == "}":
            raise BadValue(f"single }} in {text!r}; write }}}} for a literal brace")
        else:
            out.append(ch)
            i += 1
    yield "".join(out), None


def interpolate(
    text: str, namespace: Mapping[str, Any], escape: Callable[[str], str] | None = None
) -> str:
    """``text`` with each ``{expr}`` replaced by ``str(value)`` (for ids, names, options);
    ``escape`` quotes that text where the text around it gives characters a meaning (XML)."""
    if "{" not in text and "}" not in text:
        return text
    parts: list[str] = []
    for literal_text, expr in _pieces(text):
        parts.append(literal_text)
        if expr is not None:
            value = str(evaluate(expr, namespace))
            parts.append(escape(value) if escape else value)
    return "".join(parts)


def interpolate_filter(text: str, namespace: Mapping[str, Any]) -> str:
    """An OData filter with each ``{expr}`` written as a safe OData literal.

    >>> interpolate_filter("lastname eq {name}", {"name": "O'Neil"})
    "lastname eq 'O''Neil'"
    >>> interpolate_filter("contains(fullname,'{part}')", {"part": "O'N"})
    "contains(fullname,'O''N')"
    """
    if "{" not in text and "}" not in text:
        return text
    from d365nb.flows.steps import odata_filter  # deferred: keeps %load_ext light

    return odata_filter(
        _pieces(text),
        lambda expr: evaluate(expr, namespace),
        refused=lambda expr, err: BadValue(f"{{{expr}}}: {err}"),
    )


def _value(raw: str, namespace: Mapping[str, Any]) -> Any:
    """A value word: ``{expr}`` alone keeps its Python type; ``null`` is None; else text."""
    pieces = list(_pieces(raw)) if ("{" in raw or "}" in raw) else [(raw, None)]
    whole = len(pieces) == 2 and pieces[0][0] == "" and pieces[1] == ("", None)
    if whole and pieces[0][1] is not None:
        return evaluate(pieces[0][1], namespace)
    if raw == "null":
        return None
    return interpolate(raw, namespace)


def _check_name(name: str, table_meta: Any, word: str) -> None:
    if not _NAME_RE.match(name):
        raise BadValue(f"{word!r} is not field=value: {name!r} is not a column name")
    if table_meta is None or "@" in name:
        return
    columns = getattr(table_meta, "columns", None) or {}
    from d365nb.client.names import closest, lookup_base

    if name in columns or lookup_base(name) is not None:
        return

    hint = closest(name, tuple(columns))
    more = f"; did you mean {', '.join(hint)}?" if hint else ""
    table = getattr(table_meta, "logical_name", "the table")
    raise BadValue(f"table {table!r} has no column {name!r}{more}")


def parse_assignments(
    tokens: Iterable[str], table_meta: Any, namespace: Mapping[str, Any]
) -> dict[str, Any]:
    """``["subject=Call back", "percentcomplete={n}"]`` -> ``{"subject": "Call back", ...}``.

    Column names are checked against ``table_meta`` (a client ``TableMeta``, or None to skip),
    with close names suggested. Values stay text unless they are exactly ``{expr}``; the client
    types them per metadata (numbers, dates incl. mm/dd/yyyy, choices by label, lookups
    ``ownerid=systemusers(<id>)``). ``field=null`` clears a column.
    """
    values: dict[str, Any] = {}
    for word in tokens:
        name, sep, raw = word.partition("=")
        name = name.strip()
        if not sep:
            raise BadValue(f'{word!r} is not field=value (e.g. subject="Call back")')
        _check_name(name, table_meta, word)
        values[name] = _value(raw, namespace)
    return values


def parse_cell_body(
    body: str, table_meta: Any, namespace: Mapping[str, Any]
) -> dict[str, Any] | list[dict[str, Any]]:
    """A ``%%d365 create/update`` cell body: JSON (object, or array for many) or ``field: value``
    lines (``#`` comments and blank lines ignored; values may be quoted; ``{expr}`` works)."""
    text = body.strip()
    if not text:
        return {}
    if text[0] in "[{":  # a `field: value` line never starts with a brace
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise BadValue(
                f"cell body is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}"
            ) from None
        records = data if isinstance(data, list) else [data]
        for record in records:
            if not isinstance(record, dict):
                raise BadValue("cell body JSON must be an object or an array of objects")
            for name in record:
                _check_name(str(name), table_meta, f"{name}: ...")
        return data
    values: dict[str, Any] = {}
    for number, line in enumerate(body.splitlines(), 1):
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        match = re.match(r"^([^:=\s]+)\s*[:=]\s?(.*)$", stripped)
        if not match:
            raise BadValue(f"cell line {number} is not `field: value`: {stripped!r}")
        name, raw = match.group(1), match.group(2).strip()
        _check_name(name, table_meta, stripped)
        if len(raw) >= 2 and raw[0] == raw[-1] and raw[0] in "\"'":
            raw = raw[1:-1]
        values[name] = _value(raw, namespace)
    return values
