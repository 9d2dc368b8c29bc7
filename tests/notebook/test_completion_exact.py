"""Tab completion answers exactly the d365 candidates for the cursor's position - through
IPython's own completer (the API Jupyter kernels call), so Python names from Jedi are not mixed
in - ranked (prefix matches first), without duplicates, at most 50, and without a request."""

from __future__ import annotations

import pytest
from IPython.core.completer import provisionalcompleter

from d365nb.notebook.completion import LIMIT, rank
from tests.support.completion import requests_while_typing, warmed

LEAD_STATUS = ["'New'", "'Contacted'", "'Qualified'", "'Lost'", "'Cannot Contact'",
               "'No Longer Interested'", "'Canceled'"]  # fmt: skip


def complete(shell, text: str) -> list[str]:
    with provisionalcompleter():
        found = [c.text for c in shell.Completer.completions(text, len(text))]
    assert len(found) == len(set(found)), f"duplicates in {found}"
    assert len(found) <= LIMIT
    return found


@pytest.fixture
def warm(shell):
    """lead and task metadata cached (as after a list/describe of them)."""
    return warmed()


def test_after_the_magic_only_verbs(shell):
    from d365nb.notebook.args import COMMANDS

    assert complete(shell, "%d365 ") == list(COMMANDS)
    assert complete(shell, "%d365 li") == ["list"]
    assert complete(shell, "%d365 con") == ["connect", "connections"]


def test_table_position_offers_only_tables(shell, warm):
    assert complete(shell, "%d365 list lea") == ["lead", "leads"]
    assert complete(shell, "%d365 describe syst") == ["systemuser", "systemusers"]
    every = complete(shell, "%d365 list ")
    assert every and set(every) <= set(warm.metadata.cached_table_names())
    assert "len" not in every and "import" not in every  # no Python names


def test_columns_after_select_orderby_and_no_repeats(shell, warm):
    # Names starting with the text first (schema order), then names containing it.
    assert complete(shell, "%d365 list leads --select last") == [
        "lastname", "lastonholdtime", "lastusedincampaign", "yomilastname",
    ]  # fmt: skip
    assert complete(shell, "%d365 list leads --select lastname,first") == [
        "firstname", "yomifirstname",
    ]  # fmt: skip
    # fullname is selected already: not offered again (yomifullname only contains the text)
    assert complete(shell, "%d365 list leads --select fullname,fulln") == ["yomifullname"]
    assert complete(shell, "%d365 list leads --orderby crea") == [
        "createdby", "createdon", "createdonbehalfby", "overriddencreatedon",
    ]  # fmt: skip
    assert complete(shell, "%d365 list tasks --select prio") == ["prioritycode"]


def test_filter_columns_then_operators_then_labels(shell, warm):
    assert complete(shell, '%d365 list leads --filter "statu') == ["statuscode", "budgetstatus"]
    assert complete(shell, '%d365 list leads --filter "statuscode ') == [
        "eq", "ne", "gt", "ge", "lt", "le",
    ]  # fmt: skip
    assert complete(shell, '%d365 list leads --filter "statuscode eq ') == LEAD_STATUS
    assert complete(shell, '%d365 list leads --filter "statuscode eq 1 ') == ["and", "or", "not"]


def test_choice_labels_after_col_equals(shell, warm):
    assert complete(shell, "%d365 create tasks prioritycode=") == ["Low", "Normal", "High"]
    assert complete(shell, "%d365 update tasks prioritycode=H") == ["High"]
    assert complete(shell, "%d365 create tasks percent") == ["percentcomplete="]


def test_query_cell_body_completes_columns(shell, warm):
    body = "%%d365 list leads --top 5\nstatuscode eq 1\n  and lastn"
    assert complete(shell, body) == ["lastname", "yomilastname"]
    assert complete(shell, "%%d365 list leads\n--sel") == ["--select"]


def test_help_topics_and_python_code_untouched(shell, warm):
    assert complete(shell, "%d365 help fil") == ["filter"]
    # Outside %d365 IPython's own completion is left alone.
    assert "os" in complete(shell, "import o")


def test_no_request_per_keystroke(shell, warm):
    assert requests_while_typing(warm, lambda text: complete(shell, text)) == 0


def test_rank_is_prefix_first_unique_and_capped():
    names = [f"col{i:03d}" for i in range(80)] + ["xcol", "col001"]
    ranked = rank(names, "col")
    assert ranked == [f"col{i:03d}" for i in range(LIMIT)]
    assert rank(["bname", "aname", "name"], "name") == ["name", "bname", "aname"]


def test_groupby_offers_that_tables_columns(shell, warm):
    from d365nb.notebook.args import COMMANDS

    if "aggregate" not in COMMANDS:
        pytest.skip("aggregate is not in this build")
    assert complete(shell, "%d365 aggregate leads --groupby statu") == [
        "statuscode", "budgetstatus",
    ]  # fmt: skip
    assert complete(shell, "%d365 aggregate leads --groupby statuscode,lead") == [
        "leadid", "leadqualitycode", "leadsourcecode",
    ]  # fmt: skip
