"""Control flow like Logic Apps: ``--after step[:succeeded|failed|skipped|timedout]`` (runAfter),
``--foreach`` (one body run per item, ``item`` in scope, ``--concurrency``, results in order),
``--if ... --else step`` (an If with two branches). The run view shows every iteration and
branch. Semantics: https://learn.microsoft.com/azure/logic-apps/error-exception-handling#manage-the-run-after-behavior
and https://learn.microsoft.com/azure/logic-apps/logic-apps-control-flow-loops#foreach."""

from __future__ import annotations

import uuid

import pytest

from d365nb.flows import Flow, FlowError

# ``conn`` (tests/support/flows.py): an in-process sandbox of the test's own, tasks untracked.


def statuses(run) -> str:
    """Each step of ``run`` as ``name:status``, in the run view's order."""
    return " ".join(f"{s['name']}:{s['status']}" for s in run.steps)


def lead_flow(conn, history, name="cf") -> tuple[Flow, str]:
    lead = conn.create("leads", {"subject": "big deal", "lastname": "Flow"})
    return Flow(name, conn, history=history).on_created("leads", every="1h"), lead


def test_foreach_over_a_list_step_updates_every_record(conn, history):
    tag = uuid.uuid4().hex[:6]
    ids = [conn.create("tasks", {"subject": f"{tag} task {i}"}) for i in range(4)]
    flow, lead = lead_flow(conn, history)
    flow.step("find", f"list tasks --filter \"startswith(subject,'{tag}')\" --orderby subject")
    flow.step(
        "mark",
        'update tasks {item[activityid]} description="seen {item[subject]}"',
        foreach="{steps[find]}",
        concurrency=3,
    )
    run = flow.test(lead)
    assert run.status == "Succeeded"
    names = [s["name"] for s in run.steps]
    assert names == ["find", "mark", "mark[0]", "mark[1]", "mark[2]", "mark[3]"]
    assert run.step("mark")["inputs"]["items"] == 4
    for i, task in enumerate(ids):
        assert conn.get("tasks", task)["description"] == f"seen {tag} task {i}"


def test_foreach_keeps_results_in_order_whatever_finishes_first(conn, history):
    flow, lead = lead_flow(conn, history)
    flow.step(
        "double",
        "import time\ntime.sleep((5 - item) * 0.02)\nitem * 2",
        foreach="range(5)",
        concurrency=5,
    )
    flow.step("total", "sum(steps['double'])")
    run = flow.test(lead)
    assert run.step("double")["outputs"] == [0, 2, 4, 6, 8]
    assert run.step("total")["outputs"] == 20
    assert [run.step(f"double[{i}]")["outputs"] for i in range(5)] == [0, 2, 4, 6, 8]


def test_a_failed_iteration_fails_the_loop_and_names_it(conn, history):
    flow, lead = lead_flow(conn, history)
    flow.step("each", "1 / (item - 2)", foreach="[1, 2, 3]", retry="none")
    run = flow.test(lead)
    assert run.status == "Failed"
    assert run.step("each")["status"] == "Failed"
    assert "1 of 3 iteration(s) failed; each[1]: ZeroDivisionError" in run.step("each")["error"]
    assert [run.step(f"each[{i}]")["status"] for i in range(3)] == [
        "Succeeded",
        "Failed",
        "Succeeded",
    ]


def test_run_after_failed_handles_the_failure(conn, history):
    flow, lead = lead_flow(conn, history)
    flow.step("risky", "raise ValueError('nope')", retry="none")
    flow.step("on_ok", "'fine'")  # default: after risky succeeded
    flow.step("on_fail", "'handled: ' + str(steps.get('risky'))", after="risky:failed|timedout")
    flow.step("always", "'done'", after=["on_ok:succeeded|skipped", "on_fail:succeeded|skipped"])
    run = flow.test(lead)
    assert statuses(run) == "risky:Failed on_ok:Skipped on_fail:Succeeded always:Succeeded"
    assert "runs after risky (Succeeded), which is Failed" in run.step("on_ok")["error"]
    assert run.status == "Succeeded"  # handled, as a Logic App run with a failure branch


