"""Small HTML pieces shared by the forms: escaping, one-line error/success messages, tables."""

from __future__ import annotations

import html
from collections.abc import Iterable
from typing import Any

ERROR_STYLE = "color:#b00020"
OK_STYLE = "color:#1b5e20"


def escape(text: Any) -> str:
    """``str(text)`` made safe for HTML text and attribute values."""
    return html.escape(str(text), quote=True)


def one_line(err: BaseException) -> str:
    """A person-readable one-line message for an error (D365Error already is one, and never
    carries the token)."""
    text = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
    if type(err).__module__.startswith("d365nb"):
        return text
    return f"{type(err).__name__}: {text}"


def error_line(err: BaseException | str) -> str:
    """A red one-line ``✖ message`` for a status line."""
    message = err if isinstance(err, str) else one_line(err)
    return f"<span class='d365nb-error' style='{ERROR_STYLE}'>✖ {escape(message)}</span>"


def ok_line(message: str) -> str:
    """A green one-line ``✔ message`` for a status line."""
    return f"<span class='d365nb-ok' style='{OK_STYLE}'>✔ {escape(message)}</span>"


def key_value_table(rows: Iterable[tuple[str, Any]]) -> str:
    """A two-column HTML table (name, value), every cell escaped."""
    body = "".join(
        f"<tr><th style='text-align:left'>{escape(k)}</th><td>{escape(v)}</td></tr>"
        for k, v in rows
    )
    return f"<table class='d365nb-kv'>{body}</table>"
