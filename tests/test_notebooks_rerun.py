"""Every notebook under ``notebooks/`` survives "restart kernel and run all" twice in a row
(issue 17 item 3), the way a user re-runs it: a copy of the notebooks folder in a temporary
directory, executed twice in a fresh real kernel each time (nbclient) with the folder as the
working directory, so what the first run left (``.d365nb/flows.sqlite``) is there for the second.

Asserted per notebook:

* no cell fails, in either run;
* the second run shows the same results as the first. Volatile tokens are masked (GUIDs, run
  ids, timestamps, the embedded sandbox's port, durations, temp paths) and lines are compared as
  a set per cell (the order of rows a query did not order is the service's). The one expected
  difference: a flow started on the second run's new embedded sandbox says, in one line, that
  its checkpoint belongs to the first run's organisation (issue 17 item 2) - and then fires;
* every live status view (``flow start``, ``flow status``) shows Stopped once the notebook has
  stopped the flow (the widget state nbclient records from the kernel's comm messages);
* nothing new is left in the repository that git would track: files the runs create in the copy
  are all git-ignored there, nothing is written beside the copy, and ``git status`` shows no new
  file a notebook could leave (under ``notebooks/``, at the top level, saved data anywhere);
* each run shows what the notebook is about and no sandbox token (``tests/support/
  notebook_checks.py``: test-only cells appended to both runs, after the notebook's own cells
  and left out of the comparison, and a check of each run), so no third kernel run is needed.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from collections import Counter
from pathlib import Path

import pytest

from tests.support.notebook_checks import CHECKS
from tests.support.notebooks import NotebookRun, assert_shows_no_token, run_all

REPO = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((REPO / "notebooks").glob("*.ipynb"))
WIDGETS = "application/vnd.jupyter.widget-state+json"
SAVED_DATA = (".xlsx", ".parquet", ".csv", ".sqlite")

_MASKS = [
    (r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}", "<guid>"),
    (r"\b[0-9a-f]{16}\b", "<run>"),
    (r"<code>[0-9a-f]{8}</code>", "<code><id></code>"),  # short ids in the flow view
    (r":test:\d+", ":test:<n>"),  # a test run's key carries the time it was made
    (r"\d{4}-\d{2}-\d{2}[ T]\d{2}:\d{2}:\d{2}(\.\d+)?(\+00:00|Z)?", "<time>"),
    (r"https?://(127\.0\.0\.1|localhost):\d+", "<sandbox>"),
    (r"\b\d+(\.\d+)? s\b", "<seconds>"),
    (r"\b\d+\.\d{3,}\b", "<number>"),
    (r"/tmp/ipykernel_\d+/\d+\.py:\d+", "<cell>"),
    (r"/tmp/(?:tmp|d365nb-)[\w-]+", "<tmp>"),
]
NOTICE = re.compile(
    r"^flow (\w+): its checkpoint was taken on organisation <guid> \(<sandbox>\), not on this "
    r"one \(<guid>, <sandbox>\); starting from --since now$"
)


def mask(text: str) -> str:
    for pattern, replacement in _MASKS:
        text = re.sub(pattern, replacement, text)
    return text


def shown(cell) -> str:
    """What a user sees under a cell: streams (joined as printed), results, errors."""
    streams = "".join(o.get("text", "") for o in cell.get("outputs", []) if "text" in o)
    rich = [
        o["data"].get("text/html") or o["data"].get("text/plain", "")
        for o in cell.get("outputs", [])
        if "data" in o
    ]
    return "\n".join([streams, *rich])


def status_views(nb) -> list[str]:
    """The final HTML of every flow status widget (nbclient keeps the last state it was sent)."""
    state = nb.metadata.get("widgets", {}).get(WIDGETS, {}).get("state", {})
    values = [w.get("state", {}).get("value", "") for w in state.values()]
    return [v for v in values if isinstance(v, str) and v.startswith("<div><b>flow ")]


def left_in_repo() -> list[str]:
    """Untracked files a notebook could leave in the repository: under ``notebooks/``, at the
    top level, or saved data anywhere (others may add other files to a shared tree meanwhile)."""
    result = subprocess.run(
        ["git", "status", "--porcelain", "--untracked-files=all"],
        cwd=REPO, capture_output=True, text=True, check=True,
    )  # fmt: skip
    untracked = [line[3:] for line in result.stdout.splitlines() if line.startswith("??")]
    return sorted(
        f for f in untracked
        if f.startswith("notebooks/") or "/" not in f or f.endswith(SAVED_DATA)
    )  # fmt: skip


def git_ignores(relative: str) -> bool:
    result = subprocess.run(
        ["git", "check-ignore", "--no-index", "-q", f"notebooks/{relative}"], cwd=REPO
    )
    return result.returncode == 0


def files_under(folder: Path) -> set[str]:
    return {str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file()}


def rerun(notebook: Path, scratch: Path) -> tuple[NotebookRun, NotebookRun]:
    """Run ``notebook`` twice, each run with its test-only cells and checked by itself."""
    checks = CHECKS[notebook.name]
    runs = []
    for _ in range(2):
        run = run_all(notebook, checks.test_cells(), scratch)
        assert_shows_no_token(run)
        checks.check(run)
        runs.append(run)
    return runs[0], runs[1]


@pytest.mark.slow
@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_reruns_with_the_same_results_and_leaves_nothing_tracked(tmp_path, notebook):
    assert NOTEBOOKS, "no notebooks found"
    assert sorted(CHECKS) == [p.name for p in NOTEBOOKS], "a notebook without its checks"
    before_repo = left_in_repo()
    work, scratch = tmp_path / "notebooks", tmp_path / "scratch"
    scratch.mkdir()
    # The notebooks as cloned: the developer's own local flow state is not part of them.
    shutil.copytree(REPO / "notebooks", work, ignore=shutil.ignore_patterns(".d365nb", ".ipynb*"))
    copied = files_under(work)

    first, second = rerun(work / notebook.name, scratch)

    own = first.nb.cells[: first.own]  # the test-only cells that follow may differ by design
    code = [i for i, c in enumerate(own) if c.cell_type == "code"]
    notices = []
    for i in code:
        source = own[i].source
        one = Counter(mask(shown(own[i])).splitlines())
        two = Counter(mask(shown(second.nb.cells[i])).splitlines())
        if source.startswith("%d365 flow start"):
            extra = [line for line in two if NOTICE.match(line)]
            notices += extra
            for line in extra:
                two[line] -= 1
            two = +two  # drop the zero counts
        assert two == one, f"cell {i} differs on the second run:\n{source}"
    # Each flow the notebook starts says once, on the second run, that the first run's
    # checkpoint (another organisation: a new embedded sandbox) was not applied.
    started = [
        own[i].source.split()[3] for i in code if own[i].source.startswith("%d365 flow start")
    ]
    assert sorted(NOTICE.match(n).group(1) for n in notices) == sorted(started)

    if any(own[i].source.startswith("%d365 flow stop") for i in code):
        for run in (first, second):
            views = status_views(run.nb)
            assert views, "the notebook showed no live status view"
            assert all(">Stopped<" in v and ">Running<" not in v for v in views), views

    created = files_under(work) - copied
    assert [f for f in sorted(created) if not git_ignores(f)] == []
    beside = {p.name for p in tmp_path.iterdir()} - {work.name, scratch.name}
    assert beside == set(), "a run wrote beside the notebooks' folder"
    assert left_in_repo() == before_repo
