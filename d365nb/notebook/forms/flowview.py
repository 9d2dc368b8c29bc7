"""The flow view: a trigger -> steps diagram coloured by the latest run, beside the run history.

The diagram is plain HTML + inline SVG so it renders the same inside the widget and in the static
fallback of a saved notebook.
"""

from __future__ import annotations

import threading
from typing import Any

import ipywidgets as widgets

from d365nb.notebook.forms.base import Form
from d365nb.notebook.forms.render import escape

STATUS_COLOURS = {  # fill, stroke - Logic Apps' run view colours, roughly
    "Succeeded": ("#e8f5e9", "#2e7d32"),
    "Failed": ("#ffebee", "#c62828"),
    "TimedOut": ("#fff3e0", "#ef6c00"),
    "Skipped": ("#f5f5f5", "#9e9e9e"),
    "Cancelled": ("#f5f5f5", "#616161"),
    "Running": ("#e3f2fd", "#1565c0"),
    "Queued": ("#e3f2fd", "#90caf9"),
    None: ("#ffffff", "#607d8b"),
}
BOX_W, BOX_H, GAP = 300, 46, 26
HISTORY_ROWS = 10


def _runs(flow: Any, limit: int = HISTORY_ROWS) -> list[dict[str, Any]]:
    """The latest ``limit`` runs, newest first, as dicts (only those are read: a long-lived flow
    has thousands and the live view redraws every few seconds)."""
    frame = flow.runs(limit)
    if frame is None or len(frame) == 0:
        return []
    return frame.to_dict("records")


def _step_statuses(flow: Any, run_id: str) -> dict[str, str]:
    """``{step name: status}`` of one run (steps that have not run yet are absent)."""
    detail = flow.history.run(run_id) or {}
    return {step["name"]: step["status"] for step in detail.get("steps", [])}


def _trigger_status(flow: Any, latest_run: dict[str, Any] | None) -> str | None:
    """The trigger box's status: Failed while its latest poll fails (the flow is blind then);
    otherwise Succeeded for the latest run (its record was found), as in a Logic Apps run view.
    An idle poll ("Skipped": nothing new) does not grey out the run being shown."""
    checks = flow.history.checks(flow.name, 1)
    latest_check = checks[0].get("status") if checks else None
    if latest_check == "Failed" or latest_run is None:
        return latest_check
    return "Succeeded"


def _box(y: int, title: str, subtitle: str, status: str | None, css: str) -> str:
    fill, stroke = STATUS_COLOURS.get(status, STATUS_COLOURS[None])
    label = f"{subtitle} · {status}" if status else subtitle
    return (
        f"<g class='{css}' data-status='{escape(status or 'none')}'>"
        f"<rect x='2' y='{y}' width='{BOX_W}' height='{BOX_H}' rx='6' fill='{fill}' stroke='{stroke}' stroke-width='2'/>"
        f"<text x='14' y='{y + 19}' font-size='13' font-weight='bold' fill='#263238'>{escape(title)}</text>"
        f"<text x='14' y='{y + 36}' font-size='11' fill='{stroke}'>{escape(label[:48])}</text></g>"
    )


def diagram_svg(
    flow: Any, step_statuses: dict[str, str] | None = None, trigger_status: str | None = None
) -> str:
    """An SVG of trigger -> steps; each step box coloured by its status in ``step_statuses``."""
    step_statuses = step_statuses or {}
    trigger = getattr(flow, "trigger", None)
    parts = []
    y = 2
    if trigger is not None:
        subtitle = f"{trigger.table} {trigger.kind}, every {_interval(trigger.every)}"
        parts.append(_box(y, "⚡ Trigger", subtitle, trigger_status, "d365nb-trigger"))
    else:
        parts.append(_box(y, "⚡ Trigger", "(no trigger yet)", None, "d365nb-trigger"))
    for step in flow.steps:
        y0 = y + BOX_H
        y += BOX_H + GAP
        parts.append(
            f"<line x1='{BOX_W // 2}' y1='{y0 + 2}' x2='{BOX_W // 2}' y2='{y - 4}' stroke='#607d8b' stroke-width='2' marker-end='url(#d365nb-arrow)'/>"
        )
        parts.append(
            _box(
                y,
                step.name,
                getattr(step, "kind", "step"),
                step_statuses.get(step.name),
                "d365nb-step",
            )
        )
    height = y + BOX_H + 4
    marker = (
        "<defs><marker id='d365nb-arrow' markerWidth='8' markerHeight='8' refX='4' refY='4' orient='auto'>"
        "<path d='M0,0 L8,4 L0,8 z' fill='#607d8b'/></marker></defs>"
    )
    return f"<svg class='d365nb-flow-diagram' xmlns='http://www.w3.org/2000/svg' width='{BOX_W + 4}' height='{height}'>{marker}{''.join(parts)}</svg>"


