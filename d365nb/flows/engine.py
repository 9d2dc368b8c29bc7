"""The polling engine: one thread with its own asyncio loop per process.

Why a thread of its own: flows must keep polling while a notebook cell blocks (or the user does
nothing), and starting or stopping a flow must take effect at once, whatever the kernel is
doing. Each started flow is a `Watcher` task on that loop: poll, store the found changes as
queued runs together with the new checkpoint, run them (at most ``concurrency`` at a time) and
wait for the next tick. Blocking work - HTTP polls, user step code - goes to a thread pool.
"""

from __future__ import annotations

import asyncio
import atexit
import concurrent.futures
import contextlib
import os
import socket
import threading
import time
import uuid
from collections.abc import Coroutine
from datetime import UTC, datetime
from typing import Any, Protocol

from d365nb.flows import runner
from d365nb.flows.clock import Clock
from d365nb.flows.history import RunRow
from d365nb.flows.model import FlowError, utcnow_iso


class Flow(Protocol):
    """What the engine needs of a flow (`flow.Flow` is one). A protocol, not an import: the flow
    module drives the engine, and the engine must not depend back on it."""

    name: str
    trigger: Any
    history: Any
    concurrency: int
    self_trigger: bool

    def detector(self) -> Any: ...
    def organisation(self) -> Any: ...
    def run_spec(self, note_write: Any) -> Any: ...
    def _changed(self) -> None: ...
    def _log(self, text: str, stream: str) -> None: ...


_lock = threading.Lock()
_engine: Engine | None = None
# Runs executing in this process (any flow, any origin): a run that is unfinished in history but
# not in here was interrupted by the end of another process.
_executing: set[str] = set()

# One flow, one runner: a started flow holds a lease in its flows.sqlite, renewed every
# LEASE_HEARTBEAT seconds; a lease not renewed for LEASE_EXPIRY_BEATS heartbeats belongs to a
# runner that is gone (killed, crashed, asleep) and is taken over. D365NB_FLOW_LEASE_HEARTBEAT
# (seconds) overrides the heartbeat, e.g. for tests.
LEASE_HEARTBEAT = 5.0
LEASE_EXPIRY_BEATS = 3
_holder: tuple[int, str] | None = None


def lease_heartbeat() -> float:
    """Seconds between lease renewals (`LEASE_HEARTBEAT`, or the environment's override)."""
    text = os.environ.get("D365NB_FLOW_LEASE_HEARTBEAT", "").strip()
    if not text:
        return LEASE_HEARTBEAT
    try:
        seconds = float(text)
    except ValueError:
        seconds = float("nan")
    if not (0 < seconds < 86400):  # also refuses NaN
        raise FlowError(f"bad D365NB_FLOW_LEASE_HEARTBEAT={text!r}: use seconds, e.g. 5")
    return seconds


def lease_holder() -> str:
    """This runner: host, pid and an id of this process start (a recycled pid is not us)."""
    global _holder
    pid = os.getpid()
    if _holder is None or _holder[0] != pid:
        _holder = (pid, f"{socket.gethostname()}:{pid}:{uuid.uuid4().hex[:8]}")
    return _holder[1]


def get_engine() -> Engine:
    """The process's engine, started on first use (and again if its thread died)."""
    global _engine
    with _lock:
        if _engine is None:
            # A kernel restart or a clean exit gives the leases back at once, so the next
            # kernel need not wait for them to expire.
            atexit.register(_release_leases)
        if _engine is None or not _engine.alive:
            _engine = Engine()
        return _engine


def _release_leases() -> None:
    """At exit: release every lease this process holds (its flows stop with the process)."""
    engine = _engine
    if engine is None:
        return
    for watcher in list(engine.watchers.values()):
        watcher._release()


