"""How long the whole test suite takes (target: under 2 minutes on a 2-core machine), against an
earlier commit's suite run the same way in the same session.

The baseline commit is checked out into a temporary git worktree and its suite runs with its own
package first on ``PYTHONPATH`` (as ``tests/test_plain_clone.py`` does); then this checkout's.
Both run the README's test command (``python -m pytest -n auto``), one after the other, on an
otherwise idle machine. Prints wall time, CPU time (user + system, children included) and the
outcome line of each, and the ratio.

Run: ``python benchmarks/bench_suite.py [--baseline REV]`` (default: 795b8c0, the last commit
before the suite's run settings, caches and garbage-collection tuning). Takes ~5 minutes.
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def run_suite(root: Path) -> tuple[float, float, str]:
    """Wall seconds, CPU seconds and the outcome (failures, then the last line) of
    ``pytest -n auto -q`` run in ``root``."""
    env = {**os.environ, "PYTHONPATH": str(root)}
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-n", "auto", "-q", "-p", "no:cacheprovider"],
        cwd=root, env=env, capture_output=True, text=True, stdin=subprocess.DEVNULL,
    )  # fmt: skip
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    lines = [line for line in done.stdout.splitlines() if line.strip()]
    failed = [line for line in lines if line.startswith(("FAILED", "ERROR"))]
    last = lines[-1] if lines else f"(no output, exit {done.returncode})"
    return wall, cpu, "\n".join([*failed, last])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--baseline", default="795b8c0", help="commit to compare with")
    args = parser.parse_args()
    print(f"{os.cpu_count()} CPUs; baseline {args.baseline}, then this checkout")
    with tempfile.TemporaryDirectory() as scratch:
        base = Path(scratch) / "baseline"
        subprocess.run(
            ["git", "worktree", "add", "-q", "--detach", str(base), args.baseline],
            cwd=REPO, check=True,
        )  # fmt: skip
        try:
            figures = {"baseline": run_suite(base), "this checkout": run_suite(REPO)}
        finally:
            subprocess.run(["git", "worktree", "remove", "--force", str(base)], cwd=REPO)
    for label, (wall, cpu, outcome) in figures.items():
        print(f"{label:14s} {wall:6.1f} s wall  {cpu:6.1f} s CPU   {outcome}")
    base_wall, ours_wall = figures["baseline"][0], figures["this checkout"][0]
    verdict = "met" if ours_wall <= 120 else "MISSED"
    print(
        f"ratio baseline / this checkout: {base_wall / ours_wall:.2f}x; target <= 120 s: {verdict}"
    )


if __name__ == "__main__":
    main()
