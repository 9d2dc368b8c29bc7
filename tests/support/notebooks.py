"""Saved notebooks run end to end in a real kernel (nbclient), and the text of their outputs."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import nbformat
from nbclient import NotebookClient


def run_copy(notebook: Path, folder: Path, last_cell: str, timeout: int = 120) -> Any:
    """Run a copy of ``notebook`` in ``folder`` (its working directory) with ``last_cell``
    appended (a test-only cell, e.g. one printing the kernel's token); the executed notebook.
    The saved notebook must carry no outputs (notebooks are committed clean)."""
    stored = nbformat.read(notebook, as_version=4)
    assert all(not c.get("outputs") for c in stored.cells if c.cell_type == "code")
    work = folder / notebook.name
    shutil.copy(notebook, work)
    nb = nbformat.read(work, as_version=4)
    nb.cells.append(nbformat.v4.new_code_cell(last_cell))
    NotebookClient(
        nb, timeout=timeout, kernel_name="python3", resources={"metadata": {"path": str(folder)}}
    ).execute()
    return nb


def code_cells(nb: Any) -> list[Any]:
    return [c for c in nb.cells if c.cell_type == "code"]


def text_of(cell: Any, html: bool = False) -> str:
    """What a cell showed: streams, plain-text results (``html``: also HTML) and errors."""
    parts = []
    for output in cell.get("outputs", []):
        parts.append(output.get("text", ""))
        data = output.get("data", {})
        parts.append(data.get("text/plain", ""))
        if html:
            parts.append(data.get("text/html", ""))
        if output.get("output_type") == "error":
            parts.append(f"{output['ename']}: {output['evalue']}")
    return "\n".join(parts)
