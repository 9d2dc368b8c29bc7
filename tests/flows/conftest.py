"""Flow tests run against an empty sandbox of the module's own (see ``tests/support/flows.py``
for ``sandbox_handle``, ``d365``, ``history``, ``shell`` and the in-process ``conn``); every flow
a test defined is stopped after it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.flows import conn, d365, history, sandbox_handle, shell, stop_flows

__all__ = ["conn", "d365", "history", "sandbox_handle", "shell"]


@pytest.fixture(autouse=True)
def _stop_flows() -> Iterator[None]:
    yield
    stop_flows()
