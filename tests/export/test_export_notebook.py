"""``notebooks/export.ipynb`` runs end to end in a real kernel against the sandbox: the export
validates against the Logic Apps schema, and no token is saved or shown."""

from __future__ import annotations

import json
import shutil

import nbformat
import pytest
from export_support import REPO, SCHEMA_PATH
from nbclient import NotebookClient

NOTEBOOK = REPO / "notebooks" / "export.ipynb"


def text_of(cell) -> str:
    parts = []
    for output in cell.get("outputs", []):
        parts.append(output.get("text", ""))
        data = output.get("data", {})
        parts.append(data.get("text/plain", ""))
        if output.get("output_type") == "error":
            parts.append(f"{output['ename']}: {output['evalue']}")
    return "\n".join(parts)


@pytest.mark.slow
def test_export_notebook_exports_valid_definitions(tmp_path, monkeypatch, validator):
    stored = nbformat.read(NOTEBOOK, as_version=4)
    assert all(not c.get("outputs") for c in stored.cells if c.cell_type == "code")  # saved clean
    work = tmp_path / NOTEBOOK.name
    shutil.copy(NOTEBOOK, work)
    nb = nbformat.read(work, as_version=4)
    nb.cells.append(
        nbformat.v4.new_code_cell(
            "import d365nb\nprint('TOKEN', d365nb.connections.current.sandbox.token)"
        )
    )
    monkeypatch.setenv("LOGICAPPS_SCHEMA", str(SCHEMA_PATH))  # the kernel inherits it
    NotebookClient(
        nb, timeout=120, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}
    ).execute()
    code = [c for c in nb.cells if c.cell_type == "code"]
    outputs = {c.source: text_of(c) for c in code}
    everything = "\n".join(outputs.values())
    assert "INVALID" not in everything
    assert everything.count("valid Logic Apps workflow definition") == 4
    assert "exported to lead_to_task.logicapp.json" in everything
    assert "ApiConnectionWebhook" in everything and "callbackregistrations" in everything
    assert "GetOnNewItems" in everything  # the legacy trigger
    assert "1 step(s) exported as placeholders" in everything and '"type": "Compose"' in everything
    assert "['Microsoft.Web/connections', 'Microsoft.Logic/workflows']" in everything
    assert "refused: cannot export flow 'lead_to_task'" in everything
    assert "my_note" in everything
    # The files the notebook wrote are valid too (checked here, not only by the notebook).
    for name in ("lead_to_task.logicapp.json", "lead_to_task.arm.json"):
        document = json.loads((tmp_path / name).read_text())
        definition = (
            document.get("resources", [None, {}])[1]["properties"]["definition"]
            if ("resources" in document)
            else document
        )
        assert not list(validator.iter_errors(definition))
    token = text_of(code[-1]).split("TOKEN", 1)[1].split()[0]
    assert len(token) >= 16
    assert not any(token in text_of(c) for c in code[:-1])
