"""``d365nb demo``: the README's first command, run as a user would - a subprocess on a machine
with nothing set up (no org, no token, an empty working folder)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from d365nb.cli import main
from d365nb.demo_cli import LEADS


def run_demo(*args: str, cwd) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AZURE_", "D365NB_"))}
    # The installed console script, as the README runs it (the module when not installed).
    script = shutil.which("d365nb", path=str(Path(sys.executable).parent))
    command = [script] if script else [sys.executable, "-m", "d365nb.cli"]
    return subprocess.run(
        [*command, "demo", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.slow
def test_demo_creates_leads_and_the_flow_creates_their_tasks(tmp_path):
    done = run_demo(cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert "sandbox: http://127.0.0.1:" in out
    tasks = out.split("tasks created by the flow:")[1].split("run history")[0]
    for lead in LEADS[:3]:
        assert f"lead created: {lead['subject']}" in out
        # The task's subject is the lead's Topic, regarding the lead.
        assert f"{lead['subject']!r} regarding lead" in tasks
    history = out.split("run history")[1].splitlines()
    succeeded = [line for line in history if " Succeeded " in line]
    assert len(succeeded) == 3
    assert out.count("  create_task: Succeeded") == 3  # each run logged as it finished
    assert "done in" in out and "3 lead(s), 3 task(s)" in out
    assert list(tmp_path.iterdir()) == []  # leaves nothing behind by default


@pytest.mark.slow
def test_demo_keeps_its_history_with_dir(tmp_path, capsys):
    done = run_demo("--leads", "1", "--dir", str(tmp_path / "demo"), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "demo" / ".d365nb" / "flows.sqlite").is_file()
    # Read back by `d365nb flow runs` (in this process: the demo's process is the one under test).
    assert main(["flow", "runs", "--dir", str(tmp_path / "demo")]) == 0
    runs = capsys.readouterr().out
    assert "lead_to_task" in runs and "Succeeded" in runs


def test_bad_lead_count_is_one_line(capsys):
    assert main(["demo", "--leads", "0"]) == 2
    assert capsys.readouterr().err.strip() == f"d365nb demo: --leads must be 1 to {len(LEADS)}"
