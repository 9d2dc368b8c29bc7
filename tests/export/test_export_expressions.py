"""Step templates as Workflow Definition Language dynamic content."""

from __future__ import annotations

import pytest

from d365nb.flows.export import escape_text, iso_duration
from d365nb.flows.export_expressions import (
    NotExpressible,
    as_expression,
    as_value,
    parse_template,
)


def steps(name: str, keys: list[str]) -> str:
    return f"body('{name}')" + "".join(f"?['{k}']" for k in keys)


@pytest.mark.parametrize(
    ("template", "value", "expression"),
    [
        ("{trigger[subject]}", "@triggerBody()?['subject']", "triggerBody()?['subject']"),
        ("{trigger.subject}", "@triggerBody()?['subject']", "triggerBody()?['subject']"),
        (
            "Call {trigger[lastname]} now",
            "Call @{triggerBody()?['lastname']} now",
            "concat('Call ', triggerBody()?['lastname'], ' now')",
        ),
        ("{steps[find][name]}", "@body('find')?['name']", "body('find')?['name']"),
        ("O'Neil", "O'Neil", "'O''Neil'"),
        ("{{literal}}", "{literal}", "'{literal}'"),
        (
            "@home {trigger[x]}",
            "@@home @{triggerBody()?['x']}",
            "concat('@home ', triggerBody()?['x'])",
        ),
    ],
)
def test_templates_become_values_and_expressions(template, value, expression):
    parts = parse_template(template, steps)
    assert as_value(parts) == value
    assert as_expression(parts) == expression


@pytest.mark.parametrize(
    ("template", "why"),
    [
        ("{name}", "reads 'name'"),
        ("{trigger}", "the whole record"),
        ("{steps}", "needs a step name"),
        ("{}", "positional"),
        ("{trigger[x]!s}", "Python formatting"),
        ("{trigger[x", "bad template"),
    ],
)
def test_what_a_logic_app_cannot_see_is_refused(template, why):
    with pytest.raises(NotExpressible, match=why):
        parse_template(template, steps)


def test_literal_text_escapes_expression_syntax():
    assert escape_text("@mention") == "@@mention"
    assert escape_text("a @{b}") == "a @@{b}"
    assert escape_text("plain") == "plain"


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(30, "PT30S"), (90, "PT90S"), (600, "PT10M"), (7200, "PT2H"), (86400, "P1D"), (0.2, "PT1S")],
)
def test_iso_durations(seconds, text):
    assert iso_duration(seconds) == text
