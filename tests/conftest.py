"""Shared fixtures: real sandboxes over loopback HTTP, and clients that talk to them.

* `sandbox` - one sandbox with the demo data for the whole test session. Tests may add or change
  records in it, so never assert on absolute counts there; create what you count, or use
  `empty_sandbox`.
* `api` - an `httpx.Client` on the session sandbox: `base_url` is the API root
  (`.../api/data/v9.2/`), with the bearer token and the usual OData headers.
* `empty_sandbox` / `empty_api` - a fresh sandbox without demo data for one test (only the
  caller's system user exists).
"""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from d365nb import sandbox as sandbox_module

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
        verify=handle.ca or True,
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
    with sandbox_module.start(data="empty") as handle:
        yield handle


@pytest.fixture
def empty_api(empty_sandbox) -> Iterator[httpx.Client]:
    with api_client(empty_sandbox) as client:
        yield client
