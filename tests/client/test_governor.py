"""The throttle governor's policy, driven by an injected clock (no waiting)."""

import asyncio
import threading

import pytest

from d365nb.client.governor import Governor


class Clock:
    def __init__(self):
        self.now = 100.0

    def __call__(self):
        return self.now


def test_concurrency_is_capped_at_the_limit():
    gov = Governor(3, clock=Clock())
    assert [gov.try_acquire() for _ in range(3)] == [0.0, 0.0, 0.0]
    assert gov.try_acquire() == float("inf")
    gov.release()
    assert gov.try_acquire() == 0.0


def test_limit_cannot_exceed_the_service_maximum():
    with pytest.raises(ValueError):
        Governor(53)


def test_throttling_halves_concurrency_and_pauses_everyone():
    clock = Clock()
    gov = Governor(52, clock=clock)
    gov.on_throttled(retry_after=2.0)
    assert gov.limit == 26
    assert gov.try_acquire() == pytest.approx(2.0)
    clock.now += 1.5
    assert gov.try_acquire() == pytest.approx(0.5)
    clock.now += 0.5
    assert gov.try_acquire() == 0.0


def test_successes_grow_the_limit_back_additively():
    gov = Governor(8, clock=Clock())
    gov.on_throttled(None)
    gov.on_throttled(None)
    assert gov.limit == 2
    for _ in range(2):
        gov.on_success()
    assert gov.limit == 3
    for _ in range(3):
        gov.on_success()
    assert gov.limit == 4
    for _ in range(1000):
        gov.on_success()
    assert gov.limit == 8


def test_a_blocked_thread_proceeds_when_a_slot_is_released():
    gov = Governor(1)
    gov.acquire()
    entered = threading.Event()

    def worker():
        gov.acquire()
        entered.set()
        gov.release()

    thread = threading.Thread(target=worker)
    thread.start()
    assert not entered.wait(0.05)
    gov.release()
    assert entered.wait(5)
    thread.join(5)


def test_async_waiters_share_the_budget_with_threads():
    gov = Governor(1)
    gov.acquire()  # held by "a thread"

    async def main():
        task = asyncio.create_task(gov.acquire_async())
        await asyncio.sleep(0)
        assert not task.done()
        threading.Thread(target=gov.release).start()
        await asyncio.wait_for(task, 5)
        assert gov.active == 1
        gov.release()

    asyncio.run(main())
