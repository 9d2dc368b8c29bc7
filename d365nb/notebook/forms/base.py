"""What every form shares: its connection, a status line, the widget tree and the HTML fallback.

A form displays as its ipywidgets box; the same display bundle also carries ``text/html`` so a
notebook saved and viewed where widgets are not rendered (GitHub, nbviewer) still shows a readable
summary of the form.
"""

from __future__ import annotations

from typing import Any

import ipywidgets as widgets

from d365nb.notebook.forms.render import error_line, escape, ok_line


def current_connection(conn: Any = None) -> Any:
    """``conn`` itself, else the current connection of the registry (a clear error if none)."""
    if conn is not None:
        return conn
    from d365nb.client.registry import connections

    current = connections.current
    if current is None:
        raise RuntimeError("no connection: run `%d365 connect sandbox` or pass conn=")
    return current


class Form:
    """Base of all forms: ``widget`` (the box to display), ``status`` (one line), ``result``."""

    title = "form"
    kind = "form"  # CSS class suffix, e.g. d365nb-form-create (for styling and browser tests)

    def __init__(self) -> None:
        self.status = widgets.HTML()
        self.status.add_class("d365nb-status")
        self.result: Any = None
        self.widget: widgets.Box = widgets.VBox()

    def _assemble(self, *children: widgets.Widget) -> None:
        self.header = widgets.HTML()
        self.set_title(self.title)
        self.widget.children = (self.header, *children, self.status)
        self.widget.add_class("d365nb-form")
        self.widget.add_class(f"d365nb-form-{self.kind}")

    def set_title(self, title: str) -> None:
        """Show ``title`` as the form's heading."""
        self.title = title
        if hasattr(self, "header"):
            self.header.value = f"<h4 style='margin:4px 0'>{escape(title)}</h4>"

    def show_error(self, err: BaseException | str) -> None:
        """Put a one-line error on the status line (never a traceback)."""
        self.status.value = error_line(err)

    def show_ok(self, message: str) -> None:
        """Put a one-line success message on the status line."""
        self.status.value = ok_line(message)

    # -- display -----------------------------------------------------------------------------
    def fallback_html(self) -> str:
        """A readable static rendering for front-ends without widgets."""
        return f"<div class='d365nb-form-fallback'><b>{escape(self.title)}</b>{self._fallback_body()}</div>"

    def _fallback_body(self) -> str:
        return ""

    def _repr_mimebundle_(self, **kwargs: Any) -> dict[str, Any]:
        bundle = dict(self.widget._repr_mimebundle_(**kwargs) or {})
        bundle["text/html"] = self.fallback_html()
        bundle["text/plain"] = f"<d365nb {self.title}>"
        return bundle

    def __repr__(self) -> str:
        return f"<d365nb {self.title}>"
