"""Fault injection: parsing and seeded draws, then the faults over real HTTP."""

from __future__ import annotations

import pytest

from d365nb.sandbox.faults import FaultInjector, Faults, parse_faults


def test_parse_faults_reads_the_cli_form():
    faults = parse_faults("503=0.1,429=0.1,drop=0.05,latency=0.02")
    assert faults == Faults(
        unavailable=0.1, throttle=0.1, drop_before=0.025, drop_after=0.025, latency=0.02
    )
    assert parse_faults("500=0.2,drop_after=0.3,retry_after=2") == Faults(
        server_error=0.2, drop_after=0.3, retry_after=2
    )
    assert not parse_faults(None).enabled


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("503=lots", "must be a number"),
        ("404=0.1", "expected key=value"),
        ("503=1.5", "between 0 and 1"),
        ("503=0.6,500=0.6", "add up to 1.2"),
    ],
)
def test_parse_faults_refuses_bad_text_in_one_line(text, fragment):
    with pytest.raises(ValueError, match=fragment) as info:
        parse_faults(text)
    assert "\n" not in str(info.value)


def test_draws_are_reproducible_from_the_seed():
    first = FaultInjector("503=0.3,drop=0.2", seed=42)
    second = FaultInjector("503=0.3,drop=0.2", seed=42)
    a = [first.draw() for _ in range(200)]
    assert a == [second.draw() for _ in range(200)]
    counts = {k: a.count(k) for k in set(a)}
    assert 40 <= counts["unavailable"] <= 80  # ~30 % of 200
    assert counts.get("drop_before", 0) > 0 and counts.get("drop_after", 0) > 0
    assert counts[None] > 80


def test_reconfigure_switches_faults_off():
    injector = FaultInjector("500=1", seed=1)
    assert injector.draw() == "server_error"
    injector.configure(None)
    assert all(injector.draw() is None for _ in range(50))
