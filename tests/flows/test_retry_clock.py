"""Retry and timeout as Logic Apps does, on the engine's injectable clock (no real sleeps).

Without ``--retry`` a step gets Logic Apps' default policy: exponential, 4 retries, on 408, 429
and 5xx, a ``Retry-After`` replacing the computed wait
(https://learn.microsoft.com/azure/logic-apps/error-exception-handling#retry-policies). A step
past its ``--timeout`` is TimedOut and nothing it writes afterwards lands.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator

import pytest

from d365nb.client.errors import error_for_status
from d365nb.flows import Flow
from d365nb.flows.clock import ManualClock
from d365nb.flows.engine import get_engine
from tests.support.waiting import wait_for


@pytest.fixture
def clock() -> Iterator[ManualClock]:
    engine = get_engine()
    real, engine.clock = engine.clock, ManualClock(start=0)
    yield engine.clock
    engine.clock = real


def retry_wait(clock: ManualClock) -> float | None:
    """The engine's pending sleep other than the next daily poll (a retry wait or a step's
    timeout), in seconds from now. The poll must stay out of the hour: between an attempt and
    the retry wait it registers, the poll's sleep is the only one pending, and an hourly poll
    fell under the hour once the clock had moved (a test then advanced the clock to it)."""
    waits = [s for s in clock.pending() if s < 3600]
    return waits[0] if waits else None


def one_run(conn, history, step, **options) -> Flow:
    # Polls daily on the manual clock: the only other pending sleep is the next poll's.
    flow = Flow("clocked", conn, history=history).on_created("leads", every="1d")
    flow.step("s", step, **options)
    flow.start()
    wait_for(lambda: flow.state == "Running")
    conn.create("leads", {"subject": "x"})
    flow.poll_now()
    return flow


def failing_every_attempt(status: int) -> tuple[Callable[[], None], list[int]]:
    """A step whose every attempt fails with ``status``, and the list its attempts are counted in."""
    attempts: list[int] = []

    def step() -> None:
        attempts.append(1)
        raise error_for_status(status, f"service said {status}")

    return step, attempts


def done(flow: Flow) -> bool:
    runs = flow.runs()
    return len(runs[runs.status.isin(["Succeeded", "Failed"])]) >= 1


@pytest.mark.parametrize("status", [408, 429, 500, 502, 503, 504])
def test_default_policy_retries_408_429_and_5xx_exponentially(conn, history, clock, status):
    calls: list[float] = []

    def flaky():
        calls.append(clock.now())
        if len(calls) <= 4:
            raise error_for_status(status, f"service said {status}")
        return "ok"

    flow = one_run(conn, history, flaky)
    # Logic Apps' default: 7 s, doubling (we wait the top of its random band): 7, 14, 28, 56.
    for expected in (1, 2, 3, 4):
        wait_for(
            lambda n=expected: len(calls) == n and retry_wait(clock) == 7 * 2 ** (n - 1),
            what=f"retry wait {expected}",
        )
        clock.advance(7 * 2 ** (expected - 1))
    wait_for(lambda: done(flow))
    step = flow.run(flow.runs().run_id.iloc[0]).step("s")
    assert (step["status"], step["attempts"]) == ("Succeeded", 5)
    assert calls == [0, 7, 21, 49, 105]


def test_default_policy_gives_up_after_four_retries(conn, history, clock):
    always, calls = failing_every_attempt(503)
    flow = one_run(conn, history, always)
    for n in range(1, 5):
        wait_for(lambda n=n: len(calls) == n and retry_wait(clock), what=f"retry wait {n}")
        clock.advance(retry_wait(clock))
    wait_for(lambda: done(flow))
    step = flow.run(flow.runs().run_id.iloc[0]).step("s")
    assert (step["status"], step["attempts"]) == ("Failed", 5)


def test_retry_after_replaces_the_computed_wait(conn, history, clock):
    calls: list[float] = []

    def throttled():
        calls.append(clock.now())
        if len(calls) == 1:
            raise error_for_status(503, "busy", retry_after=2)
        return "ok"

    flow = one_run(conn, history, throttled)
    wait_for(lambda: retry_wait(clock) == 2, what="the retry wait")
    clock.advance(1.9)  # not yet: the service said 2 s
    assert len(calls) == 1
    clock.advance(0.2)
    wait_for(lambda: done(flow))
    assert len(calls) == 2


def test_a_client_error_is_not_retried(conn, history, clock):
    bad, calls = failing_every_attempt(400)
    flow = one_run(conn, history, bad)
    wait_for(lambda: done(flow))
    assert len(calls) == 1 and retry_wait(clock) is None


def test_a_step_past_its_timeout_is_timed_out_and_its_late_write_does_not_land(
    conn, history, clock
):
    release = threading.Event()
    late: list[BaseException] = []

    def slow(d365):
        release.wait(30)  # "sleeps" past the timeout...
        try:
            d365.create("tasks", {"subject": "too late"})  # ...then writes
        except BaseException as err:  # noqa: BLE001 - recorded for the assertion
            late.append(err)
        return "late result"

    flow = one_run(conn, history, slow, timeout=60)
    wait_for(lambda: retry_wait(clock) == 60, what="the step's timeout to be armed")
    clock.advance(61)
    wait_for(lambda: done(flow))
    step = flow.run(flow.runs().run_id.iloc[0]).step("s")
    assert step["status"] == "TimedOut" and "timed out after 60s" in step["error"]
    release.set()
    wait_for(lambda: late, what="the late write to be refused")
    assert "late writes are refused" in str(late[0])
    assert conn.list("tasks").empty
    # The late result is discarded: the stored step has no outputs.
    assert flow.run(flow.runs().run_id.iloc[0]).step("s").get("outputs") in (None, "", {})


def test_a_step_within_its_timeout_succeeds(conn, history, clock):
    flow = one_run(
        conn, history, lambda d365: d365.create("tasks", {"subject": "in time"}), timeout=60
    )
    wait_for(lambda: done(flow))
    assert flow.run(flow.runs().run_id.iloc[0]).step("s")["status"] == "Succeeded"
    assert len(conn.list("tasks")) == 1


def test_polls_tick_on_the_engine_clock(conn, history, clock):
    """The trigger's interval is measured on the engine's clock: a flow polling every 10 minutes
    polls again when the clock has moved 10 minutes, not before, and finds what was created."""
    flow = Flow("ticks", conn, history=history).on_created("leads", every="10m")
    flow.step("s", "trigger['subject']")
    flow.start()
    wait_for(lambda: flow.status_data()["polls"] == 1 and 600 in clock.pending(), what="poll 1")
    conn.create("leads", {"subject": "found on the next tick"})
    clock.advance(599)
    assert flow.status_data()["polls"] == 1 and flow.runs().empty
    clock.advance(1)
    wait_for(lambda: flow.status_data()["polls"] == 2 and done(flow), what="poll 2 and its run")
    assert flow.status_data()["next_poll"] == "1970-01-01T00:20:00Z"  # the clock's time, shown
