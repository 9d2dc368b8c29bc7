"""Service-protection limits: parsing, the sliding windows, and 429s over HTTP."""

from __future__ import annotations

import socket
import time

import pytest

from d365nb import sandbox
from d365nb.sandbox.limits import (
    CONCURRENCY_CODE,
    EXECUTION_CODE,
    REQUESTS_CODE,
    Limiter,
    Limits,
    parse_limits,
)
from tests.support.sandboxes import api_client
from tests.support.spec_text import one_line_refusals


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


test_parse_limits_refuses_bad_text_in_one_line = one_line_refusals(
    parse_limits,
    {
        "requests=ten": "requests must be a whole number",
        "bogus=1": "expected key=value",
        "requests": "expected key=value",
        "window=0": "greater than 0",
    },
)


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


def test_hammering_lengthens_retry_after():
    clock = FakeClock()
    limiter = Limiter("requests=1,window=5", clock=clock)
    assert limiter.admit("k") is None
    waits = [limiter.admit("k").retry_after for _ in range(25)]
    assert waits[0] == 5 and waits[-1] == 7  # +1 s per 10 refusals in a row
    clock.now += 5
    assert limiter.admit("k") is None
    assert limiter.admit("k").retry_after == 5  # an admitted request forgives


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


# -- over HTTP -------------------------------------------------------------------------------


def test_limits_are_off_by_default(empty_api):
    assert all(empty_api.get("WhoAmI").status_code == 200 for _ in range(30))


def test_request_limit_answers_429_with_retry_after():
    with sandbox.start(data="empty", limits="requests=3,window=60") as h, api_client(h) as api:
        answers = [api.get("WhoAmI") for _ in range(3)]
        assert [r.status_code for r in answers] == [200] * 3
        # Dataverse's debug header counts down what is left in the window.
        assert [r.headers["x-ms-ratelimit-burst-remaining-xrm-requests"] for r in answers] == [
            "2",
            "1",
            "0",
        ]
        r = api.get("WhoAmI")
        assert r.status_code == 429
        assert 1 <= int(r.headers["Retry-After"]) <= 60
        assert r.json()["error"] == {
            "code": REQUESTS_CODE,
            "message": "Number of requests exceeded the limit of 3 over time window of 60 seconds.",
        }
        h.set_limits(None)  # switched off at run time
        assert api.get("WhoAmI").status_code == 200


def test_requests_are_admitted_again_once_the_window_slides():
    with (
        sandbox.start(data="empty", limits=Limits(requests=2, window=1)) as h,
        api_client(h) as api,
    ):
        statuses = [api.get("WhoAmI").status_code for _ in range(3)]
        assert statuses == [200, 200, 429]
        deadline = time.monotonic() + 10
        while api.get("WhoAmI").status_code == 429:
            assert time.monotonic() < deadline, "the window never slid"


def test_a_refused_write_changes_nothing(empty_sandbox, empty_api):
    empty_sandbox.set_limits("requests=1,window=60")
    try:
        assert empty_api.post("leads", json={"subject": "a", "lastname": "b"}).status_code == 204
        r = empty_api.post("leads", json={"subject": "c", "lastname": "d"})
        assert r.status_code == 429
        assert empty_sandbox.org.store.count("lead") == 1
    finally:
        empty_sandbox.set_limits(None)


def _hold_request_open(handle) -> socket.socket:
    """Start a POST whose body never arrives: the request is in flight until we close it."""
    host, port = handle.url.split("//")[1].split(":")
    sock = socket.create_connection((host, int(port)))
    sock.sendall(
        (
            "POST /api/data/v9.2/leads HTTP/1.1\r\n"
            f"Host: {host}\r\nAuthorization: Bearer {handle.token}\r\n"
            "Content-Type: application/json\r\nContent-Length: 100\r\n\r\n"
        ).encode()
    )
    return sock


def test_concurrency_limit_trips_immediately(empty_sandbox, empty_api):
    empty_sandbox.set_limits("concurrent=1")
    held = _hold_request_open(empty_sandbox)
    try:
        deadline = time.monotonic() + 10
        while True:  # wait until the held request is admitted (it is then in flight)
            r = empty_api.get("WhoAmI")
            if r.status_code == 429:
                break
            assert time.monotonic() < deadline, "the held request never counted"
        assert int(r.headers["Retry-After"]) >= 1
        assert r.json()["error"] == {
            "code": CONCURRENCY_CODE,
            "message": "Number of concurrent requests exceeded the limit of 1.",
        }
    finally:
        held.close()
    deadline = time.monotonic() + 10
    while empty_api.get("WhoAmI").status_code == 429:
        assert time.monotonic() < deadline, "the closed request never finished"
    empty_sandbox.set_limits(None)


def test_execution_time_limit_answers_429():
    with sandbox.start(data="empty", limits="execution_ms=1,window=60") as h, api_client(h) as api:
        # A CreateMultiple of 200 leads takes well over 1 ms of execution time.
        targets = [
            {"@odata.type": "Microsoft.Dynamics.CRM.lead", "subject": str(i), "lastname": "x"}
            for i in range(200)
        ]
        first = api.post("leads/Microsoft.Dynamics.CRM.CreateMultiple", json={"Targets": targets})
        assert first.status_code == 200
        r = api.get("WhoAmI")
        assert r.status_code == 429
        assert r.json()["error"]["code"] == EXECUTION_CODE
        assert (
            "Combined execution time of incoming requests exceeded limit of 1  millisecond"
            in (r.json()["error"]["message"])
        )


def test_a_batch_counts_as_one_request():
    with sandbox.start(data="empty", limits="requests=2,window=60") as h, api_client(h) as api:
        part = (
            "--b\r\nContent-Type: application/http\r\nContent-Transfer-Encoding: binary\r\n\r\n"
            "GET /api/data/v9.2/WhoAmI HTTP/1.1\r\n\r\n\r\n"
        )
        r = api.post(
            "$batch",
            content=(part * 5 + "--b--\r\n").encode(),
            headers={"Content-Type": "multipart/mixed; boundary=b"},
        )
        assert r.status_code == 200 and r.text.count("HTTP/1.1 200 OK") == 5
        assert api.get("WhoAmI").status_code == 200
        assert api.get("WhoAmI").status_code == 429


def test_bad_limits_are_refused_at_start():
    with pytest.raises(ValueError, match="requests must be a whole number"):
        sandbox.start(data="empty", limits="requests=many")
