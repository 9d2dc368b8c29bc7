"""``d365nb flow run <notebook>``: a notebook's flows without Jupyter, from its trigger and
action cells, sharing the notebook's checkpoint and run history; ``d365nb flow runs``."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import uuid
from pathlib import Path

import nbformat
import pytest

from d365nb.cli import main
from d365nb.demo_cli import ACTION_BODY
from d365nb.flows import FlowError, flows, headless
from tests.support.flows import d365, sandbox_handle
from tests.support.shells import connected
from tests.support.waiting import wait_for

__all__ = ["d365", "sandbox_handle"]  # fixtures: a module-scoped empty sandbox, a connection

# The demo's action (a task for each new lead, printing "task <id> for lead <id>").
ACTION = ACTION_BODY


def write_notebook(path: Path, tag: str, name: str = "handoff") -> Path:
    nb = nbformat.v4.new_notebook()
    nb.cells = [
        nbformat.v4.new_markdown_cell("# A flow that moves to the terminal"),
        nbformat.v4.new_code_cell("%load_ext d365nb\n%d365 connect sandbox"),
        nbformat.v4.new_code_cell(
            f"%d365 trigger {name} created leads --every 1s "
            f"--filter \"startswith(subject,'{tag}')\""
        ),
        nbformat.v4.new_code_cell(f"%%d365 action {name} create_task\n{ACTION}"),
        # Headless never runs other cells: this one would fail the run if it did.
        nbformat.v4.new_code_cell("raise RuntimeError('headless must not run this cell')"),
        nbformat.v4.new_code_cell(f"%d365 flow start {name}"),
    ]
    nbformat.write(nb, path)
    return path


def runs_of(folder: Path, flow: str) -> list[tuple[str, str]]:
    path = folder / ".d365nb" / "flows.sqlite"
    if not path.exists():
        return []
    with sqlite3.connect(path) as db:
        return db.execute(
            "SELECT record_id, status FROM runs WHERE flow=? ORDER BY seq", (flow,)
        ).fetchall()


def tasks_for(d365, lead_id: str) -> list[str]:
    return list(d365.list("tasks", filter=f"_regardingobjectid_value eq {lead_id}").subject)


def cli(*args: str, env: dict | None = None, **kwargs) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "d365nb.cli", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, **(env or {})},
        **kwargs,
    )


def test_reads_trigger_lines_and_action_cells_only(tmp_path):
    cells = headless.read_notebook(write_notebook(tmp_path / "nb.ipynb", "x"))
    assert cells.names == ["handoff"]
    assert cells.triggers == [
        ("handoff", "handoff created leads --every 1s --filter \"startswith(subject,'x')\"")
    ]
    [(name, line, body)] = cells.actions
    assert (name, line) == ("handoff", "handoff create_task") and body.startswith("subject =")


def test_reads_what_nbformat_reads_and_older_versions_through_it(tmp_path):
    """Version 4 files are read as plain JSON (multi-line sources stored as lists of lines);
    a version 3 notebook still goes through nbformat's conversion."""
    path = write_notebook(tmp_path / "nb.ipynb", "x")
    assert isinstance(json.loads(path.read_text())["cells"][3]["source"], list)
    expected = [c.source for c in nbformat.read(path, as_version=4).cells if c.cell_type == "code"]
    cells = headless.read_notebook(path)
    assert [body for _, _, body in cells.actions] == [expected[2].partition("\n")[2]]
    old = nbformat.v3.new_notebook(
        worksheets=[
            nbformat.v3.new_worksheet(
                cells=[
                    nbformat.v3.new_code_cell(input="%d365 trigger old created leads --every 1h"),
                    nbformat.v3.new_code_cell(input="%%d365 action old s\nprint(1)\n1"),
                ]
            )
        ]
    )
    (tmp_path / "v3.ipynb").write_text(nbformat.writes(old, version=3))
    cells = headless.read_notebook(tmp_path / "v3.ipynb")
    assert cells.triggers == [("old", "old created leads --every 1h")]
    assert cells.actions == [("old", "old s", "print(1)\n1")]


