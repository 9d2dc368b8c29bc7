"""A step's Python ``--if`` exported as a Logic Apps ``If`` action (issue 15).

The condition object is the one the designer writes for a Condition action
(https://learn.microsoft.com/azure/logic-apps/logic-apps-workflow-actions-triggers#if-action,
https://learn.microsoft.com/azure/logic-apps/logic-apps-control-flow-conditional-statement):
groups ``and`` / ``or`` / ``not`` over rows ``equals`` / ``contains`` / ``less`` / ... whose operands
are literals or ``@``-expressions. Strings compare case-sensitively and ``equals`` never matches a
number with a string, in Python as in the Workflow Definition Language
(https://learn.microsoft.com/azure/logic-apps/workflow-definition-language-functions-reference#equals).

Besides examples, a property test evaluates the exported object with a small interpreter of those
rows and checks it agrees with Python's own evaluation of the ``--if`` for random records.
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from d365nb.flows import FlowError
from d365nb.flows.export import check_nested, export, nesting_depth
from d365nb.flows.export_conditions import translate
from d365nb.flows.export_expressions import NotExpressible
from tests.support.export import ORG


def steps(name: str, keys: list[str]) -> str:
    """What an earlier declarative step returns, as the exporter spells it."""
    return f"body('{name}')" + "".join(f"?['{k}']" for k in keys)


T = "@triggerBody()?"


@pytest.mark.parametrize(
    ("condition", "expected"),
    [
        ("trigger['statuscode'] == 1", {"and": [{"equals": [f"{T}['statuscode']", 1]}]}),
        ("trigger.statuscode != 2", {"and": [{"not": {"equals": [f"{T}['statuscode']", 2]}}]}),
        ("trigger.get('subject') is None", {"and": [{"equals": [f"{T}['subject']", "@null"]}]}),
        (
            "'urgent' in trigger['subject'] and trigger['budgetamount'] >= 1000.5",
            {
                "and": [
                    {"contains": [f"{T}['subject']", "urgent"]},
                    {"greaterOrEquals": [f"{T}['budgetamount']", 1000.5]},
                ]
            },
        ),
        (
            "trigger['statuscode'] in (1, 2) or not trigger['subject'] < 'm'",
            {  # one group: the membership's rows join the `or` they stand in
                "or": [
                    {"equals": [f"{T}['statuscode']", 1]},
                    {"equals": [f"{T}['statuscode']", 2]},
                    {"not": {"less": [f"{T}['subject']", "m"]}},
                ]
            },
        ),
        (
            "0 < trigger['rating'] <= 3",
            {
                "and": [
                    {"less": [0, f"{T}['rating']"]},
                    {"lessOrEquals": [f"{T}['rating']", 3]},
                ]
            },
        ),
        (
            "steps['find']['name'] == 'Contoso'",
            {"and": [{"equals": ["@body('find')?['name']", "Contoso"]}]},
        ),
        ("trigger['subject'] == '@home'", {"and": [{"equals": [f"{T}['subject']", "@@home"]}]}),
        ("trigger['budgetamount'] > -5", {"and": [{"greater": [f"{T}['budgetamount']", -5]}]}),
    ],
)
def test_conditions_translate_to_designer_rows(condition, expected):
    assert translate(condition, steps) == expected


def test_a_bare_field_is_pythons_truthiness():
    rows = translate("trigger['donotemail']", steps)["and"]
    assert [r["not"]["equals"][1] for r in rows] == ["@null", "", False, 0]


def test_item_reads_the_loop_item():
    expression = translate("item['subject'] != 'keep'", steps, loop="close")
    assert expression == {"and": [{"not": {"equals": ["@items('close')?['subject']", "keep"]}}]}


REFUSED = {  # condition -> the reason the error gives
    "trigger['statuscode'] == limit": "limit is a notebook variable",
    "len(trigger['subject']) > 3": "is a call",
    "trigger['a'] + 1 > 3": "is arithmetic",
    "True": "is a constant",
    "1 == 1": "compares literals only",
    "trigger['a'] is 1": "compares identity",
    "trigger['a'] in {}": "is a dict literal",
    "trigger['a'] in []": "is empty",
    "item['a'] == 1": "reads item, which only a --foreach step has",
    "trigger == 1": "is the whole record",
    "trigger[col] == 1": "not a literal column name",
    "trigger.get('a', 5) == 1": "default other than None",
    "trigger['a'] == float('nan')": "is a call",
    "trigger['a'] ==": "not a Python expression",
    "trigger['a'] == b'x'": "bytes literal",
    "os.system('x') == 0": "is a call",
    "trigger.keys == 1": "is an attribute",
    "not " * 3000 + "trigger['a']": "nests too deeply",
    "(" * 300 + "trigger['a']" + ")" * 300: "not a Python expression",
    "trigger['a'] == " + "9" * 5000: "not a Python expression",
    "trigger['\x00'] == 1": "not a Python expression",
}


@pytest.mark.parametrize(("condition", "reason"), REFUSED.items(), ids=[c[:40] for c in REFUSED])
def test_what_a_condition_cannot_say_is_refused_naming_the_part(condition, reason):
    with pytest.raises(NotExpressible, match=reason):
        translate(condition, steps)


# -- in a flow -------------------------------------------------------------------------------


def exported(flow, assert_valid) -> dict:
    """The flow's workflow definition, valid at the top and inside every If / Foreach body."""
    definition = assert_valid(export(flow, org=ORG).document)
    check_nested(definition)
    return definition


