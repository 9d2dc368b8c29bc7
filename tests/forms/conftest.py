"""Fixtures for the forms tests: one sandbox (demo data) per session, a client connection, and a
raw HTTP reader so tests check records in the sandbox independently of the client."""

from __future__ import annotations

import pytest
from forms_support import SandboxReader


@pytest.fixture(scope="session")
def sandbox_handle():
    from d365nb import sandbox

    handle = sandbox.start()
    yield handle
    handle.stop()


@pytest.fixture(scope="session")
def conn(sandbox_handle):
    import d365nb

    connection = d365nb.connect(sandbox_handle.url, token=sandbox_handle.token)
    yield connection
    connection.close()


@pytest.fixture(scope="session")
def reader(sandbox_handle):
    return SandboxReader(sandbox_handle)
