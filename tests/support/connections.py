"""Client fixtures (a plugin registered by ``tests/conftest.py``): ``Dataverse`` connections on
the sandboxes of ``tests.support.sandboxes``, and the fake Entra ID."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest


@pytest.fixture
def d365(sandbox) -> Iterator[Any]:
    """A client on the session's demo sandbox (shared with other tests: count what you make)."""
    from d365nb.client.api import Dataverse

    with Dataverse(sandbox.url, token=sandbox.token) as conn:
        yield conn


@pytest.fixture
def empty_d365(empty_sandbox) -> Iterator[Any]:
    """A client on a fresh sandbox without demo data (for "nothing was written" checks)."""
    from d365nb.client.api import Dataverse

    with Dataverse(empty_sandbox.url, token=empty_sandbox.token) as conn:
        yield conn


@pytest.fixture
def inprocess_d365(inprocess_sandbox) -> Iterator[Any]:
    """A client on a fresh empty sandbox served in-process (``httpx.ASGITransport``)."""
    with inprocess_sandbox.connect() as conn:
        yield conn


@pytest.fixture
def entra() -> Iterator[Any]:
    """A fake Entra ID on loopback (the only faked part, at the HTTP boundary); see
    ``tests/support/entra.py``."""
    from tests.support.entra import FakeEntra

    with FakeEntra() as fake:
        yield fake
