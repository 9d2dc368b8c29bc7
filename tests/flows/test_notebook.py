"""The seed's walkthrough notebook runs end to end in a real kernel against the sandbox."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.notebooks import code_cells, run_copy, text_of

NOTEBOOK = Path(__file__).parents[2] / "notebooks" / "lead_to_task.ipynb"


@pytest.mark.slow
def test_lead_to_task_notebook_creates_a_task_for_a_new_lead(tmp_path):
    # A test-only last cell: the kernel's sandbox token, to prove no other output shows it.
    show_token = "import d365nb\nprint('TOKEN', d365nb.connections.current.sandbox.token)"
    nb = run_copy(NOTEBOOK, tmp_path, show_token)
    outputs = [text_of(c, html=True) for c in code_cells(nb)]
    task_cell = next(
        o
        for o, c in zip(outputs, code_cells(nb), strict=True)
        if "%d365 list tasks" in c.source
    )
    assert "Interested in 20 e-bikes" in task_cell
    run_cell = next(
        o
        for o, c in zip(outputs, code_cells(nb), strict=True)
        if c.source.startswith("%d365 flow run ")
    )
    assert "Succeeded" in run_cell and "create_task" in run_cell
    token = outputs[-1].split("TOKEN", 1)[1].split()[0]
    assert len(token) >= 16 and not any(token in o for o in outputs[:-1])
    assert (tmp_path / ".d365nb" / "flows.sqlite").exists()
