"""Progress bars for long reads and bulk writes, shown only when the work is slow.

``Progress`` is the ``progress=`` callback the client's ``list`` and bulk writes call; tqdm is
imported only when a bar is actually needed (not at ``%load_ext``).
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import Any

__all__ = ["Progress"]


class Progress:
    """A progress callback that shows a tqdm.auto bar only once work has lasted ``after``
    seconds, so quick reads print nothing; ``close()`` completes the bar and removes it.

    Callable as ``progress(done, total=None)`` where ``done`` counts pages or records.
    """

    def __init__(
        self,
        description: str,
        *,
        unit: str = "rows",
        after: float = 1.0,
        enabled: bool = True,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.description = description
        self.unit = unit
        self.after = after
        self.enabled = enabled
        self._clock = clock
        self._started = clock()
        self._bar: Any = None
        self._handle: Any = None  # display handle of a notebook (widget) bar
        self.done = 0
        self.total: int | None = None
        self.shown = False  # whether a bar was ever displayed

    def __call__(self, done: int, total: int | None = None, *_: Any, **__: Any) -> None:
        self.done = int(done)
        if total is not None:
            self.total = int(total)
        if not self.enabled:
            return
        if self._bar is None:
            if self._clock() - self._started < self.after:
                return
            self._bar = self._new_bar()
            self.shown = True
        if self.total is not None and self._bar.total != self.total:
            self._bar.total = self.total
        self._bar.n = self.done
        self._bar.refresh()

    def _new_bar(self) -> Any:
        from tqdm.auto import tqdm

        # leave=False: the bar goes away when done; the result's footer reports the outcome.
        options = {"total": self.total, "desc": self.description, "unit": f" {self.unit}"}
        if _is_notebook_bar(tqdm):
            # Shown through a display handle so close() can blank the output: a finished bar
            # leaves nothing behind in the saved notebook (not even a stale "0 rows" text).
            from IPython.display import display

            bar = tqdm(leave=False, display=False, **options)
            self._handle = display(bar.container, display_id=True)
            return bar
        return tqdm(leave=False, file=sys.stderr, dynamic_ncols=True, **options)

    def close(self) -> None:
        """Complete and remove the bar (if one was shown); safe to call twice."""
        if self._bar is not None:
            if self._bar.total is not None:
                self._bar.n = self._bar.total
            self._bar.close()
            self._bar = None
        if self._handle is not None:
            self._handle.update({"text/plain": ""}, raw=True)
            self._handle = None

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def _is_notebook_bar(tqdm_class: type) -> bool:
    """Whether tqdm.auto chose the ipywidgets bar (running in a Jupyter kernel)."""
    return tqdm_class.__module__.startswith("tqdm.notebook") or any(
        base.__module__.startswith("tqdm.notebook") for base in tqdm_class.__mro__
    )
