"""Sandbox fixtures (a plugin registered by ``tests/conftest.py``): real sandboxes over loopback
HTTP, and httpx clients that talk to them.

* ``sandbox`` - one sandbox with the demo data for the whole test session. Tests may add or
  change records in it, so never assert on absolute counts there; create what you count, or use
  ``empty_sandbox``.
* ``api`` - an ``httpx.Client`` on the session sandbox: ``base_url`` is the API root
  (``.../api/data/v9.2/``), with the bearer token and the usual OData headers.
* ``empty_sandbox`` / ``empty_api`` - a fresh sandbox without demo data for one test (only the
  caller's system user exists).
* ``inprocess_sandbox`` - a fresh empty organisation served in-process: clients reach it through
  ``httpx.ASGITransport`` (no socket, no server thread). ``inprocess(...)`` builds one with
  other options (demo data, a changed schema).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from d365nb import sandbox as sandbox_module
from d365nb.client.api import default_tls

ODATA_HEADERS = {
    "Accept": "application/json",
    "OData-MaxVersion": "4.0",
    "OData-Version": "4.0",
    "If-None-Match": "null",
}


def api_client(handle) -> httpx.Client:
    """An httpx client for a sandbox handle (base URL = API root, bearer token set)."""
    return httpx.Client(
        base_url=handle.api,
        headers={**ODATA_HEADERS, "Authorization": f"Bearer {handle.token}"},
        timeout=30,
        verify=handle.ca or default_tls(),  # one CA-bundle load per process, not per client
    )


@pytest.fixture(scope="session")
def sandbox() -> Iterator:
    with sandbox_module.start(data="demo", seed=0) as handle:
        yield handle


@pytest.fixture
def api(sandbox) -> Iterator[httpx.Client]:
    with api_client(sandbox) as client:
        yield client


@pytest.fixture
def empty_sandbox() -> Iterator:
    handle = sandbox_module.start(data="empty")
    yield handle
    # Not waited for: uvicorn's shutdown takes ~0.2 s, and hundreds of tests use this fixture;
    # the sandbox closes its database on its own thread once its requests are done.
    handle.stop(wait=False)


@pytest.fixture
def empty_api(empty_sandbox) -> Iterator[httpx.Client]:
    with api_client(empty_sandbox) as client:
        yield client


class InProcessSandbox:
    """A sandbox organisation served in-process: ``url``/``api``/``token``/``org`` like a
    ``SandboxHandle``, and ``transport()`` / ``connect()`` for clients."""

    url = "http://sandbox.test"

    def __init__(self, org: Any) -> None:
        from d365nb.sandbox.app import API, build_app

        self.org = org
        self.app = build_app(org)
        self.api = self.url + API
        self.token = org.token

    def __repr__(self) -> str:  # the token stays out of reprs, as the real handle's does
        return f"<InProcessSandbox {self.url}>"

    def transport(self) -> httpx.ASGITransport:
        return httpx.ASGITransport(app=self.app)

    def connect(self, **options: Any) -> Any:
        """A ``Dataverse`` on this sandbox (``connect(..., transport=)``, not registered)."""
        from d365nb.client.api import Dataverse

        return Dataverse(self.url, token=self.token, transport=self.transport(), **options)


@contextlib.contextmanager
def inprocess(
    data: str = "empty", change: Callable[[Any], None] | None = None, **options: Any
) -> Iterator[InProcessSandbox]:
    """An in-process sandbox (``build_org`` options); ``change(org)`` may alter it first."""
    from d365nb.sandbox.server import build_org

    org = build_org(data=data, **options)
    if change is not None:
        change(org)
    try:
        yield InProcessSandbox(org)
    finally:
        org.store.close()


@pytest.fixture
def inprocess_sandbox() -> Iterator[InProcessSandbox]:
    with inprocess() as sandbox:
        yield sandbox
