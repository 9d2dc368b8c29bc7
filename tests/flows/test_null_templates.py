"""Declarative step templates over a null trigger field, against the sandbox: a whole-value
template sends null (a number column accepts it), inside text a null is the empty string
(as Logic Apps' `@{...}` does), never the word "None"."""

from __future__ import annotations

from typing import Any

from tests.support.tagged_flows import flow_on_a_new_lead


def make_task_run(name: str, d365, history, lead: dict, template: str) -> tuple[Any, dict]:
    """``flow.test`` on a new tagged lead (``lead`` its other values) of a flow whose one step,
    make_task, is the declarative ``template``; the run must succeed. The run and the task it
    wrote, read back from the sandbox."""
    flow, lead_id = flow_on_a_new_lead(name, d365, history, lead, every="1h")
    flow.step("make_task", template)
    run = flow.test(lead_id)
    assert run.status == "Succeeded", run.step("make_task")
    return run, d365.get("tasks", run.step("make_task")["outputs"])


def test_null_trigger_fields_send_null_whole_and_empty_inside_text(d365, history):
    # numberofemployees and firstname are left empty: the trigger record carries them as null
    template = (
        "create tasks "
        'subject="Call {trigger[firstname]}{trigger[lastname]} ({trigger[numberofemployees]})" '
        "actualdurationminutes={trigger[numberofemployees]}"
    )
    run, task = make_task_run("nulls", d365, history, {"lastname": "Null"}, template)
    values = run.step("make_task")["inputs"]["values"]
    assert values == {"subject": "Call Null ()", "actualdurationminutes": None}
    assert task["subject"] == "Call Null ()" and task["actualdurationminutes"] is None


def test_whole_value_template_of_a_set_field_keeps_its_value(d365, history):
    template = "create tasks subject=x actualdurationminutes={trigger[numberofemployees]}"
    _, task = make_task_run(
        "sized", d365, history, {"lastname": "Set", "numberofemployees": 42}, template
    )
    assert task["actualdurationminutes"] == 42
