"""Fixtures for tests that run flows against a sandbox of their own; ``tests/flows`` and
``tests/export`` import them into their ``conftest.py`` (``from tests.support.flows import
...``), so these names mean this only there:

* ``sandbox_handle`` - an empty sandbox for the test module (flow tests count what their flows
  wrote, so nothing else may write there);
* ``d365`` - a connection on it, registered as the current one;
* ``history`` - a flow history file in the test's temporary directory;
* ``shell`` - the test shell, working in the test's temporary directory (``flows.sqlite`` goes
  beside the "notebook"), connected to ``sandbox_handle`` as alias ``flowcmd``;
* ``conn`` - a client on a fresh empty sandbox of the test's own, served in-process (no socket),
  whose tasks have no change tracking (``untracked_tasks``), as some tables have none.

``stop_flows()`` stops and forgets every flow the test defined (the root ``tests/conftest.py``
calls it after every test).
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from typing import Any

import pytest

from tests.support.sandboxes import inprocess
from tests.support.shells import connected


def stop_flows() -> None:
    """Stop and forget every flow defined in this process."""
    from d365nb.flows import flows

    for flow in list(flows.values()):
        flow.stop()
    flows.clear()


@functools.cache
def _untracked_task() -> Any:
    """The shipped task table with change tracking off, made once per process."""
    import dataclasses

    from d365nb.sandbox import schema

    return dataclasses.replace(schema.load()["task"], change_tracking=False)


def untracked_tasks(org: Any) -> None:
    """Switch change tracking off for tasks - on a copy: an org's table definitions are shared
    by every org in the process. One copy per process, so these orgs share one metadata
    catalog too (built per set of table objects, ~30 ms each)."""
    org.schema["task"] = _untracked_task()


@pytest.fixture
def conn() -> Iterator[Any]:
    with inprocess(change=untracked_tasks) as sandbox, sandbox.connect() as d365:
        yield d365


@pytest.fixture(scope="module")
def sandbox_handle() -> Iterator[Any]:
    from d365nb import sandbox

    with sandbox.start(data="empty") as handle:
        yield handle


@pytest.fixture(scope="module")
def d365(sandbox_handle) -> Iterator[Any]:
    import d365nb

    conn = d365nb.connect(sandbox_handle.url, token=sandbox_handle.token, alias="flows-tests")
    yield conn
    conn.close()


@pytest.fixture
def history(tmp_path) -> Any:
    from d365nb.flows.history import History

    return History(tmp_path / ".d365nb" / "flows.sqlite")


@pytest.fixture
def shell(bare_shell, sandbox_handle, tmp_path, monkeypatch) -> Iterator[Any]:
    """The test shell connected to this module's sandbox as alias ``flowcmd``."""
    monkeypatch.chdir(tmp_path)
    with connected(bare_shell, sandbox_handle, "flowcmd"):
        yield bare_shell
        stop_flows()
