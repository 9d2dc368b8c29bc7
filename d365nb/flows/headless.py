"""Run a notebook's flows without Jupyter: ``d365nb flow run notebook.ipynb``.

The notebook is read, never executed (as JSON; versions before 4 through nbformat):
its ``%d365 trigger ...`` lines and ``%%d365 action ...`` / ``%%d365 scope ...`` cells go through
the very code a kernel's magics run (`d365nb.flows.cells`), so the flows built here have the
same definitions - and therefore the same checkpoint signatures - as in the notebook. State and
run history live in the notebook's ``.d365nb/flows.sqlite``, so a flow moves between notebook
and terminal without missing or repeating an event: the terminal resumes from the notebook's
watermark and runs whatever the notebook left queued.

Other code cells are not run (they may create records, plot, ...): a Python step must be
self-contained, with ``trigger``, ``d365``, ``steps`` and ``run`` in scope as in the notebook.
"""

from __future__ import annotations

import contextlib
import io
import json
import sqlite3
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from d365nb.flows.history import FINAL, History
from d365nb.flows.model import FlowError, utcnow_iso

TRIGGER_PREFIX = "%d365 trigger "
ACTION_PREFIX = "%%d365 action "
SCOPE_PREFIX = "%%d365 scope "


@dataclass
class NotebookFlows:
    """The flow cells of one notebook, in notebook order."""

    path: Path
    triggers: list[tuple[str, str]] = field(default_factory=list)  # (flow, line)
    actions: list[tuple[str, str, str]] = field(default_factory=list)  # (flow, line, body)
    scopes: list[tuple[str, str, str]] = field(default_factory=list)  # (flow, line, body)
    # Action and scope cells in notebook order (a step may run after a scope defined above it).
    cells: list[tuple[str, str, str, str]] = field(default_factory=list)  # (magic, flow, ...)

    @property
    def names(self) -> list[str]:
        return list(dict.fromkeys(name for name, _ in self.triggers))


def _flow_name(line: str) -> str:
    words = line.split(None, 1)
    return words[0] if words else ""


def _v4_cells(nb_path: Path) -> list[dict] | None:
    """The cells of a version 4 notebook, read as plain JSON; None for anything else.

    nbformat imports jsonschema, whose format extras (installed with Jupyter) build their
    grammars at import: over a second at every ``flow run`` start, for a file whose cells are
    all that is read here. Other versions and broken files still go through nbformat.
    """
    try:
        data = json.loads(nb_path.read_text(encoding="utf-8"))
    except (OSError, ValueError):  # ValueError covers bad JSON and bad UTF-8
        return None
    if not isinstance(data, dict) or data.get("nbformat") != 4:
        return None
    cells = data.get("cells")
    if not isinstance(cells, list) or not all(isinstance(cell, dict) for cell in cells):
        return None
    return cells


def _nbformat_cells(nb_path: Path) -> list[dict]:
    """The cells as nbformat reads them (converting older versions), or a one-line error."""
    import nbformat

    try:
        return nbformat.read(nb_path, as_version=4).cells
    except Exception as err:  # JSON or format errors: one line
        reason = " ".join(str(err).split())[:200]
        raise FlowError(f"{nb_path} is not a readable notebook: {reason}") from None


def _source(cell: dict) -> str:
    """A cell's source: a string, or on disk often a list of lines (joined as nbformat does)."""
    source = cell.get("source", "")
    if isinstance(source, list):
        return "".join(line for line in source if isinstance(line, str))
    return source if isinstance(source, str) else ""


