"""The session basics in a real kernel: ``d365`` exists after connect, re-running ``connect
sandbox`` reuses the running sandbox, and ``--db`` keeps the data across a kernel restart (two
kernels: the second one is the restart).

``notebooks/explore.ipynb`` itself (flat expand, query cell, write-back, save, aggregate,
fetchxml) is checked on both runs of ``tests/test_notebooks_rerun.py``
(``tests/support/notebook_checks.py``), with nothing left behind in the repository."""

from __future__ import annotations

import json
from pathlib import Path

import nbformat
import pytest

from tests.support.notebooks import kernel_client


def _run(nb, cwd: Path) -> None:
    kernel_client(nb, cwd, timeout=240).execute()  # raises CellExecutionError if a cell fails


def _text(cell) -> str:
    return "\n".join(json.dumps(o, ensure_ascii=False) for o in cell.outputs)


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


@pytest.mark.slow
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
