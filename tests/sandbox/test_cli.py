"""`d365nb sandbox`: one JSON line on stdout, logs on stderr, exit 0 on SIGINT/SIGTERM."""

from __future__ import annotations

import json
import os
import selectors
import signal
import socket
import subprocess
import sys
import time

import httpx
import pytest

STARTUP_DEADLINE = 30.0


def _launch(*args: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "d365nb.cli", "sandbox", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )


def _first_line(proc: subprocess.Popen) -> dict:
    """The JSON line, waiting for it with a deadline (not a sleep)."""
    selector = selectors.DefaultSelector()
    selector.register(proc.stdout, selectors.EVENT_READ)
    deadline = time.monotonic() + STARTUP_DEADLINE
    while time.monotonic() < deadline:
        if selector.select(timeout=deadline - time.monotonic()):
            line = proc.stdout.readline()
            assert line, f"sandbox exited early: {proc.stderr.read()}"
            return json.loads(line)
        if proc.poll() is not None:
            break
    proc.kill()
    raise AssertionError(f"no JSON line within {STARTUP_DEADLINE}s: {proc.stderr.read()}")


def _stop(proc: subprocess.Popen, sig: int = signal.SIGTERM) -> tuple[int, str, str]:
    proc.send_signal(sig)
    out, err = proc.communicate(timeout=30)
    return proc.returncode, out, err


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_prints_one_json_line_serves_and_exits_0_on_signal(sig):
    proc = _launch("--port", "0", "--data", "empty")
    try:
        line = _first_line(proc)
        assert set(line) == {"url", "token", "api"}
        assert line["url"].startswith("http://127.0.0.1:")
        assert line["api"] == line["url"] + "/api/data/v9.2/"
        # it accepts requests as soon as the line is out
        r = httpx.get(line["api"] + "WhoAmI", headers={"Authorization": f"Bearer {line['token']}"})
        assert r.status_code == 200
    finally:
        code, rest, err = _stop(proc, sig)
    assert code == 0
    assert rest == ""  # exactly one line on stdout: the logs go to stderr
    assert "sandbox serving" in err


def test_given_token_and_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = _launch("--port", str(port), "--token", "t0ken", "--data", "empty")
    try:
        line = _first_line(proc)
        assert line["token"] == "t0ken"
        assert line["url"] == f"http://127.0.0.1:{port}"
    finally:
        assert _stop(proc)[0] == 0


def test_db_persists_across_restarts(tmp_path):
    db = str(tmp_path / "org.sqlite")
    proc = _launch("--db", db, "--data", "empty", "--token", "t")
    try:
        line = _first_line(proc)
        headers = {"Authorization": "Bearer t"}
        r = httpx.post(line["api"] + "accounts", json={"name": "Persisted"}, headers=headers)
        assert r.status_code == 204
        entity = r.headers["OData-EntityId"]
        caller = httpx.get(line["api"] + "WhoAmI", headers=headers).json()["UserId"]
    finally:
        assert _stop(proc)[0] == 0
    proc = _launch("--db", db, "--token", "t")
    try:
        line = _first_line(proc)
        url = line["api"] + entity.split("/api/data/v9.2/")[1]
        record = httpx.get(url, headers=headers)
        assert record.status_code == 200
        assert record.json()["name"] == "Persisted"
        assert httpx.get(line["api"] + "WhoAmI", headers=headers).json()["UserId"] == caller
    finally:
        assert _stop(proc)[0] == 0


def test_bad_option_is_a_one_line_error():
    proc = subprocess.run(
        [sys.executable, "-m", "d365nb.cli", "sandbox", "--data", "full"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2
    assert proc.stdout == ""
    assert "invalid choice" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_port_in_use_is_a_one_line_error():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen(1)
        port = s.getsockname()[1]
        proc = subprocess.run(
            [sys.executable, "-m", "d365nb.cli", "sandbox", "--port", str(port), "--data", "empty"],
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert proc.returncode == 2
    assert proc.stdout == ""
    assert f"cannot listen on 127.0.0.1:{port}" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_limits_faults_and_seed_options_reach_the_running_sandbox():
    proc = _launch(
        "--data", "empty", "--limits", "requests=3,window=300", "--faults", "503=1", "--seed", "7"
    )
    try:
        line = _first_line(proc)
        auth = {"Authorization": f"Bearer {line['token']}"}
        control = line["url"] + "/_sandbox/faults"
        assert httpx.get(line["api"] + "WhoAmI", headers=auth).status_code == 503
        shown = httpx.get(control, headers=auth).json()
        assert shown["faults"]["unavailable"] == 1.0 and shown["seed"] == 7
        # switched off over HTTP, as a script driving a CLI sandbox does
        assert httpx.put(control, headers=auth, json={"faults": None}).status_code == 200
        # three requests are within the limit; the fourth exceeds it (faulted ones never
        # reached the limiter)
        statuses = [httpx.get(line["api"] + "WhoAmI", headers=auth) for _ in range(4)]
        assert [r.status_code for r in statuses] == [200, 200, 200, 429]
        assert statuses[-1].json()["error"]["code"] == "0x80072322"
        assert int(statuses[-1].headers["Retry-After"]) >= 1
    finally:
        code, _, _ = _stop(proc)
    assert code == 0


@pytest.mark.parametrize("kind", ["missing directory", "not a database"])
def test_unusable_db_is_a_one_line_error(tmp_path, kind):
    path = tmp_path / "nowhere" / "x.db"
    if kind == "not a database":
        path = tmp_path / "garbage.db"
        path.write_text("this is not SQLite\n" * 100)
    proc = _launch("--db", str(path))
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 2
    assert out == ""
    assert "Traceback" not in err
    assert len(err.strip().splitlines()) == 1
    assert "cannot open the sandbox database" in err
