"""How flows show themselves, as data and plain text: run history as a DataFrame, one run, the
status of a flow (which listeners follow while the engine runs it).

This layer draws no widgets and picks no colours. Rich views (HTML with the forms' colours,
live ipywidgets, the runs-over-time chart) belong to the notebook layer, which registers them
here with `register_presenters` when ``%load_ext d365nb`` runs - or, for Python-API users,
through the loader ``d365nb/__init__.py`` adds with `add_presenter_loader`. Without one, every
view still has a plain-text repr and a plain HTML snapshot.
"""

from __future__ import annotations

import contextlib
import html
import threading
from collections.abc import Callable
from typing import Any

RUN_COLUMNS = ["run_id", "record_id", "status", "started", "ended", "duration", "error", "attempts"]

#: Presenter kinds: ``run_html(RunView) -> str``, ``status_html(StatusView) -> str``,
#: ``status(StatusView) -> mimebundle | None`` (live when ``view.live`` in a kernel) and ``output(FlowOutput) ->
#: mimebundle | None`` (the flow's output area).
PRESENTER_KINDS = ("run_html", "status_html", "status", "output")
_presenters: dict[str, Callable[[Any], Any]] = {}
_loaders: list[Callable[[], None]] = []
_presenters_lock = threading.Lock()


def register_presenters(**presenters: Callable[[Any], Any]) -> None:
    """Install rich presenters by kind (see `PRESENTER_KINDS`); the last registration wins."""
    unknown = set(presenters) - set(PRESENTER_KINDS)
    if unknown:
        raise ValueError(f"unknown presenter kind(s) {sorted(unknown)}; use {PRESENTER_KINDS}")
    _presenters.update(presenters)


def add_presenter_loader(loader: Callable[[], None]) -> None:
    """Run ``loader`` (which calls `register_presenters`) the first time a view is shown, so
    registering costs nothing at import. A loader that fails leaves the plain views."""
    with _presenters_lock:
        _loaders.append(loader)


def presenter(kind: str) -> Callable[[Any], Any] | None:
    """The registered presenter of ``kind``, or None (plain views)."""
    if _loaders:
        with _presenters_lock:
            pending = list(_loaders)
            _loaders.clear()
        for loader in pending:
            # The notebook layer's dependencies absent: plain views.
            with contextlib.suppress(ImportError):
                loader()
    return _presenters.get(kind)


def runs_frame(rows: list[dict[str, Any]]) -> Any:
    """Run history rows -> DataFrame (run id, record id, status, started, ended, duration in
    seconds, error, attempts = executions of the run) plus the change kind, origin, idempotency
    key and the organisation the run was for (``org`` id and ``org_url``)."""
    import pandas as pd

    frame = pd.DataFrame(rows, columns=[*RUN_COLUMNS, "change", "origin", "key", "org", "org_url"])
    for column in ("started", "ended"):
        frame[column] = pd.to_datetime(frame[column], utc=True, format="ISO8601")
    frame["duration"] = (frame["ended"] - frame["started"]).dt.total_seconds()
    frame["attempts"] = frame["attempts"].astype("Int64")
    return frame


def _plain_html(text: str) -> str:
    return f"<pre style='margin:0;white-space:pre-wrap'>{html.escape(text)}</pre>"


class RunView:
    """One run: trigger record, then each step with inputs, outputs, error and attempts."""

    def __init__(self, data: dict[str, Any]) -> None:
        self.data = data
        self.run_id = data["run_id"]
        self.status = data["status"]
        self.error = data["error"]
        self.record = data["trigger"]
        self.steps = data["steps"]

    def __getitem__(self, key: str) -> Any:
        return self.data[key]

    def step(self, name: str) -> dict[str, Any]:
        for step in self.steps:
            if step["name"] == name:
                return step
        raise KeyError(name)

    def __repr__(self) -> str:
        lines = [
            f"run {self.run_id} ({self.data['flow']}, record {self.data['record_id']}): {self.status}"
        ]
        for s in self.steps:
            line = f"  {s['name']}: {s['status']} (attempts {s['attempts']})"
            if s["error"]:
                line += f" - {s['error']}"
            lines.append(line)
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        render = presenter("run_html")
        return render(self) if render is not None else _plain_html(repr(self))


def waiting_text(data: dict[str, Any]) -> str:
    """What a stopped flow's start would run: the backlog since its checkpoint."""
    if data.get("waiting_error"):
        return f"unknown ({data['waiting_error']})"
    waiting = data.get("waiting")
    if waiting is None:
        return "no checkpoint yet: the first start watches from --since"
    more = "+" if waiting >= 5000 else ""
    return (
        f"{waiting}{more} change(s) since the checkpoint: flow start runs them "
        "(--from now skips them)"
    )


def status_text(data: dict[str, Any]) -> str:
    """One line: state, run counts, polls, last error and the backlog of a stopped flow."""
    return (
        f"flow {data['flow']}: {data['state']}, succeeded {data['succeeded']}, "
        f"failed {data['failed']}, last poll {data['last_poll'] or '-'}, "
        f"next poll {data['next_poll'] or '-'}"
        + (f", last error: {data['last_error']}" if data["last_error"] else "")
        + (
            f", waiting: {waiting_text(data)}"
            if "waiting" in data or "waiting_error" in data
            else ""
        )
    )


class StatusView:
    """``flow status``: the flow's status as data, followed by listeners while the flow runs.

    ``live``: the flow calls `refresh` on engine changes (at most twice a second) and at a
    stop, and every listener is told - the notebook layer's live widget is one.
    """

    TIMELINE_RUNS = 500  # runs a runs-over-time chart reads: the latest, newest first

    def __init__(self, flow: Any, live: bool = True) -> None:
        self.flow = flow
        self.live = live
        self._listeners: list[Callable[[StatusView], None]] = []

    def data(self) -> dict[str, Any]:
        return self.flow.status_data()

    def recent_runs(self, limit: int | None = None) -> list[tuple[str | None, str]]:
        """``(started or queued ISO time, status)`` of the latest runs on this organisation,
        newest first: what a runs-over-time chart draws."""
        flow = self.flow
        rows = flow.history.runs(flow.name, limit or self.TIMELINE_RUNS, org=flow._org_id())
        return [(row["started"] or row["queued"], row["status"]) for row in rows]

    def add_listener(self, callback: Callable[[StatusView], None]) -> None:
        """Call ``callback(view)`` on every refresh (from the engine's thread)."""
        self._listeners.append(callback)

    def refresh(self) -> None:
        for callback in list(self._listeners):
            callback(self)

    def html(self) -> str:
        render = presenter("status_html")
        return render(self) if render is not None else _plain_html(repr(self))

    def _repr_html_(self) -> str:
        return self.html()

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, Any]:
        show = presenter("status")
        bundle = show(self) if show is not None else None
        return bundle or {"text/html": self.html(), "text/plain": repr(self)}

    def __repr__(self) -> str:
        return status_text(self.data())
