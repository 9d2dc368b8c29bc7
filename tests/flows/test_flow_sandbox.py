"""Flows end to end against the sandbox over HTTP: the seed's walkthrough (a task for each new
lead), exactly-once creates from run.key, failure then resubmit, and --test."""

from __future__ import annotations

import pytest

from d365nb.flows import Flow, RetryPolicy
from tests.support.tagged_flows import flow_on_a_new_lead, started, tagged_leads_flow
from tests.support.waiting import wait_for


def tasks_regarding(d365, lead_id: str):
    return d365.list("tasks", filter=f"_regardingobjectid_value eq {lead_id}")


def done(flow: Flow, n: int) -> bool:
    runs = flow.runs()
    return int(runs.status.isin(["Succeeded", "Failed"]).sum()) >= n


def test_walkthrough_new_lead_gets_a_task_regarding_it(d365, history):
    flow, tag = tagged_leads_flow("walkthrough", d365, history)
    flow.step(
        "create_task",
        'create tasks subject="Follow up: {trigger[subject]}" regardingobjectid=leads({trigger[leadid]})',
    )
    started(flow)
    lead = d365.create("leads", {"subject": f"{tag} Contoso deal", "lastname": "Smith"})
    wait_for(lambda: done(flow, 1))
    run = flow.run(flow.runs().run_id.iloc[0])
    assert run.status == "Succeeded", run
    tasks = tasks_regarding(d365, lead)
    assert list(tasks.subject) == [f"Follow up: {tag} Contoso deal"]
    # The task id came from run.key: running the same change again writes the same record.
    assert run.step("create_task")["outputs"] == tasks.index[0]
    assert (
        run.step("create_task")["inputs"]["values"]["subject"] == f"Follow up: {tag} Contoso deal"
    )
    again = flow.resubmit(run.run_id)
    assert again.status == "Succeeded" and len(tasks_regarding(d365, lead)) == 1


def test_python_step_sees_trigger_steps_and_run(d365, history):
    flow, tag = tagged_leads_flow("pysteps", d365, history)
    flow.step("subject", "trigger.subject or trigger['lastname']")
    flow.step(
        "task",
        """
task_id = d365.create("tasks", {"subject": steps["subject"],
                                "regardingobjectid": f"leads({trigger['leadid']})"})
print("created", task_id)
{"task": task_id, "key": run.key, "status_label": trigger["statuscode@OData.Community.Display.V1.FormattedValue"]}
""",
    )
    started(flow)
    lead = d365.create("leads", {"subject": f"{tag} py", "lastname": "Py"})
    wait_for(lambda: done(flow, 1))
    run = flow.run(flow.runs().run_id.iloc[0])
    out = run.step("task")["outputs"]
    assert run.status == "Succeeded", run
    assert out["key"] == f"{lead}:created" and out["status_label"] == "New"
    assert run.step("task")["log"].startswith("created ")
    assert tasks_regarding(d365, lead).index.tolist() == [out["task"]]


def test_a_failing_step_keeps_the_flow_polling_and_resubmit_after_a_fix_succeeds(d365, history):
    flow, tag = tagged_leads_flow("fixme", d365, history)
    # A bad column: the service refuses it (400), not retried.
    flow.step(
        "task",
        'create tasks subjekt="{trigger[subject]}"',
        retry=RetryPolicy(count=1, interval=0.01),
    )
    started(flow)
    first = d365.create("leads", {"subject": f"{tag} 1", "lastname": "A"})
    wait_for(lambda: done(flow, 1))
    second = d365.create("leads", {"subject": f"{tag} 2", "lastname": "B"})
    wait_for(lambda: done(flow, 2))  # still polling after a failure
    runs = flow.runs()
    assert set(runs.status) == {"Failed"} and "subjekt" in runs.error.iloc[0]
    assert "subjekt" in (flow.status_data()["last_error"] or "")
    flow.step(
        "task",
        'create tasks subject="{trigger[subject]}" regardingobjectid=leads({trigger[leadid]})',
    )
    for run_id in runs.run_id:
        assert flow.resubmit(run_id).status == "Succeeded"
    assert len(tasks_regarding(d365, first)) == len(tasks_regarding(d365, second)) == 1


def test_test_runs_the_steps_once_on_the_latest_record_without_starting(d365, history):
    flow, tag = tagged_leads_flow("tester", d365, history, every="1h")  # not started
    d365.create("leads", {"subject": f"{tag} older", "lastname": "O"})
    latest = d365.create("leads", {"subject": f"{tag} latest", "lastname": "L"})
    flow.step("echo", "trigger['leadid']")
    result = flow.test()
    assert result.status == "Succeeded" and result.step("echo")["outputs"] == latest
    assert flow.state == "Stopped"
    chosen = d365.create("leads", {"subject": f"{tag} chosen", "lastname": "C"})
    assert flow.test(chosen).step("echo")["outputs"] == chosen
    assert set(flow.runs().origin) == {"test"}


def stamping_flow(
    name: str, d365, history, lead: dict, stamp: str, **step_options
) -> tuple[Flow, str]:
    """A running flow on updates of one new tagged lead (``lead`` its other values) whose one
    step, ``stamp``, writes back to that lead; the flow and the lead's id."""
    flow, lead_id = flow_on_a_new_lead(name, d365, history, lead, on="updated")
    flow.step("stamp", stamp, **step_options)
    return started(flow), lead_id


@pytest.mark.slow
def test_an_updated_flow_that_updates_its_own_records_does_not_loop(d365, history):
    stamp = (
        "d365.update('leads', trigger['leadid'], {'description': 'seen ' + trigger['jobtitle']})"
    )
    flow, lead = stamping_flow(
        "selfupdate", d365, history, {"lastname": "Loop", "jobtitle": "a"}, stamp
    )
    d365.update("leads", lead, {"jobtitle": "b"})  # one outside change...
    wait_for(lambda: done(flow, 1))
    assert d365.get("leads", lead)["description"] == "seen b"
    polls = flow._watcher().polls
    wait_for(lambda: flow._watcher().polls >= polls + 2)  # ...the flow's own write was seen
    assert len(flow.runs()) == 1  # and did not trigger it again
    d365.update("leads", lead, {"jobtitle": "c"})  # the next outside change still does
    wait_for(lambda: done(flow, 2))
    assert d365.get("leads", lead)["description"] == "seen c"


def test_a_failed_write_to_the_watched_record_does_not_hide_the_next_change(d365, history):
    # The service refuses the write (400: no such column), so nothing of the flow's own lands.
    stamp = "d365.update('leads', trigger['leadid'], {'nosuchcolumn': 1})"
    flow, lead = stamping_flow(
        "failedwrite", d365, history, {"lastname": "Guard"}, stamp, retry="none"
    )
    d365.update("leads", lead, {"jobtitle": "first"})
    wait_for(lambda: done(flow, 1))
    assert flow.history.own_writes("failedwrite") == set()
    d365.update("leads", lead, {"jobtitle": "second"})  # someone else's change: an event
    wait_for(lambda: done(flow, 2), what="a run for the second outside change")
    assert flow.runs().status.tolist() == ["Failed", "Failed"]
