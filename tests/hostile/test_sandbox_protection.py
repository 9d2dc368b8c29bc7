"""Service protection that protects, and sizes and settings that make no sense refused.

* Limits are counted per authenticated caller, after authentication: a bogus token is answered
  401 and costs nothing, and `Bearer`/`bearer`/extra spaces are one caller
  (https://learn.microsoft.com/power-apps/developer/data-platform/api-limits: "The service
  protection API limits are evaluated per user").
* `$batch` counts as one request ("A batch can contain up to 1000 operations and will avoid the
  number of requests limit. However, you will need to be prepared for the execution time
  limit." - same page), but its whole execution time counts.
* 413 for a request that is too large
  (https://learn.microsoft.com/power-apps/developer/data-platform/webapi/compose-http-requests-handle-errors#identify-status-codes),
  431 for oversized headers, a timeout for a client that never finishes its request head.
* `--limits`/`--faults`/`PUT /_sandbox/faults` refuse NaN, infinite and negative numbers;
  `--db` refuses a file that is not a sandbox database without touching it.
* Bulk duplicates follow https://learn.microsoft.com/power-apps/developer/data-platform/bulk-operations
  ("Duplicate records in UpdateMultiple/UpsertMultiple Targets parameter").
"""

from __future__ import annotations

import hashlib
import os
import socket
import sqlite3
import subprocess
import sys
import time

import httpx
import pytest

from d365nb import sandbox as sandbox_module
from d365nb.sandbox import faults, guards, limits
from tests.support.sandboxes import api_client

BOGUS = "eyJhbGciOiJub25lIn0.eyJzdWIiOiJhdHRhY2tlciJ9.Zm9yZ2Vk"


def _lead_count(handle) -> int:
    return handle.org.store.count("lead")


# -- limits keyed on the caller, after authentication -------------------------------------------


def test_bogus_tokens_cost_nothing_and_add_no_bucket():
    with (
        sandbox_module.start(data="empty", limits="requests=3,window=60") as h,
        api_client(h) as api,
    ):
        for i in range(200):
            r = api.get("WhoAmI", headers={"Authorization": f"Bearer {BOGUS}{i}"})
            assert r.status_code == 401
            assert BOGUS not in r.text
        limiter = h.org.config["limiter"]
        assert len(limiter._usage) == 0  # noqa: SLF001 - nothing remembered for the bogus ones
        for _ in range(3):  # the real caller still has its whole budget
            assert api.get("WhoAmI").status_code == 200
        assert api.get("WhoAmI").status_code == 429
        assert len(limiter._usage) == 1  # noqa: SLF001


def test_scheme_case_and_spacing_are_one_caller():
    with (
        sandbox_module.start(data="empty", limits="requests=3,window=60") as h,
        api_client(h) as api,
    ):
        variants = [f"Bearer {h.token}", f"bearer {h.token}", f"BEARER  {h.token}"]
        for value in variants:
            assert api.get("WhoAmI", headers={"Authorization": value}).status_code == 200
        for value in variants:
            r = api.get("WhoAmI", headers={"Authorization": value})
            assert r.status_code == 429, value
            assert r.json()["error"]["code"] == limits.REQUESTS_CODE


def test_a_batch_is_one_request_but_its_whole_execution_time_counts():
    parts = "".join(
        "--b\r\nContent-Type: application/http\r\n\r\nPOST /api/data/v9.2/leads HTTP/1.1\r\n"
        f'Content-Type: application/json\r\n\r\n{{"lastname":"b{i}"}}\r\n'
        for i in range(300)
    )
    body = (parts + "--b--\r\n").encode()
    batch_type = {"Content-Type": "multipart/mixed; boundary=b"}
    with (
        sandbox_module.start(data="empty", limits="execution_ms=50,window=60") as h,
        api_client(h) as api,
    ):
        r = api.post("$batch", content=body, headers=batch_type)
        assert r.status_code == 200
        assert r.text.count("HTTP/1.1 204") == 300
        refused = api.get("WhoAmI")
        assert refused.status_code == 429
        assert refused.json()["error"]["code"] == limits.EXECUTION_CODE


@pytest.mark.parametrize(
    "spec",
    [
        "requests=nan",
        "window=inf",
        "window=NaN",
        "requests=-5",
        "concurrent=1_000",
        "execution_ms=1e3",
        "window=-1",
        "requests=²",
        "window=" + "9" * 400,
    ],
)
def test_limit_settings_that_make_no_sense_are_refused(spec):
    with pytest.raises(ValueError) as caught:
        limits.parse_limits(spec)
    message = str(caught.value)
    assert "\n" not in message and message.startswith("limits: ")


