"""Fault injection: parsing and seeded draws, then the faults over real HTTP."""

from __future__ import annotations

import uuid

import httpx
import pytest
import requests

from d365nb import sandbox
from d365nb.sandbox.faults import CONTROL_PATH, FaultInjector, Faults, parse_faults
from tests.support.sandboxes import api_client
from tests.support.spec_text import one_line_refusals


def test_parse_faults_reads_the_cli_form():
    faults = parse_faults("503=0.1,429=0.1,drop=0.05,latency=0.02")
    assert faults == Faults(
        unavailable=0.1, throttle=0.1, drop_before=0.025, drop_after=0.025, latency=0.02
    )
    assert parse_faults("500=0.2,drop_after=0.3,retry_after=2") == Faults(
        server_error=0.2, drop_after=0.3, retry_after=2
    )
    assert not parse_faults(None).enabled


test_parse_faults_refuses_bad_text_in_one_line = one_line_refusals(
    parse_faults,
    {
        "503=lots": "must be a number",
        "404=0.1": "expected key=value",
        "503=1.5": "between 0 and 1",
        "503=0.6,500=0.6": "add up to 1.2",
    },
)


def test_draws_are_reproducible_from_the_seed():
    first = FaultInjector("503=0.3,drop=0.2", seed=42)
    second = FaultInjector("503=0.3,drop=0.2", seed=42)
    a = [first.draw() for _ in range(200)]
    assert a == [second.draw() for _ in range(200)]
    counts = {k: a.count(k) for k in set(a)}
    assert 40 <= counts["unavailable"] <= 80  # ~30 % of 200
    assert counts.get("drop_before", 0) > 0 and counts.get("drop_after", 0) > 0
    assert counts[None] > 80


def test_reconfigure_switches_faults_off():
    injector = FaultInjector("500=1", seed=1)
    assert injector.draw() == "server_error"
    injector.configure(None)
    assert all(injector.draw() is None for _ in range(50))


# -- over HTTP -------------------------------------------------------------------------------


def new_lead(id: str) -> dict:
    return {"leadid": id, "subject": "fault test", "lastname": "Doe"}


@pytest.mark.parametrize(
    ("spec", "status", "code", "retry_after"),
    [
        ("503=1", 503, "", "1"),
        ("500=1", 500, "0x80040216", None),
        ("429=1,retry_after=3", 429, "0x80072322", "3"),
    ],
)
def test_injected_error_statuses(empty_sandbox, empty_api, spec, status, code, retry_after):
    empty_sandbox.set_faults(spec)
    r = empty_api.post("leads", json=new_lead(str(uuid.uuid4())))
    assert r.status_code == status
    assert r.json()["error"]["code"] == code
    assert r.headers.get("Retry-After") == retry_after
    assert empty_sandbox.org.store.count("lead") == 0  # refused before the app ran
    empty_sandbox.set_faults(None)
    assert empty_api.get("WhoAmI").status_code == 200


def test_drop_before_the_write_closes_the_connection_and_writes_nothing(empty_sandbox, empty_api):
    empty_sandbox.set_faults("drop_before=1")
    id = str(uuid.uuid4())
    with pytest.raises(httpx.TransportError):
        empty_api.post("leads", json=new_lead(id))
    assert not empty_sandbox.org.store.exists("lead", id)


def test_drop_after_the_write_closes_the_connection_but_keeps_the_write(empty_sandbox, empty_api):
    empty_sandbox.set_faults("drop_after=1")
    id = str(uuid.uuid4())
    with pytest.raises(httpx.TransportError):
        empty_api.post("leads", json=new_lead(id))
    assert empty_sandbox.org.store.exists("lead", id)
    # The client's idempotent retry with the same key learns the record is there.
    empty_sandbox.set_faults(None)
    retry = empty_api.post("leads", json=new_lead(id))
    assert retry.status_code == 412


def test_requests_library_sees_a_connection_error(empty_sandbox):
    empty_sandbox.set_faults("drop=1")
    with pytest.raises(requests.ConnectionError):
        requests.get(
            empty_sandbox.api + "WhoAmI",
            headers={"Authorization": f"Bearer {empty_sandbox.token}"},
            timeout=10,
        )


def _statuses(handle, n: int) -> list:
    out = []
    with api_client(handle) as api:
        for _ in range(n):
            try:
                out.append(api.get("WhoAmI").status_code)
            except httpx.TransportError:
                out.append("dropped")
    return out


def test_same_seed_same_faults():
    spec = "503=0.2,500=0.1,429=0.1,drop=0.2"
    with sandbox.start(data="empty", faults=spec, seed=11) as a:
        first = _statuses(a, 40)
    with sandbox.start(data="empty", faults=spec, seed=11) as b:
        second = _statuses(b, 40)
    assert first == second
    assert {200, 503, 500, 429, "dropped"} <= set(first)


def test_faults_never_hit_the_fault_control(empty_sandbox):
    empty_sandbox.set_faults("503=1")
    auth = {"Authorization": f"Bearer {empty_sandbox.token}"}
    control = empty_sandbox.url + CONTROL_PATH
    shown = httpx.get(control, headers=auth)
    assert shown.status_code == 200
    assert shown.json()["faults"]["unavailable"] == 1.0
    assert httpx.put(control, headers=auth, json={"faults": None}).status_code == 200
    assert httpx.get(empty_sandbox.api + "WhoAmI", headers=auth).status_code == 200
    # The control itself needs the token, and refuses bad settings in one line.
    assert httpx.get(control).status_code == 401
    bad = httpx.put(control, headers=auth, json={"faults": "503=2"})
    assert bad.status_code == 400 and "between 0 and 1" in bad.json()["error"]["message"]
    assert httpx.get(control, headers=auth).json()["faults"]["unavailable"] == 0.0


def test_counts_of_injected_faults_are_reported(empty_sandbox, empty_api):
    empty_sandbox.set_faults("500=1", seed=3)
    for _ in range(4):
        empty_api.get("WhoAmI")
    shown = httpx.get(
        empty_sandbox.url + CONTROL_PATH,
        headers={"Authorization": f"Bearer {empty_sandbox.token}"},
    ).json()
    assert shown["injected"] == {"server_error": 4}


def test_bad_faults_are_refused_at_start():
    with pytest.raises(ValueError, match="must be a number"):
        sandbox.start(data="empty", faults="503=often")


def test_latency_delays_every_answer(empty_sandbox):
    empty_sandbox.set_faults("latency=1")
    auth = {"Authorization": f"Bearer {empty_sandbox.token}"}
    # The server sleeps a full second before answering, so a 0.1 s read timeout must expire.
    with pytest.raises(httpx.ReadTimeout):
        httpx.get(empty_sandbox.api + "WhoAmI", headers=auth, timeout=0.1)
    empty_sandbox.set_faults(None)
    assert httpx.get(empty_sandbox.api + "WhoAmI", headers=auth).status_code == 200
