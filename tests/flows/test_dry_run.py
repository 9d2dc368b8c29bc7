"""``%d365 flow test <flow> --dry-run`` / ``flow.test(dry_run=True)``: the steps run against a
recording client - reads are real, writes are listed (table, operation, payload) and not sent;
nothing is stored in run history. A write Dataverse would refuse (an unknown column, a bad
choice) fails the dry run as it would fail the real one
(https://learn.microsoft.com/power-apps/developer/data-platform/webapi/create-entity-web-api)."""

from __future__ import annotations

import uuid

import pytest

from d365nb.flows import Flow, FlowError
from tests.support.shells import CellFailed, run_cell


def lead(d365, **values) -> str:
    tag = uuid.uuid4().hex[:8]
    return d365.create("leads", {"subject": f"dry {tag}", "lastname": "Dry", **values})


def test_dry_run_reads_for_real_and_lists_writes_without_sending_them(d365, history):
    lead_id = lead(d365, jobtitle="Buyer")
    tasks_before = len(d365.list("tasks"))
    flow = Flow("dry", d365, history=history).on_created("leads", every="1h")
    # A Python step that reads (real) and writes (recorded), and a declarative one.
    flow.step(
        "read_and_write",
        "me = d365.get('leads', trigger['leadid'])\n"
        "d365.update('leads', trigger['leadid'], {'description': 'seen ' + me['jobtitle']})\n"
        "me['jobtitle']",
    )
    flow.step("task", 'create tasks subject="Call {trigger[subject]}" prioritycode=High')
    flow.step("drop", "delete tasks {steps[task]}")
    result = flow.test(lead_id, dry_run=True)
    assert result.status == "Succeeded"
    assert result.step("read_and_write")["outputs"] == "Buyer"  # the read was real
    ops = [(w.table, w.operation) for w in result.writes]
    assert ops == [("leads", "update"), ("tasks", "create"), ("tasks", "delete")]
    update, create, delete = result.writes
    assert update.id == lead_id and update.payload == {"description": "seen Buyer"}
    assert create.payload["subject"].startswith("Call dry ") and create.payload["prioritycode"] == 2
    assert delete.id == create.id  # the later step saw the id the create would have had
    # Nothing was sent, nothing stored.
    assert d365.get("leads", lead_id).get("description") in (None, "")
    assert len(d365.list("tasks")) == tasks_before
    assert flow.runs().empty
    frame = result.writes_frame()
    assert list(frame.columns) == ["table", "operation", "id", "payload"] and len(frame) == 3
    assert "3 write(s) not sent" in repr(result) and "would create tasks" in repr(result)


def test_a_write_the_service_would_refuse_fails_the_dry_run(d365, history):
    lead_id = lead(d365)
    flow = Flow("dry_bad", d365, history=history).on_created("leads", every="1h")
    flow.step("bad", "d365.create('tasks', {'nosuchcolumn': 1})")
    result = flow.test(lead_id, dry_run=True)
    assert result.status == "Failed" and "nosuchcolumn" in result.step("bad")["error"]
    assert result.writes == []


def test_dry_run_from_the_magic(shell):
    run_cell(shell, "%d365 trigger drym created leads --every 1h")
    run_cell(shell, '%%d365 action drym mark\nupdate leads {trigger[leadid]} jobtitle="Dry run"')
    from d365nb.flows import flows

    target = flows["drym"].conn
    lead_id = lead(target)
    shell.user_ns["lead_id"] = lead_id
    result = run_cell(shell, "%d365 flow test drym --record {lead_id} --dry-run")
    assert [(w.table, w.operation, w.payload) for w in result.writes] == [
        ("leads", "update", {"jobtitle": "Dry run"})
    ]
    assert target.get("leads", lead_id).get("jobtitle") in (None, "")
    with pytest.raises(CellFailed, match="--dry-run only applies to %d365 flow test"):
        run_cell(shell, "%d365 flow start drym --dry-run")


def test_dry_run_refuses_what_could_write_behind_its_back(d365, history):
    lead_id = lead(d365)
    flow = Flow("dry_aio", d365, history=history).on_created("leads", every="1h")
    flow.step("sneaky", "d365.aio()")
    result = flow.test(lead_id, dry_run=True)
    assert (
        result.status == "Failed" and "not available in a dry run" in result.step("sneaky")["error"]
    )
    with pytest.raises(FlowError, match="no step 'ghost'"):
        result.step("ghost")