@pytest.mark.parametrize(
    "spec",
    [
        "503=nan",
        "latency=inf",
        "latency=-1",
        "429=-0.1",
        "drop=NaN",
        "retry_after=1.5",
        "500=1_0",
        "latency=" + "9" * 400,
        "503=²",
    ],
)
def test_fault_settings_that_make_no_sense_are_refused(spec):
    with pytest.raises(ValueError) as caught:
        faults.parse_faults(spec)
    message = str(caught.value)
    assert "\n" not in message and message.startswith("faults: ")


def test_fault_control_refuses_nonsense_with_400(sandbox):
    with httpx.Client(
        base_url=sandbox.url, headers={"Authorization": f"Bearer {sandbox.token}"}
    ) as c:
        before = c.get("/_sandbox/faults").json()
        for settings in ("latency=inf", "503=nan", "429=-1", 5, ["503=1"]):
            r = c.put("/_sandbox/faults", json={"faults": settings})
            assert r.status_code == 400, settings
            error = r.json()["error"]
            assert "\n" not in error["message"]
        big = c.put("/_sandbox/faults", content=b"{" + b" " * (faults.CONTROL_MAX_BODY + 10) + b"}")
        assert big.status_code == 413
        assert c.get("/_sandbox/faults").json()["faults"] == before["faults"]


