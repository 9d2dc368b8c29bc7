"""One flow, one runner (issue 12 item 3): a started flow holds a lease with a heartbeat in its
``flows.sqlite``. A second kernel or ``d365nb flow run`` on the same flow is refused with one
line naming the holder (host, pid, since when); a holder killed with SIGKILL stops renewing, its
lease expires after three heartbeats and the next runner takes over - and runs what was owed.

The heartbeat is shortened for the test with ``D365NB_FLOW_LEASE_HEARTBEAT`` (the real default
is 5 s, expiry 15 s).
"""

from __future__ import annotations

import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
import uuid
from pathlib import Path

import nbformat
import pytest

from d365nb.flows import Flow, FlowError, headless
from d365nb.flows.history import History
from tests.support.waiting import wait_for

HEARTBEAT = "1"  # seconds; expiry = 3 beats (short for the test, long enough for a busy CI box)

STEP = """\
import os
with open(os.environ["LEASE_LOG"], "a") as log:
    log.write(f"{os.getpid()} {trigger['leadid']}\\n")
trigger["leadid"]
"""


def write_notebook(path: Path, tag: str) -> Path:
    nb = nbformat.v4.new_notebook()
    nb.cells = [
        nbformat.v4.new_code_cell(
            f"%d365 trigger leased created leads --every 1s --filter \"startswith(subject,'{tag}')\""
        ),
        nbformat.v4.new_code_cell(f"%%d365 action leased note\n{STEP}"),
    ]
    nbformat.write(nb, path)
    return path


def runner(notebook: Path, sandbox_handle, log: Path) -> subprocess.Popen:
    """``d365nb flow run NOTEBOOK --org URL`` in a process of its own."""
    env = {
        **os.environ,
        "D365NB_TOKEN": sandbox_handle.token,
        "D365NB_FLOW_LEASE_HEARTBEAT": HEARTBEAT,
        "LEASE_LOG": str(log),
    }
    return subprocess.Popen(
        [sys.executable, "-m", "d365nb.cli", "flow", "run", str(notebook), "--org",
         sandbox_handle.url],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )  # fmt: skip


def read(store: Path, sql: str, *params: object) -> tuple | None:
    """One row from the store, read the way another process would (and closed again)."""
    if not store.exists():
        return None
    db = sqlite3.connect(f"file:{store}?mode=ro", uri=True, timeout=30)
    try:
        return db.execute(sql, params).fetchone()
    except sqlite3.OperationalError:  # not created yet
        return None
    finally:
        db.close()


def holder_pid(store: Path) -> int | None:
    row = read(store, "SELECT pid FROM leases WHERE flow='leased'")
    return row[0] if row else None


def polled(store: Path) -> bool:
    """The flow has polled once: its start point ("since now") is stored, so a lead created
    from here on is new to it (one created while it was starting may count as existing)."""
    row = read(store, "SELECT COUNT(*) FROM checks WHERE flow='leased'")
    return row is not None and row[0] > 0


def lease_expired(store: Path) -> bool:
    row = read(store, "SELECT expires FROM leases WHERE flow='leased'")
    return row is None or row[0] <= time.time()


def finished(store: Path, lead: str) -> bool:
    """The run for ``lead`` is stored as finished (a run killed before that is owed, and the
    next runner executes it again - at-least-once)."""
    row = read(store, "SELECT status FROM runs WHERE record_id=?", lead)
    return row is not None and row[0] == "Succeeded"


def handled(log: Path) -> list[tuple[int, str]]:
    if not log.exists():
        return []
    return [(int(p), lead) for p, lead in (ln.split() for ln in log.read_text().splitlines())]


