"""A table without change tracking, over real HTTP: its metadata says
``ChangeTrackingEnabled: false``, so a deleted trigger (which can only see deletions through
change tracking) is refused with one line and nothing is defined; created/updated triggers
still work, on the ``versionnumber`` watermark."""

from __future__ import annotations

import pytest

from d365nb.flows import Flow, FlowError, flows
from tests.support.flows import untracked_tasks
from tests.support.shells import CellFailed, run_cell


@pytest.fixture(scope="module")
def sandbox_handle():
    from d365nb.sandbox import server

    org = server.build_org(data="empty")
    untracked_tasks(org)
    handle = server.serve(org)
    yield handle
    handle.stop()


def test_the_service_reports_no_change_tracking(d365):
    assert d365.metadata.table("tasks").change_tracking is False
    assert d365.metadata.table("leads").change_tracking is True


def test_a_deleted_trigger_is_refused_in_one_line_and_nothing_is_defined(shell):
    with pytest.raises(CellFailed) as err:
        run_cell(shell, "%d365 trigger gone deleted tasks --every 1m")
    message = str(err.value)
    assert "\n" not in message.strip()
    assert "table tasks has no change tracking" in message and "deletions" in message
    assert flows == {}


def test_python_api_refuses_deleted_and_change_tracking_mode(d365, history):
    flow = Flow("ct", d365, history=history)
    with pytest.raises(FlowError, match="tasks has no change tracking"):
        flow.on_deleted("tasks", every="1m")
    with pytest.raises(FlowError, match="tasks has no change tracking"):
        flow.on_created("tasks", every="1m", mode="changes")
    assert flow.trigger is None and not flow.running


def test_created_and_updated_triggers_still_work_on_the_watermark(d365, history):
    flow = Flow("ct_ok", d365, history=history).on_created("tasks", every="1m")
    assert flow.detector().strategy == "watermark"
    updated = Flow("ct_up", d365, history=history).on_updated("tasks", every="1m")
    assert updated.detector().strategy == "watermark"
