"""notebooks/quickstart.ipynb executed with nbclient in a real kernel against the sandbox; the
executed notebook JSON must not contain the sandbox's bearer token anywhere."""

from __future__ import annotations

import json
import re
from pathlib import Path

import nbformat
from nbclient import NotebookClient

NOTEBOOK = Path(__file__).resolve().parents[2] / "notebooks" / "quickstart.ipynb"


def _outputs_text(nb) -> str:
    return "\n".join(
        json.dumps(output, ensure_ascii=False)
        for cell in nb.cells
        if cell.cell_type == "code"
        for output in cell.outputs
    )


def test_quickstart_runs_and_leaks_no_token(tmp_path):
    nb = nbformat.read(NOTEBOOK, as_version=4)
    token_file = tmp_path / "token.txt"
    # A probe cell, run after the notebook, fetches the token from the kernel into a file
    # without printing it, so the test knows what it must not find.
    nb.cells.append(
        nbformat.v4.new_code_cell(
            "import pathlib, d365nb\n"
            f"pathlib.Path({str(token_file)!r}).write_text(d365nb.connections.get('sandbox').sandbox.token)"
        )
    )
    client = NotebookClient(
        nb, timeout=180, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}
    )
    client.execute()  # raises CellExecutionError if any cell fails

    token = token_file.read_text()
    assert len(token) >= 16
    executed = nbformat.writes(nb)
    assert token not in executed
    assert not re.search(r"(?i)bearer\s+(?!\*\*\*)[A-Za-z0-9._~+/=-]{8,}", executed)

    outputs = _outputs_text(nb)
    assert "connected to http://127.0.0.1:" in outputs
    assert re.search(r"5 rows · 1 page · [0-9.]+ s · sandbox", outputs)  # the footer
    assert "O'Neil" in outputs
    assert "would be updated; nothing changed" in outputs
    assert "d365nb-footer" in outputs  # html rendering in a notebook
    assert '"output_type": "error"' not in outputs
