"""Declarative step templates over a null trigger field, against the sandbox: a whole-value
template sends null (a number column accepts it), inside text a null is the empty string
(as Logic Apps' `@{...}` does), never the word "None"."""

from __future__ import annotations

import uuid

from d365nb.flows import Flow


def test_null_trigger_fields_send_null_whole_and_empty_inside_text(d365, history):
    tag = uuid.uuid4().hex[:8]
    # numberofemployees and firstname are left empty: the trigger record carries them as null
    lead = d365.create("leads", {"subject": f"{tag} no size", "lastname": "Null"})
    flow = Flow("nulls", d365, history=history).on_created(
        "leads", every="1h", filter=f"startswith(subject,'{tag}')"
    )
    flow.step(
        "make_task",
        "create tasks "
        'subject="Call {trigger[firstname]}{trigger[lastname]} ({trigger[numberofemployees]})" '
        "actualdurationminutes={trigger[numberofemployees]}",
    )
    run = flow.test(lead)
    assert run.status == "Succeeded", run.step("make_task")
    values = run.step("make_task")["inputs"]["values"]
    assert values == {"subject": "Call Null ()", "actualdurationminutes": None}
    task = d365.get("tasks", run.step("make_task")["outputs"])
    assert task["subject"] == "Call Null ()" and task["actualdurationminutes"] is None


def test_whole_value_template_of_a_set_field_keeps_its_value(d365, history):
    tag = uuid.uuid4().hex[:8]
    lead = d365.create(
        "leads", {"subject": f"{tag} sized", "lastname": "Set", "numberofemployees": 42}
    )
    flow = Flow("sized", d365, history=history).on_created(
        "leads", every="1h", filter=f"startswith(subject,'{tag}')"
    )
    flow.step(
        "make_task", "create tasks subject=x actualdurationminutes={trigger[numberofemployees]}"
    )
    run = flow.test(lead)
    assert run.status == "Succeeded", run.step("make_task")
    task = d365.get("tasks", run.step("make_task")["outputs"])
    assert task["actualdurationminutes"] == 42
