"""The flow store on disk (issue 12 item 11): ``.d365nb/`` is private to its owner (0700),
``flows.sqlite`` and its ``-wal``/``-shm`` are 0600 whatever the umask, an older loose store is
tightened when opened; run history is bounded - the newest ``keep_runs`` finished runs per flow
(default 1000) and optionally ``keep_days`` - pruned as runs finish, never an owed run."""

from __future__ import annotations

import os
import stat
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from d365nb.flows import Flow
from d365nb.flows.history import KEEP_RUNS, Change, History, StepRecord


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def loose_umask():
    old = os.umask(0)  # the worst case: everything would be world-writable
    yield
    os.umask(old)


def test_store_is_private_whatever_the_umask(tmp_path, loose_umask):
    store = History(tmp_path / ".d365nb" / "flows.sqlite")
    store.save_flow("f", {"name": "f"})
    store.set_checkpoint("f", {"position": [1]})
    folder = tmp_path / ".d365nb"
    assert mode(folder) == 0o700
    files = [folder / name for name in ("flows.sqlite", "flows.sqlite-wal", "flows.sqlite-shm")]
    assert all(f.exists() for f in files)
    assert [mode(f) for f in files] == [0o600, 0o600, 0o600]


def test_a_loose_store_from_an_earlier_version_is_tightened(tmp_path):
    folder = tmp_path / ".d365nb"
    History(folder / "flows.sqlite").save_flow("f", {"name": "f"})
    os.chmod(folder, 0o755)
    for name in ("flows.sqlite", "flows.sqlite-wal", "flows.sqlite-shm"):
        if (folder / name).exists():
            os.chmod(folder / name, 0o644)
    reopened = History(folder / "flows.sqlite")
    assert reopened.flow_definition("f") == {"name": "f"}
    assert mode(folder) == 0o700 and mode(folder / "flows.sqlite") == 0o600


def test_the_trigger_magic_creates_a_private_store(shell, tmp_path):
    from tests.support.shells import run_cell

    run_cell(shell, "%d365 trigger private created leads --every 1h")
    assert mode(tmp_path / ".d365nb") == 0o700
    assert mode(tmp_path / ".d365nb" / "flows.sqlite") == 0o600


def test_a_history_in_a_folder_of_the_users_keeps_that_folder_as_it_was(tmp_path):
    folder = tmp_path / "shared"
    folder.mkdir(mode=0o755)
    os.chmod(folder, 0o755)
    History(folder / "flows.sqlite").save_flow("f", {"name": "f"})
    assert mode(folder) == 0o755  # not ours to change; the file itself is private
    assert mode(folder / "flows.sqlite") == 0o600


def test_runs_are_pruned_as_they_finish_keeping_the_newest(tmp_path, d365):
    assert KEEP_RUNS == 1000  # the documented default
    store = History(tmp_path / ".d365nb" / "flows.sqlite", keep_runs=3)
    flow = Flow("pruned", d365, history=store).on_created("leads", every="1h")
    flow.step("echo", "trigger['subject']")
    tag = uuid.uuid4().hex[:8]
    lead = d365.create("leads", {"subject": tag, "lastname": "Prune"})
    # An owed run (found, not yet finished) is never pruned.
    owed = store.add_run(
        "pruned", Change(lead, "k-owed", "created", {}), "trigger", org=flow.organisation()
    )
    ids = [flow.test(lead).run_id for _ in range(5)]
    runs = flow.runs()
    assert list(runs.run_id) == [*reversed(ids[-3:]), owed.run_id]
    assert store.pending_runs("pruned")[0].run_id == owed.run_id
    db = store._db()
    kept_steps = {r[0] for r in db.execute("SELECT DISTINCT run_id FROM steps")}
    assert kept_steps == set(ids[-3:])  # the pruned runs' step detail went with them
    # Other flows in the same store keep their own count.
    other = Flow("other", d365, history=store).on_created("leads", every="1h")
    other.step("echo", "1")
    other.test(lead)
    assert len(other.runs()) == 1 and len(flow.runs()) == 4


def test_runs_older_than_keep_days_are_pruned(tmp_path):
    store = History(tmp_path / "flows.sqlite", keep_days=7)
    old = (datetime.now(UTC) - timedelta(days=8)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    recent = (datetime.now(UTC) - timedelta(days=6)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    rows = [store.add_run("f", Change(str(i), f"k{i}", "created", {}), "test") for i in range(3)]
    step = [StepRecord("s", "Succeeded")]
    store.finish_run(rows[0].run_id, "Succeeded", None, step, old, old)
    store.finish_run(rows[1].run_id, "Failed", "x", step, recent, recent)
    assert [r["run_id"] for r in store.runs("f")] == [rows[2].run_id, rows[1].run_id]


@pytest.mark.parametrize("value", ["0", "-3", "nan", "lots"])
def test_a_bad_retention_setting_is_refused_in_one_line(tmp_path, monkeypatch, value):
    monkeypatch.setenv("D365NB_FLOW_KEEP_RUNS", value)
    with pytest.raises(ValueError) as err:
        History(tmp_path / "flows.sqlite")
    assert "D365NB_FLOW_KEEP_RUNS" in str(err.value) and "\n" not in str(err.value)


def test_retention_from_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("D365NB_FLOW_KEEP_RUNS", "2")
    monkeypatch.setenv("D365NB_FLOW_KEEP_DAYS", "1.5")
    store = History(tmp_path / "flows.sqlite")
    assert (store.keep_runs, store.keep_days) == (2, 1.5)
