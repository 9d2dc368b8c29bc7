"""Hostile input to declarative flow steps (issue 12 item 2): a rendered template value is the
value, never new source text; every option a step takes is honoured or refused when the step
is defined; ``list --filter`` templates are quoted as OData literals.

Each case runs the step once on a real trigger record (``Flow.test``) against the sandbox over
loopback HTTP and reads back what was written. Field typing follows the connector's field-type
rules (whole numbers, dates ISO or mm/dd/yyyy, choices by value or label, lookups):
https://learn.microsoft.com/power-apps/developer/data-platform/webapi/create-entity-web-api
https://learn.microsoft.com/power-apps/developer/data-platform/webapi/query/filter-rows
"""

from __future__ import annotations

import uuid
from typing import Any

import pytest

import d365nb
from d365nb.flows import Flow, FlowError

# Strings that a re-parsing step would turn into something else: null, numbers, booleans,
# Python's None, shell/command syntax, multi-line text.
AS_TEXT = [
    "Null",
    "null",
    "NULL",
    "None",
    "007",
    "true",
    "False",
    "1e3",
    "-0",
    "3.50",
    "  padded  ",
    'say "hi"',
    "it's",
    "a=b",
    "x --alias other",
    "two words",
    "line one\nline two",
    "{trigger[subject]}",
    "{{braces}}",
    "\\n not a newline",
    "emoji ✓",
]


@pytest.fixture
def make_flow(d365, tmp_path):
    """``make_flow(step_source)`` -> a flow on leads with that one step (not started)."""
    count = iter(range(1000))

    def make(source: str, **step: Any) -> Flow:
        flow = Flow(f"hostile_{next(count)}", d365, history=tmp_path / "flows.sqlite")
        flow.on_created("leads", every="1h")
        return flow.step("s", source, **step)

    return make


def lead_with(d365, **values: Any) -> str:
    return d365.create("leads", {"lastname": "Hostile", "subject": "hostile", **values})


def task_count(d365, tag: str) -> int:
    return len(d365.list("tasks", filter=f"startswith(subject,'{tag}')", select=["subject"]))


@pytest.mark.parametrize("text", AS_TEXT)
def test_a_whole_field_template_into_text_columns_stays_exactly_that_string(d365, make_flow, text):
    tag = uuid.uuid4().hex[:8]
    lead = lead_with(d365, description=text)
    flow = make_flow(
        f'create tasks subject="{tag}" description={{trigger[description]}} '
        "category={trigger[description]}"
    )
    run = flow.test(lead)
    assert run.status == "Succeeded", run.step("s")
    task = d365.get("tasks", run.step("s")["outputs"], select=["description", "category"])
    assert task["description"] == text and task["category"] == text


@pytest.mark.parametrize("text", AS_TEXT)
def test_a_template_with_text_around_it_renders_the_string_verbatim(d365, make_flow, text):
    tag = uuid.uuid4().hex[:8]
    lead = lead_with(d365, description=text)
    flow = make_flow(f'create tasks subject="{tag}" description="<{{trigger[description]}}>"')
    run = flow.test(lead)
    assert run.status == "Succeeded", run.step("s")
    task = d365.get("tasks", run.step("s")["outputs"], select=["description"])
    assert task["description"] == f"<{text}>"


@pytest.mark.parametrize(
    ("column", "text", "stored"),
    [
        ("actualdurationminutes", "007", 7),
        ("actualdurationminutes", " 42 ", 42),
        ("percentcomplete", "100", 100),
        ("prioritycode", "2", 2),
        ("prioritycode", "High", 2),
        ("prioritycode", "low", 0),
        ("scheduledend", "2026-03-01T09:30:00Z", "2026-03-01T09:30:00Z"),
        ("scheduledend", "03/01/2026", "2026-03-01T00:00:00Z"),
    ],
)
def test_text_into_a_typed_column_is_coerced_by_its_metadata(d365, make_flow, column, text, stored):
    tag = uuid.uuid4().hex[:8]
    lead = lead_with(d365, description=text)
    flow = make_flow(f'create tasks subject="{tag}" {column}={{trigger[description]}}')
    run = flow.test(lead)
    assert run.status == "Succeeded", run.step("s")
    task = d365.get("tasks", run.step("s")["outputs"], select=[column], labels=False)
    assert task[column] == stored


