"""`Flow`: one trigger and ordered steps, named, living in the kernel.

>>> f = Flow("lead_followup", d365).on_created("leads", every="10s", filter="statuscode eq 1")
>>> f.step("create_task", 'create tasks subject="Follow up: {trigger[subject]}"')
>>> f.start()
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from d365nb.flows.detect import Detector
from d365nb.flows.history import Change, History
from d365nb.flows.model import (
    KINDS,
    FlowError,
    RetryPolicy,
    Step,
    Trigger,
    parse_interval,
    parse_since,
    split_names,
)
from d365nb.flows.output import FlowOutput
from d365nb.flows.runner import RunSpec
from d365nb.flows.steps import (
    compile_callable,
    compile_condition,
    compile_declarative,
    compile_python,
    looks_declarative,
)

_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]{0,79}$")
_histories: dict[Path, History] = {}
_histories_lock = threading.Lock()

#: Flows defined in this process, by name.
flows: dict[str, Flow] = {}


def history_for(path: str | Path | None = None) -> History:
    """The shared `History` for ``path`` (default ``.d365nb/flows.sqlite`` under the cwd)."""
    resolved = (Path(path) if path else Path.cwd() / ".d365nb" / "flows.sqlite").resolve()
    with _histories_lock:
        if resolved not in _histories:
            _histories[resolved] = History(resolved)
        return _histories[resolved]


def get_flow(name: str) -> Flow:
    """The flow called ``name``, or a one-line error listing the defined ones."""
    try:
        return flows[name]
    except KeyError:
        known = ", ".join(sorted(flows)) or "none yet"
        raise FlowError(
            f"unknown flow {name!r} (defined: {known}); define it with a trigger first"
        ) from None


def check_name(kind: str, name: str) -> str:
    if not isinstance(name, str) or not _NAME.match(name):
        raise FlowError(f"bad {kind} name {name!r}: use letters, digits and _ (e.g. lead_followup)")
    return name


class Flow:
    """A trigger plus ordered steps, polled by the engine once started.

    ``concurrency``: runs at a time (default 1). ``self_trigger``: let writes made by this flow's
    own steps trigger it again (off by default: the loop guard).
    """

    def __init__(
        self,
        name: str,
        conn: Any = None,
        *,
        concurrency: int = 1,
        self_trigger: bool = False,
        history: History | str | Path | None = None,
        page_size: int = 1000,
        register: bool = True,
    ) -> None:
        self.name = check_name("flow", name)
        if conn is None:
            from d365nb.client.registry import connections

            conn = connections.current
        if conn is None:
            raise FlowError("no connection: connect first, e.g. d365 = d365nb.connect('sandbox')")
        self.conn = conn
        if not isinstance(concurrency, int) or concurrency < 1:
            raise FlowError(f"bad concurrency {concurrency!r}: use a whole number of at least 1")
        self.concurrency = concurrency
        self.self_trigger = self_trigger
        self.page_size = page_size
        self.history = history if isinstance(history, History) else history_for(history)
        self.trigger: Trigger | None = None
        self._detector: Detector | None = None
        self._steps: dict[str, Step] = {}
        self.output = FlowOutput(name)
        self._status_view: Any = None
        self._refresh_at = 0.0
        self._refresh_pending = False
        self._registered = False
        if register:
            self.register()

    def register(self) -> Flow:
        """Make this the flow called ``self.name`` in this process (stopping a running namesake)
        and store its definition. ``Flow(..., register=False)`` builds a detached flow first, so
        a definition that turns out to be bad changes nothing."""
        old = flows.get(self.name)
        if old is not None and old is not self and old.running:
            old.stop()
        flows[self.name] = self
        self._registered = True
        self._save()
        return self

    def __repr__(self) -> str:
        trigger = self.trigger.describe() if self.trigger else "no trigger"
        return f"<Flow {self.name}: {trigger}; {len(self._steps)} step(s); {self.state}>"

    # -- definition -----------------------------------------------------------------------
    def on_created(
        self,
        table: str,
        every: str | float = "3m",
        filter: str | None = None,
        select: str | list[str] | None = None,
        since: str | None = None,
        mode: str = "auto",
    ) -> Flow:
        """Trigger: when a record of ``table`` is created, checked every ``every``."""
        return self._set_trigger("created", table, every, filter, select, None, since, mode)

    def on_updated(
        self,
        table: str,
        every: str | float = "3m",
        filter: str | None = None,
        select: str | list[str] | None = None,
        columns: str | list[str] | None = None,
        since: str | None = None,
        mode: str = "auto",
    ) -> Flow:
        """Trigger: when a record is updated; with ``columns``, only when one of them changed."""
        return self._set_trigger("updated", table, every, filter, select, columns, since, mode)

    def on_deleted(self, table: str, every: str | float = "3m", since: str | None = None) -> Flow:
        """Trigger: when a record is deleted (needs change tracking on the table)."""
        return self._set_trigger("deleted", table, every, None, None, None, since, "changes")

    def _set_trigger(
        self,
        kind: str,
        table: str,
        every: Any,
        filter: str | None,
        select: Any,
        columns: Any,
        since: Any,
        mode: str,
    ) -> Flow:
        if kind not in KINDS:
            raise FlowError(f"bad trigger {kind!r}: use created, updated or deleted")
        if mode not in ("auto", "watermark", "changes"):
            raise FlowError(f"bad mode {mode!r}: use auto, watermark or changes")
        trigger = Trigger(
            kind,
            table,
            parse_interval(every),
            filter or None,
            split_names(select),
            split_names(columns),
            parse_since(since),
            mode,
        )
        self.set_trigger(trigger)
        return self

    def set_trigger(self, trigger: Trigger) -> Flow:
        """Use ``trigger`` (checked against the table's metadata first); a running flow is
        restarted with it, resuming its checkpoint if the trigger watches the same changes."""
        detector = Detector(trigger, self.conn, page_size=self.page_size)  # checks table/columns
        trigger.table = detector.table
        was_running = self.running
        if was_running:
            self.stop()
        self.trigger, self._detector = trigger, detector
        self._save()
        if was_running:
            self.start()
        return self

    def step(
        self,
        name: str,
        code: str | Callable[..., Any],
        when: str | None = None,
        retry: RetryPolicy | str | dict[str, Any] | None = None,
        timeout: float | str | None = None,
        namespace: dict[str, Any] | None = None,
    ) -> Flow:
        """Add or replace step ``name``: Python source, a declarative command or a callable.

        Re-defining an existing step keeps its place; new steps go last.
        """
        check_name("step", name)
        kind = "callable"
        if callable(code):
            func = compile_callable(name, code)
            source = getattr(code, "__name__", repr(code))
        elif isinstance(code, str):
            if not code.strip():
                raise FlowError(
                    f"step {name!r} is empty: write Python or a command such as create tasks subject=..."
                )
            if looks_declarative(code):
                func, _ = compile_declarative(name, code)
                kind = "declarative"
            else:
                func = compile_python(name, code)
                kind = "python"
            source = code
        else:
            raise FlowError(f"step {name!r} must be code (text) or a callable")
        seconds = None if timeout in (None, "", 0) else parse_interval(timeout)  # type: ignore[arg-type]
        self._steps[name] = Step(
            name,
            func,
            source,
            kind,
            when,
            compile_condition(name, when),
            RetryPolicy.parse(retry),
            seconds,
            namespace,
        )
        self._save()
        return self

    def remove_step(self, name: str) -> None:
        if name not in self._steps:
            raise FlowError(
                f"flow {self.name!r} has no step {name!r} (steps: {', '.join(self._steps) or 'none'})"
            )
        del self._steps[name]
        self._save()

    @property
    def steps(self) -> list[Step]:
        return list(self._steps.values())

    def detector(self) -> Detector:
        if self._detector is None:
            raise FlowError(
                f"flow {self.name!r} has no trigger; add one with on_created/on_updated/on_deleted"
            )
        return self._detector

    def definition(self) -> dict[str, Any]:
        """The flow as data (stored beside the notebook; used by export and the CLI)."""
        return {
            "name": self.name,
            "trigger": self.trigger.to_dict() if self.trigger else None,
            "concurrency": self.concurrency,
            "self_trigger": self.self_trigger,
            "steps": [
                {
                    "name": s.name,
                    "kind": s.kind,
                    "source": s.source,
                    "when": s.when,
                    "retry": vars(s.retry),
                    "timeout": s.timeout,
                }
                for s in self._steps.values()
            ],
        }

    @classmethod
    def load(cls, name: str, conn: Any = None, history: History | str | Path | None = None) -> Flow:
        """Rebuild a flow from its stored definition (e.g. to run it headless, beside the same
        checkpoint and run history). Steps defined as Python callables cannot be restored."""
        store = history if isinstance(history, History) else history_for(history)
        data = store.flow_definition(name)
        if not data or not data.get("trigger"):
            raise FlowError(f"no stored flow {name!r} with a trigger in {store.path}")
        # Built detached and registered at the end: a definition that cannot be restored must
        # not overwrite the stored one halfway.
        flow = cls(
            name,
            conn,
            concurrency=data.get("concurrency", 1),
            self_trigger=data.get("self_trigger", False),
            history=store,
            register=False,
        )
        t = data["trigger"]
        flow._set_trigger(
            t["kind"],
            t["table"],
            t["every"],
            t.get("filter"),
            t.get("select"),
            t.get("columns"),
            t.get("since"),
            t.get("mode", "auto"),
        )
        for step in data.get("steps", []):
            if step["kind"] == "callable":
                raise FlowError(
                    f"step {step['name']!r} of flow {name!r} is a Python callable; "
                    "define it again in code"
                )
            flow.step(
                step["name"],
                step["source"],
                when=step.get("when"),
                retry=step.get("retry"),
                timeout=step.get("timeout"),
            )
        return flow.register()

    def _save(self) -> None:
        if self._registered:
            self.history.save_flow(self.name, self.definition())

    def to_logic_app(
        self, legacy: bool = False, arm: bool = False, org: str | None = None
    ) -> dict[str, Any]:
        """The flow as an Azure Logic Apps workflow definition (`d365nb.flows.export`)."""
        from d365nb.flows.export import to_logic_app

        return to_logic_app(self, legacy=legacy, arm=arm, org=org)

    # -- control --------------------------------------------------------------------------
    def _engine(self) -> Any:
        from d365nb.flows.engine import get_engine

        return get_engine()

    def _watcher(self) -> Any:
        from d365nb.flows import engine

        watcher = engine._engine.watcher(self.name) if engine._engine is not None else None
        # A namesake (a detached flow being checked, a reloaded one) is not this flow's watcher.
        return watcher if watcher is not None and watcher.flow is self else None

    @property
    def running(self) -> bool:
        return self._watcher() is not None

    @property
    def state(self) -> str:
        watcher = self._watcher()
        return watcher.state if watcher is not None else "Stopped"

    def start(self) -> Flow:
        """Start polling now (resuming from the saved checkpoint if there is one)."""
        if self.trigger is None:
            raise FlowError(f"flow {self.name!r} has no trigger; add one before starting it")
        if not self._steps:
            raise FlowError(f"flow {self.name!r} has no steps; add an action before starting it")
        self._engine().start(self)
        return self

    def stop(self) -> Flow:
        """Stop at once; unfinished runs stay queued and run on the next start."""
        if self.running:
            self._engine().stop(self.name)
        return self

    def pause(self) -> Flow:
        """Stop polling but let runs in progress finish."""
        watcher = self._require_running("pause")
        self._engine().loop.call_soon_threadsafe(watcher.pause)
        return self

    def resume(self) -> Flow:
        watcher = self._require_running("resume")
        self._engine().loop.call_soon_threadsafe(watcher.resume)
        return self

    def poll_now(self) -> Flow:
        """Check the trigger now instead of waiting for the next tick."""
        watcher = self._require_running("poll")
        self._engine().loop.call_soon_threadsafe(watcher.poll_now)
        return self

    def _require_running(self, verb: str) -> Any:
        watcher = self._watcher()
        if watcher is None:
            raise FlowError(f"flow {self.name!r} is not running; start it before you {verb} it")
        return watcher

    def delete(self) -> None:
        """Stop the flow and forget it, run history included."""
        self.stop()
        self.history.delete_flow(self.name)
        flows.pop(self.name, None)

    # -- runs -----------------------------------------------------------------------------
    def run_spec(self, note_write: Callable[..., None]) -> RunSpec:
        detector = self.detector()
        watched = {detector.table, detector.meta.logical_name}
        return RunSpec(self.name, self.steps, self.conn, watched, self.output, note_write)

    def runs(self, limit: int | None = None) -> Any:
        """Run history as a DataFrame, newest first."""
        from d365nb.flows.views import runs_frame

        return runs_frame(self.history.runs(self.name, limit))

    def run(self, run_id: str) -> Any:
        """One run's detail: trigger record, each step's inputs, outputs, error, attempts."""
        from d365nb.flows.views import RunView

        data = self.history.run(run_id)
        if data is None or data["flow"] != self.name:
            raise FlowError(f"flow {self.name!r} has no run {run_id!r}; see flow runs {self.name}")
        return RunView(data)

    def resubmit(self, run_id: str, wait: bool = True, timeout: float = 120) -> Any:
        """Run again with the stored trigger record (same idempotency key: creates stay single)."""
        data = self.history.run(run_id)
        if data is None or data["flow"] != self.name:
            raise FlowError(f"flow {self.name!r} has no run {run_id!r}; see flow runs {self.name}")
        change = Change(data["record_id"], data["key"], data["change"], data["trigger"])
        row = self.history.add_run(self.name, change, "resubmit", resubmit_of=run_id)
        return self._execute_now(row, wait, timeout)

    def test(self, record_id: str | None = None, timeout: float = 120) -> Any:
        """Run the steps once on one record (the latest by default) without starting the loop."""
        if not self._steps:
            raise FlowError(f"flow {self.name!r} has no steps; add an action before testing it")
        detector = self.detector()
        record = self._test_record(detector, record_id)
        rid = str(record.get(detector.id, record_id)).lower()
        change = Change(rid, f"{rid}:test:{time.time_ns()}", self.trigger.kind, record)  # type: ignore[union-attr]
        row = self.history.add_run(self.name, change, "test")
        return self._execute_now(row, True, timeout)

    def _test_record(self, detector: Detector, record_id: str | None) -> dict[str, Any]:
        if self.trigger and self.trigger.kind == "deleted":
            if record_id is None:
                raise FlowError(
                    "test of a deleted trigger needs --record <id> (the record is gone)"
                )
            return {detector.id: record_id}
        if record_id is not None:
            return self.conn.get(detector.table, record_id, select=detector.select)
        stamp = "createdon" if self.trigger and self.trigger.kind == "created" else "modifiedon"
        for page in self.conn.iter_pages(
            detector.table,
            filter=self.trigger.filter if self.trigger else None,
            orderby=[f"{stamp} desc", *(f"{c} desc" for c in detector.order)],
            top=1,
            select=detector.select,
            max_pages=1,
        ):
            if page:
                return page[0]
        raise FlowError(
            f"no record in {detector.table} to test with; create one or pass --record <id>"
        )

    def _execute_now(self, row: Any, wait: bool, timeout: float) -> Any:
        from d365nb.flows.engine import execute_and_store
        from d365nb.flows.views import RunView

        engine = self._engine()
        watcher = self._watcher()
        note = watcher.note_write if watcher is not None else self._note_write
        future = engine.submit(execute_and_store(self, row, engine.executor, note))
        if not wait:
            return row.run_id
        future.result(timeout)
        return RunView(self.history.run(row.run_id))

    def _note_write(self, record_id: str, undo: bool = False) -> None:
        """The loop guard for a run executed while the flow is stopped (test, resubmit)."""
        if self.self_trigger:
            return
        if undo:
            self.history.unnote_own_write(self.name, record_id)
        else:
            self.history.note_own_writes(self.name, [record_id])

    # -- status ---------------------------------------------------------------------------
    def status(self, live: bool = True) -> Any:
        """State, last/next poll, runs succeeded/failed, last error - a live view in a kernel."""
        from d365nb.flows.views import StatusView

        view = StatusView(self, live=live)
        if live:
            self._status_view = view
        return view

    def status_data(self) -> dict[str, Any]:
        watcher = self._watcher()
        counts = self.history.counts(self.name)
        data = {
            "flow": self.name,
            "trigger": self.trigger.describe() if self.trigger else None,
            "steps": list(self._steps),
            "state": "Stopped",
            "last_poll": None,
            "next_poll": None,
            "running": 0,
            "polls": 0,
            "last_error": self.history.last_error(self.name),
            "succeeded": counts.get("Succeeded", 0),
            "failed": counts.get("Failed", 0),
            "queued": counts.get("Queued", 0) + counts.get("Running", 0),
        }
        if watcher is not None:
            data.update(watcher.snapshot())
            data["last_error"] = watcher.last_error or data["last_error"]
            # History counts executing runs as Running too: owed = found but not executing.
            data["queued"] = max(0, data["queued"] - data["running"])
        checks = self.history.checks(self.name, 1)
        if checks and data["last_poll"] is None:
            data["last_poll"] = checks[0]["at"]
        return data

    def _changed(self) -> None:
        """Engine callback (engine thread): refresh a live status view, at most twice a second."""
        view = self._status_view
        if view is None or self._refresh_pending:
            return
        delay = self._refresh_at + 0.5 - time.monotonic()
        if delay <= 0:
            self._refresh()
            return
        import asyncio

        self._refresh_pending = True
        asyncio.get_running_loop().call_later(delay, self._refresh)

    def _refresh(self) -> None:
        self._refresh_pending = False
        self._refresh_at = time.monotonic()
        view = self._status_view
        if view is not None:
            view.refresh()

    def _log(self, text: str, stream: str = "stdout") -> None:
        self.output.write(text, stream)
