"""The flow view (diagram coloured by the latest run's step statuses, beside the run history) and
the action form's dynamic content, on a real flow run against the sandbox."""

from __future__ import annotations

import uuid

import pytest

from d365nb.flows import Flow
from d365nb.notebook.forms import ActionForm, FlowView
from d365nb.notebook.forms import columns as cols
from tests.support.forms import unique
from tests.support.waiting import wait_for


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
        # The diagram and the history are redrawn from two reads of the run history: a tick
        # between the step's end and the run's can show one before the other; the next shows both.
        wait_for(
            lambda: (
                view.step_statuses.get("make_task") == "Succeeded"
                and "Succeeded" in view.history.value
            ),
            10,
            "the live view to redraw",
        )
    finally:
        view.live.value = False


def test_dynamic_content_fits_the_field_type_and_fills_numbers_dates_and_lookup_ids(
    flow, conn, reader
):
    owner = conn.whoami()["UserId"]
    lastname = unique("Typed")
    lead_id = reader.create(
        "leads",
        {
            "subject": "Dynamic types",
            "lastname": lastname,
            "numberofemployees": 42,
            "estimatedclosedate": "2027-02-03",
            "ownerid@odata.bind": f"/systemusers({owner})",
        },
    )
    form = ActionForm(flow, "tasks", conn)
    # Numbers only take numbers, dates only dates; text takes anything.
    assert set(form.dynamic_options("actualdurationminutes")) >= {"numberofemployees"}
    assert "lastname" not in form.dynamic_options("actualdurationminutes")
    assert form.dynamic_options("scheduledend")[:1] and all(
        cols.kind(form.trigger_fields[k]) == cols.DATE for k in form.dynamic_options("scheduledend")
    )
    form.insert_into.value = "actualdurationminutes"
    assert "lastname" not in [key for _, key in form.dynamic.options]
    with pytest.raises(ValueError, match="Last Name is not a whole number"):
        form.insert("lastname", into="actualdurationminutes")
    # A lookup is in the trigger record as _x_value (its id): the token must use that key.
    assert "_ownerid_value" in form.trigger_fields and "ownerid" not in form.trigger_fields
    form.fields["subject"].input.value = "Sized "
    form.insert("lastname", into="subject")
    form.insert("numberofemployees", into="actualdurationminutes")
    form.insert("estimatedclosedate", into="scheduledend")
    form.insert("_ownerid_value", into="description")
    assert not form.fields["actualdurationminutes"].error.value  # a template is not flagged
    form.step_name.value = "typed"
    assert form.submit(), form.status.value
    assert flow.test(record_id=lead_id) is not None
    task = reader.query("tasks", filter=f"subject eq 'Sized {lastname}'")
    assert len(task) == 1, flow.runs()
    assert task[0]["actualdurationminutes"] == 42
    assert task[0]["scheduledend"].startswith("2027-02-03")
    assert task[0]["description"] == owner


def test_insert_button_puts_the_picked_trigger_field_into_the_picked_field(flow, conn):
    form = ActionForm(flow, "tasks", conn)
    assert form.dynamic.value == form.dynamic_options(form.insert_into.value)[0]  # ready to use
    form.insert_into.value = "percentcomplete"
    assert [key for _, key in form.dynamic.options] == form.dynamic_options("percentcomplete")
    assert form.dynamic.value in form.dynamic_options("percentcomplete")
    form.dynamic.value = "numberofemployees"
    form.insert_button.click()
    assert form.fields["percentcomplete"].input.value == "{trigger[numberofemployees]}"
    with pytest.raises(ValueError, match="cannot go into 'prioritycode'"):
        form.insert("lastname", into="prioritycode")  # a choice takes no dynamic content
    with pytest.raises(ValueError, match="'colour' is not a field of the trigger's lead"):
        form.insert("colour", into="subject")


def test_action_form_for_a_flow_without_trigger_says_so_in_one_line(conn, tmp_path):
    bare = Flow(f"forms_bare_{uuid.uuid4().hex[:6]}", conn, history=tmp_path / "bare.sqlite")
    try:
        with pytest.raises(ValueError, match="has no trigger yet") as caught:
            ActionForm(bare, "tasks", conn)
        assert "\n" not in str(caught.value)
    finally:
        bare.delete()


def test_trigger_box_shows_the_run_unless_the_latest_poll_failed(flow, reader):
    flow.step("make_task", 'create tasks subject="Trigger box: {trigger[lastname]}"')
    flow.history.record_check(flow.name, "Skipped")  # a poll before any run: nothing new
    assert "class='d365nb-trigger' data-status='Skipped'" in FlowView(flow).diagram.value
    lead_id = reader.create("leads", {"subject": unique("Box"), "lastname": "Box"})
    flow.test(record_id=lead_id)
    flow.history.record_check(flow.name, "Skipped")  # idle polls after the run
    view = FlowView(flow)
    assert "class='d365nb-trigger' data-status='Succeeded'" in view.diagram.value
    flow.history.record_check(flow.name, "Failed", error="401")  # the trigger can't see anymore
    view.refresh()
    assert "class='d365nb-trigger' data-status='Failed'" in view.diagram.value


def test_a_new_live_view_of_a_flow_stops_the_previous_one(flow):
    flow.step("make_task", 'create tasks subject="x"')
    first, second = FlowView(flow, refresh_every=0.05), FlowView(flow, refresh_every=0.05)
    first.live.value = True
    second.live.value = True  # e.g. the cell showing the view was run again
    try:
        assert not first.live.value and second.live.value
        wait_for(
            lambda: first._timer is None or first._timer.finished.is_set(),
            10,
            "the first view's timer to stop",
        )
    finally:
        second.live.value = False
