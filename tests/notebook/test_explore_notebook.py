"""notebooks/explore.ipynb executed with nbclient in a real kernel against its embedded sandbox
(flat expand, query cell, write-back, save, aggregate, fetchxml): every cell runs, the outputs
show each feature, and nothing is left behind in the repository. Also the session basics in a
real kernel: ``d365`` exists after connect, re-running ``connect sandbox`` reuses the running
sandbox, and ``--db`` keeps the data across a kernel restart."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import nbformat

from tests.support.notebooks import kernel_client

REPO = Path(__file__).resolve().parents[2]
NOTEBOOK = REPO / "notebooks" / "explore.ipynb"


def _untracked() -> set[str]:
    out = subprocess.run(
        ["git", "status", "--porcelain", "--untracked-files=all"],
        cwd=REPO, capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    return {line[3:] for line in out.splitlines() if line.startswith("??")}


def _run(nb, cwd: Path) -> None:
    kernel_client(
        nb, cwd, timeout=240
    ).execute()  # raises CellExecutionError if any untagged cell fails


def _text(cell) -> str:
    return "\n".join(json.dumps(o, ensure_ascii=False) for o in cell.outputs)


def test_explore_notebook_runs_and_leaves_nothing_behind():
    before = _untracked()
    nb = nbformat.read(NOTEBOOK, as_version=4)
    # Run where the notebook lives, as a user would: saved files must not land in the repo.
    _run(nb, NOTEBOOK.parent)
    # Others may add files to a shared tree meanwhile: look at what this notebook could leave
    # (saved frames, databases, flow stores, anything beside the notebooks).
    new = _untracked() - before
    left = {
        f for f in new
        if f.startswith("notebooks/") or "/" not in f or f.startswith(".d365nb")
        or f.endswith((".xlsx", ".parquet", ".csv", ".sqlite"))
    }  # fmt: skip
    assert left == set()

    by_source = {
        cell.source.split("\n", 1)[0]: cell for cell in nb.cells if cell.cell_type == "code"
    }
    everything = "\n".join(_text(c) for c in nb.cells if c.cell_type == "code")
    assert "d365 is this connection" in everything
    assert "Dataverse(url=" in everything  # the d365 name
    assert "parentcustomerid_account.name" in everything
    assert "contact_customer_accounts.fullname" in everything  # --explode
    assert "OData has no ==: write eq" in everything
    assert "would be updated; nothing changed" in everything
    assert "skipped 1 column (read-only: createdon)" in everything
    assert "Called: interested in a demo" in _text(
        next(c for s, c in by_source.items() if s.startswith("%d365 get leads"))
    )
    assert "saved 20 rows to" in everything
    assert "acct.name" in everything  # fetchxml link-entity alias
    plot = next(c for s, c in by_source.items() if "--plot bar" in s)
    assert any("image/png" in o.get("data", {}) for o in plot.outputs)  # the chart
    errors = [
        o for c in nb.cells if c.cell_type == "code"
        and "raises-exception" not in c.metadata.get("tags", [])
        for o in c.outputs if o.output_type == "error"
    ]  # fmt: skip
    assert errors == []


def _session_notebook(db: Path, marker: Path) -> nbformat.NotebookNode:
    cell = nbformat.v4.new_code_cell
    return nbformat.v4.new_notebook(
        cells=[
            cell(f"%load_ext d365nb\n%d365 connect sandbox --db {db}"),
            cell("print(type(d365).__name__, d365.alias)"),
            cell(
                "first = d365.sandbox\nbefore = d365.list('leads', select='lastname', "
                "filter=\"lastname eq 'Persisted'\")\nprint('persisted rows:', len(before))"
            ),
            cell("if not len(before):\n    d365.create('leads', {'lastname': 'Persisted'})"),
            cell(f"%d365 connect sandbox --db {db}"),
            cell("print('same sandbox:', d365.sandbox is first)"),
            cell(f"import pathlib\npathlib.Path({str(marker)!r}).write_text(str(len(before)))"),
        ]
    )


def test_session_basics_in_a_real_kernel(tmp_path):
    db = tmp_path / "crm.sqlite"
    marker = tmp_path / "rows.txt"
    first = _session_notebook(db, marker)
    _run(first, tmp_path)
    out = "\n".join(_text(c) for c in first.cells)
    assert "Dataverse sandbox" in out  # d365 exists after %d365 connect
    assert "already connected to" in out and "same sandbox: True" in out
    assert marker.read_text() == "0"

    second = _session_notebook(db, marker)  # a new kernel: as after a restart
    _run(second, tmp_path)
    assert marker.read_text() == "1"  # the lead created before the restart is still there
