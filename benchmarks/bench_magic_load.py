"""How long ``%load_ext d365nb`` takes, against a bare IPython start measured in the same run.

Each sample is a fresh ``python -c`` process (a cold import, as in a new kernel) that times, with
``time.perf_counter``: creating an ``InteractiveShell`` (the baseline), then ``%load_ext d365nb``.
It also reports whether pandas, httpx or the sandbox were imported by the load (they must not be).

    python benchmarks/bench_magic_load.py [--runs 7]

Target: the load itself <= 0.3 s.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys

PROBE = r"""
import json, sys, time
t0 = time.perf_counter()
from IPython.core.interactiveshell import InteractiveShell
ip = InteractiveShell.instance()
t1 = time.perf_counter()
ip.run_line_magic("load_ext", "d365nb")
t2 = time.perf_counter()
heavy = [m for m in ("pandas", "httpx", "d365nb.sandbox", "tqdm") if m in sys.modules]
print(json.dumps({"ipython": t1 - t0, "load_ext": t2 - t1, "heavy": heavy}))
"""

TARGET = 0.3


def sample() -> dict:
    out = subprocess.run(
        [sys.executable, "-c", PROBE], capture_output=True, text=True, check=True, cwd="/"
    ).stdout
    return json.loads(out.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    runs = parser.parse_args().runs
    samples = [sample() for _ in range(runs)]
    ipython = statistics.median(s["ipython"] for s in samples)
    load = statistics.median(s["load_ext"] for s in samples)
    heavy = sorted({m for s in samples for m in s["heavy"]})
    print(f"runs: {runs} fresh processes (median)")
    print(f"bare IPython start (baseline): {ipython * 1000:8.1f} ms")
    print(f"%load_ext d365nb:              {load * 1000:8.1f} ms")
    print(f"load / baseline:               {load / ipython:8.2f}x")
    print(f"target <= {TARGET * 1000:.0f} ms: {'met' if load <= TARGET else 'MISSED'}")
    print(f"heavy modules imported by load: {', '.join(heavy) if heavy else 'none'}")


if __name__ == "__main__":
    main()
