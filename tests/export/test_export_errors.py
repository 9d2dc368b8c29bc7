"""Bad input to the export: steps that cannot be expressed are listed with the reason, in one
line, and nothing is written; an unknown flow or target is one line too."""

from __future__ import annotations

import pytest

from d365nb.flows import FlowError
from tests.support.export import ORG


def lead_flow(new_flow):
    return new_flow().on_created("leads", every="1m")


@pytest.mark.parametrize(
    ("source", "reason"),
    [
        ('create tasks subject="{owner_name}"', "reads 'owner_name', which a Logic App cannot see"),
        ('create tasks subject="{trigger[subject]!r}"', "uses Python formatting"),
        ('create tasks subject="{trigger[subject]:>20}"', "uses Python formatting"),
        ('create tasks subject="{steps[later]}"', "is not an earlier step"),
        ("create tasks nosuchcolumn=1", "has no column 'nosuchcolumn'"),
        ("create tasks prioritycode=Urgent", "'Urgent' is not a choice of prioritycode"),
        ("create tasks regardingobjectid=systemusers({trigger[ownerid]})", "cannot point at"),
        ("list nosuchtable", "nosuchtable"),
        # (an option a step does not take is refused when the step is defined: test_flows_*)
        ("get leads {trigger[leadid]} --alias flows-tests", "--alias has no Logic Apps equivalent"),
    ],
)
def test_a_step_that_cannot_be_expressed_is_named_with_why(new_flow, source, reason):
    flow = lead_flow(new_flow).step("bad_step", source)
    with pytest.raises(FlowError) as err:
        flow.to_logic_app(org=ORG)
    message = str(err.value)
    assert message.startswith("cannot export flow 'lead_to_task' to Logic Apps: step bad_step")
    assert reason in message and "\n" not in message


def test_every_bad_step_is_listed_at_once(new_flow):
    flow = lead_flow(new_flow)
    flow.step("ok", "get leads {trigger[leadid]}")
    flow.step("one", 'create tasks subject="{my_var}"')
    flow.step("two", "get leads {trigger[leadid]}", when="trigger['statuscode'] == my_limit")
    with pytest.raises(FlowError) as err:
        flow.to_logic_app(org=ORG)
    message = str(err.value)
    assert "step one:" in message and "step two: its --if cannot be exported: my_limit" in message
    assert "step ok" not in message


def test_a_flow_without_steps_or_a_bad_org_is_refused(new_flow):
    flow = lead_flow(new_flow)
    with pytest.raises(FlowError, match="has no steps"):
        flow.to_logic_app(org=ORG)
    flow.step("get_lead", "get leads {trigger[leadid]}")
    with pytest.raises(FlowError, match="bad organisation URL 'contoso'"):
        flow.to_logic_app(org="contoso")
