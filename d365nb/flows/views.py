"""How flows show themselves: run history as a DataFrame, one run like the Logic Apps run view,
and the status panel (a live ipywidgets HTML, with an HTML snapshot where widgets don't render).
"""

from __future__ import annotations

import html
import json
from typing import Any

from d365nb.flows.output import in_kernel

RUN_COLUMNS = ["run_id", "record_id", "status", "started", "ended", "duration", "error", "attempts"]
_COLOURS = {
    "Succeeded": "#107c10",
    "Failed": "#a4262c",
    "Skipped": "#8a8886",
    "Cancelled": "#8a8886",
    "TimedOut": "#a4262c",
    "Queued": "#8764b8",
    "Running": "#0078d4",
}


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


def _badge(status: str) -> str:
    colour = _COLOURS.get(status, "#323130")
    return f'<span style="color:{colour};font-weight:600">{html.escape(status)}</span>'


def _pretty(value: Any, limit: int = 600) -> str:
    text = value if isinstance(value, str) else json.dumps(value, default=str, indent=1)
    if len(text) > limit:
        text = text[:limit] + " ..."
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
        d = self.data
        head = (
            f"<b>run {html.escape(self.run_id)}</b> of <b>{html.escape(d['flow'])}</b> - "
            f"{_badge(self.status)} - record <code>{html.escape(str(d['record_id']))}</code>"
            f" ({html.escape(str(d['change']))}, {html.escape(str(d['origin']))}) - "
            f"key <code>{html.escape(d['key'])}</code>"
        )
        if self.error:
            head += f"<br><span style='color:#a4262c'>{html.escape(self.error)}</span>"
        rows = [
            f"<tr><td>trigger</td><td>{_badge('Succeeded')}</td><td>{_pretty(self.record)}</td>"
            "<td></td><td></td><td></td></tr>"
        ]
        for s in self.steps:
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


def status_html(data: dict[str, Any]) -> str:
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
            f"<span style='color:#a4262c'>{html.escape(error)}</span>" if error else "-",
        ),
    ]
    if "waiting" in data or "waiting_error" in data:
        rows.insert(2, ("waiting", html.escape(waiting_text(data))))
    body = "".join(
        f"<tr><th style='text-align:left'>{k}</th><td style='text-align:left'>{v}</td></tr>"
        for k, v in rows
    )
    return f"<div><b>flow {html.escape(data['flow'])}</b><table>{body}</table></div>"


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


class StatusView:
    """``flow status``: a live widget updated by the engine; an HTML snapshot elsewhere."""

    def __init__(self, flow: Any, live: bool = True) -> None:
        self.flow = flow
        self.widget: Any = None
        if live and in_kernel():
            try:
                import ipywidgets

                self.widget = ipywidgets.HTML(value=self.html())
            except Exception:
                self.widget = None

    def html(self) -> str:
        return status_html(self.flow.status_data())

    def refresh(self) -> None:
        if self.widget is not None:
            self.widget.value = self.html()

    def _repr_html_(self) -> str:
        return self.html()

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, Any]:
        snapshot = self.html()
        bundle: dict[str, Any] = {"text/html": snapshot, "text/plain": repr(self)}
        if self.widget is not None:
            # Frontends with a widget manager show the live view; the rest fall back to the HTML.
            bundle["application/vnd.jupyter.widget-view+json"] = {
                "version_major": 2,
                "version_minor": 0,
                "model_id": self.widget.model_id,
            }
        return bundle

    def __repr__(self) -> str:
        d = self.flow.status_data()
        return (
            f"flow {d['flow']}: {d['state']}, succeeded {d['succeeded']}, failed {d['failed']}, "
            f"last poll {d['last_poll'] or '-'}, next poll {d['next_poll'] or '-'}"
            + (f", last error: {d['last_error']}" if d["last_error"] else "")
            + (f", waiting: {waiting_text(d)}" if "waiting" in d or "waiting_error" in d else "")
        )
