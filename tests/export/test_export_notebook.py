"""``notebooks/export.ipynb`` runs end to end in a real kernel against the sandbox: the export
validates against the Logic Apps schema, and no token is saved or shown."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from tests.support.export import REPO
from tests.support.notebooks import code_cells, run_copy, text_of

NOTEBOOK = REPO / "notebooks" / "export.ipynb"


@pytest.mark.slow
def test_export_notebook_exports_valid_definitions(tmp_path, monkeypatch, validator):
    nb = run_copy(
        NOTEBOOK,
        tmp_path,
        "import d365nb\nprint('TOKEN', d365nb.connections.current.sandbox.token, 'OUT', OUT)",
    )
    code = code_cells(nb)
    outputs = {c.source: text_of(c) for c in code}
    everything = "\n".join(outputs.values())
    assert "INVALID" not in everything
    assert everything.count("valid Logic Apps workflow definition") == 5
    # The --if step's condition, as the designer writes it.
    assert '"contains": [' in everything and "\"@triggerBody()?['subject']\"" in everything
    out = Path(text_of(code[-1]).split("OUT", 1)[1].split()[0])
    assert f"exported to {out}/lead_to_task.logicapp.json" in everything
    assert not (tmp_path / "lead_to_task.logicapp.json").exists()  # not beside the notebook
    assert "ApiConnectionWebhook" in everything and "callbackregistrations" in everything
    assert "GetOnNewItems" in everything  # the legacy trigger
    assert "1 step(s) exported as placeholders" in everything and '"type": "Compose"' in everything
    assert "['Microsoft.Web/connections', 'Microsoft.Logic/workflows']" in everything
    assert "refused: cannot export flow 'lead_to_task'" in everything
    assert "my_note" in everything
    # The files the notebook wrote are valid too (checked here, not only by the notebook).
    for name in ("lead_to_task.logicapp.json", "lead_to_task.arm.json"):
        document = json.loads((out / name).read_text())
        definition = (
            document.get("resources", [None, {}])[1]["properties"]["definition"]
            if ("resources" in document)
            else document
        )
        assert not list(validator.iter_errors(definition))
    token = text_of(code[-1]).split("TOKEN", 1)[1].split()[0]
    assert len(token) >= 16
    assert not any(token in text_of(c) for c in code[:-1])
    shutil.rmtree(out, ignore_errors=True)
