"""Service-protection limits: parsing, the sliding windows, and 429s over HTTP."""

from __future__ import annotations

import pytest

from d365nb.sandbox.limits import (
    CONCURRENCY_CODE,
    EXECUTION_CODE,
    REQUESTS_CODE,
    Limiter,
    Limits,
    parse_limits,
)


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_parse_limits_reads_any_subset():
    assert parse_limits("requests=100,window=10") == Limits(requests=100, window=10.0)
    assert parse_limits("concurrent=4") == Limits(concurrent=4)
    assert parse_limits("execution_ms=500, window=2") == Limits(execution_ms=500, window=2.0)
    assert not parse_limits("").enabled


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("requests=ten", "requests must be a whole number"),
        ("bogus=1", "expected key=value"),
        ("requests", "expected key=value"),
        ("window=0", "greater than 0"),
    ],
)
def test_parse_limits_refuses_bad_text_in_one_line(text, fragment):
    with pytest.raises(ValueError, match=fragment) as info:
        parse_limits(text)
    assert "\n" not in str(info.value)


def test_request_limit_slides_with_the_window():
    clock = FakeClock()
    limiter = Limiter("requests=3,window=10", clock=clock)
    for _ in range(3):
        assert limiter.admit("k") is None
        limiter.finish("k", clock.now)
    refusal = limiter.admit("k")
    assert refusal is not None and refusal.code == REQUESTS_CODE
    assert refusal.message == (
        "Number of requests exceeded the limit of 3 over time window of 10 seconds."
    )
    assert refusal.retry_after == 10
    clock.now += 4
    assert limiter.admit("k").retry_after == 6  # the oldest start leaves the window in 6 s
    clock.now += 6.5
    assert limiter.admit("k") is None
    assert limiter.admit("other") is None  # per token


def test_concurrency_limit_trips_immediately_and_frees_on_finish():
    clock = FakeClock()
    limiter = Limiter(Limits(concurrent=2), clock=clock)
    assert limiter.admit("k") is None
    assert limiter.admit("k") is None
    refusal = limiter.admit("k")
    assert refusal.code == CONCURRENCY_CODE
    assert refusal.message == "Number of concurrent requests exceeded the limit of 2."
    limiter.finish("k", clock.now)
    assert limiter.admit("k") is None


def test_execution_time_limit_counts_durations_in_the_window():
    clock = FakeClock()
    limiter = Limiter("execution_ms=1000,window=60", clock=clock)
    assert limiter.admit("k") is None
    clock.now += 1.5  # a 1500 ms request
    limiter.finish("k", clock.now - 1.5)
    refusal = limiter.admit("k")
    assert refusal.code == EXECUTION_CODE
    assert "exceeded limit of 1,000  milliseconds over time window of 60 seconds" in refusal.message
    assert refusal.retry_after == 60
    clock.now += 61
    assert limiter.admit("k") is None


def test_configure_none_switches_limits_off():
    limiter = Limiter("requests=1")
    assert limiter.limits.enabled
    limiter.configure(None)
    assert not limiter.limits.enabled
