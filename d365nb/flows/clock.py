"""The engine's clock: what poll ticks, retry waits and step timeouts measure time with.

`Clock` is real time (``asyncio.sleep``, ``asyncio.timeout``). `ManualClock` only moves when
told (``advance``), so tests of polling, retries and timeouts step through a trigger's interval
or Logic Apps' 7-second waits at once instead of sleeping: ``get_engine().clock = ManualClock()``.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Awaitable
from typing import Any

__all__ = ["Clock", "ManualClock"]


class Clock:
    """Real time."""

    def now(self) -> float:
        return time.time()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(max(0.0, seconds))

    async def within(self, seconds: float | None, awaitable: Awaitable[Any]) -> Any:
        """``await awaitable``, raising `TimeoutError` after ``seconds`` (None: no limit)."""
        async with asyncio.timeout(seconds):
            return await awaitable


class ManualClock(Clock):
    """A clock that moves only by `advance` (from any thread); sleepers wake when it passes
    their deadline."""

    def __init__(self, start: float | None = None) -> None:
        # Starts at the real time by default, so what `flow status` shows stays a real date.
        self._now = time.time() if start is None else float(start)
        self._lock = threading.Lock()
        self._sleepers: list[tuple[float, asyncio.AbstractEventLoop, asyncio.Future[None]]] = []

    def now(self) -> float:
        return self._now

    def pending(self) -> list[float]:
        """The pending sleeps as seconds from now, soonest first (a test waits for the engine
        to reach the one it expects: a retry's 7 s beside the next poll's interval)."""
        with self._lock:
            return sorted(round(d - self._now, 6) for d, _, f in self._sleepers if not f.done())

    async def sleep(self, seconds: float) -> None:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[None] = loop.create_future()
        with self._lock:
            if seconds <= 0:
                future.set_result(None)
            else:
                entry = (self._now + seconds, loop, future)
                self._sleepers.append(entry)
        try:
            await future
        finally:
            with self._lock:
                self._sleepers = [s for s in self._sleepers if s[2] is not future]

    async def within(self, seconds: float | None, awaitable: Awaitable[Any]) -> Any:
        if seconds is None:
            return await awaitable
        work = asyncio.ensure_future(awaitable)
        timer = asyncio.ensure_future(self.sleep(seconds))
        try:
            done, _ = await asyncio.wait({work, timer}, return_when=asyncio.FIRST_COMPLETED)
        except asyncio.CancelledError:
            work.cancel()
            raise
        finally:
            timer.cancel()
        if work in done:
            return work.result()
        work.cancel()
        raise TimeoutError

    def advance(self, seconds: float) -> None:
        """Move time on by ``seconds``, waking every sleep that is now due."""
        with self._lock:
            self._now += seconds
            due = [(loop, f) for deadline, loop, f in self._sleepers if deadline <= self._now]
        for loop, future in due:
            loop.call_soon_threadsafe(_wake, future)


def _wake(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)