def conditional(new_flow):
    flow = new_flow("cond").on_created("leads", every="1m")
    flow.step("get_lead", "get leads {trigger[leadid]}")
    flow.step(
        "task", 'create tasks subject="hot {trigger[subject]}"', when="trigger['statuscode'] == 1"
    )
    flow.step("mark", "update leads {trigger[leadid]} jobtitle=Contacted")
    return flow


def test_an_if_step_and_what_chains_after_it_become_one_if(new_flow, assert_valid):
    """The notebook skips the steps chained after a step whose --if was false (each runs after
    the one before succeeded), as a Logic App skips the branch it did not take."""
    flow = conditional(new_flow)
    flow.step("log", 'create tasks subject="checked"', after="get_lead:succeeded")
    definition = exported(flow, assert_valid)
    assert list(definition["actions"]) == ["get_lead", "task_if", "log"]
    branch = definition["actions"]["task_if"]
    assert branch["type"] == "If" and branch["runAfter"] == {"get_lead": ["Succeeded"]}
    assert branch["expression"] == {"and": [{"equals": [f"{T}['statuscode']", 1]}]}
    assert list(branch["actions"]) == ["task", "mark"]
    assert branch["actions"]["task"]["runAfter"] == {}
    assert branch["actions"]["mark"]["runAfter"] == {"task": ["Succeeded"]}
    assert "else" not in branch


def test_run_after_cannot_reach_into_an_if(new_flow):
    """``--after task:skipped`` names an action inside the If: refused, not exported wrong."""
    flow = conditional(new_flow)
    flow.step("report", 'create tasks subject="no task"', after="task:skipped")
    with pytest.raises(FlowError, match="--after task: in the Logic App task runs inside the If"):
        export(flow, org=ORG)


def test_if_else_exports_both_branches(new_flow, assert_valid):
    flow = new_flow("branches").on_created("leads", every="1m")
    big = "trigger.get('budgetamount') is not None and trigger['budgetamount'] >= 1000"
    flow.step("vip", 'create tasks subject="call {trigger[subject]}"', when=big, otherwise="normal")
    flow.step("normal", 'create tasks subject="mail {trigger[subject]}"')
    flow.step("done", "update leads {trigger[leadid]} jobtitle=Handled")
    definition = exported(flow, assert_valid)
    assert list(definition["actions"]) == ["vip_if", "done"]
    branch = definition["actions"]["vip_if"]
    assert list(branch["actions"]) == ["vip"] and list(branch["else"]["actions"]) == ["normal"]
    assert branch["else"]["actions"]["normal"]["runAfter"] == {}
    # What follows an --if/--else pair runs after whichever branch ran: after the If.
    assert definition["actions"]["done"]["runAfter"] == {"vip_if": ["Succeeded"]}


def test_a_foreach_checks_its_if_per_item(new_flow, assert_valid):
    flow = new_flow("loop_if").on_created("leads", every="1m")
    flow.step("find", 'list tasks --filter "statecode eq 0" --top 50')
    close = "update tasks {item[activityid]} description=closed"
    flow.step("close", close, foreach="{steps[find]}", when="item['subject'] != 'keep'")
    definition = exported(flow, assert_valid)
    loop = definition["actions"]["close"]
    assert loop["type"] == "Foreach"
    [(name, inner)] = loop["actions"].items()
    assert name == "close_if" and inner["type"] == "If" and inner["runAfter"] == {}
    assert inner["expression"] == {
        "and": [{"not": {"equals": ["@items('close')?['subject']", "keep"]}}]
    }
    assert list(inner["actions"]) == ["close_item"]


def test_a_condition_that_cannot_export_names_the_step(new_flow):
    flow = new_flow("bad_if").on_created("leads", every="1m")
    flow.step("task", 'create tasks subject="x"', when="trigger['statuscode'] == my_limit")
    with pytest.raises(FlowError) as err:
        export(flow, org=ORG)
    message = str(err.value)
    assert "step task: its --if cannot be exported: my_limit is a notebook variable" in message
    assert "\n" not in message


def test_an_if_name_taken_by_a_step_is_refused(new_flow):
    flow = new_flow("clash").on_created("leads", every="1m")
    flow.step("task", 'create tasks subject="x"', when="trigger['statuscode'] == 1")
    flow.step("task_if", 'create tasks subject="y"', after="task:skipped")
    with pytest.raises(FlowError, match="If action named task_if, which is already a step"):
        export(flow, org=ORG)


# -- the exported rows mean what the Python meant ---------------------------------------------