@pytest.mark.parametrize(
    ("column", "text"),
    [
        ("actualdurationminutes", "Null"),  # never "cleared": refused
        ("actualdurationminutes", "None"),
        ("actualdurationminutes", "1e3"),
        ("actualdurationminutes", "true"),
        ("actualdurationminutes", "12.5"),
        ("percentcomplete", "101"),
        ("prioritycode", "Urgent"),
        ("prioritycode", "7"),
        ("scheduledend", "31/31/2026"),
        ("scheduledend", "soon"),
        ("regardingobjectid", "leads(not-a-guid)"),
        ("regardingobjectid", "systemusers(00000000-0000-0000-0000-000000000001)"),
    ],
)
def test_text_a_typed_column_cannot_take_is_refused_in_one_line_writing_nothing(
    d365, make_flow, column, text
):
    tag = uuid.uuid4().hex[:8]
    lead = lead_with(d365, description=text)
    flow = make_flow(f'create tasks subject="{tag}" {column}={{trigger[description]}}')
    run = flow.test(lead)
    assert run.status == "Failed"
    error = run.step("s")["error"]
    assert column in error and "\n" not in error
    assert task_count(d365, tag) == 0


def test_a_number_field_into_a_text_column_becomes_its_text(d365, make_flow):
    tag = uuid.uuid4().hex[:8]
    lead = lead_with(d365, numberofemployees=42)
    flow = make_flow(f'create tasks subject="{tag}" category={{trigger[numberofemployees]}}')
    run = flow.test(lead)
    assert run.status == "Succeeded", run.step("s")
    assert d365.get("tasks", run.step("s")["outputs"])["category"] == "42"


def test_the_literal_word_null_clears_and_other_literals_stay_text(d365, make_flow):
    tag = uuid.uuid4().hex[:8]
    lead = lead_with(d365)
    task = d365.create("tasks", {"subject": tag, "category": "before", "description": "x"})
    flow = make_flow(f"update tasks {task} category=null description=007")
    run = flow.test(lead)
    assert run.status == "Succeeded", run.step("s")
    got = d365.get("tasks", task, select=["category", "description"])
    assert got["category"] is None and got["description"] == "007"


# -- list --filter templates --------------------------------------------------------------
@pytest.mark.parametrize(
    "lastname",
    ["O'Neil", "x' or lastname ne 'y", "a) or (1 eq 1", "Null", "null", "' or true or '"],
)
def test_list_filter_templates_are_quoted_literals(d365, make_flow, lastname):
    tag = uuid.uuid4().hex[:8]
    lead = lead_with(d365, lastname=lastname, subject=tag)
    flow = make_flow('list leads --filter "lastname eq {trigger[lastname]}" --select lastname')
    run = flow.test(lead)
    assert run.status == "Succeeded", run.step("s")
    matches = d365.list("leads", filter=f"lastname eq '{lastname.replace(chr(39), chr(39) * 2)}'")
    assert run.step("s")["outputs"]["rows"] == len(matches) >= 1
    # inside a quoted OData string the value is escaped, never pasted as syntax
    flow = make_flow(
        "list leads --filter \"subject eq '{trigger[subject]}' and lastname eq {trigger[lastname]}\""
    )
    run = flow.test(lead)
    assert run.status == "Succeeded", run.step("s")
    assert run.step("s")["outputs"]["rows"] == 1


def test_list_honours_top_select_and_orderby(d365, make_flow):
    tag = uuid.uuid4().hex[:8]
    lead = lead_with(d365, subject=tag)
    for i in range(3):
        lead_with(d365, subject=f"{tag} {i}")
    flow = make_flow(
        f"list leads --filter \"startswith(subject,'{tag}')\" --top 2 --select subject "
        '--orderby "subject desc"'
    )
    run = flow.test(lead)
    assert run.status == "Succeeded", run.step("s")
    out = run.step("s")["outputs"]
    assert out["rows"] == 2 and "subject" in out["columns"] and "lastname" not in out["columns"]
    assert run.step("s")["inputs"]["query"]["orderby"] == "subject desc"


