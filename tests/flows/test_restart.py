"""Restart-proof flows: after a kernel restart (here: every flow forgotten by the process, the
store ``.d365nb/flows.sqlite`` beside the notebook kept), ``%d365 flow list|status|runs|run``
show the stored flows and their history; ``flow status`` says how many changes wait before
anyone starts it; ``flow start`` resumes from the stored checkpoint, and ``--from now|<ISO>``
makes skipping that backlog an explicit choice - as a polling trigger picks up "all
unprocessed/pending events" when turned on again
(https://learn.microsoft.com/power-automate/triggers-troubleshoot)."""

from __future__ import annotations

import uuid

import pytest

from d365nb.flows import flows
from tests.support.flows import stop_flows
from tests.support.shells import CellFailed, run_cell
from tests.support.waiting import wait_for


def succeeded(name: str) -> int:
    flow = flows[name]
    return flow.history.counts(name).get("Succeeded", 0)


def define(shell, name: str, tag: str) -> None:
    shell.user_ns["tag"] = tag
    run_cell(
        shell,
        f'%d365 trigger {name} created leads --every 1h --filter "startswith(subject,{{tag}})"',
    )
    run_cell(shell, f"%%d365 action {name} note\ntrigger['subject']")


def one_run_then_restart(shell, name: str) -> tuple[object, str, str]:
    tag = uuid.uuid4().hex[:8]
    define(shell, name, tag)
    run_cell(shell, f"%d365 flow start {name}")
    conn = flows[name].conn
    wait_for(lambda: flows[name].state == "Running")
    conn.create("leads", {"subject": f"{tag} before"})
    flows[name].poll_now()
    wait_for(lambda: succeeded(name) == 1)
    run_id = flows[name].runs().run_id.iloc[0]
    run_cell(shell, f"%d365 flow stop {name}")
    stop_flows()  # the kernel restarts: nothing of the flow is left in memory
    return conn, tag, run_id


def test_after_a_restart_stored_flows_and_history_are_shown(shell):
    conn, tag, run_id = one_run_then_restart(shell, "rs_show")
    for i in range(2):  # changes made while no kernel ran the flow
        conn.create("leads", {"subject": f"{tag} while down {i}"})
    listing = run_cell(shell, "%d365 flow list").set_index("flow")
    assert listing.loc["rs_show", "state"] == "Stored"
    assert listing.loc["rs_show", "succeeded"] == 1 and listing.loc["rs_show", "steps"] == 1
    runs = run_cell(shell, "%d365 flow runs rs_show")
    assert list(runs.run_id) == [run_id]
    shell.user_ns["rid"] = run_id
    assert run_cell(shell, "%d365 flow run {rid}").status == "Succeeded"
    status = run_cell(shell, "%d365 flow status rs_show")
    assert "waiting: 2 change(s) since the checkpoint: flow start runs them" in repr(status)
    assert "waiting" in status._repr_html_()
    # Starting resumes from the checkpoint: the two changes made while down are run.
    run_cell(shell, "%d365 flow start rs_show")
    flows["rs_show"].poll_now()
    wait_for(lambda: succeeded("rs_show") == 3)
    subjects = {conn.get("leads", rid)["subject"] for rid in flows["rs_show"].runs().record_id}
    assert subjects == {f"{tag} before", f"{tag} while down 0", f"{tag} while down 1"}
    assert "Running" in repr(run_cell(shell, "%d365 flow status rs_show"))


def test_start_from_now_skips_the_backlog_explicitly(shell):
    conn, tag, _ = one_run_then_restart(shell, "rs_now")
    conn.create("leads", {"subject": f"{tag} while down"})
    assert "waiting: 1 change(s)" in repr(run_cell(shell, "%d365 flow status rs_now"))
    run_cell(shell, "%d365 flow start rs_now --from now")
    flow = flows["rs_now"]
    wait_for(lambda: flow.state == "Running")
    flow.poll_now()
    conn.create("leads", {"subject": f"{tag} after"})
    flow.poll_now()
    wait_for(lambda: succeeded("rs_now") == 2)
    flow.poll_now()
    runs = flow.runs()
    records = {conn.get("leads", rid)["subject"] for rid in runs.record_id}
    assert records == {f"{tag} before", f"{tag} after"}  # the one made while down was skipped


def test_rerunning_the_cells_resumes_from_the_stored_checkpoint(shell):
    conn, tag, _ = one_run_then_restart(shell, "rs_cells")
    conn.create("leads", {"subject": f"{tag} while down"})
    define(shell, "rs_cells", tag)  # the notebook's cells, run again after the restart
    run_cell(shell, "%d365 flow start rs_cells")
    flows["rs_cells"].poll_now()
    wait_for(lambda: succeeded("rs_cells") == 2)


def test_pause_and_resume_show_at_once(shell, capsys):
    tag = uuid.uuid4().hex[:8]
    define(shell, "rs_pause", tag)
    run_cell(shell, "%d365 flow start rs_pause")
    wait_for(lambda: flows["rs_pause"].state == "Running")
    capsys.readouterr()
    run_cell(shell, "%d365 flow pause rs_pause")
    assert "flow rs_pause: paused" in capsys.readouterr().out
    assert "Paused" in repr(run_cell(shell, "%d365 flow status rs_pause"))
    run_cell(shell, "%d365 flow resume rs_pause")
    assert "flow rs_pause: running" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("%d365 flow start rs_bad --from beginning", "bad --from 'beginning'"),
        ("%d365 flow start rs_bad --from yesterday", "bad --since 'yesterday'"),
        ("%d365 flow status rs_bad --from now", "--from only applies to %d365 flow start"),
        ("%d365 flow runs ghost_flow", "unknown flow 'ghost_flow'"),
    ],
)
def test_bad_start_choices_are_one_line(shell, line, message):
    define(shell, "rs_bad", uuid.uuid4().hex[:8])
    with pytest.raises(CellFailed) as err:
        run_cell(shell, line)
    assert message in str(err.value) and "\n" not in str(err.value).strip()
    assert flows["rs_bad"].state == "Stopped"
