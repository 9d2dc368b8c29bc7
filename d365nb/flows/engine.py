"""The polling engine: one thread with its own asyncio loop per process.

Why a thread of its own: flows must keep polling while a notebook cell blocks (or the user does
nothing), and starting or stopping a flow must take effect at once, whatever the kernel is
doing. Each started flow is a `Watcher` task on that loop: poll, store the found changes as
queued runs together with the new checkpoint, run them (at most ``concurrency`` at a time) and
wait for the next tick. Blocking work - HTTP polls, user step code - goes to a thread pool.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
import time
from collections.abc import Coroutine
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from d365nb.flows import runner
from d365nb.flows.history import RunRow
from d365nb.flows.model import utcnow_iso

if TYPE_CHECKING:
    from d365nb.flows.flow import Flow

_lock = threading.Lock()
_engine: Engine | None = None
# Runs executing in this process (any flow, any origin): a run that is unfinished in history but
# not in here was interrupted by the end of another process.
_executing: set[str] = set()


def get_engine() -> Engine:
    """The process's engine, started on first use (and again if its thread died)."""
    global _engine
    with _lock:
        if _engine is None or not _engine.alive:
            _engine = Engine()
        return _engine


def _iso(ts: float | None) -> str | None:
    return None if ts is None else datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class Engine:
    """Owns the loop thread, the worker pool and the running flows' watchers."""

    def __init__(self, workers: int = 32) -> None:
        self.loop = asyncio.new_event_loop()
        self.executor = concurrent.futures.ThreadPoolExecutor(
            workers, thread_name_prefix="d365nb-step"
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
        # Ids this flow's own steps wrote in the watched table (loop guard); live, so a poll
        # that overlaps a run still sees writes made a moment ago.
        self.own: set[str] = set() if flow.self_trigger else self.history.own_writes(self.name)

    # -- control --------------------------------------------------------------------------
    async def cancel(self) -> None:
        tasks = [t for t in (self.task, *self.runs) if t is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self.state = "Stopped"
        self.flow._changed()

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
        loop = asyncio.get_running_loop()
        detector = self.flow.detector()
        checkpoint = self.history.checkpoint(self.name)
        if not detector.fits(checkpoint):
            checkpoint = await loop.run_in_executor(
                self.engine.executor, self._first_checkpoint, detector
            )
        self.checkpoint = checkpoint
        self.state = "Paused" if self.paused else "Running"
        self.next_poll = time.time()  # the first poll is due now (what `flow status` shows)
        self.ready.set()
        # Tests and resubmits cut off by a crash are not owed to anyone: close them.
        for run_id in self.history.unfinished_manual_runs(self.name):
            if run_id not in _executing:
                now = utcnow_iso()
                error = "interrupted: the process running it stopped"
                self.history.finish_run(run_id, "Cancelled", error, [], now, now)
        # Runs found before a stop or crash and never finished: they run first.
        for row in self.history.pending_runs(self.name):
            await self._dispatch(row)
        every = self.flow.trigger.every
        while True:
            started = time.time()
            if not self.paused:
                await self._poll(loop, detector)
            self.next_poll = max(started + every, time.time())
            self.flow._changed()
            self.wake.clear()
            # asyncio.timeout, not wait_for: 3.11's wait_for can swallow a cancellation (stop).
            try:
                async with asyncio.timeout(max(0.0, self.next_poll - time.time())):
                    await self.wake.wait()
            except TimeoutError:
                pass

    def _first_checkpoint(self, detector: Any) -> dict[str, Any]:
        checkpoint = detector.start(self.flow.trigger.since)
        detector.baseline(self.history, self.name)
        self.history.set_checkpoint(self.name, checkpoint)
        return checkpoint

    async def _poll(self, loop: asyncio.AbstractEventLoop, detector: Any) -> None:
        pages = detector.poll(self.checkpoint, self.own, self.history, self.name)
        found = fired = requests = 0
        self.last_poll = time.time()
        self.polls += 1
        try:
            while True:
                page = await loop.run_in_executor(self.engine.executor, next, pages, None)
                if page is None:
                    break
                found += page.found
                requests += page.requests
                rows = self.history.enqueue(self.name, page.changes, page.checkpoint)
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
