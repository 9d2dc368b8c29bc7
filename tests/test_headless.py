"""``d365nb flow run <notebook>``: a notebook's flows without Jupyter, from its trigger and
action cells, sharing the notebook's checkpoint and run history; ``d365nb flow runs``."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
import uuid
from pathlib import Path

import nbformat
import pytest

from d365nb.cli import main
from d365nb.flows import FlowError, flows, headless

ACTION = """\
subject = trigger["subject"] or trigger["lastname"]
task_id = d365.create("tasks", {"subject": subject,
                                "regardingobjectid": f"leads({trigger['leadid']})"})
print(f"task {task_id} for lead {trigger['leadid']}")
task_id
"""


def wait_for(predicate, timeout: float = 30.0, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


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


@pytest.fixture(autouse=True)
def _forget_flows():
    yield
    for flow in list(flows.values()):
        flow.stop()
    flows.clear()


@pytest.fixture(scope="module")
def org():
    from d365nb import sandbox

    with sandbox.start(data="empty") as handle:
        yield handle


@pytest.fixture(scope="module")
def d365(org):
    import d365nb

    conn = d365nb.connect(org.url, token=org.token, alias="headless-tests")
    yield conn
    conn.close()


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


def test_flows_built_headless_match_the_notebook_definition(tmp_path, d365):
    built = headless.load_flows(write_notebook(tmp_path / "nb.ipynb", "x"), d365)
    [flow] = built
    assert flow.history.path == tmp_path / ".d365nb" / "flows.sqlite"
    assert flow.trigger.kind == "created" and flow.trigger.every == 1.0
    assert flow.trigger.filter == "startswith(subject,'x')"
    assert [(s.name, s.kind) for s in flow.steps] == [("create_task", "python")]
    assert flow.history.flow_definition("handoff")["steps"][0]["source"].strip() == ACTION.strip()


def test_headless_and_kernel_build_the_same_definition(tmp_path, org, d365, monkeypatch):
    """Same definition = same checkpoint signature: what lets a flow change hands."""
    from IPython.testing import globalipapp

    notebook = write_notebook(tmp_path / "nb.ipynb", "same")
    [flow] = headless.load_flows(notebook, d365)
    terminal = flow.definition()
    flows.clear()
    monkeypatch.chdir(tmp_path)
    shell = globalipapp.start_ipython() or globalipapp.get_ipython()
    shell.run_line_magic("load_ext", "d365nb")
    try:
        shell.user_ns.update(_url=org.url, _token=org.token)
        shell.run_cell("%d365 connect {_url} --token {_token} --alias kernel")
        for cell in nbformat.read(notebook, as_version=4).cells[2:4]:
            assert shell.run_cell(cell.source).success
        assert flows["handoff"].definition() == terminal
    finally:
        from d365nb.client.registry import connections

        conn = connections.get("kernel")
        connections.remove(conn)
        conn.close()
        shell.run_line_magic("unload_ext", "d365nb")


def test_a_flow_moves_from_notebook_to_terminal_without_missing_or_repeating(tmp_path, org, d365):
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
    proc = cli("flow", "run", str(notebook), "--org", org.url, env={"D365NB_TOKEN": org.token})
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
    assert org.token not in out + err


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
        "flow", "run", "status", "change", "record", "started", "seconds", "error"
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