@pytest.mark.slow
def test_second_runner_is_refused_and_takes_over_once_the_holder_is_killed(
    tmp_path, sandbox_handle, d365, monkeypatch
):
    tag = uuid.uuid4().hex[:8]
    notebook = write_notebook(tmp_path / "leased.ipynb", tag)
    store = tmp_path / ".d365nb" / "flows.sqlite"
    log = tmp_path / "handled.log"
    first = runner(notebook, sandbox_handle, log)
    others: list[subprocess.Popen] = []
    try:
        wait_for(lambda: holder_pid(store) == first.pid, timeout=60, what="the first runner")
        wait_for(lambda: polled(store), timeout=60, what="the first runner's first poll")

        # A second `d365nb flow run` (started now; its answer is read below, so that its start
        # overlaps the kernel's refusal and lead 1 - which it must not run either).
        second = runner(notebook, sandbox_handle, log)
        others.append(second)

        # A "kernel" (this process) is refused, and its definition is untouched.
        monkeypatch.setenv("D365NB_FLOW_LEASE_HEARTBEAT", HEARTBEAT)
        [kernel_flow] = headless.load_flows(notebook, d365)
        with pytest.raises(FlowError) as refused:
            kernel_flow.start()
        assert f"pid {first.pid}" in str(refused.value) and not kernel_flow.running

        # Only the holder runs the flow.
        lead1 = d365.create("leads", {"subject": f"{tag} one", "lastname": "One"})
        wait_for(lambda: finished(store, lead1), timeout=60, what="the holder to run lead 1")

        # The second runner: one line naming who holds the flow, exit 2, no start.
        out, err = second.communicate(timeout=60)
        assert second.returncode == 2, (out, err)
        line = err.strip()
        assert "\n" not in line, err
        assert line.startswith("d365nb flow run: flow leased is already running on host ")
        assert f"{socket.gethostname()}, pid {first.pid}, since " in line
        assert "running:" not in out  # it never said it was running
        assert handled(log) == [(first.pid, lead1)]

        # SIGKILL: no cleanup, the lease stays in the file until it expires.
        first.kill()
        first.wait(10)
        killed_at = time.monotonic()
        assert holder_pid(store) == first.pid
        # The next runner is started once the dead holder's lease has run out (started before,
        # it is refused like the second one - that refusal is checked above).
        wait_for(
            lambda: lease_expired(store), timeout=30, what="the killed holder's lease to expire"
        )
        third = runner(notebook, sandbox_handle, log)
        others.append(third)
        wait_for(lambda: holder_pid(store) == third.pid, timeout=60, what="the takeover")
        assert time.monotonic() - killed_at < 30  # expiry is 3 x 1 s, not the 15 s default
        lead2 = d365.create("leads", {"subject": f"{tag} two", "lastname": "Two"})
        wait_for(lambda: finished(store, lead2), timeout=60, what="the new holder to run lead 2")
        assert handled(log) == [(first.pid, lead1), (third.pid, lead2)]

        # A clean stop gives the lease back at once.
        third.send_signal(signal.SIGTERM)
        third.communicate(timeout=30)
        assert third.returncode == 0 and holder_pid(store) is None
    finally:
        for proc in (first, *others):
            if proc.poll() is None:
                proc.kill()
            out, err = proc.communicate(timeout=10)
            print(f"runner {proc.pid} said:\n{out}\n{err}")  # shown if the test fails


def test_a_live_lease_is_refused_an_expired_one_taken_over(tmp_path):
    store = History(tmp_path / ".d365nb" / "flows.sqlite")
    assert store.acquire_lease("f", "hostA:1:aa", "hostA", 1, ttl=30) is None
    held = store.acquire_lease("f", "hostB:2:bb", "hostB", 2, ttl=30)
    assert held is not None and (held["host"], held["pid"]) == ("hostA", 1)
    assert store.renew_lease("f", "hostA:1:aa", ttl=0.05)  # the holder beats, briefly
    time.sleep(0.1)  # ...then dies
    assert store.acquire_lease("f", "hostB:2:bb", "hostB", 2, ttl=30) is None
    assert store.lease("f")["pid"] == 2
    assert not store.renew_lease("f", "hostA:1:aa", ttl=30)  # the old holder has lost it
    store.release_lease("f", "hostA:1:aa")  # releasing what is not yours changes nothing
    assert store.lease("f")["pid"] == 2


def test_a_runner_that_lost_its_lease_stops(tmp_path, d365, monkeypatch):
    monkeypatch.setenv("D365NB_FLOW_LEASE_HEARTBEAT", "0.1")
    store = History(tmp_path / ".d365nb" / "flows.sqlite")
    flow = Flow("lost", d365, history=store).on_created("leads", every="1h")
    flow.step("noop", "1")
    flow.start()
    assert flow.running
    # Another runner took over (this one was presumed dead, e.g. a laptop asleep).
    with store._tx() as db:
        db.execute("UPDATE leases SET holder='elsewhere:9:zz', pid=9 WHERE flow='lost'")
    wait_for(lambda: not flow.running, timeout=10, what="the flow to step aside")
    assert flow.state == "Stopped" and store.lease("lost")["pid"] == 9


def test_bad_heartbeat_setting_is_refused(tmp_path, d365, monkeypatch):
    for bad in ("nan", "-1", "0", "soon"):
        monkeypatch.setenv("D365NB_FLOW_LEASE_HEARTBEAT", bad)
        flow = Flow("beat", d365, history=tmp_path / "f.sqlite").on_created("leads", every="1h")
        flow.step("noop", "1")
        with pytest.raises(FlowError, match="D365NB_FLOW_LEASE_HEARTBEAT"):
            flow.start()


EXITS = """
import os, sys
import d365nb
from d365nb.flows import Flow
conn = d365nb.connect(os.environ["D365NB_URL"], token=os.environ["D365NB_TOKEN"])
flow = Flow("exits", conn, history=sys.argv[1]).on_created("leads", every="1h")
flow.step("noop", "1").start()
print("pid", os.getpid(), flush=True)
sys.exit(0)  # a clean exit (a kernel restart) without stopping the flow
"""


def test_a_clean_exit_gives_the_lease_back_at_once(tmp_path, sandbox_handle):
    store = tmp_path / ".d365nb" / "flows.sqlite"
    env = {**os.environ, "D365NB_URL": sandbox_handle.url, "D365NB_TOKEN": sandbox_handle.token}
    proc = subprocess.run(
        [sys.executable, "-c", EXITS, str(store)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0 and proc.stdout.startswith("pid"), proc.stderr
    assert History(store).lease("exits") is None  # not held for 15 s by a process that is gone
