"""The flow view (trigger -> steps diagram coloured by the latest run, beside the run history) and
the action form (a create step for a flow, with a "dynamic content" picker of trigger fields).

The diagram is plain HTML + inline SVG so it renders the same inside the widget and in the static
fallback of a saved notebook.
"""

from __future__ import annotations

import threading
from typing import Any

import ipywidgets as widgets

from d365nb.notebook.forms import columns as cols
from d365nb.notebook.forms.base import Form, current_connection
from d365nb.notebook.forms.fields import BLANK, LABEL_WIDTH
from d365nb.notebook.forms.record import CreateForm
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


def _steps(flow: Any) -> list[Any]:
    steps = getattr(flow, "steps", [])
    return list(steps.values()) if isinstance(steps, dict) else list(steps)


def _runs(flow: Any, limit: int = HISTORY_ROWS) -> list[dict[str, Any]]:
    """The latest runs, newest first, as dicts (from the flow's run history)."""
    frame = flow.runs()
    if frame is None or len(frame) == 0:
        return []
    frame = frame.reset_index() if frame.index.name else frame
    return frame.head(limit).to_dict("records")


def _run_detail(flow: Any, run_id: str) -> dict[str, Any] | None:
    """One run with its per-step statuses (``{"steps": [{"name", "status", ...}]}``)."""
    for owner in (flow, getattr(flow, "history", None), getattr(flow, "_history", None)):
        for name in ("run_detail", "run"):
            method = getattr(owner, name, None)
            if callable(method):
                try:
                    detail = method(run_id)
                except TypeError:
                    continue
                if isinstance(detail, dict) and "steps" in detail:
                    return detail
    return None


def _trigger_status(flow: Any, latest_run: dict[str, Any] | None) -> str | None:
    """The latest trigger check's status (Succeeded / Skipped / Failed); a flow only tested by
    hand has no checks, but a run means its trigger record was found."""
    history = getattr(flow, "history", None)
    checks = (
        history.checks(flow.name, 1) if history is not None and hasattr(history, "checks") else []
    )
    if checks:
        return checks[0].get("status")
    return "Succeeded" if latest_run else None


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
    for step in _steps(flow):
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
            f"<td><code>{escape(str(run.get('record_id') or '')[:8])}</code></td>"
            f"<td style='color:{stroke};font-weight:bold'>{escape(status)}</td>"
            f"<td>{escape(str(run.get('started') or '')[:19])}</td>"
            f"<td>{escape(str(run.get('error') or '')[:80])}</td></tr>"
        )
    return f"<table class='d365nb-history'>{head}{''.join(rows)}</table>"


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
        if not runs:
            return {}, None
        detail = _run_detail(self.flow, runs[0]["run_id"]) or {}
        return {s["name"]: s["status"] for s in detail.get("steps", [])}, runs[0]

    def refresh(self) -> None:
        """Re-read the run history and redraw."""
        try:
            statuses, latest = self.latest_statuses()
            runs = _runs(self.flow)
        except Exception as err:
            self.show_error(err)
            return
        self.step_statuses = statuses
        self.diagram.value = diagram_svg(self.flow, statuses, _trigger_status(self.flow, latest))
        self.history.value = "<b>Run history</b>" + history_table(runs)
        if latest:
            self.status.value = f"latest run <code>{escape(str(latest['run_id'])[:8])}</code>: {escape(latest.get('status'))}"

    def _live_changed(self, on: bool) -> None:
        if on:
            self._tick()
        elif self._timer is not None:
            self._timer.cancel()

    def _tick(self) -> None:
        if not self.live.value:
            return
        self.refresh()
        self._timer = threading.Timer(self.refresh_every, self._tick)
        self._timer.daemon = True
        self._timer.start()

    def _fallback_body(self) -> str:
        return f"<div style='display:flex;gap:24px'>{self.diagram.value}<div>{self.history.value}</div></div>"


def command_value(value: Any) -> str:
    """A value as written in a declarative step (``%d365``-style ``field=value``)."""
    if isinstance(value, tuple):
        return f"{value[0]}({value[1]})"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return str(value)
    text = str(value)
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