def test_an_unhandled_failure_fails_the_run(conn, history):
    flow, lead = lead_flow(conn, history)
    flow.step("risky", "raise ValueError('nope')", retry="none")
    flow.step("next", "'never'")
    run = flow.test(lead)
    assert run.status == "Failed" and run.step("next")["status"] == "Skipped"


def test_if_else_runs_one_branch_and_what_follows_runs_after_it(conn, history):
    flow = Flow("branch", conn, history=history).on_created("leads", every="1h")
    flow.step(
        "big",
        "'big: ' + trigger['subject']",
        when="trigger['subject'].startswith('big')",
        otherwise="small",
    )
    flow.step("small", "'small: ' + trigger['subject']")
    flow.step("after", "steps.get('big') or steps.get('small')")
    # The same flow, tested on a lead for each branch.
    for subject, steps, after in (
        ("big deal", "big:Succeeded small:Skipped after:Succeeded", "big: big deal"),
        ("tiny deal", "big:Skipped small:Succeeded after:Succeeded", "small: tiny deal"),
    ):
        run = flow.test(conn.create("leads", {"subject": subject}))
        assert statuses(run) == steps
        assert run.step("after")["outputs"] == after


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"after": "ghost"}, "--after ghost: not an earlier step"),
        ({"after": "first:done"}, "'done' is not succeeded, failed, skipped or timedout"),
        ({"foreach": "range(3)", "concurrency": 0}, "bad --concurrency 0: use 1 to 50"),
        ({"foreach": "range(3)", "concurrency": 51}, "bad --concurrency 51"),
        ({"concurrency": 2}, "--concurrency applies to --foreach steps"),
        ({"otherwise": "first"}, "--else needs --if"),
        ({"foreach": "  "}, "--foreach needs the items"),
    ],
)
def test_bad_control_flow_is_one_line_and_changes_nothing(conn, history, options, message):
    flow, _ = lead_flow(conn, history)
    flow.step("first", "1")
    with pytest.raises(FlowError, match=message) as err:
        flow.step("second", "2", **options)
    assert "\n" not in str(err.value) and [s.name for s in flow.steps] == ["first"]


def test_foreach_over_something_not_a_list_fails_the_step(conn, history):
    flow, lead = lead_flow(conn, history)
    flow.step("each", "item", foreach="trigger['subject']")
    run = flow.test(lead)
    assert run.status == "Failed" and "gave str, not a list of items" in run.step("each")["error"]


def test_control_flow_survives_a_reload(conn, history):
    flow, _ = lead_flow(conn, history, name="kept_cf")
    flow.step("find", "list tasks --top 3")
    flow.step("each", "item", foreach="{steps[find]}", concurrency=4, after="find:succeeded|failed")
    again = Flow.load("kept_cf", conn, history=history)
    step = again.steps[1]
    assert (step.foreach, step.concurrency, step.after) == (
        "{steps[find]}",
        4,
        {"find": ("Succeeded", "Failed")},
    )


def test_a_scope_runs_its_steps_as_one_block_caught_by_run_after_failed(conn, history):
    """Logic Apps' try/catch: a Scope, and a step that runs after it Failed
    (https://learn.microsoft.com/azure/logic-apps/error-exception-handling#evaluate-actions-with-scopes-and-their-results)."""
    flow, lead = lead_flow(conn, history)
    flow.step("first", "'one'")
    flow.step("second", "raise ValueError('broken')", retry="none")
    flow.step("third", "'three'")
    flow.scope("work", ["first", "second", "third"])
    flow.step("catch", "'caught'", after="work:failed|timedout")
    flow.step("done", "'done'", after="catch:succeeded|skipped")
    run = flow.test(lead)
    assert statuses(run) == (
        "work:Failed first:Succeeded second:Failed third:Skipped catch:Succeeded done:Succeeded"
    )
    assert "step 'second' failed: ValueError: broken" in run.step("work")["error"]
    assert run.status == "Succeeded"  # the scope's failure was caught


