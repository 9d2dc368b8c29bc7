"""The flow view (diagram coloured by the latest run's step statuses, beside the run history) and
the action form's dynamic content, on a real flow run against the sandbox."""

from __future__ import annotations

import uuid

import pytest
from forms_support import unique, wait_until

from d365nb.flows import Flow
from d365nb.notebook.forms import ActionForm, FlowView


@pytest.fixture
def flow(conn, tmp_path):
    made = Flow(f"forms_{uuid.uuid4().hex[:8]}", conn, history=tmp_path / "flows.sqlite")
    made.on_created("leads", every="1h")
    yield made
    made.stop()
    made.delete()


def boom():
    raise RuntimeError("the second step broke")


def test_diagram_is_coloured_by_the_latest_runs_step_statuses(flow, reader):
    lead_id = reader.create("leads", {"subject": unique("Flow view"), "lastname": "Viewer"})
    flow.step("make_task", 'create tasks subject="Follow up: {trigger[lastname]}"')
    flow.step("break_it", boom)
    flow.step("never_run", 'create tasks subject="unreachable"')
    view = FlowView(flow)
    assert "no runs yet" in view.history.value
    assert view.diagram.value.count("data-status='none'") == 4  # trigger + 3 steps, not run yet
    flow.test(record_id=lead_id)
    view.refresh()
    assert view.step_statuses == {
        "make_task": "Succeeded",
        "break_it": "Failed",
        "never_run": "Skipped",
    }
    svg = view.diagram.value
    assert (
        svg.index("make_task") < svg.index("break_it") < svg.index("never_run")
    )  # trigger -> steps in order
    assert (
        "data-status='Succeeded'" in svg
        and "data-status='Failed'" in svg
        and "data-status='Skipped'" in svg
    )
    assert "Failed" in view.history.value and "the second step broke" in view.history.value
    assert lead_id[:8] in view.history.value


def test_flow_view_fallback_html_holds_the_diagram_and_history(flow):
    flow.step("make_task", 'create tasks subject="x"')
    bundle = FlowView(flow)._repr_mimebundle_()
    assert "application/vnd.jupyter.widget-view+json" in bundle
    assert "<svg" in bundle["text/html"] and "make_task" in bundle["text/html"]


def test_action_form_inserts_trigger_fields_and_adds_a_step_that_runs(flow, conn, reader):
    lastname = unique("Dyn")
    lead_id = reader.create("leads", {"subject": "Dynamic content", "lastname": lastname})
    form = ActionForm(flow, "tasks", conn)
    assert "lastname" in [value for _, value in form.dynamic.options]  # the trigger table's fields
    form.fields["subject"].input.value = "Follow up: "
    form.insert("lastname", into="subject")
    assert form.fields["subject"].input.value == "Follow up: {trigger[lastname]}"
    form.fields["percentcomplete"].input.value = "5"
    form.use_trigger["regardingobjectid"].value = True
    form.step_name.value = "follow_up"
    command = form.submit()
    assert command == (
        'create tasks subject="Follow up: {trigger[lastname]}" percentcomplete=5 '
        "regardingobjectid=leads({trigger[leadid]})"
    )
    assert [s.name for s in flow.steps] == ["follow_up"]
    run = flow.test(record_id=lead_id)
    assert run is not None
    tasks = reader.query("tasks", filter=f"subject eq 'Follow up: {lastname}'")
    assert len(tasks) == 1 and tasks[0]["_regardingobjectid_value"] == lead_id


def test_action_form_still_validates_fields_without_dynamic_content(flow, conn):
    form = ActionForm(flow, "tasks", conn)
    form.fields["subject"].input.value = "ok"
    form.fields["percentcomplete"].input.value = "500"
    assert form.submit() is None
    assert "above the maximum" in form.fields["percentcomplete"].error.value
    assert flow.steps == []


def test_live_view_redraws_by_itself_when_a_run_finishes(flow, reader):
    lead_id = reader.create("leads", {"subject": unique("Live"), "lastname": "Live"})
    flow.step("make_task", 'create tasks subject="Live: {trigger[lastname]}"')
    view = FlowView(flow, refresh_every=0.05)
    view.live.value = True
    try:
        flow.test(record_id=lead_id)
        wait_until(
            lambda: view.step_statuses.get("make_task") == "Succeeded",
            10,
            "the live view to redraw",
        )
        assert "Succeeded" in view.history.value
    finally:
        view.live.value = False
