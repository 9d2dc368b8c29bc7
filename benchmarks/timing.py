"""The benchmarks' one timer: best of N wall-clock runs, in milliseconds.

On a shared machine the minimum is the run least disturbed by other processes (timeit's
advice); every figure, ours and the baseline, is taken alike and in the same run.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any


def best_ms(fn: Callable[[], Any], repeat: int = 7, *, warm_up: bool = False) -> float:
    """Best of `repeat` runs of `fn()`, in ms; `warm_up` runs it once untimed first."""
    if warm_up:
        fn()
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t) * 1000)
    return min(times)
