"""Polling for what another thread (a flow engine, a browser, a server) makes true."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any


def wait_for(predicate: Callable[[], Any], timeout: float = 30.0, what: str = "condition") -> Any:
    """Poll ``predicate`` until it is truthy and return its value; fail after ``timeout``
    seconds naming ``what``. Polls quickly at first, then every 50 ms: many predicates ask a
    sandbox or a database, and asking 100 times a second costs CPU the other tests need."""
    deadline = time.monotonic() + timeout
    pause = 0.005
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(pause)
        pause = min(pause * 1.5, 0.05)