def test_a_filter_of_a_null_field_is_never_all_rows(d365, make_flow):
    lead = lead_with(d365, description=None)
    flow = make_flow('list leads --filter "{trigger[description]}"')
    run = flow.test(lead)
    # null is written as the OData literal null: the service refuses it, nothing is listed
    assert run.status == "Failed" and run.step("s")["outputs"] is None
    assert "$filter" in run.step("s")["error"] and "\n" not in run.step("s")["error"]


# -- options: honoured or refused when the step is defined ----------------------------------
@pytest.mark.parametrize(
    ("source", "reason"),
    [
        ("create tasks subject=x --yes", "create does not take --yes"),
        ("create tasks subject=x --filter y", "create does not take --filter"),
        ('update leads {trigger[leadid]} subject=x --where "a eq 1"', "does not take --where"),
        ("delete leads {trigger[leadid]} --all", "delete does not take --all"),
        ("list leads --top many", "--top 'many' is not a whole number"),
        ("list leads --top -1", "--top '-1' is not a whole number"),
        ("list leads --skip 3", "list does not take --skip"),
        ("list leads --filter", "--filter needs a value"),
        ('list leads --filter ""', "--filter is empty"),
        ("list leads --filter a --filter b", "--filter is given twice"),
        ("list leads subject=x", "list takes no column=value"),
        ("get leads {trigger[leadid]} --top 1", "get does not take --top"),
        ("create tasks subject=x subject=y", "column subject is given twice"),
        ("create tasks subject=x --alias nosuchconnection", "no connection 'nosuchconnection'"),
        ("create tasks subject=x --alias {name}", "--alias must name a connection"),
        ("update leads --alias x subject=y", "update needs a record id"),
    ],
)
def test_an_option_a_step_does_not_honour_is_refused_when_defined(d365, tmp_path, source, reason):
    flow = Flow("opts", d365, history=tmp_path / "flows.sqlite").on_created("leads", every="1h")
    with pytest.raises(FlowError) as err:
        flow.step("s", source)
    message = str(err.value)
    assert reason in message and "\n" not in message
    assert flow.steps == [] and flow.history.flow_definition("opts")["steps"] == []


def test_alias_writes_to_that_connection_never_the_default(d365, empty_sandbox, make_flow):
    tag = uuid.uuid4().hex[:8]
    other = d365nb.connect(empty_sandbox.url, token=empty_sandbox.token, alias="hostile-other")
    try:
        lead = lead_with(d365)
        flow = make_flow(f'create tasks subject="{tag}" --alias hostile-other')
        run = flow.test(lead)
        assert run.status == "Succeeded", run.step("s")
        assert task_count(other, tag) == 1 and task_count(d365, tag) == 0
        assert run.step("s")["inputs"]["alias"] == "hostile-other"
        # the same run executed again (resubmit) writes the same record: still one
        again = flow.resubmit(run.run_id)
        assert again.status == "Succeeded" and task_count(other, tag) == 1
    finally:
        d365nb.connections.remove(other)
        other.close()


def test_alias_in_a_notebook_cell_is_resolved_like_percent_d365(shell, tmp_path, monkeypatch):
    from tests.support.shells import CellFailed, run_cell

    monkeypatch.chdir(tmp_path)
    run_cell(shell, "%d365 trigger nb_alias created leads --every 1h")
    with pytest.raises(CellFailed) as err:
        run_cell(shell, "%%d365 action nb_alias s\ncreate tasks subject=x --alias ghost")
    assert "ghost" in str(err.value) and "\n" not in str(err.value).strip()
    run_cell(shell, "%%d365 action nb_alias s\ncreate tasks subject=x --alias nbtest")
    with pytest.raises(CellFailed) as err:
        run_cell(shell, "%%d365 action nb_alias t\ncreate tasks subject=x --where y")
    assert "create does not take --where" in str(err.value)
