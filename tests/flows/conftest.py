from __future__ import annotations

from collections.abc import Iterator

import pytest

from d365nb.flows import flows
from d365nb.flows.history import History


@pytest.fixture
def history(tmp_path) -> Iterator[History]:
    h = History(tmp_path / ".d365nb" / "flows.sqlite")
    yield h


@pytest.fixture(autouse=True)
def _stop_flows() -> Iterator[None]:
    yield
    for flow in list(flows.values()):
        flow.stop()
    flows.clear()


@pytest.fixture(scope="module")
def sandbox_handle():
    from d365nb import sandbox

    with sandbox.start(data="empty") as handle:
        yield handle


@pytest.fixture(scope="module")
def d365(sandbox_handle):
    import d365nb

    conn = d365nb.connect(sandbox_handle.url, token=sandbox_handle.token, alias="flows-tests")
    yield conn
    conn.close()


@pytest.fixture
def shell(sandbox_handle, tmp_path, monkeypatch):
    """An IPython shell with the extension loaded, connected to this module's sandbox."""
    from flows_support import cell
    from IPython.testing import globalipapp

    monkeypatch.chdir(tmp_path)  # flows.sqlite goes beside the "notebook"
    shell = globalipapp.start_ipython() or globalipapp.get_ipython()
    shell.run_line_magic("load_ext", "d365nb")
    shell.user_ns.update(_url=sandbox_handle.url, _token=sandbox_handle.token)
    cell(shell, "%d365 connect {_url} --token {_token} --alias flowcmd")
    yield shell
    for flow in list(flows.values()):
        flow.stop()
    flows.clear()
    from d365nb.client.registry import connections

    conn = connections.get("flowcmd")
    if conn is not None:
        conn.close()
    shell.run_line_magic("unload_ext", "d365nb")
