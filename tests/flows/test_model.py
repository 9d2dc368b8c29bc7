"""Definitions: intervals, --since, retry policies, step compilation and bad input."""

from __future__ import annotations

import pytest

from d365nb.flows.model import FlowError, RetryPolicy, format_interval, parse_interval, parse_since
from d365nb.flows.steps import compile_declarative, compile_python, looks_declarative


@pytest.mark.parametrize(
    ("text", "seconds"), [("10s", 10), ("3m", 180), ("1h", 3600), ("1d", 86400)]
)
def test_intervals_take_seconds_minutes_hours_days(text, seconds):
    assert parse_interval(text) == seconds
    assert format_interval(seconds) == text


@pytest.mark.parametrize("text", ["0s", "banana", "", "10", "-5s", "3w"])
def test_bad_interval_is_one_line_error(text):
    with pytest.raises(FlowError) as err:
        parse_interval(text)
    assert "\n" not in str(err.value) and "interval" in str(err.value)


def test_since_accepts_now_beginning_and_iso():
    assert parse_since("now") == "now"
    assert parse_since("Beginning") == "beginning"
    assert parse_since("2026-01-31T09:00:00+01:00") == "2026-01-31T08:00:00Z"
    with pytest.raises(FlowError, match="--since"):
        parse_since("yesterday")


def test_default_retry_is_exponential_four_times_and_honours_retry_after():
    policy = RetryPolicy()
    assert (policy.type, policy.retries) == ("exponential", 4)
    # Logic Apps' default (PT7S): the top of its random band for each retry.
    assert [policy.delay(n) for n in (1, 2, 3, 4)] == [7.0, 14.0, 28.0, 56.0]
    assert policy.delay(1, retry_after=30) == 30 and policy.delay(3, retry_after=1) == 1
    assert RetryPolicy.parse("none").retries == 0
    assert RetryPolicy.parse("default") == RetryPolicy() == RetryPolicy.parse("exponential")
    fixed = RetryPolicy.parse("fixed:5s:3")
    assert (fixed.type, fixed.count, fixed.delay(3)) == ("fixed", 3, 5.0)


def test_python_step_returns_its_last_expression():
    func = compile_python("s", "x = trigger['a'] * 2\nx + 1")
    assert func({"trigger": {"a": 20}}) == 41


def test_syntax_error_is_refused_with_its_line():
    with pytest.raises(FlowError, match=r"step 'bad' has a syntax error at line 2"):
        compile_python("bad", "x = 1\nif x\n    pass")


def test_declarative_command_is_recognised_and_checked():
    assert looks_declarative('create tasks subject="Follow up: {trigger[subject]}"')
    assert not looks_declarative("create = 5")
    assert not looks_declarative("d365.create('tasks', {})")
    with pytest.raises(FlowError, match="column=value"):
        compile_declarative("s", "create tasks subject")
    with pytest.raises(FlowError, match="bad template"):
        compile_declarative("s", 'create tasks subject="{trigger[subject"')
