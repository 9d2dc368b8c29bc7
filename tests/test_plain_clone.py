"""A plain clone is the whole product: nothing reads or names a path outside the repository.

The repository is copied alone into a temporary folder (no sibling folders) and what reads files
runs there: the export notebook, in a kernel importing the copy's package (its exports are
validated against the Logic Apps schema the package ships), with the checks
``tests/test_notebooks_rerun.py`` makes on it; and the golden export tests, run by pytest in the
copy, which read the golden files and the schema through the package and through the tests'
validator. The other export tests build and check definitions in memory, so running them in the
copy would prove nothing more.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from tests.support.notebook_checks import CHECKS
from tests.support.notebooks import assert_shows_no_token, run_all, text_of

REPO = Path(__file__).resolve().parents[1]
TEXT_SUFFIXES = {".py", ".ipynb", ".md", ".toml", ".cfg", ".txt", ".json", ".yml", ".yaml", ""}
# The export tests that read files: the golden files plus the package's schema
# (`wdl_schema.problems`).
FILE_READING_EXPORT_TESTS = ("test_export_golden.py",)


def tracked_files() -> list[Path]:
    """The files a clone would have (tracked, plus new ones not ignored)."""
    out = subprocess.run(
        ["git", "ls-files", "-co", "--exclude-standard"],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return [REPO / line for line in out.splitlines() if (REPO / line).is_file()]


def test_nothing_names_a_path_outside_the_repository():
    sibling = re.compile(r"\.\./(\.\./)*" + "shared" + r"\b|/" + "work" + r"/")
    offenders = []
    for path in tracked_files():
        if path.suffix not in TEXT_SUFFIXES or path.stat().st_size > 2_000_000:
            continue
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            continue
        for number, line in enumerate(text.splitlines(), 1):
            if sibling.search(line):
                offenders.append(f"{path.relative_to(REPO)}:{number}: {line.strip()[:80]}")
    assert not offenders, "\n".join(offenders)


def test_the_workflow_schema_ships_inside_the_package():
    from d365nb.flows import wdl_schema

    assert wdl_schema.SCHEMA_FILE.is_relative_to(Path(wdl_schema.__file__).parent)
    assert wdl_schema.validator().schema["title"] == "Logic App Template Schema"


@pytest.mark.slow
def test_export_tests_and_notebook_pass_in_a_copy_with_no_siblings(tmp_path):
    alone = tmp_path / "alone" / "d365nb"
    for path in tracked_files():
        target = alone / path.relative_to(REPO)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(path, target)
    assert sorted(p.name for p in alone.parent.iterdir()) == ["d365nb"]
    # The copy's package wins over the editable install of this checkout.
    env = {**os.environ, "PYTHONPATH": str(alone)}
    where = subprocess.run(
        [sys.executable, "-c", "import d365nb; print(d365nb.__file__)"],
        cwd=alone,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    assert Path(where).is_relative_to(alone)
    reading_files = [f"tests/export/{name}" for name in FILE_READING_EXPORT_TESTS]
    for name in FILE_READING_EXPORT_TESTS:
        assert (alone / "tests" / "export" / name).exists()
    # The golden tests run by pytest in the copy while the notebook runs in a kernel below.
    tests = subprocess.Popen(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:randomly",
         *reading_files],
        cwd=alone, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    try:
        notebook = alone / "notebooks" / "export.ipynb"
        checks = CHECKS[notebook.name]
        origin = nbformat.v4.new_code_cell("import d365nb\nprint(d365nb.__file__)")
        scratch = tmp_path / "scratch"
        scratch.mkdir()
        run = run_all(notebook, [*checks.test_cells(), origin], scratch, env=env)
        assert Path(text_of(run.test_cells[-2]).strip()).is_relative_to(alone)
        assert_shows_no_token(run)
        checks.check(run)
    finally:
        out, _ = tests.communicate(timeout=600)
    tail = "\n".join(out.splitlines()[-15:])
    assert tests.returncode == 0, tail
    assert re.search(r"\b\d+ passed\b", tail) and "error" not in tail.lower(), tail
    assert "skipped" not in tail and "deselected" not in tail, tail  # all of them ran
