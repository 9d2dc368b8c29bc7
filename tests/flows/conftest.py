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
