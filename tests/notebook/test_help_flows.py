"""`%d365 help trigger|action|flow|form` documents the options those commands really take."""

from __future__ import annotations

import pytest

from d365nb.notebook import flow_commands
from d365nb.notebook.args import help_text


def _options(parser) -> list[str]:
    return [o for a in parser._actions for o in a.option_strings if o.startswith("--")]


@pytest.mark.parametrize(
    "name, factory",
    [
        ("trigger", flow_commands._trigger_parser),
        ("action", flow_commands._action_parser),
        ("flow", flow_commands._flow_parser),
    ],
)
def test_flow_command_help_lists_every_option_with_its_meaning(name, factory):
    text = help_text(name)
    parser = factory()
    for option in _options(parser):
        assert option in text, f"{name} help lacks {option}"
    for action in parser._actions:  # each option and argument says what it does
        assert action.help, f"{name}: {action.dest} has no help"
    assert "examples:" in text


def test_trigger_help_names_its_choices():
    text = help_text("trigger")
    assert "{created,updated,deleted}" in text and "{auto,watermark,changes}" in text
    assert "polling interval" in text


def test_flow_help_includes_the_export_options():
    text = help_text("flow")
    for option in ("--arm", "--legacy", "--org", "--to"):
        assert option in text


def test_form_help_shows_every_operation_kind():
    text = help_text("form")
    for example in (
        "%d365 form connect",
        "%d365 form flow lead_followup",
        "%d365 form action lead_followup tasks",
    ):
        assert example in text


def test_help_magic_prints_the_trigger_options(bare_shell, d365, capsys):
    d365(bare_shell, "help trigger")
    out = capsys.readouterr().out
    assert "--every" in out and "--since" in out and "--self-trigger" in out
