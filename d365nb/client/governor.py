"""The throttle governor: one per connection, shared by every thread and event loop using it.

Dataverse allows 52 concurrent requests per user and answers 429 + Retry-After when a limit is
exceeded. The governor caps concurrency (adaptive: halved on each 429, grown back by one after a
run of successes, like TCP's AIMD) and, after a 429, holds *all* new requests until Retry-After
has passed, so a notebook cell and a background flow don't keep hammering a throttled org.

It is built on a ``threading.Condition`` so sync callers, other threads and asyncio tasks (which
wait on futures woken thread-safely) share the same budget.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable

__all__ = ["Governor", "MAX_CONCURRENCY"]

MAX_CONCURRENCY = 52


class Governor:
    """Adaptive concurrency limit + shared pause after throttling.

    ``clock`` is injectable so the policy can be tested without waiting.
    """

    def __init__(
        self, limit: int = MAX_CONCURRENCY, *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        if not 1 <= limit <= MAX_CONCURRENCY:
            raise ValueError(f"concurrency limit must be 1..{MAX_CONCURRENCY}, got {limit}")
        self.max_limit = limit
        self.limit = limit
        self.active = 0
        self.paused_until = 0.0
        self.throttled = 0  # 429s seen, for reporting
        self._successes = 0
        self._clock = clock
        self._cond = threading.Condition()
        self._async_waiters: list[tuple[asyncio.AbstractEventLoop, asyncio.Future]] = []

    # -- policy (pure given the clock) --------------------------------------------------------

    def _wait_needed(self) -> float:
        """0 when a request may start now; else seconds to wait (inf = until a release)."""
        pause = self.paused_until - self._clock()
        if pause > 0:
            return pause
        if self.active >= self.limit:
            return float("inf")
        return 0.0

    def try_acquire(self) -> float:
        """Take a slot if possible; returns 0.0 on success or the wait needed."""
        with self._cond:
            wait = self._wait_needed()
            if wait == 0.0:
                self.active += 1
            return wait

    def on_throttled(self, retry_after: float | None) -> None:
        """A 429 arrived: halve the concurrency and pause everyone for ``retry_after``."""
        with self._cond:
            self.throttled += 1
            self.limit = max(1, self.limit // 2)
            self._successes = 0
            if retry_after:
                self.paused_until = max(self.paused_until, self._clock() + retry_after)

    def on_success(self) -> None:
        """A request succeeded: after ``limit`` successes in a row, allow one more concurrent."""
        with self._cond:
            if self.limit < self.max_limit:
                self._successes += 1
                if self._successes >= self.limit:
                    self._successes = 0
                    self.limit += 1
                    self._wake()

    # -- blocking -----------------------------------------------------------------------------

    def acquire(self) -> None:
        """Block the calling thread until a slot is free and no pause is in force."""
        with self._cond:
            while True:
                wait = self._wait_needed()
                if wait == 0.0:
                    self.active += 1
                    return
                self._cond.wait(None if wait == float("inf") else wait)

    async def acquire_async(self) -> None:
        """Like :meth:`acquire` without blocking the event loop."""
        loop = asyncio.get_running_loop()
        while True:
            with self._cond:
                wait = self._wait_needed()
                if wait == 0.0:
                    self.active += 1
                    return
                future = loop.create_future()
                entry = (loop, future)
                self._async_waiters.append(entry)
            try:
                await asyncio.wait_for(future, None if wait == float("inf") else wait)
            except TimeoutError:
                pass
            finally:
                with self._cond:
                    if entry in self._async_waiters:
                        self._async_waiters.remove(entry)

    def release(self) -> None:
        with self._cond:
            self.active -= 1
            self._wake()

    def _wake(self) -> None:
        self._cond.notify_all()
        for loop, future in self._async_waiters:
            loop.call_soon_threadsafe(_resolve, future)
        self._async_waiters.clear()

    def __repr__(self) -> str:
        return f"Governor(limit={self.limit}/{self.max_limit}, active={self.active})"


def _resolve(future: asyncio.Future) -> None:
    if not future.done():
        future.set_result(None)