def test_flows_built_headless_match_the_notebook_definition(tmp_path, d365):
    built = headless.load_flows(write_notebook(tmp_path / "nb.ipynb", "x"), d365)
    [flow] = built
    assert flow.history.path == tmp_path / ".d365nb" / "flows.sqlite"
    assert flow.trigger.kind == "created" and flow.trigger.every == 1.0
    assert flow.trigger.filter == "startswith(subject,'x')"
    assert [(s.name, s.kind) for s in flow.steps] == [("create_task", "python")]
    assert flow.history.flow_definition("handoff")["steps"][0]["source"].strip() == ACTION.strip()


def test_headless_and_kernel_build_the_same_definition(
    tmp_path, sandbox_handle, d365, bare_shell, monkeypatch
):
    """Same definition = same checkpoint signature: what lets a flow change hands."""
    notebook = write_notebook(tmp_path / "nb.ipynb", "same")
    [flow] = headless.load_flows(notebook, d365)
    terminal = flow.definition()
    flows.clear()
    monkeypatch.chdir(tmp_path)
    with connected(bare_shell, sandbox_handle, "kernel"):
        for cell in nbformat.read(notebook, as_version=4).cells[2:4]:
            assert bare_shell.run_cell(cell.source).success
        assert flows["handoff"].definition() == terminal


@pytest.mark.slow
def test_a_flow_moves_from_notebook_to_terminal_without_missing_or_repeating(
    tmp_path, sandbox_handle, d365
):
    tag = uuid.uuid4().hex[:8]
    notebook = write_notebook(tmp_path / "handoff.ipynb", tag)
    # 1. In the "kernel": the same cells, started in-process; two leads are handled here.
    [flow] = headless.load_flows(notebook, d365)
    flow.start()
    first = [
        d365.create("leads", {"subject": f"{tag} first {i}", "lastname": "A"}) for i in range(2)
    ]
    wait_for(lambda: len([r for r in runs_of(tmp_path, "handoff") if r[1] == "Succeeded"]) == 2)
    flow.stop()
    # 2. While nobody runs the flow, more leads arrive.
    while_stopped = [
        d365.create("leads", {"subject": f"{tag} gap {i}", "lastname": "B"}) for i in range(2)
    ]
    # 3. The terminal takes over from the notebook's checkpoint.
    proc = cli(
        "flow",
        "run",
        str(notebook),
        "--org",
        sandbox_handle.url,
        env={"D365NB_TOKEN": sandbox_handle.token},
    )
    try:
        wait_for(lambda: len(runs_of(tmp_path, "handoff")) >= 4, what="the backlog runs")
        later = d365.create("leads", {"subject": f"{tag} later", "lastname": "C"})
        wait_for(
            lambda: [
                r for r in runs_of(tmp_path, "handoff") if r[0] == later and r[1] == "Succeeded"
            ],
            what="the run for a lead created while headless",
        )
    finally:
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    leads = [*first, *while_stopped, later]
    runs = runs_of(tmp_path, "handoff")
    assert sorted(r[0] for r in runs) == sorted(leads)  # none missed, none repeated
    assert all(status == "Succeeded" for _, status in runs)
    for lead in leads:
        assert len(tasks_for(d365, lead)) == 1
    # Each headless run is logged with its step output; the first two ran in-process.
    for lead in [*while_stopped, later]:
        assert f"Succeeded: created record {lead}" in out
        assert f"for lead {lead}" in out
    assert first[0] not in out
    assert "stopped: handoff" in out
    assert sandbox_handle.token not in out + err


def test_sigterm_stops_a_sandbox_run_cleanly(tmp_path):
    notebook = write_notebook(tmp_path / "nb.ipynb", "x")
    proc = cli("flow", "run", str(notebook), "--sandbox")
    try:
        assert "1 flow(s) on an embedded sandbox" in proc.stdout.readline()
        assert "flow handoff running" in proc.stdout.readline()
    finally:
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    assert "stopped: handoff" in out


