"""``notebooks/flow_control.ipynb`` runs end to end in a real kernel against the sandbox: a
for-each over a list step, a scope, a failure branch, a dry run and the export."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.notebooks import code_cells, run_copy, text_of

NOTEBOOK = Path(__file__).parents[2] / "notebooks" / "flow_control.ipynb"


@pytest.mark.slow
def test_flow_control_notebook(tmp_path):
    nb = run_copy(NOTEBOOK, tmp_path, "print('DONE')", timeout=180)
    cells = code_cells(nb)
    out = {c.source.splitlines()[0]: text_of(c, html=False) for c in cells}
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
    assert "DONE" in text_of(cells[-1])
