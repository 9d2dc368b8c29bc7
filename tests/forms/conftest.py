"""Fixtures for the forms tests: the session sandbox (demo data), a client connection, and a
raw HTTP reader so tests check records in the sandbox independently of the client."""

from __future__ import annotations

import pytest

from tests.support.forms import SandboxReader


@pytest.fixture(scope="session")
def sandbox_handle(sandbox):
    """The session's demo sandbox (tests/conftest.py)."""
    return sandbox


@pytest.fixture(scope="session")
def conn(sandbox_handle):
    import d365nb

    connection = d365nb.connect(sandbox_handle.url, token=sandbox_handle.token)
    yield connection
    connection.close()


@pytest.fixture(scope="session")
def reader(sandbox_handle):
    return SandboxReader(sandbox_handle)