@pytest.mark.parametrize("option", ["--limits", "--faults"])
def test_cli_refuses_nonsense_settings_with_one_line_and_exit_2(option):
    value = "requests=nan" if option == "--limits" else "latency=inf"
    proc = subprocess.run(
        [sys.executable, "-m", "d365nb.cli", "sandbox", "--data", "empty", option, value],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    assert proc.returncode == 2
    assert proc.stdout == ""
    assert len(proc.stderr.strip().splitlines()) == 1
    assert "Traceback" not in proc.stderr


# -- --db is never written when it is not a sandbox database ------------------------------------


def _digest(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.parametrize("kind", ["other sqlite", "text file", "sqlite with a _meta table"])
def test_db_that_is_not_a_sandbox_database_is_refused_untouched(tmp_path, kind):
    path = tmp_path / "precious.db"
    if kind == "text file":
        path.write_text("my notes\n" * 50)
    else:
        conn = sqlite3.connect(path)
        conn.execute("CREATE TABLE invoices (id INTEGER PRIMARY KEY, total REAL)")
        if kind == "sqlite with a _meta table":
            conn.execute("CREATE TABLE _meta (key TEXT, value TEXT)")
        conn.execute("INSERT INTO invoices (total) VALUES (12.5)")
        conn.commit()
        conn.close()
    digest = _digest(path)
    listing = sorted(p.name for p in tmp_path.iterdir())
    proc = subprocess.run(
        [sys.executable, "-m", "d365nb.cli", "sandbox", "--db", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2
    assert proc.stdout == ""
    assert len(proc.stderr.strip().splitlines()) == 1
    assert "not" in proc.stderr and str(path) in proc.stderr
    assert _digest(path) == digest
    assert sorted(p.name for p in tmp_path.iterdir()) == listing  # no -wal/-shm/journal left


def test_a_sandbox_database_is_reopened(tmp_path):
    path = tmp_path / "sandbox.db"
    with sandbox_module.start(data="empty", db=str(path)) as h, api_client(h) as api:
        assert api.post("leads", json={"lastname": "kept"}).status_code == 204
    with sandbox_module.start(data="empty", db=str(path)) as h, api_client(h) as api:
        assert [r["lastname"] for r in api.get("leads").json()["value"]] == ["kept"]


# -- sizes and timeouts ---------------------------------------------------------------------


def test_a_body_over_the_cap_gets_413_and_writes_nothing(monkeypatch, empty_sandbox, empty_api):
    monkeypatch.setattr(guards, "MAX_BODY", 4096)
    before = _lead_count(empty_sandbox)
    body = {"lastname": "x", "description": "y" * 5000}
    r = empty_api.post("leads", json=body)
    assert r.status_code == 413
    assert set(r.json()["error"]) == {"code", "message"}
    assert r.headers["connection"] == "close"  # the unread rest is not taken for a request

    def chunks():  # no Content-Length: the cap holds while streaming too
        yield b'{"lastname":"x","description":"'
        for _ in range(10):
            yield b"z" * 1000
        yield b'"}'

    streamed = empty_api.post(
        "leads", content=chunks(), headers={"Content-Type": "application/json"}
    )
    assert streamed.status_code == 413
    assert _lead_count(empty_sandbox) == before


def _raw(handle, data: bytes, wait: float = 10.0) -> bytes:
    host, port = handle.url.split("//")[1].split(":")
    with socket.create_connection((host, int(port))) as sock:
        sock.settimeout(wait)
        sock.sendall(data)
        received = b""
        try:
            while chunk := sock.recv(65536):
                received += chunk
        except (ConnectionResetError, TimeoutError):
            pass
    return received


def test_heads_too_large_for_the_server_get_414_and_431_not_a_reset(empty_sandbox):
    auth = f"Authorization: Bearer {empty_sandbox.token}\r\n".encode()
    long_url = b"GET /api/data/v9.2/leads?$filter=" + b"a" * 200_000 + b" HTTP/1.1\r\nHost: x\r\n"
    answer = _raw(empty_sandbox, long_url + auth + b"\r\n")
    assert answer.startswith(b"HTTP/1.1 414 ")
    assert b'{"error":{"code":' in answer
    many_headers = b"".join(b"X-Pad-%d: %s\r\n" % (i, b"p" * 8000) for i in range(30))
    answer = _raw(
        empty_sandbox,
        b"GET /api/data/v9.2/leads HTTP/1.1\r\nHost: x\r\n" + auth + many_headers + b"\r\n",
    )
    assert answer.startswith(b"HTTP/1.1 431 ")
    assert empty_sandbox.token.encode() not in answer


def test_a_client_that_never_finishes_its_request_head_is_disconnected(monkeypatch):
    monkeypatch.setattr(guards, "HEADER_TIMEOUT", 0.5)
    with sandbox_module.start(data="empty") as h:
        started = time.monotonic()
        answer = _raw(h, b"GET /api/data/v9.2/leads HTTP/1.1\r\nHost: x\r\nX-Slow: ", wait=10)
        assert answer == b""
        assert time.monotonic() - started < 5


def test_a_body_that_never_arrives_gets_408(monkeypatch):
    monkeypatch.setattr(guards, "BODY_TIMEOUT", 0.5)
    with sandbox_module.start(data="empty") as h:
        head = (
            "POST /api/data/v9.2/leads HTTP/1.1\r\nHost: x\r\n"
            f"Authorization: Bearer {h.token}\r\nContent-Type: application/json\r\n"
            "Content-Length: 100\r\n\r\n{"
        ).encode()
        answer = _raw(h, head, wait=10)
        assert answer.startswith(b"HTTP/1.1 408 ")
        # RFC 9110 15.5.9: the server closes the connection (the rest of the body is not read)
        assert b"\r\nconnection: close\r\n" in answer.lower()
        assert h.org.store.count("lead") == 0


# -- bulk duplicates ---------------------------------------------------------------------------


def test_update_multiple_applies_the_first_of_duplicate_targets(empty_api):
    """Microsoft: "When more than one record in the Targets parameter is uniquely identified by
    a primary or alternate key, the operation is performed on the first record only."""
    lead = "0000cccc-0000-4000-8000-00000000c001"
    assert empty_api.patch(f"leads({lead})", json={"lastname": "before"}).status_code == 204
    targets = [
        {"@odata.type": "Microsoft.Dynamics.CRM.lead", "leadid": lead, "lastname": "first"},
        {"@odata.type": "Microsoft.Dynamics.CRM.lead", "leadid": lead, "lastname": "second"},
    ]
    r = empty_api.post("leads/Microsoft.Dynamics.CRM.UpdateMultiple", json={"Targets": targets})
    assert r.status_code == 204
    assert empty_api.get(f"leads({lead})?$select=lastname").json()["lastname"] == "first"


def test_upsert_and_create_multiple_refuse_duplicate_targets_as_a_whole(empty_sandbox, empty_api):
    lead = "0000cccc-0000-4000-8000-00000000c002"
    for action, status in (("UpsertMultiple", 400), ("CreateMultiple", 412)):
        targets = [
            {"@odata.type": "Microsoft.Dynamics.CRM.lead", "lastname": "fresh"},
            {"@odata.type": "Microsoft.Dynamics.CRM.lead", "leadid": lead, "lastname": "a"},
            {"@odata.type": "Microsoft.Dynamics.CRM.lead", "leadid": lead, "lastname": "b"},
        ]
        r = empty_api.post(f"leads/Microsoft.Dynamics.CRM.{action}", json={"Targets": targets})
        assert r.status_code == status, r.text
        assert "\n" not in r.json()["error"]["message"]
        assert _lead_count(empty_sandbox) == 0
