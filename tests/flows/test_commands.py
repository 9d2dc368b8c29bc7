"""``%d365 trigger``, ``%%d365 action`` and ``%d365 flow ...`` in an IPython shell, against the
sandbox: the notebook way of building, running and inspecting a flow, and its bad input."""

from __future__ import annotations

import uuid

import pytest

from d365nb.flows import flows
from tests.support.refusals import one_line_refusal
from tests.support.shells import CellFailed, run_cell
from tests.support.waiting import wait_for


def test_a_flow_built_from_cells_runs_and_shows_its_history(shell, tmp_path, capsys):
    tag = uuid.uuid4().hex[:8]
    shell.user_ns["tag"] = tag
    run_cell(
        shell, '%d365 trigger lf created leads --every 1s --filter "startswith(subject,{tag})"'
    )
    run_cell(
        shell,
        "%%d365 action lf make_task\n"
        "print('inside the flow')\n"
        "d365.create('tasks', {'subject': 'Follow up: ' + trigger['subject'],\n"
        "                      'regardingobjectid': f\"leads({trigger['leadid']})\"})",
    )
    run_cell(shell, "%%d365 action lf note --if \"trigger['lastname'] == 'Nobody'\"\n\"skipped\"")
    steps = run_cell(shell, "%d365 flow steps lf")
    assert list(steps.step) == ["make_task", "note"] and list(steps.kind) == ["python", "python"]
    status = run_cell(shell, "%d365 flow start lf")
    assert "Running" in status._repr_html_() or "Starting" in status._repr_html_()
    conn = flows["lf"].conn
    lead = conn.create("leads", {"subject": f"{tag} from a cell", "lastname": "Cell"})
    wait_for(lambda: flows["lf"].history.counts("lf").get("Succeeded", 0) >= 1)
    runs = run_cell(shell, "%d365 flow runs lf")
    assert list(runs.columns[:8]) == [
        "run_id",
        "record_id",
        "status",
        "started",
        "ended",
        "duration",
        "error",
        "attempts",
    ]
    assert runs.record_id.tolist() == [lead] and runs.status.tolist() == ["Succeeded"]
    detail = run_cell(shell, f"%d365 flow run {runs.run_id.iloc[0]}")
    assert detail.step("make_task")["status"] == "Succeeded"
    assert detail.step("note")["status"] == "Skipped"
    assert "make_task" in detail._repr_html_()
    tasks = conn.list("tasks", filter=f"_regardingobjectid_value eq {lead}")
    assert tasks.subject.tolist() == [f"Follow up: {tag} from a cell"]
    # The step printed into the flow's own output, not into the running cell.
    assert "inside the flow" not in capsys.readouterr().out.splitlines()
    assert detail.step("make_task")["log"] == "inside the flow\n"
    assert (tmp_path / ".d365nb" / "flows.sqlite").exists()
    run_cell(shell, "%d365 flow stop lf")
    assert flows["lf"].state == "Stopped"
    listing = run_cell(shell, "%d365 flow list")
    assert listing.set_index("flow").loc["lf", "succeeded"] == 1


def test_status_is_a_snapshot_outside_a_kernel(shell):
    run_cell(shell, "%d365 trigger st created leads --every 1h")
    run_cell(shell, "%%d365 action st one\n1")
    view = run_cell(shell, "%d365 flow status st")
    bundle = view._repr_mimebundle_()
    assert "text/html" in bundle and "flow st" in bundle["text/html"]
    assert "application/vnd.jupyter.widget-view+json" not in bundle


