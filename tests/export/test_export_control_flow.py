"""Control flow in the export: ``--foreach "{steps[find]}"`` becomes a Logic Apps ``Foreach``
over the list step's ``value`` with ``{item[col]}`` as ``items('<loop>')?['col']`` and
``--concurrency`` as its repetitions; ``--after step:failed`` becomes ``runAfter``
(https://learn.microsoft.com/azure/logic-apps/logic-apps-workflow-actions-triggers#foreach-action,
https://learn.microsoft.com/azure/logic-apps/error-exception-handling#manage-the-run-after-behavior).
Every document validates against the Workflow Definition Language schema."""

from __future__ import annotations

import pytest

from d365nb.flows import FlowError
from d365nb.flows.export import export
from tests.support.export import ORG


def looped(new_flow):
    flow = new_flow("loop").on_created("leads", every="1m")
    flow.step("find", 'list tasks --filter "statecode eq 0" --top 50')
    flow.step(
        "close",
        'update tasks {item[activityid]} description="closed by {trigger[subject]}: {item[subject]}"',
        foreach="{steps[find]}",
        concurrency=10,
    )
    flow.step(
        "report",
        'create tasks subject="could not close all for {trigger[subject]}"',
        after="close:failed|timedout",
    )
    return flow


def test_foreach_becomes_a_logic_apps_foreach_over_the_list_value(new_flow, assert_valid):
    definition = assert_valid(export(looped(new_flow), org=ORG).document)
    loop = definition["actions"]["close"]
    assert loop["type"] == "Foreach"
    assert loop["foreach"] == "@body('find')?['value']"
    assert loop["runAfter"] == {"find": ["Succeeded"]}
    assert loop["runtimeConfiguration"] == {"concurrency": {"repetitions": 10}}
    [(name, inner)] = loop["actions"].items()
    assert name == "close_item" and inner["runAfter"] == {}
    assert inner["inputs"]["method"] == "patch"
    assert inner["inputs"]["path"].endswith(
        "(@{encodeURIComponent(encodeURIComponent(items('close')?['activityid']))})"
    )
    assert inner["inputs"]["body"] == {
        "description": "closed by @{triggerBody()?['subject']}: @{items('close')?['subject']}"
    }


def test_run_after_carries_the_statuses(new_flow, assert_valid):
    definition = assert_valid(export(looped(new_flow), org=ORG).document)
    assert definition["actions"]["report"]["runAfter"] == {"close": ["Failed", "TimedOut"]}


def test_the_schema_checks_inside_the_loop(new_flow, validator):
    """The shipped schema does not descend into a Foreach's actions, so the export checks its
    body as a definition of its own: a bad body is refused."""
    from d365nb.flows.export import check_nested

    definition = export(looped(new_flow), org=ORG).definition
    check_nested(definition)  # the real export passes
    definition["actions"]["close"]["actions"]["close_item"]["runAfter"] = {"x": ["Done"]}
    assert not list(validator.iter_errors(definition))  # the schema alone misses it
    with pytest.raises(
        FlowError, match="close/actions/close_item/runAfter/x/0: .Done. is not one of"
    ):
        check_nested(definition)
    definition["actions"]["close"]["runAfter"] = {"find": ["Done"]}
    assert list(validator.iter_errors(definition))


@pytest.mark.parametrize(
    ("step", "options", "message"),
    [
        ("'x'", {"foreach": "range(3)"}, "only the records of an earlier list step export"),
        ("get tasks {item[activityid]}", {"foreach": "{steps[nolist]}"}, "only the records"),
        ("get tasks {trigger[leadid]}", {"when": "limit > 3"}, "limit is a notebook variable"),
        ("'x'", {"when": "trigger['a'] == 1", "otherwise": "other"}, "--else other is not a step"),
        ('create tasks subject="{steps[close]}"', {}, "is a for-each: its results do not export"),
    ],
)
def test_what_does_not_export_is_named(new_flow, step, options, message):
    flow = looped(new_flow)
    flow.step("nolist", "get tasks {trigger[leadid]}")
    flow.step("extra", step, **options)
    with pytest.raises(FlowError, match=message):
        export(flow, org=ORG, placeholders=True)


def test_a_scope_becomes_a_logic_apps_scope(new_flow, assert_valid):
    flow = new_flow("scoped").on_created("leads", every="1m")
    flow.step("get_lead", "get leads {trigger[leadid]}")
    flow.step("task", 'create tasks subject="{trigger[subject]}"')
    flow.step("mark", "update leads {trigger[leadid]} jobtitle=Contacted")
    flow.scope("work", ["task", "mark"])
    flow.step("catch", 'create tasks subject="failed for {trigger[subject]}"', after="work:failed")
    definition = assert_valid(export(flow, org=ORG).document)
    assert list(definition["actions"]) == ["get_lead", "work", "catch"]
    work = definition["actions"]["work"]
    assert work["type"] == "Scope" and work["runAfter"] == {"get_lead": ["Succeeded"]}
    assert list(work["actions"]) == ["task", "mark"]
    assert work["actions"]["task"]["runAfter"] == {}
    assert work["actions"]["mark"]["runAfter"] == {"task": ["Succeeded"]}
    assert definition["actions"]["catch"]["runAfter"] == {"work": ["Failed"]}
