"""notebooks/quickstart.ipynb executed with nbclient in a real kernel against the sandbox; the
executed notebook JSON must not contain the sandbox's bearer token anywhere."""

from __future__ import annotations

import json
import re
from pathlib import Path

import nbformat

from tests.support.notebooks import kernel_client

NOTEBOOK = Path(__file__).resolve().parents[2] / "notebooks" / "quickstart.ipynb"


def _outputs_text(nb) -> str:
    return "\n".join(
        json.dumps(output, ensure_ascii=False)
        for cell in nb.cells
        if cell.cell_type == "code" and "raises-exception" not in cell.metadata.get("tags", [])
        for output in cell.outputs
    )


def test_quickstart_runs_and_leaks_no_token(tmp_path):
    nb = nbformat.read(NOTEBOOK, as_version=4)
    # A long read with a progress bar (shown at once): a finished bar must leave nothing behind.
    nb.cells.append(
        nbformat.v4.new_code_cell(
            "%config D365Magic.progress_after = 0\n%config D365Magic.page_size = 100\n"
            "_long = %d365 list leads --select lastname --pages 4\nlen(_long)"
        )
    )
    progress_cell = nb.cells[-1]
    # A failed request with debug on: the error names the request, with the token redacted.
    nb.cells.append(
        nbformat.v4.new_code_cell(
            '%config D365Magic.debug = True\n%d365 list leads --filter "statuscode eq"',
            metadata={"tags": ["raises-exception"]},
        )
    )
    error_cell = nb.cells[-1]
    token_file = tmp_path / "token.txt"
    # A probe cell, run after the notebook, fetches the token from the kernel into a file
    # without printing it, so the test knows what it must not find.
    nb.cells.append(
        nbformat.v4.new_code_cell(
            "import pathlib, d365nb\n"
            f"pathlib.Path({str(token_file)!r}).write_text(d365nb.connections.get('sandbox').sandbox.token)"
        )
    )
    client = kernel_client(nb, tmp_path, timeout=180)
    client.execute()  # raises CellExecutionError if any cell fails

    token = token_file.read_text()
    assert len(token) >= 16
    executed = nbformat.writes(nb)
    assert token not in executed
    assert not re.search(r"(?i)bearer\s+(?!\*\*\*)[A-Za-z0-9._~+/=-]{8,}", executed)

    # IPython prints a UsageError as one "UsageError: ..." stream, not a traceback.
    error = "".join(o.get("text", "") + o.get("evalue", "") for o in error_cell.outputs)
    assert "request: GET " in error and "Authorization: Bearer ***" in error
    assert "Traceback" not in error

    shown = [o for o in progress_cell.outputs if o.output_type == "display_data"]
    assert shown, "the bar was displayed"
    assert all(o.data == {"text/plain": ""} for o in shown)  # blanked when done
    assert progress_cell.outputs[-1].data["text/plain"] == "400"

    outputs = _outputs_text(nb)
    assert "connected to http://127.0.0.1:" in outputs
    assert re.search(r"5 rows · 1 page · [0-9.]+ s · sandbox", outputs)  # the footer
    assert "O'Neil" in outputs
    assert "would be updated; nothing changed" in outputs
    assert "d365nb-footer" in outputs  # html rendering in a notebook
    assert '"output_type": "error"' not in outputs