def test_rerunning_cells_redefines_the_trigger_and_replaces_the_step(shell):
    run_cell(shell, "%d365 trigger re created leads --every 1h")
    run_cell(shell, "%%d365 action re a\n1")
    run_cell(shell, "%%d365 action re b\n2")
    run_cell(shell, "%%d365 action re a\n3")
    run_cell(shell, "%d365 trigger re updated leads --every 5m --columns jobtitle")
    flow = flows["re"]
    assert [s.name for s in flow.steps] == ["a", "b"] and flow.steps[0].source.strip() == "3"
    assert (flow.trigger.kind, flow.trigger.every, flow.trigger.columns) == (
        "updated",
        300,
        ["jobtitle"],
    )


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("%%d365 action ghost step\n1", "unknown flow 'ghost'"),
        ("%d365 trigger f created leads --every 0s", "bad interval '0s'"),
        ("%d365 trigger f created leads --every banana", "bad interval 'banana'"),
        ("%d365 trigger f created nosuchtable --every 1m", "nosuchtable"),
        (
            "%d365 trigger f created leads --columns jobtitle",
            "--columns cannot be used with a created trigger",
        ),
        ('%d365 trigger f deleted leads --filter "statecode eq 0"', "--filter cannot be used"),
        ("%d365 trigger f deleted leads --orderby createdon", "--orderby cannot be used with a d"),
        ("%d365 flow start ghost", "unknown flow 'ghost'"),
        ("%d365 flow run 0123456789abcdef", "no run"),
        ("%d365 flow launch f", "invalid choice"),
        ("%d365 trigger f created leads --concurrency 0", "bad --concurrency 0"),
        ("%d365 trigger f updated leads --columns nosuchcolumn", "no column 'nosuchcolumn'"),
        ("%d365 trigger f created leads --since yesterday", "bad --since 'yesterday'"),
    ],
)
def test_bad_input_is_one_line_and_changes_nothing(shell, tmp_path, source, message):
    assert message in one_line_refusal(lambda: run_cell(shell, source))
    assert flows == {}  # no half-defined flow left behind...
    assert not (tmp_path / ".d365nb").exists()  # ...and no store created beside the notebook


def test_a_bad_redefinition_leaves_the_running_flow_as_it_was(shell):
    run_cell(shell, "%d365 trigger keep created leads --every 1h")
    run_cell(shell, "%%d365 action keep one\n1")
    run_cell(shell, "%d365 flow start keep")
    flow = flows["keep"]
    stored = flow.history.flow_definition("keep")
    for bad in (
        "%d365 trigger keep created nosuchtable --every 1m",
        "%d365 trigger keep created leads --every banana",
        "%d365 trigger keep updated leads --columns nosuchcolumn",
    ):
        with pytest.raises(CellFailed):
            run_cell(shell, bad)
        assert flows["keep"] is flow and flow.state == "Running"
        assert flow.trigger.every == 3600 and flow.history.flow_definition("keep") == stored


def test_unknown_step_is_one_line(shell):
    run_cell(shell, "%d365 trigger us created leads --every 1h")
    run_cell(shell, "%%d365 action us one\n1")
    with pytest.raises(CellFailed) as err:
        run_cell(shell, "%d365 action us ghost --remove")
    assert str(err.value) == "flow 'us' has no step 'ghost' (steps: one)"
    with pytest.raises(CellFailed, match="no run 'ghost'"):
        run_cell(shell, "%d365 flow run ghost")
    assert [s.name for s in flows["us"].steps] == ["one"] and not flows["us"].running


def test_a_flow_without_steps_or_with_a_syntax_error_is_refused(shell):
    run_cell(shell, "%d365 trigger empty created leads --every 1m")
    with pytest.raises(CellFailed, match="no steps"):
        run_cell(shell, "%d365 flow start empty")
    with pytest.raises(CellFailed, match="syntax error at line 2"):
        run_cell(shell, "%%d365 action empty broken\nx = 1\nif x\n    pass")
    assert flows["empty"].steps == [] and not flows["empty"].running


def test_test_and_delete(shell):
    tag = uuid.uuid4().hex[:8]
    run_cell(
        shell, f"%d365 trigger t created leads --every 1h --filter \"startswith(subject,'{tag}')\""
    )
    run_cell(shell, "%%d365 action t echo\ntrigger['subject']")
    lead = flows["t"].conn.create("leads", {"subject": f"{tag} one", "lastname": "T"})
    shell.user_ns["lead_id"] = lead
    result = run_cell(shell, "%d365 flow test t --record {lead_id}")
    assert result.status == "Succeeded" and result.step("echo")["outputs"] == f"{tag} one"
    assert not flows["t"].running
    run_cell(shell, "%d365 flow delete t")
    assert "t" not in flows
