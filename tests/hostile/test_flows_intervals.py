"""Flow intervals that make no sense are refused with one line and change nothing (issue 12
item 7): NaN, infinities, zero, negative, below the 1 s minimum, or longer than Logic Apps allows
- through ``Flow.on_created(every=...)``, ``%d365 trigger --every`` and a headless notebook.

The 1 s floor is Logic Apps' own: a Recurrence takes a whole number of seconds, 1 to 9,999,999
(Second), 1 to 72,000 (Minute), 1 to 12,000 (Hour), 1 to 500 (Day):
https://learn.microsoft.com/azure/logic-apps/logic-apps-limits-and-config
"""

from __future__ import annotations

import math
import os
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from d365nb.flows import Flow, FlowError, flows, headless
from d365nb.flows.model import MIN_RECURRENCE, RetryPolicy, parse_recurrence

BAD_TEXT = [
    "nan",
    "NaNs",
    "infs",
    "0s",
    "0m",
    "0.0h",
    "-5s",
    "-1m",
    "0.5s",
    "0.999s",
    ".5s",
    "1e3s",
    "1_000s",
    "１s",  # full-width digit
    "10000000s",
    "72001m",
    "12001h",
    "501d",
    "3w",
    "",
    " ",
    "10",
    "s",
]
BAD_NUMBERS = [
    math.nan,
    math.inf,
    -math.inf,
    0,
    0.0,
    -1,
    0.5,
    1e-9,
    1e308,
    10_000_000,
    True,
]


def one_line(err: pytest.ExceptionInfo) -> str:
    message = str(err.value)
    assert "\n" not in message.strip(), message
    return message


@pytest.mark.parametrize("every", BAD_TEXT + BAD_NUMBERS, ids=repr)
def test_python_api_refuses_a_bad_interval_and_stores_nothing(d365, tmp_path, every):
    store = tmp_path / "flows.sqlite"
    flow = Flow("bad_every", d365, history=store, register=False)
    with pytest.raises(FlowError) as err:
        flow.on_created("leads", every=every)
    assert "interval" in one_line(err)
    assert flow.trigger is None and not store.exists()


@pytest.mark.parametrize("every", ["1s", "1.5s", 1, 1.0, "10s", "3m", "12000h", "500d"])
def test_good_intervals_still_work(d365, tmp_path, every):
    flow = Flow("ok_every", d365, history=tmp_path / "flows.sqlite")
    flow.on_created("leads", every=every)
    assert flow.trigger.every >= MIN_RECURRENCE and math.isfinite(flow.trigger.every)


def test_the_minimum_is_named_in_the_refusal():
    with pytest.raises(FlowError, match="the shortest allowed is 1s"):
        parse_recurrence("0.5s")


@pytest.mark.parametrize("every", ["nan", "0s", "-5s", "0.5s", "infs", "1e3s", "501d"])
def test_trigger_magic_refuses_and_leaves_the_running_definition(
    shell, tmp_path, monkeypatch, every
):
    from tests.support.shells import CellFailed, run_cell

    monkeypatch.chdir(tmp_path)
    run_cell(shell, "%d365 trigger keep_every created leads --every 1h")
    stored = flows["keep_every"].history.flow_definition("keep_every")
    with pytest.raises(CellFailed) as err:
        run_cell(shell, f"%d365 trigger keep_every created leads --every={every}")
    assert "interval" in one_line(err)
    assert flows["keep_every"].trigger.every == 3600
    assert flows["keep_every"].history.flow_definition("keep_every") == stored
    with pytest.raises(CellFailed):
        run_cell(shell, f"%d365 trigger fresh_every created leads --every={every}")
    assert "fresh_every" not in flows


def notebook_with(path: Path, every: str) -> Path:
    nb = nbformat.v4.new_notebook()
    nb.cells = [
        nbformat.v4.new_code_cell(f"%d365 trigger hl created leads --every={every}"),
        nbformat.v4.new_code_cell("%%d365 action hl s\n1"),
    ]
    nbformat.write(nb, path)
    return path


@pytest.mark.parametrize("every", ["nan", "0s", "-1m", "0.2s"])
def test_headless_refuses_a_bad_interval_in_one_line(d365, tmp_path, every):
    notebook = notebook_with(tmp_path / "nb.ipynb", every)
    with pytest.raises(FlowError) as err:
        headless.load_flows(notebook, d365)
    assert "interval" in one_line(err)
    assert not (tmp_path / ".d365nb" / "flows.sqlite").exists() or (
        headless.history_beside(notebook).flow_definition("hl") is None
    )


def test_flow_run_cli_refuses_a_bad_interval_with_exit_2(tmp_path, sandbox):
    notebook = notebook_with(tmp_path / "nb.ipynb", "0.1s")
    # The session's sandbox as the organisation: `--sandbox` would build one with demo data in
    # the child just to refuse the notebook.
    proc = subprocess.run(
        [sys.executable, "-m", "d365nb.cli", "flow", "run", str(notebook), "--org", sandbox.url],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
        env={**os.environ, "D365NB_TOKEN": sandbox.token},
    )
    assert proc.returncode == 2
    err = proc.stderr.strip()
    assert err.startswith("d365nb flow run: bad interval '0.1s'") and "\n" not in err


@pytest.mark.parametrize(
    "policy",
    [
        {"interval": math.nan},
        {"interval": math.inf},
        {"count": math.nan},
        {"maximum": math.nan},
        {"minimum": -math.inf},
        {"interval": -1.0},
        {"count": -1},
    ],
    ids=repr,
)
def test_retry_policies_that_make_no_sense_are_refused(policy):
    with pytest.raises(FlowError) as err:
        RetryPolicy(**policy)
    assert "retry" in one_line(err)


@pytest.mark.parametrize("timeout", ["nan", math.nan, math.inf, -1, "-2s", "0s", "x"], ids=repr)
def test_step_timeouts_that_make_no_sense_are_refused(d365, tmp_path, timeout):
    flow = Flow("timeouts", d365, history=tmp_path / "flows.sqlite").on_created("leads", every="1h")
    with pytest.raises(FlowError) as err:
        flow.step("s", "1", timeout=timeout)
    assert "bad timeout" in one_line(err) and flow.steps == []