def read_notebook(path: str | Path) -> NotebookFlows:
    """The trigger lines and action cells of ``path`` (a one-line `FlowError` if unreadable)."""
    nb_path = Path(path)
    if not nb_path.is_file():
        raise FlowError(f"no notebook at {nb_path}")
    cells = _v4_cells(nb_path)
    if cells is None:
        cells = _nbformat_cells(nb_path)
    found = NotebookFlows(nb_path)
    for cell in cells:
        if cell.get("cell_type") != "code":
            continue
        source = _source(cell)
        first, _, body = source.lstrip().partition("\n")
        if first.startswith(ACTION_PREFIX):  # a cell magic is the whole cell
            line = first[len(ACTION_PREFIX) :].strip()
            found.actions.append((_flow_name(line), line, body))
            found.cells.append(("action", _flow_name(line), line, body))
            continue
        if first.startswith(SCOPE_PREFIX):  # scopes group steps: as the kernel, after them
            line = first[len(SCOPE_PREFIX) :].strip()
            found.scopes.append((_flow_name(line), line, body))
            found.cells.append(("scope", _flow_name(line), line, body))
            continue
        for text in source.splitlines():
            text = text.strip()
            if text.startswith(TRIGGER_PREFIX):
                line = text[len(TRIGGER_PREFIX) :].strip()
                found.triggers.append((_flow_name(line), line))
    return found


class HeadlessMagic:
    """What the flow commands need from ``%d365``: a connection and a namespace."""

    def __init__(self, conn: Any) -> None:
        self.conn = conn
        self.namespace: dict[str, Any] = {"__name__": "__d365nb_headless__"}
        # Aliases known to name this one connection: its own, and those the trigger lines use.
        self.aliases = {getattr(conn, "alias", None)}

    def interpolate(self, text: str | None, odata: bool = False) -> str | None:
        """A trigger's --filter as written: ``{expr}`` reads notebook variables, which a
        headless run does not have (no other cell is run), so it is refused in one line."""
        if text and ("{" in text or "}" in text):
            raise FlowError(
                f"--filter {text!r} reads notebook variables ({{...}}), which a headless run "
                "does not have; write the value into the trigger line"
            )
        return text

    def connection(self, alias: str | None = None) -> Any:
        # Headless there is one organisation, and the triggers watch it: a trigger's
        # --connection alias names it.
        self.aliases.add(alias)
        return self.conn

    def step_connection(self, alias: str) -> Any:
        """A declarative step's ``--alias``: only an alias that names the one connection here
        (never silently the default for another organisation)."""
        if alias in self.aliases:
            return self.conn
        raise FlowError(
            f"--alias {alias} names a connection this headless run does not have (it has one: "
            "the triggers' organisation); run that flow in the notebook"
        )


def history_beside(notebook: str | Path) -> History:
    """The notebook's own flow store: ``<notebook dir>/.d365nb/flows.sqlite``."""
    return History(Path(notebook).resolve().parent / ".d365nb" / "flows.sqlite")


def load_flows(
    notebook: str | Path | NotebookFlows,
    conn: Any,
    *,
    only: str | None = None,
    history: History | None = None,
) -> list[Any]:
    """Build the notebook's flows (not started) on ``conn``, sharing its history store."""
    from d365nb.flows import cells as flow_cells
    from d365nb.flows.flow import Flow, flows

    cells = notebook if isinstance(notebook, NotebookFlows) else read_notebook(notebook)
    names = cells.names
    if only is not None and only not in names:
        # A flow built with the Python API (Flow(...)) lives only in the notebook's store.
        stored = _stored_flow(cells.path, only, history)
        if stored is not None:
            return [Flow.load(only, conn, history=stored)]
        defines = f"it defines: {', '.join(names)}" if names else "it defines no flows"
        raise FlowError(f"unknown flow {only!r} in {cells.path.name} ({defines})")
    if not cells.triggers:
        raise FlowError(f"{cells.path.name} defines no flows: it has no %d365 trigger cell")
    wanted = [only] if only else names
    history = history or history_beside(cells.path)
    magic = HeadlessMagic(conn)
    # Detached flows on this history, in the registry only so the commands adopt them; they
    # are registered (which stores their definitions) once every cell has loaded, so a bad
    # cell leaves the notebook's store as it was.
    built = {name: Flow(name, conn, history=history, register=False) for name in wanted}
    previous = {name: flows.get(name) for name in wanted}
    flows.update(built)
    try:
        # The commands print a confirmation per cell; headless, the run log says enough.
        with contextlib.redirect_stdout(io.StringIO()):
            for name, line in cells.triggers:
                if name in built:
                    flow_cells.trigger(magic, line)
            # Built by hand (e.g. the demo) there may be no ordered list: actions, then scopes.
            ordered = cells.cells or [
                *(("action", *entry) for entry in cells.actions),
                *(("scope", *entry) for entry in cells.scopes),
            ]
            for kind, name, line, body in ordered:
                if name not in built:
                    continue
                if kind == "scope":
                    flow_cells.scope(magic, line, body)
                else:
                    flow_cells.action(magic, line, body, connection=magic.step_connection)
    except BaseException:
        for name, flow in previous.items():
            if flow is None:
                flows.pop(name, None)
            else:
                flows[name] = flow
        raise
    return [flows[name].register() for name in wanted]


