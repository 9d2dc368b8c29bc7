"""The seed's walkthrough notebook runs end to end in a real kernel against the sandbox."""

from __future__ import annotations

import shutil
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

NOTEBOOK = Path(__file__).parents[2] / "notebooks" / "lead_to_task.ipynb"


def text_of(cell) -> str:
    parts = []
    for output in cell.get("outputs", []):
        parts.append(output.get("text", ""))
        data = output.get("data", {})
        parts.append(data.get("text/plain", ""))
        parts.append(data.get("text/html", ""))
    return "\n".join(parts)


@pytest.mark.slow
def test_lead_to_task_notebook_creates_a_task_for_a_new_lead(tmp_path):
    stored = nbformat.read(NOTEBOOK, as_version=4)
    assert all(not c.get("outputs") for c in stored.cells if c.cell_type == "code")  # saved clean
    work = tmp_path / NOTEBOOK.name
    shutil.copy(NOTEBOOK, work)
    nb = nbformat.read(work, as_version=4)
    # A test-only last cell: the kernel's sandbox token, to prove no other output shows it.
    nb.cells.append(
        nbformat.v4.new_code_cell(
            "import d365nb\nprint('TOKEN', d365nb.connections.current.sandbox.token)"
        )
    )
    NotebookClient(
        nb, timeout=120, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}
    ).execute()
    outputs = [text_of(c) for c in nb.cells if c.cell_type == "code"]
    task_cell = next(
        o
        for o, c in zip(outputs, [c for c in nb.cells if c.cell_type == "code"], strict=True)
        if "%d365 list tasks" in c.source
    )
    assert "Interested in 20 e-bikes" in task_cell
    run_cell = next(
        o
        for o, c in zip(outputs, [c for c in nb.cells if c.cell_type == "code"], strict=True)
        if c.source.startswith("%d365 flow run ")
    )
    assert "Succeeded" in run_cell and "create_task" in run_cell
    token = outputs[-1].split("TOKEN", 1)[1].split()[0]
    assert len(token) >= 16 and not any(token in o for o in outputs[:-1])
    assert (tmp_path / ".d365nb" / "flows.sqlite").exists()
