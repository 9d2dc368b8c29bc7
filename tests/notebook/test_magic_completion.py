"""Tab completion from cached metadata only: no request per keystroke."""

from __future__ import annotations

import pytest

from d365nb.notebook.completion import candidates
from tests.support.completion import requests_while_typing, warmed

# shell.complete() is the API every frontend still reaches; its deprecation note is noise here.
pytestmark = pytest.mark.filterwarnings("ignore::PendingDeprecationWarning")


def _complete(shell, line: str) -> list[str]:
    _, matches = shell.complete("", line=line, cursor_pos=len(line))
    return list(matches)


@pytest.fixture
def warm(shell):
    """A shell whose connection has lead and task metadata cached; returns the connection."""
    return warmed()


def test_commands_complete(bare_shell):
    matches = _complete(bare_shell, "%d365 li")
    assert "list" in matches


def test_options_complete(shell, warm):
    assert "--filter" in _complete(shell, "%d365 list leads --fi")


def test_tables_complete_from_cache(shell, warm):
    assert {"leads", "lead"} <= set(_complete(shell, "%d365 list le"))


def test_columns_after_select_and_after_a_comma(shell, warm):
    assert "lastname" in _complete(shell, "%d365 list leads --select last")
    assert "firstname" in _complete(shell, "%d365 list leads --select lastname,first")


def test_columns_and_operators_inside_a_filter(shell, warm):
    assert "statuscode" in _complete(shell, '%d365 list leads --filter "status')
    assert "eq" in _complete(shell, '%d365 list leads --filter "statuscode e')


def test_columns_after_orderby(shell, warm):
    assert "createdon" in _complete(shell, "%d365 list leads --orderby crea")


def test_field_names_and_choice_labels_in_assignments(shell, warm):
    assert "percentcomplete=" in _complete(shell, "%d365 create tasks percent")
    assert "High" in _complete(shell, "%d365 create tasks prioritycode=H")


def test_cell_magic_first_line_completes(shell, warm):
    assert "subject=" in _complete(shell, "%%d365 create tasks sub")


def test_completion_sends_no_request(shell, warm):
    assert requests_while_typing(warm, lambda line: _complete(shell, line)) == 0


def test_unloaded_table_offers_no_columns_rather_than_fetching():
    class Cache:
        def cached_table_names(self):
            return ["lead", "leads"]

        def cached_columns(self, table):
            return []

    assert candidates("%d365 list leads --select ", Cache()) == []


def test_flow_names_complete_from_defined_flows(bare_shell):
    flow_module = pytest.importorskip("d365nb.flows.flow")
    flow_module.flows["nb_completion_flow"] = object()
    try:
        assert "nb_completion_flow" in _complete(bare_shell, "%d365 flow start nb_")
        assert "nb_completion_flow" in _complete(bare_shell, "%%d365 action nb_")
    finally:
        del flow_module.flows["nb_completion_flow"]


def test_trigger_completes_kind_table_and_filter_columns(shell, warm):
    assert _complete(shell, "%d365 trigger follow_up up") == ["updated"]
    assert "leads" in _complete(shell, "%d365 trigger follow_up created le")
    assert "statuscode" in _complete(shell, '%d365 trigger follow_up created leads --filter "stat')
    assert "--every" in _complete(shell, "%d365 trigger follow_up created leads --ev")


def test_trigger_completion_knows_every_trigger_option():
    """Parser and completion read the same definitions (``d365nb.flows.definitions``)."""
    from d365nb.notebook import completion, flow_commands

    parser = flow_commands._trigger_parser()
    declared = {o for a in parser._actions for o in a.option_strings if o.startswith("--")}
    offered = set(completion.candidates("%d365 trigger f updated leads --"))
    assert declared == offered
    # A created trigger is not offered what only an updated one takes.
    assert declared - set(completion.candidates("%d365 trigger f created leads --")) == {
        "--columns"
    }
    kinds = next(a.choices for a in parser._actions if a.dest == "kind")
    assert list(kinds) == completion.candidates("%d365 trigger f ")
