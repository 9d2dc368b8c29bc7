"""How ``%d365`` results look: DataFrames with a one-line footer, progress bars, one-line errors.

The footer is attached by registering IPython display formatters for pandas DataFrames *by
name* (pandas is not imported at ``%load_ext``); a DataFrame returned by a command is
remembered (weakly) with its footer, so the result stays a plain DataFrame for the user while
its display ends with ``500 rows · 1 page · 0.21 s · sandbox``. Other DataFrames display as
usual.
"""

from __future__ import annotations

import re
import sys
import time
import weakref
from collections.abc import Callable
from typing import Any

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


class Progress:
    """A progress callback that shows a tqdm.auto bar only once work has lasted ``after``
    seconds, so quick reads print nothing; ``close()`` completes the bar and removes it.

    Callable as ``progress(done, total=None)`` where ``done`` counts pages or records.
    """

    def __init__(
        self,
        description: str,
        *,
        unit: str = "rows",
        after: float = 1.0,
        enabled: bool = True,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.description = description
        self.unit = unit
        self.after = after
        self.enabled = enabled
        self._clock = clock
        self._started = clock()
        self._bar: Any = None
        self._handle: Any = None  # display handle of a notebook (widget) bar
        self.done = 0
        self.total: int | None = None
        self.shown = False  # whether a bar was ever displayed

    def __call__(self, done: int, total: int | None = None, *_: Any, **__: Any) -> None:
        self.done = int(done)
        if total is not None:
            self.total = int(total)
        if not self.enabled:
            return
        if self._bar is None:
            if self._clock() - self._started < self.after:
                return
            self._bar = self._new_bar()
            self.shown = True
        if self.total is not None and self._bar.total != self.total:
            self._bar.total = self.total
        self._bar.n = self.done
        self._bar.refresh()

    def _new_bar(self) -> Any:
        from tqdm.auto import tqdm

        # leave=False: the bar goes away when done; the result's footer reports the outcome.
        options = {"total": self.total, "desc": self.description, "unit": f" {self.unit}"}
        if _is_notebook_bar(tqdm):
            # Shown through a display handle so close() can blank the output: a finished bar
            # leaves nothing behind in the saved notebook (not even a stale "0 rows" text).
            from IPython.display import display

            bar = tqdm(leave=False, display=False, **options)
            self._handle = display(bar.container, display_id=True)
            return bar
        return tqdm(leave=False, file=sys.stderr, dynamic_ncols=True, **options)

    def close(self) -> None:
        """Complete and remove the bar (if one was shown); safe to call twice."""
        if self._bar is not None:
            if self._bar.total is not None:
                self._bar.n = self._bar.total
            self._bar.close()
            self._bar = None
        if self._handle is not None:
            self._handle.update({"text/plain": ""}, raw=True)
            self._handle = None

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def _is_notebook_bar(tqdm_class: type) -> bool:
    """Whether tqdm.auto chose the ipywidgets bar (running in a Jupyter kernel)."""
    return tqdm_class.__module__.startswith("tqdm.notebook") or any(
        base.__module__.startswith("tqdm.notebook") for base in tqdm_class.__mro__
    )


_BEARER_RE = re.compile(r"(?i)(bearer\s+)[A-Za-z0-9\-._~+/=]+")
_SECRET_QS_RE = re.compile(r"(?i)((?:access_token|client_secret|token|code)=)[^&\s]+")


def redact(text: str, secrets: tuple[str, ...] = ()) -> str:
    """``text`` with bearer tokens, secret query values and the given secrets replaced."""
    for secret in secrets:
        if secret and len(secret) >= 4:
            text = text.replace(secret, "***")
    text = _BEARER_RE.sub(r"\1***", text)
    return _SECRET_QS_RE.sub(r"\1***", text)


_HINTS = {
    "Unauthorized": "sign in again: %d365 connect <url>",
    "Forbidden": "the signed-in user lacks a privilege for this",
    "Throttled": "service protection limit: wait and retry, or read fewer pages",
    "UnknownTable": "%d365 tables lists the tables",
    "UnknownColumn": "%d365 describe <table> lists the columns",
    "ChangeTokenExpired": "run %d365 changes <table> without --since to resync",
    "TransportError": "is the organisation (or sandbox) reachable?",
}


def render_error(exc: BaseException, *, debug: bool = False, secrets: tuple[str, ...] = ()) -> str:
    """One line: what was wrong, the Dataverse code, a hint. With ``debug``, a second line shows
    the request that failed (no headers, so no token; secrets redacted anyway)."""
    name = type(exc).__name__
    message = getattr(exc, "message", None) or str(exc) or name
    parts = [" ".join(str(message).split())]
    code = getattr(exc, "code", None)
    status = getattr(exc, "status", None)
    detail = ", ".join(
        x for x in (f"HTTP {status}" if status else "", f"code {code}" if code else "") if x
    )
    if detail:
        parts.append(f"({detail})")
    hint = _HINTS.get(name)
    if hint and hint not in parts[0]:
        parts.append(f"- {hint}")
    line = redact(" ".join(parts), secrets)
    if debug:
        method, url = getattr(exc, "method", None), getattr(exc, "url", None)
        request_id = getattr(exc, "request_id", None)
        request = f"{method} {url}" if method and url else "no request was sent"
        if request_id:
            request += f" (request id {request_id})"
        line += "\n" + redact(f"request: {request}; Authorization: Bearer ***", secrets)
    return line