class ActionForm(CreateForm):
    """A create step for a flow: the create form of ``table`` plus a "dynamic content" picker that
    inserts trigger fields (``{trigger[lastname]}``) into text fields; "Add step" adds a declarative
    ``create`` step to the flow."""

    kind = "action"

    def __init__(
        self, flow: Any, table: str, conn: Any = None, step_name: str | None = None
    ) -> None:
        conn = current_connection(
            conn
            if conn is not None
            else getattr(flow, "conn", None) or getattr(flow, "connection", None)
        )
        super().__init__(table, conn)
        self.flow = flow
        self.title = f"Action: create {self.meta.display_name or self.meta.logical_name}"
        self.trigger_meta = conn.metadata.table(flow.trigger.table)
        trigger_fields = sorted(self.trigger_meta.columns.values(), key=lambda c: cols.label(c))
        self.dynamic = widgets.Dropdown(
            options=[(f"{cols.label(c)} ({c.name})", c.name) for c in trigger_fields],
            description="Dynamic content",
            style={"description_width": "120px"},
            layout=widgets.Layout(width="380px"),
        )
        self.dynamic.add_class("d365nb-dynamic")
        texts = [f for f in self.fields.values() if cols.kind(f.column) in (cols.TEXT, cols.MEMO)]
        self.insert_into = widgets.Dropdown(
            options=[(cols.label(f.column), f.name) for f in texts], description="into"
        )
        self.insert_button = widgets.Button(description="Insert", icon="bolt")
        self.insert_button.on_click(lambda _b: self.insert())
        # Lookups that can point at the trigger's table may take "the trigger record" itself.
        self.use_trigger: dict[str, widgets.Checkbox] = {}
        for field in self.fields.values():
            if cols.kind(
                field.column
            ) == cols.LOOKUP and self.trigger_meta.logical_name in cols.targets(field.column):
                box = widgets.Checkbox(
                    description=f"the trigger {self.trigger_meta.logical_name}",
                    indent=False,
                    layout=widgets.Layout(margin=f"0 0 0 {LABEL_WIDTH}"),
                )
                box.add_class("d365nb-use-trigger")
                self.use_trigger[field.name] = box
                field.widget.children = (*field.widget.children, box)
        self.step_name = widgets.Text(
            value=step_name or f"create_{self.meta.logical_name}", description="Step name"
        )
        self.button.description = "Add step"
        self.button.icon = "plus"
        self._assemble(
            widgets.HBox([self.dynamic, self.insert_into, self.insert_button]),
            self.fields_box,
            self.step_name,
            self.button,
        )

    def insert(self, trigger_field: str | None = None, into: str | None = None) -> None:
        """Append ``{trigger[<field>]}`` to a text field (what picking dynamic content does)."""
        name = into or self.insert_into.value
        token = "{trigger[" + (trigger_field or self.dynamic.value) + "]}"
        box = self.fields[name].input
        box.value = box.value + token

    def values(self, only_changed: bool = False) -> dict[str, Any] | None:
        out: dict[str, Any] = {}
        problems = []
        for name, field in self.fields.items():
            if name in self.use_trigger and self.use_trigger[name].value:
                out[name] = (
                    self.trigger_meta.entity_set,
                    "{trigger[" + self.trigger_meta.primary_id + "]}",
                )
                field.show_error(None)
                continue
            raw = field.raw()
            if isinstance(raw, str) and "{trigger[" in raw:
                out[name] = raw  # filled in per run; its type is checked when the step runs
                field.show_error(None)
                continue
            if not field.validate():
                problems.append(cols.label(field.column))
                continue
            value = field.value()
            if value is not BLANK:
                out[name] = value
        if problems:
            self.show_error(
                f"fix the marked field{'s' if len(problems) > 1 else ''}: {', '.join(problems)}"
            )
            return None
        return out

    def command(self) -> str | None:
        """The declarative step, e.g. ``create tasks subject="Follow up: {trigger[lastname]}"``."""
        values = self.values()
        if values is None:
            return None
        assignments = " ".join(f"{k}={command_value(v)}" for k, v in values.items())
        return f"create {self.meta.entity_set} {assignments}".strip()

    def submit(self) -> str | None:
        """Add the step to the flow; returns the command (None when invalid)."""
        command = self.command()
        if command is None:
            return None
        name = self.step_name.value.strip()
        if not name.isidentifier():
            self.show_error(f"step name {name!r} must be a Python identifier, e.g. create_task")
            return None
        try:
            self.flow.step(name, command)
        except Exception as err:
            self.show_error(err)
            return None
        self.result = command
        self.show_ok(f"added step {name}: {command}")
        return command