def _iso(ts: float | None) -> str | None:
    return None if ts is None else datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class Engine:
    """Owns the loop thread, the worker pool and the running flows' watchers."""

    def __init__(self, workers: int = 32, clock: Clock | None = None) -> None:
        # What retry waits and step timeouts measure: injectable, so tests advance it.
        self.clock = clock or Clock()
        self.loop = asyncio.new_event_loop()
        self.executor = concurrent.futures.ThreadPoolExecutor(
            workers, thread_name_prefix="d365nb-step"
        )
        # Lease heartbeats get a thread of their own: busy steps must not starve them (a starved
        # heartbeat would let another runner take the flow over).
        self.lease_executor = concurrent.futures.ThreadPoolExecutor(
            1, thread_name_prefix="d365nb-lease"
        )
        self.watchers: dict[str, Watcher] = {}
        ready = threading.Event()
        self.thread = threading.Thread(
            target=self._main, args=(ready,), name="d365nb-flows", daemon=True
        )
        self.thread.start()
        ready.wait()

    def _main(self, ready: threading.Event) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.call_soon(ready.set)
        self.loop.run_forever()

    @property
    def alive(self) -> bool:
        return self.thread.is_alive() and not self.loop.is_closed()

    def submit(self, coro: Coroutine[Any, Any, Any]) -> concurrent.futures.Future[Any]:
        """Schedule a coroutine on the engine loop from any thread."""
        return asyncio.run_coroutine_threadsafe(coro, self.loop)

    def call(self, coro: Coroutine[Any, Any, Any], timeout: float | None = 30) -> Any:
        """Run a coroutine on the engine loop and wait for its result."""
        return self.submit(coro).result(timeout)

    # -- flows ----------------------------------------------------------------------------
    def start(self, flow: Flow) -> Watcher:
        """Start polling ``flow`` (a running flow is restarted with its new definition)."""
        self.stop(flow.name)

        async def begin() -> Watcher:
            watcher = Watcher(self, flow)
            self.watchers[flow.name] = watcher
            watcher.task = asyncio.create_task(watcher.main(), name=f"flow {flow.name}")
            # Return once the watermark is set: a record created after start() is then an event.
            ready = asyncio.create_task(watcher.ready.wait())
            await asyncio.wait({ready, watcher.task}, return_when=asyncio.FIRST_COMPLETED)
            if not ready.done():
                ready.cancel()
                self.watchers.pop(flow.name, None)
                watcher.task.result()  # raises why it could not start
            return watcher

        return self.call(begin(), timeout=120)

    def stop(self, name: str) -> bool:
        """Stop at once: polling ends, in-flight runs are cancelled (they stay queued and run
        again on the next start). Returns whether the flow was running."""

        async def end() -> bool:
            watcher = self.watchers.pop(name, None)
            if watcher is None:
                return False
            await watcher.cancel()
            return True

        return self.call(end())

    def watcher(self, name: str) -> Watcher | None:
        return self.watchers.get(name)

    def shutdown(self) -> None:
        """Stop every flow and the loop thread (tests, kernel shutdown)."""
        for name in list(self.watchers):
            self.stop(name)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)
        self.executor.shutdown(wait=False, cancel_futures=True)
        self.lease_executor.shutdown(wait=False, cancel_futures=True)


