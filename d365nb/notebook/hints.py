""" "Did you mean" for names the server refused.

The client checks ``--select`` and ``field=value`` names against metadata itself, but names
inside ``--filter``, ``--orderby``, ``--expand`` and ``--where`` are OData text that only the
server parses; Dataverse then answers "Could not find a property named 'lastnam' on type
'Microsoft.Dynamics.CRM.lead'." with no suggestion. This adds one from the table's cached
columns, as a note on the exception (shown by ``error_lines.render_error`` and by tracebacks).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

__all__ = ["column_hints", "filter_hint", "translate_labels"]

_UNKNOWN_PROPERTY = re.compile(r"Could not find a property named '([^']+)'")


def _column_names(conn: Any, table: str) -> list[str]:
    """Names usable in OData text: columns, and ``_x_value`` for lookups (cache only)."""
    meta = conn.metadata.cached(table) if hasattr(conn.metadata, "cached") else None
    if meta is None:
        return []
    names = list(meta.columns)
    names += [c.read_name for c in meta.columns.values() if getattr(c, "read_name", None)]
    return sorted(set(names))


@contextmanager
def column_hints(conn: Any, table: str, filter_text: str | None = None) -> Iterator[None]:
    """Add "did you mean ..." to a server error about an unknown property of ``table``, and
    (given the ``$filter`` sent) one hint for the usual filter mistakes (:func:`filter_hint`)."""
    try:
        yield
    except Exception as exc:
        message = str(getattr(exc, "message", "") or exc)
        meta = conn.metadata.cached(table) if hasattr(conn.metadata, "cached") else None
        hint = filter_hint(filter_text, meta, message) if filter_text and meta else None
        if hint:
            exc.add_note(hint)
            raise
        match = _UNKNOWN_PROPERTY.search(message)
        if match:
            from d365nb.client.names import closest

            names = closest(match.group(1), _column_names(conn, table))
            if names:
                exc.add_note(f"did you mean {', '.join(names)}?")
        raise


# -- filter text -------------------------------------------------------------------------------

_TOKEN = re.compile(
    r"""(?P<string>'(?:[^']|'')*'?)"""
    r"""|(?P<date>\b\d{1,2}/\d{1,2}/\d{2,4}\b)"""
    r"""|(?P<symbol>==|!=|<>|>=|<=|&&|\|\||[=<>!])"""
    r"""|(?P<word>[A-Za-z_][\w.]*)"""
    r"""|(?P<other>\S)""",
)
_COMPARISONS = {"eq", "ne", "gt", "ge", "lt", "le"}
_SYMBOLS = {"==": "eq", "=": "eq", "!=": "ne", "<>": "ne", ">=": "ge", "<=": "le", ">": "gt",
            "<": "lt", "&&": "and", "||": "or", "!": "not"}  # fmt: skip
_ISO_DATE = re.compile(r"^'(\d{4}-\d{2}-\d{2}([T ][\d:.]+Z?)?)'$")
_DATE_TYPES = {"DateTime", "DateOnly"}


def _tokens(text: str) -> list[tuple[str, str, int, int]]:
    return [
        (m.lastgroup or "other", m.group(), m.start(), m.end())
        for m in _TOKEN.finditer(text)
        if m.group().strip()
    ]


def _comparisons(text: str) -> Iterator[tuple[str, str, tuple[str, str, int, int]]]:
    """(column, operator, value token) of every ``column op value`` in the filter."""
    tokens = _tokens(text)
    for i in range(len(tokens) - 2):
        (k1, column, _, _), (k2, op, _, _), value = tokens[i], tokens[i + 1], tokens[i + 2]
        if k1 == "word" and k2 == "word" and op.lower() in _COMPARISONS:
            yield column, op.lower(), value


def _label_value(col: Any, label: str) -> int | None:
    wanted = label.strip().lower()
    for value, text in (getattr(col, "options", None) or {}).items():
        if str(text).strip().lower() == wanted:
            return int(value)
    return None


def translate_labels(text: str | None, meta: Any) -> str | None:
    """``statuscode eq 'Contacted'`` (or ``eq Contacted``) -> ``statuscode eq 2``: a choice
    label compared with a choice column becomes its value, from the table's metadata. Any
    other text is left exactly as written."""
    if not text or meta is None:
        return text
    edits: list[tuple[int, int, str]] = []
    for column, _op, (kind, value, start, end) in _comparisons(text):
        col = meta.columns.get(column)
        if col is None or not getattr(col, "is_choice", False) or kind not in ("string", "word"):
            continue
        label = value[1:-1].replace("''", "'") if kind == "string" else value
        if kind == "word" and label.lower() in ("null", "true", "false"):
            continue
        code = _label_value(col, label)
        if code is not None:
            edits.append((start, end, str(code)))
    for start, end, code in reversed(edits):
        text = text[:start] + code + text[end:]
    return text


def _options_text(col: Any, limit: int = 6) -> str:
    items = list((getattr(col, "options", None) or {}).items())
    shown = ", ".join(f"{v} ({label})" for v, label in items[:limit])
    return shown + (", ..." if len(items) > limit else "")


def filter_hint(text: str, meta: Any, message: str = "") -> str | None:
    """One line saying how to fix the first usual mistake in a refused ``$filter``:
    ``==`` for ``eq``, a choice label that is not one, a date written as text or as
    mm/dd/yyyy, an unknown column (closest names), a text value without quotes."""
    from d365nb.client.names import closest

    tokens = _tokens(text)
    for i, (kind, value, _, _) in enumerate(tokens):
        named_arg = i > 0 and tokens[i - 1][1].startswith("Property")  # f(PropertyName='x')
        if kind == "symbol" and not (value == "=" and named_arg):
            return f"OData has no {value}: write {_SYMBOLS[value]} (e.g. statuscode eq 1)"
        if kind == "date":
            month, day, year = value.split("/")
            iso = f"{int(year):04d}-{int(month):02d}-{int(day):02d}T00:00:00Z"
            return f"write dates as ISO 8601 without quotes: {iso} (not {value})"
    for column, op, (kind, value, _, _) in _comparisons(text):
        col = meta.find(column)
        if col is None:
            continue
        if getattr(col, "is_choice", False) and kind in ("string", "word") and value not in (
            "null", "true", "false",
        ):
            return f"{column} is a choice: compare its value, one of {_options_text(col)}"
        if col.type in _DATE_TYPES and kind == "string":
            match = _ISO_DATE.match(value)
            literal = match.group(1).replace(" ", "T") if match else "2026-01-31T00:00:00Z"
            if "T" not in literal:
                literal += "T00:00:00Z"
            return f"dates are not quoted in OData: {column} {op} {literal}"
        if (
            kind == "word"
            and col.type in ("String", "Memo")
            and value != "null"
            and meta.columns.get(value) is None
        ):
            return f"text values are quoted in OData: {column} {op} '{value}'"
    match = _UNKNOWN_PROPERTY.search(message)
    if match:
        names = sorted(
            {*meta.columns, *(getattr(c, "read_name", c.name) for c in meta.columns.values())}
        )
        near = closest(match.group(1), names)
        if near:
            return (
                f"{meta.logical_name} has no column {match.group(1)!r}; "
                f"did you mean {', '.join(near)}?"
            )
    return None