def test_a_scope_whose_run_after_is_not_met_skips_all_its_steps(conn, history):
    flow, lead = lead_flow(conn, history)
    flow.step("gate", "raise ValueError('closed')", retry="none")
    flow.step("a", "1")
    flow.step("b", "2")
    flow.scope("work", "a, b")
    flow.step("fallback", "'fell back'", after="gate:failed")
    run = flow.test(lead)
    assert statuses(run) == "gate:Failed work:Skipped a:Skipped b:Skipped fallback:Succeeded"


def test_bad_scopes_are_one_line(conn, history):
    flow, _ = lead_flow(conn, history)
    flow.step("a", "1").step("b", "2")
    with pytest.raises(FlowError, match="no step 'ghost'"):
        flow.scope("work", ["a", "ghost"])
    flow.scope("work", ["a"])
    with pytest.raises(FlowError, match="step 'a' is already in scope 'work'"):
        flow.scope("other", ["a", "b"])
    with pytest.raises(FlowError, match="has a step of that name"):
        flow.scope("b", ["a"])
    with pytest.raises(FlowError, match="needs its steps"):
        flow.scope("empty", [])
    assert [s.name for s in flow.scopes] == ["work"]
    again = Flow.load(flow.name, conn, history=history)
    assert [(s.name, s.members) for s in again.scopes] == [("work", ("a",))]


def test_headless_reads_control_flow_cells_as_the_kernel_does(conn, tmp_path):
    """``d365nb flow run`` builds the same flow: --foreach/--after options and scope cells."""
    import nbformat

    from d365nb.flows import headless

    nb = nbformat.v4.new_notebook()
    nb.cells = [
        nbformat.v4.new_code_cell("%d365 trigger hl created leads --every 1h"),
        nbformat.v4.new_code_cell("%%d365 action hl find\nlist tasks --top 5"),
        nbformat.v4.new_code_cell(
            '%%d365 action hl each --foreach "{steps[find]}" --concurrency 3\nitem'
        ),
        nbformat.v4.new_code_cell("%%d365 scope hl work\nfind\neach"),
        nbformat.v4.new_code_cell("%%d365 action hl catch --after work:failed\n'caught'"),
    ]
    path = tmp_path / "flows.ipynb"
    nbformat.write(nb, path)
    [flow] = headless.load_flows(path, conn)
    each = flow.steps[1]
    assert (each.foreach, each.concurrency) == ("{steps[find]}", 3)
    assert [(s.name, s.members) for s in flow.scopes] == [("work", ("find", "each"))]
    assert flow.steps[2].after == {"work": ("Failed",)}


def test_flow_steps_shows_the_control_flow(shell):
    import pandas as pd

    from tests.support.shells import run_cell

    run_cell(shell, "%d365 trigger cfs created leads --every 1h")
    run_cell(shell, "%%d365 action cfs find\nlist tasks --top 3")
    run_cell(shell, '%%d365 action cfs each --foreach "{steps[find]}" --concurrency 2\nitem')
    run_cell(shell, "%%d365 scope cfs work\nfind\neach")
    run_cell(shell, "%%d365 action cfs catch --after work:failed --after find:timedout\n'c'")
    steps = run_cell(shell, "%d365 flow steps cfs").set_index("step")
    assert steps.loc["each", "foreach"] == "{steps[find]}"
    assert steps.loc["catch", "after"] == "work:Failed, find:TimedOut"
    assert steps.loc["find", "scope"] == "work" and pd.isna(steps.loc["catch", "scope"])


def test_headless_refuses_a_filter_reading_notebook_variables(conn, tmp_path):
    import nbformat

    from d365nb.flows import headless

    nb = nbformat.v4.new_notebook()
    nb.cells = [
        nbformat.v4.new_code_cell('%d365 trigger hv created leads --filter "subject eq {name}"'),
        nbformat.v4.new_code_cell("%%d365 action hv s\n1"),
    ]
    nbformat.write(nb, tmp_path / "vars.ipynb")
    with pytest.raises(FlowError, match="reads notebook variables") as err:
        headless.load_flows(tmp_path / "vars.ipynb", conn)
    assert "\n" not in str(err.value)
