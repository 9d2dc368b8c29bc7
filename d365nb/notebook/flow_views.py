"""Rich views of flows for notebooks: a run like the Logic Apps run view, the status panel with
its runs-over-time chart (a live ipywidgets HTML the engine keeps current) and the flow's
output area (an ipywidgets ``Output``).

The flows layer draws nothing itself; `register` installs these as its presenters
(`d365nb.flows.views.register_presenters`). ``%load_ext d365nb`` calls it, and
``d365nb/__init__.py`` adds it as a loader so Python-API users get the same views. Colours are
the forms' flow view's (`d365nb.notebook.forms.flowview.STATUS_COLOURS`). ipywidgets and the
forms load on the first view shown, not at ``%load_ext``.
"""

from __future__ import annotations

import html
import json
import weakref
from typing import Any

from d365nb.flows import views
from d365nb.flows.output import FlowOutput, in_kernel
from d365nb.notebook import flow_chart

__all__ = ["register", "run_html", "status_html", "status_bundle", "output_widget"]

WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"


def register() -> None:
    """Make flows show themselves with these views (idempotent)."""
    views.register_presenters(
        run_html=run_html, status_html=status_html, status=status_bundle, output=output_bundle
    )


def _stroke(status: str | None) -> str:
    from d365nb.notebook.forms.flowview import STATUS_COLOURS

    return STATUS_COLOURS.get(status, STATUS_COLOURS[None])[1]


def _badge(status: str) -> str:
    return f'<span style="color:{_stroke(status)};font-weight:600">{html.escape(status)}</span>'


def _pretty(value: Any, limit: int = 600) -> str:
    text = value if isinstance(value, str) else json.dumps(value, default=str, indent=1)
    if len(text) > limit:
        text = text[:limit] + " ..."
    return f"<pre style='margin:0;white-space:pre-wrap'>{html.escape(text)}</pre>"


# -- one run --------------------------------------------------------------------------------
def run_html(view: views.RunView) -> str:
    """Trigger record, then each step with status, inputs, outputs, error/log and attempts."""
    d = view.data
    head = (
        f"<b>run {html.escape(view.run_id)}</b> of <b>{html.escape(d['flow'])}</b> - "
        f"{_badge(view.status)} - record <code>{html.escape(str(d['record_id']))}</code>"
        f" ({html.escape(str(d['change']))}, {html.escape(str(d['origin']))}) - "
        f"key <code>{html.escape(d['key'])}</code>"
    )
    if view.error:
        head += f"<br><span style='color:{_stroke('Failed')}'>{html.escape(view.error)}</span>"
    rows = [
        f"<tr><td>trigger</td><td>{_badge('Succeeded')}</td><td>{_pretty(view.record)}</td>"
        "<td></td><td></td><td></td></tr>"
    ]
    for s in view.steps:
        rows.append(
            f"<tr><td>{html.escape(s['name'])}</td><td>{_badge(s['status'])}</td>"
            f"<td>{_pretty(s['inputs'])}</td><td>{_pretty(s['outputs'])}</td>"
            f"<td>{html.escape(s['error'] or '')}{_pretty(s['log']) if s['log'] else ''}</td>"
            f"<td>{s['attempts']}</td></tr>"
        )
    table = (
        "<table><tr><th>step</th><th>status</th><th>inputs</th><th>outputs</th>"
        "<th>error / output</th><th>attempts</th></tr>" + "".join(rows) + "</table>"
    )
    return f"<div>{head}{table}</div>"


# -- the status panel -----------------------------------------------------------------------
def _status_table(data: dict[str, Any]) -> str:
    error = data.get("last_error")
    rows = [
        ("state", _badge(data["state"])),
        ("trigger", html.escape(str(data.get("trigger")))),
        ("steps", html.escape(", ".join(data.get("steps") or []) or "none")),
        ("last poll", html.escape(str(data.get("last_poll") or "-"))),
        ("next poll", html.escape(str(data.get("next_poll") or "-"))),
        (
            "runs",
            f"{_badge('Succeeded')} {data['succeeded']} &nbsp; {_badge('Failed')} {data['failed']}"
            f" &nbsp; queued {data['queued']} &nbsp; running {data['running']}",
        ),
        (
            "last error",
            f"<span style='color:{_stroke('Failed')}'>{html.escape(error)}</span>"
            if error
            else "-",
        ),
    ]
    if "waiting" in data or "waiting_error" in data:
        rows.insert(2, ("waiting", html.escape(views.waiting_text(data))))
    body = "".join(
        f"<tr><th style='text-align:left'>{k}</th><td style='text-align:left'>{v}</td></tr>"
        for k, v in rows
    )
    return f"<table>{body}</table>"


def _buckets(view: views.StatusView) -> flow_chart.Buckets | None:
    try:
        return flow_chart.bucket_runs(view.recent_runs())
    except Exception:  # noqa: BLE001 - history unreadable now: the table still shows
        return None


def status_html(view: views.StatusView) -> str:
    """The status table with the runs-over-time chart beside it."""
    data = view.data()
    chart = flow_chart.chart_svg(_buckets(view))
    return (
        f"<div><b>flow {html.escape(data['flow'])}</b>"
        "<div style='display:flex;gap:24px;align-items:flex-start'>"
        f"{_status_table(data)}{chart}</div></div>"
    )


def _status_text(view: views.StatusView) -> str:
    spark = flow_chart.sparkline(_buckets(view))
    return repr(view) + (f"\n{spark}" if spark else "")


def status_bundle(view: views.StatusView) -> dict[str, Any]:
    """HTML snapshot and text (with a sparkline); a live widget too when ``view.live`` in a
    kernel - frontends with a widget manager show it, the rest the snapshot."""
    snapshot = status_html(view)
    bundle: dict[str, Any] = {"text/html": snapshot, "text/plain": _status_text(view)}
    widget = live_status_widget(view, snapshot) if view.live and in_kernel() else None
    if widget is not None:
        bundle[WIDGET_VIEW] = _widget_view(widget)
    return bundle


def live_status_widget(view: views.StatusView, snapshot: str | None = None) -> Any:
    """An ipywidgets HTML showing ``view``, redrawn on every refresh; None without widgets."""
    try:
        import ipywidgets
    except ImportError:
        return None
    widget = ipywidgets.HTML(value=snapshot if snapshot is not None else status_html(view))

    def redraw(v: views.StatusView) -> None:
        widget.value = status_html(v)

    view.add_listener(redraw)
    return widget


# -- the output area ------------------------------------------------------------------------
_AREAS: weakref.WeakKeyDictionary[FlowOutput, Any] = weakref.WeakKeyDictionary()


def output_widget(output: FlowOutput) -> Any:
    """The flow's output area as one ipywidgets ``Output`` following it (in a kernel; else
    None: step output is in run history)."""
    widget = _AREAS.get(output)
    if widget is not None or not in_kernel():
        return widget
    try:
        import ipywidgets
    except ImportError:
        return None
    widget = ipywidgets.Output(
        layout={"border": "1px solid #ddd", "max_height": "20em", "overflow": "auto"}
    )
    _AREAS[output] = widget
    output.add_listener(lambda outputs: setattr(widget, "outputs", outputs))
    return widget


def output_bundle(output: FlowOutput) -> dict[str, Any] | None:
    widget = output_widget(output)
    if widget is None:
        return None
    return {"text/plain": f"output area of flow {output.name}", WIDGET_VIEW: _widget_view(widget)}


def _widget_view(widget: Any) -> dict[str, Any]:
    return {"version_major": 2, "version_minor": 0, "model_id": widget.model_id}
