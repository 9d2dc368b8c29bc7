"""``notebooks/export.ipynb`` runs end to end in a real kernel against the sandbox: the export
validates against the Logic Apps schema, and no token is saved or shown.

The checks are the ones ``tests/test_notebooks_rerun.py`` makes on both of its runs; this one
run stays because ``tests/test_plain_clone.py`` runs ``tests/export`` alone in a copy of the
tracked files (no git checkout there, which the rerun test needs) to prove the notebook passes
with no siblings."""

from __future__ import annotations

import shutil

import pytest

from tests.support.export import REPO
from tests.support.notebook_checks import CHECKS
from tests.support.notebooks import assert_shows_no_token, run_all

NOTEBOOK = REPO / "notebooks" / "export.ipynb"


@pytest.mark.slow
def test_export_notebook_exports_valid_definitions(tmp_path):
    work, scratch = tmp_path / "notebook", tmp_path / "scratch"
    work.mkdir()
    scratch.mkdir()
    shutil.copy(NOTEBOOK, work / NOTEBOOK.name)
    checks = CHECKS[NOTEBOOK.name]
    run = run_all(work / NOTEBOOK.name, checks.test_cells(), scratch, timeout=120)
    assert_shows_no_token(run)
    checks.check(run)