class _Undefined(Exception):
    """An operation WDL (and Python) refuse, e.g. ordering null against a number."""


class _Unknown(Exception):
    """Ordering two strings: WDL's collation is not documented, so nothing is asserted."""


def evaluate(row: Any, record: dict[str, Any]) -> bool:
    """The Logic Apps reading of a condition object over ``triggerBody()`` = ``record``."""
    [(op, args)] = row.items()
    if op == "and":
        return all(evaluate(r, record) for r in args)
    if op == "or":
        return any(evaluate(r, record) for r in args)
    if op == "not":
        return not evaluate(args, record)
    a, b = (operand(x, record) for x in args)
    if op == "equals":  # typed: 1 equals 1.0, never '1'
        return a == b and (type(a) is type(b) or _numbers(a, b))
    if op == "contains":
        if not isinstance(a, str) or not isinstance(b, str):
            raise _Undefined
        return b in a
    if isinstance(a, str) and isinstance(b, str):
        raise _Unknown
    if not _numbers(a, b):
        raise _Undefined
    return {"less": a < b, "lessOrEquals": a <= b, "greater": a > b, "greaterOrEquals": a >= b}[op]


def _numbers(a: Any, b: Any) -> bool:
    return all(isinstance(x, int | float) for x in (a, b))


def operand(value: Any, record: dict[str, Any]) -> Any:
    if not isinstance(value, str) or not value.startswith("@"):
        return value
    if value == "@null":
        return None
    if value.startswith("@@"):
        return value[1:]
    prefix = "@triggerBody()?['"
    assert value.startswith(prefix) and value.endswith("']"), value
    return record.get(value[len(prefix) : -2])


COLUMNS = ("a", "b", "s")
# No booleans: Python's True == 1 has no documented WDL counterpart (a bare boolean field's
# truthiness is checked above).
values = st.one_of(
    st.none(),
    st.integers(-3, 3),
    st.sampled_from([0.0, 1.5, -2.5]),
    st.sampled_from(["", "x", "X", "xy", "1", "@x"]),
)
fields = st.sampled_from(
    [f"trigger['{c}']" for c in COLUMNS] + [f"trigger.get('{c}')" for c in COLUMNS]
)
literals = values.map(repr)
comparisons = st.one_of(
    st.tuples(
        fields, st.sampled_from(["==", "!=", "<", "<=", ">", ">="]), st.one_of(fields, literals)
    ).map(" ".join),
    st.tuples(literals, st.sampled_from(["==", "!=", "<"]), fields).map(" ".join),
    st.tuples(fields, st.sampled_from(["is None", "is not None"])).map(" ".join),
    st.tuples(st.sampled_from(["'x'", "''"]), st.sampled_from(["in", "not in"]), fields).map(
        " ".join
    ),
    st.tuples(
        fields, st.sampled_from(["in", "not in"]), st.lists(literals, min_size=1, max_size=3)
    ).map(lambda t: f"{t[0]} {t[1]} ({', '.join(t[2])},)"),
    fields,
)
conditions = st.recursive(
    comparisons,
    lambda inner: st.one_of(
        st.tuples(inner, st.sampled_from(["and", "or"]), inner).map(
            lambda t: f"({t[0]} {t[1]} {t[2]})"
        ),
        inner.map(lambda c: f"not ({c})"),
    ),
    max_leaves=4,
)
records = st.fixed_dictionaries({c: values for c in COLUMNS})


def python_says(condition: str, record: dict[str, Any]) -> bool:
    return bool(eval(condition, {"__builtins__": {}}, {"trigger": record}))  # noqa: S307 - test data


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(conditions, records)
def test_the_exported_condition_agrees_with_python(condition, record):
    try:
        expected = python_says(condition, record)
    except TypeError:  # e.g. None < 1, 'x' in None: an error in both worlds, nothing to compare
        return
    try:
        expression = translate(condition, steps)
    except NotExpressible:  # e.g. comparing literals only: refused, never exported wrong
        return
    try:
        got = evaluate(expression, record)
    except _Unknown:
        return
    except _Undefined:
        pytest.fail(f"{condition!r} on {record}: Python answers {expected}, the export errors")
    assert got == expected, (condition, record, expression)


def test_a_chain_of_ifs_deeper_than_logic_apps_allows_is_refused(new_flow, assert_valid):
    """Each --if step with steps chained after it nests one If deeper; Logic Apps allows 8
    levels (https://learn.microsoft.com/azure/logic-apps/logic-apps-limits-and-config)."""

    def chain(levels: int):
        flow = new_flow(f"deep{levels}").on_created("leads", every="1m")
        for i in range(levels):
            flow.step(f"s{i}", 'create tasks subject="x"', when=f"trigger['statuscode'] != {i}")
        return flow

    assert nesting_depth(exported(chain(8), assert_valid)["actions"]) == 8
    with pytest.raises(FlowError, match="nest 9 deep .* Logic Apps allows 8"):
        export(chain(9), org=ORG)