def _interval(seconds: Any) -> str:
    try:
        from d365nb.flows.model import format_interval

        return format_interval(float(seconds))
    except Exception:
        return f"{seconds}s"


def _cell(value: Any) -> str:
    # A queued run has no start time yet: pandas gives NaT/None/NaN, shown as an empty cell.
    if value is None or value != value or str(value) in ("NaT", "nan", "None"):
        return ""
    return str(value)


def history_table(runs: list[dict[str, Any]]) -> str:
    """The run history as an HTML table with coloured statuses."""
    if not runs:
        return "<p class='d365nb-history'><i>no runs yet</i></p>"
    head = "<tr><th>run</th><th>record</th><th>status</th><th>started</th><th>error</th></tr>"
    rows = []
    for run in runs:
        status = run.get("status")
        _fill, stroke = STATUS_COLOURS.get(status, STATUS_COLOURS[None])
        rows.append(
            f"<tr><td><code>{escape(str(run.get('run_id', ''))[:8])}</code></td>"
            f"<td><code>{escape(_cell(run.get('record_id'))[:8])}</code></td>"
            f"<td style='color:{stroke};font-weight:bold'>{escape(status)}</td>"
            f"<td>{escape(_cell(run.get('started'))[:19])}</td>"
            f"<td>{escape(_cell(run.get('error'))[:80])}</td></tr>"
        )
    return f"<table class='d365nb-history'>{head}{''.join(rows)}</table>"


_LIVE_VIEWS: dict[str, FlowView] = {}  # flow name -> its view refreshing itself


class FlowView(Form):
    """Diagram of a flow (coloured by its latest run) beside its run history; Refresh or let it
    refresh itself every few seconds."""

    kind = "flow"

    def __init__(self, flow: Any, refresh_every: float = 2.0) -> None:
        super().__init__()
        self.flow = flow
        self.title = f"Flow {getattr(flow, 'name', '')}"
        self.refresh_every = refresh_every
        self.diagram = widgets.HTML()
        self.history = widgets.HTML()
        self.refresh_button = widgets.Button(description="Refresh", icon="refresh")
        self.refresh_button.on_click(lambda _b: self.refresh())
        self.live = widgets.Checkbox(description="live", value=False, indent=False)
        self.live.observe(lambda change: self._live_changed(change["new"]), "value")
        self._timer: threading.Timer | None = None
        self.refresh()
        self._assemble(
            widgets.HBox(
                [self.diagram, self.history],
                layout=widgets.Layout(align_items="flex-start", grid_gap="24px"),
            ),
            widgets.HBox([self.refresh_button, self.live]),
        )

    def latest_statuses(self) -> tuple[dict[str, str], dict[str, Any] | None]:
        """Per-step statuses of the latest run and that run (empty before the first run)."""
        runs = _runs(self.flow, 1)
        return (_step_statuses(self.flow, runs[0]["run_id"]), runs[0]) if runs else ({}, None)

    def refresh(self) -> None:
        """Re-read the run history and redraw."""
        try:
            runs = _runs(self.flow)
            latest = runs[0] if runs else None
            statuses = _step_statuses(self.flow, latest["run_id"]) if latest else {}
        except Exception as err:
            self.show_error(err)
            return
        self.step_statuses = statuses
        self.diagram.value = diagram_svg(self.flow, statuses, _trigger_status(self.flow, latest))
        self.history.value = "<b>Run history</b>" + history_table(runs)
        if latest:
            self.status.value = f"latest run <code>{escape(str(latest['run_id'])[:8])}</code>: {escape(latest.get('status'))}"

    def _live_changed(self, on: bool) -> None:
        name = getattr(self.flow, "name", "")
        if on:
            # One live view per flow: re-running the cell that shows it must not pile up
            # timers that keep redrawing views nobody can see any more.
            previous = _LIVE_VIEWS.get(name)
            _LIVE_VIEWS[name] = self
            if previous is not None and previous is not self:
                previous.live.value = False
            self._tick()
        else:
            if self._timer is not None:
                self._timer.cancel()
            if _LIVE_VIEWS.get(name) is self:
                del _LIVE_VIEWS[name]

    def _tick(self) -> None:
        if not self.live.value:
            return
        self.refresh()
        self._timer = threading.Timer(self.refresh_every, self._tick)
        self._timer.daemon = True
        self._timer.start()

    def _fallback_body(self) -> str:
        return f"<div style='display:flex;gap:24px'>{self.diagram.value}<div>{self.history.value}</div></div>"
