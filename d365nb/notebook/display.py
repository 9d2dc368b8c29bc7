"""How ``%d365`` results look: DataFrames with a one-line footer.

The footer is attached by registering IPython display formatters for pandas DataFrames *by
name* (pandas is not imported at ``%load_ext``); a DataFrame returned by a command is
remembered (weakly) with its footer, so the result stays a plain DataFrame for the user while
its display ends with ``500 rows · 1 page · 0.21 s · sandbox``. Other DataFrames display as
usual.
"""

from __future__ import annotations

import re
import weakref
from typing import Any

# Progress bars and error lines live in their own modules; these names are part of the
# documented ``display`` helpers (docs/internals.md), so they stay importable from here.
from d365nb.notebook.error_lines import redact, render_error
from d365nb.notebook.progress import Progress

__all__ = [
    "remember_footer",
    "footer_of",
    "format_footer",
    "register_formatters",
    "unregister_formatters",
    "Progress",
    "render_error",
    "redact",
]

# id(df) -> (weak reference, footer). DataFrames are unhashable, so no WeakKeyDictionary.
_FOOTERS: dict[int, tuple[weakref.ref, str]] = {}
_DISPLAY_LIMIT = {"rows": 20}
# DataFrame.__module__ is "pandas" in pandas 3 and "pandas.core.frame" before.
_FRAME_MODULES = ("pandas", "pandas.core.frame")


def remember_footer(frame: Any, footer: str) -> Any:
    """Make ``frame`` display with ``footer`` under it; returns ``frame``."""
    key = id(frame)
    _FOOTERS[key] = (weakref.ref(frame, lambda _ref, key=key: _FOOTERS.pop(key, None)), footer)
    return frame


def footer_of(frame: Any) -> str | None:
    """The footer remembered for this very object, if any."""
    entry = _FOOTERS.get(id(frame))
    if entry is None or entry[0]() is not frame:
        return None
    return entry[1]


def _plural(n: int, word: str) -> str:
    return f"{n:,} {word}" + ("" if n == 1 else "s")


def format_footer(
    rows: int,
    *,
    pages: int | None = None,
    elapsed: float | None = None,
    alias: str | None = None,
    extra: str = "",
) -> str:
    """``500 rows · 1 page · 0.21 s · sandbox`` (parts that are unknown are left out)."""
    parts = [_plural(rows, "row")]
    if pages is not None:
        parts.append(_plural(pages, "page"))
    if elapsed is not None:
        parts.append(f"{elapsed:.2f} s")
    if alias:
        parts.append(alias)
    if extra:
        parts.append(extra)
    return " · ".join(parts)


def _limited(frame: Any) -> Any:
    import pandas as pd

    rows = max(int(_DISPLAY_LIMIT["rows"]), 1)
    return pd.option_context("display.max_rows", rows, "display.min_rows", min(rows, 10))


def _html(frame: Any) -> str | None:
    footer = footer_of(frame)
    if footer is None:
        return frame._repr_html_()
    import html

    with _limited(frame):
        body = frame._repr_html_() or ""
    return f'{body}<div class="d365nb-footer"><small>{html.escape(footer)}</small></div>'


def _text(frame: Any, p: Any, cycle: bool) -> None:
    footer = footer_of(frame)
    if footer is None:
        p.text(repr(frame))
        return
    with _limited(frame):
        text = repr(frame)
    # pandas' own "[n rows x m columns]" line is dropped: the footer says it.
    text = re.sub(r"\n\n\[\d+ rows x \d+ columns\]$", "", text)
    p.text(f"{text}\n{footer}")


def register_formatters(ip: Any, display_limit: int) -> None:
    """Hook the footer into IPython's html and plain-text formatters (no pandas import)."""
    _DISPLAY_LIMIT["rows"] = display_limit
    formatters = ip.display_formatter.formatters
    for module in _FRAME_MODULES:
        formatters["text/html"].for_type_by_name(module, "DataFrame", _html)
        formatters["text/plain"].for_type_by_name(module, "DataFrame", _text)


def set_display_limit(rows: int) -> None:
    """Rows shown for a result (``D365Magic.display_limit``)."""
    _DISPLAY_LIMIT["rows"] = rows


def unregister_formatters(ip: Any) -> None:
    """Undo :func:`register_formatters` (``%unload_ext``)."""
    formatters = ip.display_formatter.formatters
    for mime, func in (("text/html", _html), ("text/plain", _text)):
        formatter = formatters[mime]
        for module in _FRAME_MODULES:
            key = (module, "DataFrame")
            if formatter.deferred_printers.get(key) is func:
                del formatter.deferred_printers[key]
        for cls, printer in list(formatter.type_printers.items()):
            if printer is func:
                del formatter.type_printers[cls]
