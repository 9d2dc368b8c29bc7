"""Finding a record by its primary name: the lookup picker and the record picker.

The seed warns that a lookup needs both a record id and a lookup type; the picker gives both: a
lookup-type dropdown (the column's target tables) and a search box that lists matching records by
primary name (``startswith``/``contains``, ``$top`` 10), debounced so typing a word costs one
request, not one per keystroke.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable
from typing import Any

import ipywidgets as widgets

from d365nb.client.query import is_guid
from d365nb.notebook.forms.render import error_line, escape
from d365nb.notebook.forms.shared import layout, make

SEARCH_TOP = 10
RESULT_SEPARATOR = "  ·  "  # between a result's name and its short id in the results list
# Seconds of quiet typing before a search is sent: long enough that typing a word sends one
# request, short enough that pause-to-results stays within 200 ms (see benchmarks/bench_forms.py).
SEARCH_DELAY = 0.15


def string_literal(text: str) -> str:
    """An OData string literal, always quoted (a name that looks like a GUID is still a name)."""
    return "'" + text.replace("'", "''") + "'"


def like_literal(text: str) -> str:
    """``text`` to be matched as typed by ``contains``/``startswith``/``endswith``.

    Dataverse runs those functions as SQL Server LIKE patterns, where ``%``, ``_`` and ``[``
    are wildcards; a person searching "50%" or "A_B" means those characters, so each is
    bracketed (``[%]``), as Microsoft's "wildcard characters" page says to.
    """
    return re.sub(r"([%_\[])", r"[\1]", text)


class Debouncer:
    """Calls ``fn`` with the latest arguments once calls have stopped for ``delay`` seconds.

    ``flush()`` runs a pending call at once (or waits for one already running), which is what tests
    and the Enter key use.
    """

    def __init__(self, fn: Callable[..., Any], delay: float = SEARCH_DELAY) -> None:
        self._fn = fn
        self.delay = delay
        self._lock = threading.Lock()  # guards _timer/_args
        self._call_lock = threading.Lock()  # one call at a time, so flush can wait for it
        self._timer: threading.Timer | None = None
        self._args: tuple | None = None

    def __call__(self, *args: Any) -> None:
        with self._lock:
            if self._timer is not None:
                self._timer.cancel()
            self._args = args
            self._timer = threading.Timer(self.delay, self._fire)
            self._timer.daemon = True
            self._timer.start()

    def _take(self) -> tuple | None:
        with self._lock:
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None
            args, self._args = self._args, None
            return args

    def _fire(self) -> None:
        with self._call_lock:
            args = self._take()
            if args is not None:
                self._fn(*args)

    def flush(self) -> None:
        """Run the pending call now; if one is running, wait for it to finish."""
        with self._call_lock:
            args = self._take()
            if args is not None:
                self._fn(*args)

    def cancel(self) -> None:
        """Drop a pending call."""
        self._take()


class RecordSearch:
    """Searches one table by primary name and returns ``[(label, id)]``, at most ``top`` rows."""

    def __init__(self, conn: Any, table: str) -> None:
        self.conn = conn
        self.meta = conn.metadata.table(table)

    def __call__(
        self, text: str, mode: str = "startswith", top: int = SEARCH_TOP
    ) -> list[tuple[str, str]]:
        meta = self.meta
        name, key = meta.primary_name, meta.primary_id
        text = text.strip()
        if not text:
            query = None
        elif is_guid(text):  # a pasted id finds its record
            query = f"{key} eq {text.strip('{}').lower()}"
        else:
            if mode not in ("startswith", "contains"):
                raise ValueError(f"unknown search mode {mode!r} (use startswith or contains)")
            query = f"{mode}({name},{string_literal(like_literal(text))})"
        records = _first_page(self.conn, meta.entity_set, query, [name], name, top)
        return [(str(r.get(name) or "(no name)"), str(r[key])) for r in records]


def _first_page(
    conn: Any, table: str, query: str | None, select: list[str], orderby: str, top: int
) -> list[dict]:
    # Raw JSON records of the first page only: a picker needs two fields, not a DataFrame.
    for page in conn.iter_pages(table, filter=query, select=select, orderby=orderby, top=top):
        return list(page)[:top]
    return []


class LookupPicker:
    """Lookup type dropdown + search box + matching records; ``value`` is ``(entity_set, id)``.

    ``targets`` are the logical names of the tables the lookup may point to (one for a record
    picker). ``on_change(callback)`` is told ``(entity_set, id)`` or None when the pick changes.
    """

    def __init__(
        self, conn: Any, targets: list[str], *, delay: float = SEARCH_DELAY, name: str = ""
    ) -> None:
        if not targets:
            raise ValueError("a lookup picker needs at least one target table")
        self.conn = conn
        self._metas = {t: conn.metadata.table(t) for t in targets}
        self._searchers: dict[str, RecordSearch] = {}
        self._callbacks: list[Callable[[tuple[str, str] | None], None]] = []
        self.searches = 0  # how many searches were sent (debouncing keeps this low)
        self.target = widgets.Dropdown(
            options=[(m.display_name or t, t) for t, m in self._metas.items()],
            description="Type",
            layout=layout(width="200px", display="" if len(targets) > 1 else "none"),
            style={"description_width": "40px"},
        )
        self.mode = make(
            widgets.Dropdown,
            {"width": "110px"},
            options=[("starts with", "startswith"), ("contains", "contains")],
        )
        self.query = make(
            widgets.Text, {"width": "220px"}, placeholder="search by name…", continuous_update=True
        )
        self.query.add_class("d365nb-search")
        self.results = widgets.Select(options=[], rows=5, layout=widgets.Layout(width="440px"))
        self.results.add_class("d365nb-results")
        self.results.layout.display = "none"  # shown once a search has results
        self.chosen = make(widgets.HTML)
        self.status = make(widgets.HTML)
        self._value: tuple[str, str] | None = None
        self.label = ""  # the picked record's primary name, as shown
        self._debounced = Debouncer(self._search, delay)
        self.query.observe(lambda change: self._debounced(change["new"]), "value")
        self.mode.observe(lambda change: self._debounced(self.query.value), "value")
        self.target.observe(self._on_target, "value")
        self.results.observe(self._on_result, "value")
        self.widget = make(
            widgets.VBox,
            children=[
                make(widgets.HBox, children=[self.target, self.mode, self.query]),
                self.results,
                self.chosen,
                self.status,
            ],
        )
        self.widget.add_class("d365nb-picker")
        if name:
            self.widget.add_class(f"d365nb-picker-{name}")

    # -- searching -------------------------------------------------------------------------
    def _searcher(self) -> RecordSearch:
        target = self.target.value
        if target not in self._searchers:
            self._searchers[target] = RecordSearch(self.conn, target)
        return self._searchers[target]

    def _search(self, text: str) -> None:
        self.searches += 1
        try:
            found = self._searcher()(text, self.mode.value)
        except Exception as err:  # shown inline: a picker must not raise into the widget thread
            self.status.value = error_line(err)
            return
        self.status.value = "" if found else "<i>no matching records</i>"
        self.results.options = [
            (f"{label}{RESULT_SEPARATOR}{rid[:8]}", rid) for label, rid in found
        ]
        self.results.layout.display = "" if found else "none"  # no empty box taking room

    def search(self, text: str | None = None) -> list[tuple[str, str]]:
        """Search now (no debounce) and return ``[(label, id)]`` shown in the results list."""
        if text is not None:
            self._debounced.cancel()
            self.query.value = text
            self._debounced.cancel()  # setting the box queued a debounced search
            self._search(text)
        else:
            self._debounced.flush()
        return [(label.split(RESULT_SEPARATOR)[0], rid) for label, rid in self.results.options]

    def flush(self) -> None:
        """Run a pending debounced search at once (or wait for the one in flight)."""
        self._debounced.flush()

    def _on_target(self, change: dict) -> None:
        self.results.options = []
        self._set(None)
        if self.query.value:
            self._debounced(self.query.value)

    def _on_result(self, change: dict) -> None:
        if change["new"]:
            self._set((self._metas[self.target.value].entity_set, change["new"]))

    # -- value -------------------------------------------------------------------------------
    @property
    def value(self) -> tuple[str, str] | None:
        """``(entity_set, id)`` of the picked record, or None."""
        return self._value

    def pick(self, target: str, record_id: str, label: str | None = None) -> None:
        """Set the pick directly (used when loading a record into an update form)."""
        if target not in self._metas:
            target = next((t for t, m in self._metas.items() if m.entity_set == target), target)
        if target not in self._metas:
            raise ValueError(
                f"{target!r} is not a lookup type here (use one of {', '.join(self._metas)})"
            )
        self.target.value = target
        self._set((self._metas[target].entity_set, str(record_id)), label)

    def clear(self) -> None:
        """Unpick: no record chosen."""
        self.results.value = None
        self._set(None)

    def _set(self, value: tuple[str, str] | None, label: str | None = None) -> None:
        self._value = value
        if value is None:
            self.label = ""
            self.chosen.value = ""
        else:
            shown = label or dict((rid, lab) for lab, rid in self.results.options).get(value[1], "")
            self.label = shown.split(RESULT_SEPARATOR)[0]
            self.chosen.value = (
                f"<span class='d365nb-chosen'>✔ {escape(self.label)} "
                f"<code>{value[0]}({value[1]})</code></span>"
            )
        for callback in self._callbacks:
            callback(value)

    def on_change(self, callback: Callable[[tuple[str, str] | None], None]) -> None:
        """Call ``callback((entity_set, id) or None)`` whenever the pick changes."""
        self._callbacks.append(callback)
