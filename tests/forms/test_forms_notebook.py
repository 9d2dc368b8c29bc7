"""notebooks/forms.ipynb runs headless (nbclient) against the test sandbox: every cell succeeds,
every form carries its HTML fallback, the flow view shows the tested run, and no token is saved."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import nbformat

from tests.support.notebooks import kernel_client

ROOT = Path(__file__).resolve().parents[2]


def test_forms_notebook_runs_with_fallbacks_and_no_token(tmp_path, monkeypatch, sandbox_handle):
    monkeypatch.setenv("D365NB_SANDBOX_URL", sandbox_handle.url)
    monkeypatch.setenv("D365NB_SANDBOX_TOKEN", sandbox_handle.token)
    shutil.copy(ROOT / "notebooks" / "forms.ipynb", tmp_path / "forms.ipynb")
    nb = nbformat.read(tmp_path / "forms.ipynb", as_version=4)
    kernel_client(nb, tmp_path, timeout=120).execute()
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    forms_shown = [
        o for o in outputs if "application/vnd.jupyter.widget-view+json" in o.get("data", {})
    ]
    assert len(forms_shown) == 9  # 8 from d365nb.forms, 1 from `%d365 form get leads`
    assert any("<b>Get Lead</b>" in o["data"]["text/html"] for o in forms_shown)
    assert all("d365nb-form-fallback" in o["data"]["text/html"] for o in forms_shown)
    flow_html = next(
        o["data"]["text/html"]
        for o in forms_shown
        if "d365nb-flow-diagram" in o["data"]["text/html"]
    )
    assert "data-status='Succeeded'" in flow_html and "create_task" in flow_html
    saved = json.dumps(nbformat.from_dict(nb))
    assert sandbox_handle.token not in saved
