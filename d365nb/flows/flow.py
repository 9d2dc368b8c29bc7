"""`Flow`: one trigger and ordered steps, named, living in the kernel.

>>> f = Flow("lead_followup", d365).on_created("leads", every="10s", filter="statuscode eq 1")
>>> f.step("create_task", 'create tasks subject="Follow up: {trigger[subject]}"')
>>> f.start()
"""

from __future__ import annotations

import re
import threading
import time
import weakref
from collections.abc import Callable
from pathlib import Path
from typing import Any

from d365nb.flows.detect import Detector
from d365nb.flows.history import Change, History
from d365nb.flows.model import (
    KINDS,
    FlowError,
    RetryPolicy,
    Scope,
    Step,
    Trigger,
    parse_after,
    parse_interval,
    parse_orderby,
    parse_recurrence,
    parse_since,
    parse_top,
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


def _open_connection(alias: str) -> Any:
    """The open connection called ``alias`` (a declarative step's ``--alias``)."""
    from d365nb.client.registry import connections

    conn = connections.get(alias)
    if conn is None:
        known = ", ".join(name for name, _ in connections.items()) or "none"
        raise FlowError(f"no connection {alias!r} (open: {known})")
    return conn


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
        self._scopes: dict[str, Scope] = {}
        self.output = FlowOutput(name)
        # Live status views (`flow start`, `flow status`): every one shows Stopped at a stop.
        self._status_views: weakref.WeakSet[Any] = weakref.WeakSet()
        self._refresh_at = 0.0
        self._refresh_pending = False
        self._registered = False
        self._org: tuple[Any, dict[str, Any] | None] | None = None
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
        orderby: str | list[str] | None = None,
        top: int | None = None,
    ) -> Flow:
        """Trigger: when a record of ``table`` is created, checked every ``every``.

        ``orderby`` (``"createdon desc"``) orders one poll's runs; ``top`` caps the records one
        poll takes (the rest wait for the next poll), as the connector's trigger options."""
        return self._set_trigger(
            "created", table, every, filter, select, None, since, mode, orderby=orderby, top=top
        )

    def on_updated(
        self,
        table: str,
        every: str | float = "3m",
        filter: str | None = None,
        select: str | list[str] | None = None,
        columns: str | list[str] | None = None,
        since: str | None = None,
        mode: str = "auto",
        orderby: str | list[str] | None = None,
        top: int | None = None,
    ) -> Flow:
        """Trigger: when a record is updated; with ``columns``, only when one of them changed."""
        return self._set_trigger(
            "updated", table, every, filter, select, columns, since, mode, orderby=orderby, top=top
        )

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
        *,
        orderby: Any = None,
        top: Any = None,
    ) -> Flow:
        if kind not in KINDS:
            raise FlowError(f"bad trigger {kind!r}: use created, updated or deleted")
        if mode not in ("auto", "watermark", "changes"):
            raise FlowError(f"bad mode {mode!r}: use auto, watermark or changes")
        trigger = Trigger(
            kind,
            table,
            parse_recurrence(every),
            filter or None,
            split_names(select),
            split_names(columns),
            parse_since(since),
            mode,
            parse_orderby(orderby),
            parse_top(top),
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
        connection: Callable[[str], Any] | None = None,
        after: Any = None,
        foreach: str | None = None,
        concurrency: int | str | None = None,
        otherwise: str | None = None,
    ) -> Flow:
        """Add or replace step ``name``: Python source, a declarative command or a callable.

        Re-defining an existing step keeps its place; new steps go last. A declarative step's
        ``--alias A`` is looked up now with ``connection(A)`` (default: the open connections).
        Control flow as Logic Apps: ``after`` (``"find:failed"``, several in a list: run after
        those steps ended so), ``foreach`` (run once per item, ``item`` in scope,
        ``concurrency`` at a time), ``otherwise`` (with ``when``: the step that runs instead
        when the condition is false).
        """
        check_name("step", name)
        run_after = parse_after(after)
        position = list(self._steps).index(name) if name in self._steps else len(self._steps)
        earlier = list(self._steps)[:position]
        if name in self._scopes:
            raise FlowError(f"step {name!r}: flow {self.name!r} has a scope of that name")
        for other in run_after or {}:
            if other not in earlier and other not in self._scopes:
                raise FlowError(
                    f"step {name!r}: --after {other}: not an earlier step of flow {self.name!r} "
                    f"(earlier: {', '.join(earlier) or 'none'})"
                )
        if otherwise is not None:
            check_name("step", otherwise)
            if not when:
                raise FlowError(
                    f"step {name!r}: --else needs --if (the condition it is the else of)"
                )
            if otherwise == name:
                raise FlowError(f"step {name!r}: --else must name another step")
        if foreach is not None and not str(foreach).strip():
            raise FlowError(f'step {name!r}: --foreach needs the items, e.g. "{{steps[find]}}"')
        if foreach is not None and otherwise is not None:
            raise FlowError(f"step {name!r}: --else cannot be used with --foreach")
        width = 1
        if concurrency is not None:
            try:
                width = int(concurrency)
            except (TypeError, ValueError):
                width = 0
            if not 1 <= width <= 50 or isinstance(concurrency, bool):
                raise FlowError(
                    f"step {name!r}: bad --concurrency {concurrency!r}: use 1 to 50 "
                    "(Logic Apps' for-each limit)"
                )
            if foreach is None:
                raise FlowError(f"step {name!r}: --concurrency applies to --foreach steps")
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
                func, _ = compile_declarative(name, code, connection or _open_connection)
                kind = "declarative"
            else:
                func = compile_python(name, code)
                kind = "python"
            source = code
        else:
            raise FlowError(f"step {name!r} must be code (text) or a callable")
        seconds = (
            None if timeout is None or timeout == "" else parse_interval(timeout, what="timeout")
        )
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
            run_after,
            str(foreach).strip() if foreach is not None else None,
            width,
            otherwise,
        )
        self._save()
        return self

    def scope(self, name: str, steps: str | list[str], after: Any = None) -> Flow:
        """Group ``steps`` (already defined, comma separated or a list) as scope ``name``: they
        run as one block where the first of them stands, the scope is Failed when one of them
        failed unhandled, and ``after`` (``"check:succeeded"``, ...) is the scope's run-after.
        Re-defining a scope replaces it; a step belongs to one scope at most."""
        check_name("scope", name)
        if name in self._steps:
            raise FlowError(f"scope {name!r}: flow {self.name!r} has a step of that name")
        members = split_names(steps) or []
        if not members:
            raise FlowError(f"scope {name!r} needs its steps, e.g. find, close (one per line)")
        for member in members:
            if member not in self._steps:
                raise FlowError(
                    f"scope {name!r}: no step {member!r} in flow {self.name!r} "
                    f"(steps: {', '.join(self._steps) or 'none'})"
                )
            other = next(
                (s.name for s in self._scopes.values() if member in s.members and s.name != name),
                None,
            )
            if other:
                raise FlowError(f"scope {name!r}: step {member!r} is already in scope {other!r}")
        run_after = parse_after(after)
        first = min(list(self._steps).index(m) for m in members)
        earlier = list(self._steps)[:first]
        for other in run_after or {}:
            if other not in earlier and other not in self._scopes:
                raise FlowError(
                    f"scope {name!r}: --after {other}: not a step before its first step"
                )
        self._scopes[name] = Scope(name, tuple(members), run_after)
        self._save()
        return self

    @property
    def scopes(self) -> list[Scope]:
        return list(self._scopes.values())

    def remove_step(self, name: str) -> None:
        if name not in self._steps:
            raise FlowError(
                f"flow {self.name!r} has no step {name!r} (steps: {', '.join(self._steps) or 'none'})"
            )
        del self._steps[name]
        for scope in list(self._scopes.values()):  # a scope keeps its other steps
            if name in scope.members:
                rest = tuple(m for m in scope.members if m != name)
                if rest:
                    self._scopes[scope.name] = Scope(scope.name, rest, scope.after)
                else:
                    del self._scopes[scope.name]
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
                    "after": {k: list(v) for k, v in s.after.items()} if s.after else None,
                    "foreach": s.foreach,
                    "concurrency": s.concurrency,
                    "otherwise": s.otherwise,
                }
                for s in self._steps.values()
            ],
            "scopes": [
                {
                    "name": sc.name,
                    "steps": list(sc.members),
                    "after": {k: list(v) for k, v in sc.after.items()} if sc.after else None,
                }
                for sc in self._scopes.values()
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
            orderby=t.get("orderby"),
            top=t.get("top"),
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
                after=step.get("after"),
                foreach=step.get("foreach"),
                concurrency=step.get("concurrency") if step.get("foreach") else None,
                otherwise=step.get("otherwise"),
            )
        for scope in data.get("scopes") or []:
            flow.scope(scope["name"], scope["steps"], after=scope.get("after"))
        return flow.register()

    def _save(self) -> None:
        if self._registered:
            self.history.save_flow(self.name, self.definition())

    def to_logic_app(self, **options: Any) -> dict[str, Any]:
        """The flow as an Azure Logic Apps workflow definition; ``legacy``, ``arm``, ``org``,
        ``placeholders``, ``connection`` as `d365nb.flows.export.export` takes them."""
        from d365nb.flows.export import to_logic_app

        return to_logic_app(self, **options)

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

    def start(self, from_: str | None = None) -> Flow:
        """Start polling now. ``from_`` makes the backlog choice explicit: ``"checkpoint"``
        (default) resumes from the stored checkpoint, running every change made while the flow
        was stopped (`waiting` counts them); ``"now"`` skips them; an ISO time takes the changes
        from then on."""
        if self.trigger is None:
            raise FlowError(f"flow {self.name!r} has no trigger; add one before starting it")
        if not self._steps:
            raise FlowError(f"flow {self.name!r} has no steps; add an action before starting it")
        choice = (from_ or "checkpoint").strip()
        if choice.lower() != "checkpoint":
            if choice.lower() == "beginning" or not choice:
                raise FlowError(
                    f"bad --from {from_!r}: use checkpoint, now or an ISO time such as "
                    "2026-01-31T09:00:00Z"
                )
            since = parse_since(choice)
            if self.running:
                raise FlowError(f"flow {self.name!r} is running; stop it before --from {choice}")
            # A fresh checkpoint replaces the stored one before the watcher reads it.
            checkpoint = self.detector().start(since)
            org = self.organisation()
            if org is not None:
                checkpoint["org"] = org
            self.history.set_checkpoint(self.name, checkpoint)
        watcher = self._engine().start(self)
        if watcher.notice:  # e.g. a checkpoint of another organisation was not applied
            print(watcher.notice)
        return self

    def organisation(self) -> dict[str, Any] | None:
        """``{"id", "url"}`` of the organisation this flow's connection reaches (``WhoAmI``),
        which checkpoints and runs are recorded against; None for a connection without it."""
        cached = self._org
        if cached is not None and cached[0] is self.conn:
            return cached[1]
        whoami = getattr(self.conn, "whoami", None)
        if whoami is None:
            return None
        org_id = whoami().get("OrganizationId")
        org = (
            {"id": str(org_id).lower(), "url": str(getattr(self.conn, "url", ""))}
            if org_id
            else None
        )
        self._org = (self.conn, org)
        return org

    def stop(self) -> Flow:
        """Stop at once; unfinished runs stay queued and run on the next start."""
        if self.running:
            self._engine().stop(self.name)
            self._refresh()  # now, from this thread: the views show Stopped before we return
        return self

    def pause(self) -> Flow:
        """Stop polling but let runs in progress finish."""
        watcher = self._require_running("pause")
        self._on_loop(watcher.pause)
        return self

    def resume(self) -> Flow:
        watcher = self._require_running("resume")
        self._on_loop(watcher.resume)
        return self

    def _on_loop(self, change: Callable[[], None]) -> None:
        """Apply a state change on the engine loop and wait for it, so the state (and every
        status view) shows it when the call returns."""

        engine = self._engine()
        if threading.current_thread() is engine.thread:  # on the loop already: apply now
            change()
            return

        async def apply() -> None:
            change()

        engine.call(apply(), timeout=10)
        self._refresh()

    def waiting(self, cap: int = 5000) -> int | None:
        """How many changes wait since the stored checkpoint (what ``start`` would run), at most
        ``cap``; None when there is no checkpoint yet (the first start watches from --since)."""
        checkpoint = self.history.checkpoint(self.name)
        detector = self.detector()
        if not detector.fits(checkpoint):
            return None
        if detector.strategy == "changes":
            # Reading changes since the stored token moves nothing: the token is not saved.
            result = self.conn.changes(
                detector.table, checkpoint.get("token"), select=[detector.id]
            )
            found = result.deleted if self.trigger.kind == "deleted" else result.upserted  # type: ignore[union-attr]
            return min(cap, len(found))
        found = 0
        for page in self.conn.iter_pages(
            detector.table,
            filter=detector._keyset_filter(checkpoint),
            select=[detector.id],
            top=min(cap, 5000),
        ):
            found += len(page)
            if found >= cap:
                return cap
        return found

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
        return RunSpec(
            self.name,
            self.steps,
            self.conn,
            watched,
            self.output,
            note_write,
            scopes=dict(self._scopes),
        )

    def runs(self, limit: int | None = None, all_orgs: bool = False) -> Any:
        """Run history as a DataFrame, newest first: the runs on the organisation this flow is
        connected to, or with ``all_orgs`` every stored run (its ``org`` and ``org_url`` columns
        say where it ran)."""
        from d365nb.flows.views import runs_frame

        org = None if all_orgs else self._org_id()
        return runs_frame(self.history.runs(self.name, limit, org=org))

    def _org_id(self) -> str | None:
        """The current organisation's id for scoping history; None (all runs) when unknown."""
        try:
            org = self.organisation()
        except Exception:  # noqa: BLE001 - unreachable now: show everything rather than fail
            return None
        return org["id"] if org else None

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
        row = self.history.add_run(
            self.name, change, "resubmit", resubmit_of=run_id, org=self.organisation()
        )
        return self._execute_now(row, wait, timeout)

    def test(
        self, record_id: str | None = None, timeout: float = 120, dry_run: bool = False
    ) -> Any:
        """Run the steps once on one record (the latest by default) without starting the loop.

        ``dry_run``: reads are real, writes are listed (table, operation, payload) and not
        sent, nothing is stored; returns a `d365nb.flows.dryrun.DryRun`."""
        if not self._steps:
            raise FlowError(f"flow {self.name!r} has no steps; add an action before testing it")
        detector = self.detector()
        record = self._test_record(detector, record_id)
        rid = str(record.get(detector.id, record_id)).lower()
        change = Change(rid, f"{rid}:test:{time.time_ns()}", self.trigger.kind, record)  # type: ignore[union-attr]
        if dry_run:
            return self._dry_run(change, timeout)
        row = self.history.add_run(self.name, change, "test", org=self.organisation())
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

    def _dry_run(self, change: Change, timeout: float) -> Any:
        from d365nb.flows import runner
        from d365nb.flows.dryrun import DryRun, RecordingConnection
        from d365nb.flows.history import RunRow, new_run_id

        recorder = RecordingConnection(self.conn)
        spec = self.run_spec(lambda *args, **kwargs: None)  # nothing lands: no loop guard
        spec.conn = recorder
        engine = self._engine()
        spec.clock = engine.clock
        row = RunRow(f"dry-{new_run_id()}", self.name, change.key, change, origin="test")
        result = engine.call(runner.execute(spec, row, engine.executor), timeout=timeout)
        return DryRun(
            self.name, change.record_id, result.status, result.error, result.steps, recorder.writes
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
            self._status_views.add(view)
        return view

    def status_data(self, backlog: bool = True) -> dict[str, Any]:
        """The status as data; ``backlog``: for a stopped flow, count what waits (a query)."""
        watcher = self._watcher()
        org = self._org_id()
        counts = self.history.counts(self.name, org)
        data = {
            "flow": self.name,
            "trigger": self.trigger.describe() if self.trigger else None,
            "steps": list(self._steps),
            "state": "Stopped",
            "last_poll": None,
            "next_poll": None,
            "running": 0,
            "polls": 0,
            "last_error": self.history.last_error(self.name, org),
            "succeeded": counts.get("Succeeded", 0),
            "failed": counts.get("Failed", 0),
            "queued": counts.get("Queued", 0) + counts.get("Running", 0),
        }
        if watcher is not None:
            data.update(watcher.snapshot())
            data["last_error"] = watcher.last_error or data["last_error"]
            # History counts executing runs as Running too: owed = found but not executing.
            data["queued"] = max(0, data["queued"] - data["running"])
        elif backlog and self.trigger is not None:
            # Stopped: say what a start would run before anyone starts it.
            try:
                data["waiting"] = self.waiting()
            except Exception as err:  # noqa: BLE001 - unreachable org: say so, don't fail
                data["waiting_error"] = " ".join(str(err).split())
        checks = self.history.checks(self.name, 1)
        if checks and data["last_poll"] is None:
            data["last_poll"] = checks[0]["at"]
        return data

    def _changed(self) -> None:
        """Engine callback (engine thread): refresh a live status view, at most twice a second."""
        if not self._status_views or self._refresh_pending:
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
        for view in list(self._status_views):
            view.refresh()

    def _log(self, text: str, stream: str = "stdout") -> None:
        self.output.write(text, stream)
