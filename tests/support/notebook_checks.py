"""What each saved notebook must show when it runs, checked on each of the two runs of
``tests/test_notebooks_rerun.py`` (a third kernel run per notebook would only repeat them).

``CHECKS[name]`` holds the test-only cells appended after the notebook's own cells (the
run-to-run comparison skips them) and the check of one executed `NotebookRun`. Every run also
proves no sandbox token is shown (`assert_shows_no_token`), so the checks leave that out.
"""

from __future__ import annotations

import ast
import functools
import json
import re
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import nbformat

from tests.support.export import SCHEMA_PATH
from tests.support.notebooks import NotebookRun, text_of

new_cell = nbformat.v4.new_code_cell


@dataclass(frozen=True)
class NotebookChecks:
    check: Callable[[NotebookRun], None]
    # New test-only cells for each run (a run fills in their outputs); none by default.
    test_cells: Callable[[], list[Any]] = list


def _json_text(cell: Any) -> str:
    return "\n".join(json.dumps(o, ensure_ascii=False) for o in cell.outputs)


def check_explore(run: NotebookRun) -> None:
    """Flat expand, query cell, write-back, save, aggregate and fetchxml each show."""
    code = run.own_code
    by_source = {cell.source.split("\n", 1)[0]: cell for cell in code}
    everything = "\n".join(_json_text(c) for c in code)
    assert "d365 is this connection" in everything
    assert "Dataverse(url=" in everything  # the d365 name
    assert "parentcustomerid_account.name" in everything
    assert "contact_customer_accounts.fullname" in everything  # --explode
    assert "OData has no ==: write eq" in everything
    assert "would be updated; nothing changed" in everything
    assert "skipped 1 column (read-only: createdon)" in everything
    assert "Called: interested in a demo" in _json_text(
        next(c for s, c in by_source.items() if s.startswith("%d365 get leads"))
    )
    assert "saved 20 rows to" in everything
    assert "acct.name" in everything  # fetchxml link-entity alias
    plot = next(c for s, c in by_source.items() if "--plot bar" in s)
    assert any("image/png" in o.get("data", {}) for o in plot.outputs)  # the chart
    errors = [
        o for c in code
        if "raises-exception" not in c.metadata.get("tags", [])
        for o in c.outputs if o.output_type == "error"
    ]  # fmt: skip
    assert errors == []


def check_flow_control(run: NotebookRun) -> None:
    """A for-each over a list step, a scope, a failure branch, a dry run and the export."""
    out = {c.source.splitlines()[0]: text_of(c, html=False) for c in run.own_code}
    everything = "\n".join(out.values())
    assert "Error" not in everything.replace("ValueError: lead has no company", "")
    dry = next(v for k, v in out.items() if k.startswith("%d365 create leads"))
    assert "4 write(s) not sent" in dry  # 3 updates + the failure branch's create
    assert "would update tasks(" in dry and "would create tasks" in dry
    # The cell's value, not a print: a stream message can reach the client after the cell's
    # idle status under load (and nbclient then drops it), a result never does.
    reminders = next(v for k, v in out.items() if k.startswith("open_reminders = "))
    assert reminders.strip() == "'reminders still open: 3'", (reminders, dry)  # nothing sent
    steps = next(v for k, v in out.items() if k.startswith("print(run.status)"))
    assert steps.splitlines()[0] == "Succeeded"  # the failure was handled by its branch
    for expected in (
        "('find', 'Succeeded')",
        "('close', 'Succeeded')",
        "('close[0]', 'Succeeded')",
        "('close[2]', 'Succeeded')",
        "('verify', 'Failed')",
        "('check', 'Failed')",
        "('on_failure', 'Succeeded')",
    ):
        assert expected in steps
    listing = next(v for k, v in out.items() if k.startswith("%d365 list tasks"))
    assert listing.count("closed for Walk-in") == 3 and "Add the company of Walk-in" in listing
    export = next(v for k, v in out.items() if k.startswith("import json"))
    assert '"type": "Foreach"' in export and "@body('find')?['value']" in export
    assert '"Failed"' in export and '"type": "Scope"' in export
    assert "DONE" in text_of(run.test_cells[0])  # the kernel got past the notebook's cells


@functools.cache
def _logic_apps_validator() -> Any:
    import jsonschema  # slow to import (see tests/export/conftest.py): only when first needed

    schema = json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))
    jsonschema.Draft4Validator.check_schema(schema)
    return jsonschema.Draft4Validator(schema)