def test_a_notebook_without_flows_is_one_line_error(tmp_path):
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell("%d365 connect sandbox\n%d365 list leads")]
    nbformat.write(nb, tmp_path / "plain.ipynb")
    proc = cli("flow", "run", str(tmp_path / "plain.ipynb"), "--sandbox")
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 2
    assert err.strip() == (
        "d365nb flow run: plain.ipynb defines no flows: it has no %d365 trigger cell"
    )
    assert not (tmp_path / ".d365nb").exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["missing.ipynb", "--sandbox"], "no notebook at missing.ipynb"),
        (["nb.ipynb", "--sandbox", "--flow", "ghost"], "unknown flow 'ghost' in nb.ipynb"),
        (["broken.ipynb", "--sandbox"], "broken.ipynb is not a readable notebook"),
    ],
)
def test_bad_run_input_is_one_line(tmp_path, monkeypatch, capsys, args, message):
    monkeypatch.chdir(tmp_path)
    write_notebook(tmp_path / "nb.ipynb", "x")
    (tmp_path / "broken.ipynb").write_text("{not json")
    assert main(["flow", "run", *args]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and "\n" not in err


def test_org_or_sandbox_is_required(tmp_path, capsys):
    with pytest.raises(SystemExit):
        main(["flow", "run", str(tmp_path / "nb.ipynb")])
    assert "one of the arguments --org --sandbox is required" in capsys.readouterr().err


def test_flow_runs_prints_the_history(tmp_path, d365, capsys):
    tag = uuid.uuid4().hex[:8]
    [flow] = headless.load_flows(write_notebook(tmp_path / "nb.ipynb", tag), d365)
    flow.start()
    lead = d365.create("leads", {"subject": f"{tag} printed", "lastname": "D"})
    wait_for(lambda: runs_of(tmp_path, "handoff") == [(lead, "Succeeded")])
    flow.stop()
    assert main(["flow", "runs", "--dir", str(tmp_path)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == [
        "flow", "run", "status", "change", "record", "started", "seconds", "org", "error"
    ]  # fmt: skip
    assert lines[1].split()[:5] == [
        "handoff",
        flow.runs().run_id.iloc[0],
        "Succeeded",
        "created",
        lead,
    ]
    assert main(["flow", "runs", "--dir", str(tmp_path), "--flow", "ghost"]) == 2
    assert "no runs of flow 'ghost'" in capsys.readouterr().err


def test_flow_runs_without_history_is_one_line(tmp_path, capsys):
    assert main(["flow", "runs", "--dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("d365nb flow runs: no flow history in") and "\n" not in err


def test_a_fresh_sandbox_does_not_inherit_an_old_watermark(tmp_path, d365):
    [flow] = headless.load_flows(write_notebook(tmp_path / "nb.ipynb", "x"), d365)
    flow.history.set_checkpoint("handoff", {"signature": {"stale": True}})
    assert headless.forget_sandbox_state(flow) == 0
    assert flow.history.checkpoint("handoff") is None


def test_load_refuses_a_notebook_without_triggers(tmp_path, d365):
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell("%%d365 action orphan step\n1")]
    nbformat.write(nb, tmp_path / "orphan.ipynb")
    with pytest.raises(FlowError, match="orphan.ipynb defines no flows"):
        headless.load_flows(tmp_path / "orphan.ipynb", d365)


def test_a_flow_built_with_the_python_api_runs_from_the_notebook_store(tmp_path, d365):
    from d365nb.flows import Flow

    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell("flow = Flow('api_flow', d365).on_created('leads')")]
    nbformat.write(nb, tmp_path / "api.ipynb")
    store = headless.history_beside(tmp_path / "api.ipynb")
    Flow("api_flow", d365, history=store).on_created("leads", every="2s").step(
        "get_lead", "get leads {trigger[leadid]}"
    )
    flows.clear()
    [flow] = headless.load_flows(tmp_path / "api.ipynb", d365, only="api_flow")
    assert flow.trigger.every == 2.0 and [s.name for s in flow.steps] == ["get_lead"]
    with pytest.raises(FlowError, match="unknown flow 'ghost' in api.ipynb"):
        headless.load_flows(tmp_path / "api.ipynb", d365, only="ghost")


@pytest.mark.slow
def test_sigterm_does_not_wait_for_a_blocked_step(tmp_path):
    nb = nbformat.v4.new_notebook()
    nb.cells = [
        nbformat.v4.new_code_cell("%d365 trigger nap created leads --every 1s --since beginning"),
        nbformat.v4.new_code_cell(
            "%%d365 action nap sleep\nimport time\nopen('step-started', 'w').close()\ntime.sleep(120)"
        ),
    ]
    nbformat.write(nb, tmp_path / "nap.ipynb")
    proc = cli("flow", "run", str(tmp_path / "nap.ipynb"), "--sandbox", cwd=tmp_path)
    try:
        wait_for(lambda: (tmp_path / "step-started").exists(), what="the step to start")
    finally:
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=30)  # not the step's 120 s
    assert proc.returncode == 0, err
    assert "a step was still running; its run stays queued for the next start" in err
    # The interrupted run is still owed: the next start runs it again.
    assert any(status in ("Running", "Queued") for _, status in runs_of(tmp_path, "nap"))
    assert not any(status == "Succeeded" for _, status in runs_of(tmp_path, "nap"))

    # The next --sandbox run is a new organisation (a new in-memory sandbox): it says so, does
    # not apply the old checkpoint, and closes the run owed to the gone one instead of running
    # it against records that do not exist here.
    owed = [rid for rid, status in runs_of(tmp_path, "nap") if status in ("Running", "Queued")]
    (tmp_path / "step-started").unlink()
    again = cli("flow", "run", str(tmp_path / "nap.ipynb"), "--sandbox", cwd=tmp_path)
    try:
        wait_for(lambda: (tmp_path / "step-started").exists(), what="the step to start again")
    finally:
        again.send_signal(signal.SIGTERM)
        out, err = again.communicate(timeout=30)
    notice = [line for line in out.splitlines() if "its checkpoint was taken on" in line]
    assert len(notice) == 1 and notice[0].endswith("starting from --since beginning"), out
    with sqlite3.connect(tmp_path / ".d365nb" / "flows.sqlite") as db:
        closed = db.execute(
            "SELECT status, error FROM runs WHERE record_id=? ORDER BY seq LIMIT 1", (owed[0],)
        ).fetchone()
    assert closed[0] == "Cancelled" and "queued on organisation" in closed[1]


def test_a_bad_cell_leaves_the_notebook_store_as_it_was(tmp_path, d365):
    good = write_notebook(tmp_path / "nb.ipynb", "x")
    [flow] = headless.load_flows(good, d365)
    stored = flow.history.flow_definition("handoff")
    flows.clear()
    nb = nbformat.read(good, as_version=4)
    nb.cells[2].source = "%d365 trigger handoff created nosuchtable --every 1s"
    nbformat.write(nb, good)
    with pytest.raises(Exception, match="nosuchtable"):
        headless.load_flows(good, d365)
    assert headless.history_beside(good).flow_definition("handoff") == stored
    assert "handoff" not in flows


def test_a_step_alias_must_name_the_one_connection_a_headless_run_has(tmp_path, d365):
    """Headless there is one organisation: a declarative step's --alias for another connection
    is refused (one line) instead of silently writing to that one organisation."""

    def notebook(alias: str) -> Path:
        nb = nbformat.v4.new_notebook()
        nb.cells = [
            nbformat.v4.new_code_cell(
                "%d365 trigger al created leads --every 1h --connection main"
            ),
            nbformat.v4.new_code_cell(
                f"%%d365 action al task\ncreate tasks subject=x --alias {alias}"
            ),
        ]
        nbformat.write(nb, tmp_path / "al.ipynb")
        return tmp_path / "al.ipynb"

    with pytest.raises(FlowError) as err:
        headless.load_flows(notebook("other"), d365)
    assert "--alias other names a connection this headless run does not have" in str(err.value)
    assert "\n" not in str(err.value)
    flows.clear()
    [flow] = headless.load_flows(notebook("main"), d365)
    assert [s.name for s in flow.steps] == ["task"]