def _stored_flow(notebook: Path, name: str, history: History | None) -> History | None:
    """The store holding a saved definition of ``name``, if there is one (never creates it)."""
    if history is None:
        path = notebook.resolve().parent / ".d365nb" / "flows.sqlite"
        if not path.is_file():
            return None
        history = History(path)
    return history if history.flow_definition(name) else None


def forget_sandbox_state(flow: Any) -> int:
    """A fresh embedded sandbox is a new organisation: the saved watermark and any runs left
    queued belong to one that is gone. Start from now and close those runs as Cancelled."""
    history = flow.history
    history.clear_state(flow.name)
    stale = history.pending_runs(flow.name)
    now = utcnow_iso()
    for row in stale:
        history.finish_run(row.run_id, "Cancelled", "its embedded sandbox is gone", [], now, now)
    return len(stale)


class RunLog:
    """Prints each run of the given flows once it has finished, with its steps' output."""

    def __init__(self, history: History, names: list[str], out: TextIO) -> None:
        self.path = history.path
        self.names = names
        self.out = out
        self.since = utcnow_iso()
        self.logged: set[str] = set()
        self._db: sqlite3.Connection | None = None

    def _conn(self) -> sqlite3.Connection:
        if self._db is None:
            self._db = sqlite3.connect(self.path, timeout=30)
            self._db.row_factory = sqlite3.Row
        return self._db

    def emit(self) -> int:
        """Print runs finished since the last call; returns how many."""
        marks = ",".join("?" * len(self.names))
        finals = ",".join("?" * len(FINAL))
        rows = self._conn().execute(
            f"SELECT run_id, flow, record_id, change, status, started, ended, error FROM runs "
            f"WHERE flow IN ({marks}) AND status IN ({finals}) AND ended >= ? ORDER BY ended",
            (*self.names, *FINAL, self.since),
        )
        count = 0
        for row in rows.fetchall():
            if row["run_id"] in self.logged:
                continue
            self.logged.add(row["run_id"])
            count += 1
            self._print(row)
        return count

    def _print(self, row: sqlite3.Row) -> None:
        line = (
            f"{row['ended'][:19]}Z {row['flow']} run {row['run_id']} {row['status']}: "
            f"{row['change']} record {row['record_id']}"
        )
        if row["error"]:
            line += f" - {row['error']}"
        print(line, file=self.out)
        steps = self._conn().execute(
            "SELECT name, status, log FROM steps WHERE run_id=? ORDER BY position",
            (row["run_id"],),
        )
        for step in steps.fetchall():
            print(f"  {step['name']}: {step['status']}", file=self.out)
            for text in (step["log"] or "").splitlines():
                print(f"    {text}", file=self.out)
        self.out.flush()

    def close(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None


def run_flows(
    flows: list[Any],
    stop: threading.Event,
    *,
    out: TextIO,
    tick: float = 0.2,
    on_started: Callable[[], None] | None = None,
) -> None:
    """Start ``flows``, log their runs until ``stop`` is set, then stop them cleanly."""
    log = RunLog(flows[0].history, [f.name for f in flows], out)
    try:
        for flow in flows:
            flow.start()
            print(f"flow {flow.name} running: {flow.trigger.describe()}", file=out)
        out.flush()
        if on_started is not None:
            on_started()
        while not stop.wait(tick):
            log.emit()
    finally:
        for flow in flows:
            flow.stop()
        log.emit()
        log.close()
        print("stopped: " + ", ".join(f.name for f in flows), file=out)
        out.flush()