def check_export(run: NotebookRun) -> None:
    """The exports validate against the Logic Apps schema (checked here too, not only by the
    notebook) and land in the notebook's scratch folder ``OUT``, which this removes."""
    everything = "\n".join(text_of(c) for c in run.own_code)
    out = Path(ast.literal_eval(run.test_cells[0].outputs[0]["data"]["text/plain"]))
    try:
        assert "INVALID" not in everything
        assert everything.count("valid Logic Apps workflow definition") == 5
        # The --if step's condition, as the designer writes it.
        assert '"contains": [' in everything and "\"@triggerBody()?['subject']\"" in everything
        assert f"exported to {out}/lead_to_task.logicapp.json" in everything
        assert not (run.folder / "lead_to_task.logicapp.json").exists()  # not beside it
        assert "ApiConnectionWebhook" in everything and "callbackregistrations" in everything
        assert "GetOnNewItems" in everything  # the legacy trigger
        assert "1 step(s) exported as placeholders" in everything
        assert '"type": "Compose"' in everything
        assert "['Microsoft.Web/connections', 'Microsoft.Logic/workflows']" in everything
        assert "refused: cannot export flow 'lead_to_task'" in everything
        assert "my_note" in everything
        for name in ("lead_to_task.logicapp.json", "lead_to_task.arm.json"):
            document = json.loads((out / name).read_text())
            definition = (
                document["resources"][1]["properties"]["definition"]
                if "resources" in document
                else document
            )
            assert not list(_logic_apps_validator().iter_errors(definition))
    finally:
        shutil.rmtree(out, ignore_errors=True)


def check_lead_to_task(run: NotebookRun) -> None:
    """A new lead gets its task from the started flow; the flow's state is kept beside the
    notebook; ``%d365 flow status`` draws a live widget with a chart and a sparkline."""
    code = run.own_code
    outputs = {c.source: text_of(c, html=True) for c in code}
    task_cell = next(o for s, o in outputs.items() if "%d365 list tasks" in s)
    assert "Interested in 20 e-bikes" in task_cell
    run_cell = next(o for s, o in outputs.items() if s.startswith("%d365 flow run "))
    assert "Succeeded" in run_cell and "create_task" in run_cell
    assert (run.folder / ".d365nb" / "flows.sqlite").exists()
    status = next(c for c in code if c.source.startswith("%d365 flow status"))
    data = next(o["data"] for o in status.outputs if "data" in o)
    assert "application/vnd.jupyter.widget-view+json" in data
    assert "<svg class='d365nb-runs-chart'" in data["text/html"]
    assert "data-group='Succeeded' data-count='1'" in data["text/html"]
    assert data["text/plain"].splitlines()[-1] == "runs per 1 min: █ (Succeeded 1)"


def _quickstart_cells() -> list[Any]:
    return [
        # A long read with a progress bar (shown at once): a finished bar leaves nothing behind.
        new_cell(
            "%config D365Magic.progress_after = 0\n%config D365Magic.page_size = 100\n"
            "_long = %d365 list leads --select lastname --pages 4\nlen(_long)"
        ),
        # A failed request with debug on: the error names the request, with the token redacted.
        new_cell(
            '%config D365Magic.debug = True\n%d365 list leads --filter "statuscode eq"',
            metadata={"tags": ["raises-exception"]},
        ),
    ]


def _outputs_json(nb: Any) -> str:
    return "\n".join(
        json.dumps(output, ensure_ascii=False)
        for cell in nb.cells
        if cell.cell_type == "code" and "raises-exception" not in cell.metadata.get("tags", [])
        for output in cell.outputs
    )


def check_quickstart(run: NotebookRun) -> None:
    """The walkthrough's results show; a progress bar and a debug error show no token either."""
    progress_cell, error_cell = run.test_cells[:2]
    executed = nbformat.writes(run.nb)
    assert not re.search(r"(?i)bearer\s+(?!\*\*\*)[A-Za-z0-9._~+/=-]{8,}", executed)

    # IPython prints a UsageError as one "UsageError: ..." stream, not a traceback.
    error = "".join(o.get("text", "") + o.get("evalue", "") for o in error_cell.outputs)
    assert "request: GET " in error and "Authorization: Bearer ***" in error
    assert "Traceback" not in error

    shown = [o for o in progress_cell.outputs if o.output_type == "display_data"]
    assert shown, "the bar was displayed"
    assert all(o.data == {"text/plain": ""} for o in shown)  # blanked when done
    assert progress_cell.outputs[-1].data["text/plain"] == "400"

    outputs = _outputs_json(run.nb)
    assert "connected to http://127.0.0.1:" in outputs
    assert re.search(r"5 rows · 1 page · [0-9.]+ s · sandbox", outputs)  # the footer
    assert "O'Neil" in outputs
    assert "would be updated; nothing changed" in outputs
    assert "d365nb-footer" in outputs  # html rendering in a notebook
    assert '"output_type": "error"' not in outputs


def check_forms(run: NotebookRun) -> None:
    """Every form carries its HTML fallback (headless) and the flow view shows the tested run.
    The notebook starts its own sandbox here, as cloned; its other branch (a running sandbox
    named by ``D365NB_SANDBOX_URL``/``_TOKEN``) is what ``tests/forms/test_browser.py`` runs."""
    outputs = [o for c in run.own_code for o in c.outputs]
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


CHECKS = {
    "explore.ipynb": NotebookChecks(check_explore),
    "export.ipynb": NotebookChecks(check_export, lambda: [new_cell("OUT")]),
    "flow_control.ipynb": NotebookChecks(check_flow_control, lambda: [new_cell("'DONE'")]),
    "forms.ipynb": NotebookChecks(check_forms),
    "lead_to_task.ipynb": NotebookChecks(check_lead_to_task),
    "quickstart.ipynb": NotebookChecks(check_quickstart, _quickstart_cells),
}