class Watcher:
    """One started flow on the engine loop: the poll loop and its runs."""

    def __init__(self, engine: Engine, flow: Flow) -> None:
        self.engine = engine
        self.flow = flow
        self.name = flow.name
        self.history = flow.history
        self.task: asyncio.Task[Any] | None = None
        self.runs: set[asyncio.Task[Any]] = set()
        self.slots = asyncio.Semaphore(flow.concurrency)
        self.wake = asyncio.Event()
        self.ready = asyncio.Event()  # set once the checkpoint is known
        self.paused = False
        self.state = "Starting"
        self.last_poll: float | None = None
        self.next_poll: float | None = None
        self.last_error: str | None = None
        self.polls = 0
        self.running = 0
        self.holder = lease_holder()
        self.heartbeat = lease_heartbeat()
        self.beat: asyncio.Task[Any] | None = None
        self.leased = False
        self.org: dict[str, Any] | None = None  # the organisation the flow watches
        self.notice: str | None = None  # one line for whoever started the flow
        # Ids this flow's own steps wrote in the watched table (loop guard); live, so a poll
        # that overlaps a run still sees writes made a moment ago.
        self.own: set[str] = set() if flow.self_trigger else self.history.own_writes(self.name)

    # -- control --------------------------------------------------------------------------
    async def cancel(self) -> None:
        me = asyncio.current_task()
        tasks = [t for t in (self.task, self.beat, *self.runs) if t is not None and t is not me]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._release()
        self.state = "Stopped"
        self.flow._changed()

    # -- the runner lease -----------------------------------------------------------------
    def _take_lease(self) -> None:
        """Hold the flow's lease, or refuse to start with one line naming who holds it."""
        host, pid = socket.gethostname(), os.getpid()
        other = self.history.acquire_lease(
            self.name, self.holder, host, pid, self.heartbeat * LEASE_EXPIRY_BEATS
        )
        if other is not None:
            left = max(0.0, other["expires"] - time.time())
            raise FlowError(
                f"flow {self.name} is already running on host {other['host']}, pid "
                f"{other['pid']}, since {other['since'][:19]}Z; stop it there first (if that "
                f"process is gone, its lease expires in {left:.0f}s)"
            )
        self.leased = True

    def _release(self) -> None:
        if self.leased:
            self.leased = False
            with contextlib.suppress(Exception):  # an unreleased lease just expires
                self.history.release_lease(self.name, self.holder)

    async def _heartbeat(self) -> None:
        loop = asyncio.get_running_loop()
        ttl = self.heartbeat * LEASE_EXPIRY_BEATS
        while True:
            await asyncio.sleep(self.heartbeat)
            try:
                kept = await loop.run_in_executor(
                    self.engine.lease_executor,
                    self.history.renew_lease,
                    self.name,
                    self.holder,
                    ttl,
                )
            except Exception as err:  # noqa: BLE001 - a busy database: try again next beat
                self.last_error = f"lease heartbeat failed: {' '.join(str(err).split())}"
                continue
            if not kept:  # we were presumed dead and another runner took over: step aside
                self.leased = False
                self.last_error = (
                    f"flow {self.name} stopped: another runner took over its lease "
                    "(this one missed its heartbeats)"
                )
                self.flow._log(self.last_error + "\n", "stderr")
                if self.engine.watchers.get(self.name) is self:
                    self.engine.watchers.pop(self.name, None)
                await self.cancel()
                return

    def pause(self) -> None:
        self.paused = True
        self.state = "Paused"
        self.flow._changed()

    def resume(self) -> None:
        self.paused = False
        self.state = "Running"
        self.wake.set()

    def poll_now(self) -> None:
        self.wake.set()

    def note_write(self, record_id: str, undo: bool = False) -> None:
        """Called from a step thread around a write to a record of the watched table: before
        it, and again with ``undo`` if the write failed."""
        if self.flow.self_trigger:
            return
        if not undo:
            self.own.add(record_id)
            self.history.note_own_writes(self.name, [record_id])
        elif not self.history.unnote_own_write(self.name, record_id):
            self.own.discard(record_id)

    # -- the loop -------------------------------------------------------------------------
    async def main(self) -> None:
        self._take_lease()
        try:
            await self._begin()
        except BaseException:
            self._release()
            raise
        self.beat = asyncio.create_task(self._heartbeat(), name=f"flow {self.name} lease")
        await self._loop()

    async def _begin(self) -> None:
        loop = asyncio.get_running_loop()
        detector = self.flow.detector()
        self.org = await loop.run_in_executor(self.engine.executor, self.flow.organisation)
        checkpoint = self._same_org(self.history.checkpoint(self.name))
        if not detector.fits(checkpoint):
            checkpoint = await loop.run_in_executor(
                self.engine.executor, self._first_checkpoint, detector
            )
        self.checkpoint = checkpoint
        self.state = "Paused" if self.paused else "Running"
        self.next_poll = self.engine.clock.now()  # the first poll is due now (`flow status`)
        self.ready.set()

    async def _loop(self) -> None:
        loop = asyncio.get_running_loop()
        detector = self.flow.detector()
        # Tests and resubmits cut off by a crash are not owed to anyone: close them.
        for run_id in self.history.unfinished_manual_runs(self.name):
            if run_id not in _executing:
                now = utcnow_iso()
                error = "interrupted: the process running it stopped"
                self.history.finish_run(run_id, "Cancelled", error, [], now, now)
        # Runs found before a stop or crash and never finished: they run first - unless they
        # were found on another organisation, whose records this one does not have.
        for row in self.history.pending_runs(self.name):
            foreign = row.org is not None or self.notice is not None
            if self.org is not None and foreign and row.org != self.org["id"]:
                now = utcnow_iso()
                error = f"queued on organisation {row.org}; the flow now watches {self.org['id']}"
                self.history.finish_run(row.run_id, "Cancelled", error, [], now, now)
                continue
            await self._dispatch(row)
        every = self.flow.trigger.every
        clock = self.engine.clock  # poll ticks: real time, or a test's ManualClock
        while True:
            started = clock.now()
            # Cleared before the poll: a poll_now() asked for while this poll runs is kept and
            # polls again at once (its change may have landed after this poll's query).
            self.wake.clear()
            if not self.paused:
                await self._poll(loop, detector)
            self.next_poll = max(started + every, clock.now())
            self.flow._changed()
            # Until the next poll is due, or poll_now() / resume() wakes the loop early.
            with contextlib.suppress(TimeoutError):
                await clock.within(max(0.0, self.next_poll - clock.now()), self.wake.wait())

    def _same_org(self, checkpoint: dict[str, Any] | None) -> dict[str, Any] | None:
        """The stored checkpoint if it was taken on the organisation the flow now watches; a
        checkpoint of another one (or one that never recorded its organisation) is not applied:
        the flow starts per ``--since`` and says so in one line."""
        if checkpoint is None or self.org is None:
            return checkpoint
        taken = checkpoint.get("org") or {}
        if taken.get("id") == self.org["id"]:
            return checkpoint
        where = (
            f"organisation {taken['id']} ({taken.get('url')})"
            if taken.get("id")
            else "an unrecorded organisation"
        )
        since = self.flow.trigger.since or "now"
        self.notice = (
            f"flow {self.name}: its checkpoint was taken on {where}, not on this one "
            f"({self.org['id']}, {self.org['url']}); starting from --since {since}"
        )
        self.history.clear_state(self.name)
        return None

    def _first_checkpoint(self, detector: Any) -> dict[str, Any]:
        checkpoint = detector.start(self.flow.trigger.since)
        if self.org is not None:
            checkpoint["org"] = self.org
        detector.baseline(self.history, self.name)
        self.history.set_checkpoint(self.name, checkpoint)
        return checkpoint

    async def _poll(self, loop: asyncio.AbstractEventLoop, detector: Any) -> None:
        pages = detector.poll(self.checkpoint, self.own, self.history, self.name)
        found = fired = requests = 0
        self.last_poll = self.engine.clock.now()
        self.polls += 1
        try:
            while True:
                page = await loop.run_in_executor(self.engine.executor, next, pages, None)
                if page is None:
                    break
                found += page.found
                requests += page.requests
                if self.org is not None:
                    page.checkpoint["org"] = self.org
                rows = self.history.enqueue(self.name, page.changes, page.checkpoint, self.org)
                self.checkpoint = page.checkpoint
                if page.snapshots:
                    self.history.put_snapshots(self.name, page.snapshots)
                if page.own:
                    self.own.difference_update(page.own)
                    self.history.consume_own_writes(self.name, page.own)
                fired += len(rows)
                for row in rows:
                    await self._dispatch(row)
        except asyncio.CancelledError:
            raise
        except Exception as err:  # a failed check: recorded, and the flow keeps polling
            self.last_error = f"trigger check failed: {' '.join(str(err).split())}"
            self.history.record_check(self.name, "Failed", found, fired, requests, self.last_error)
            self.flow._log(self.last_error + "\n", "stderr")
            return
        status = "Succeeded" if fired else "Skipped"
        self.history.record_check(self.name, status, found, fired, requests)

    async def _dispatch(self, row: RunRow) -> None:
        """Start a run when a slot is free (this is what keeps a backlog drain bounded)."""
        await self.slots.acquire()
        task = asyncio.create_task(self._run(row))
        self.runs.add(task)
        task.add_done_callback(self.runs.discard)

    async def _run(self, row: RunRow) -> None:
        self.running += 1
        try:
            result = await execute_and_store(self.flow, row, self.engine.executor, self.note_write)
            if result.status == "Failed":
                self.last_error = result.error
        finally:
            self.running -= 1
            self.slots.release()
            self.flow._changed()

    # -- status ---------------------------------------------------------------------------
    def snapshot(self) -> dict[str, Any]:
        return {
            "state": self.state,
            "last_poll": _iso(self.last_poll),
            "next_poll": _iso(self.next_poll) if not self.paused else None,
            "running": self.running,
            "polls": self.polls,
            "last_error": self.last_error,
        }


async def execute_and_store(
    flow: Flow,
    row: RunRow,
    executor: concurrent.futures.Executor,
    note_write: Any,
) -> runner.RunResult:
    """Execute one run of ``flow`` and store its result in run history."""
    spec = flow.run_spec(note_write)
    if _engine is not None:
        spec.clock = _engine.clock  # retry waits and step timeouts (a manual one in tests)
    _executing.add(row.run_id)
    try:
        attempt = flow.history.mark_started(row.run_id)
        result = await runner.execute(spec, row, executor, attempt=attempt)
        flow.history.finish_run(
            row.run_id, result.status, result.error, result.steps, result.started, result.ended
        )
    finally:
        _executing.discard(row.run_id)
    return result
