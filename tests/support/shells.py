"""IPython shells with ``%load_ext d365nb`` (a plugin registered by ``tests/conftest.py``), and
``run_cell`` - a cell run the way a notebook runs it (through ``run_cell``, so IPython's input
handling applies).

* ``bare_shell`` - the test shell with d365nb loaded and no connection made by this fixture.
* ``shell`` - the test shell connected to the session sandbox as alias ``nbtest``.
* ``magic`` - the shell's ``D365Magic`` instance.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import pytest
from IPython.testing import globalipapp


class CellFailed(Exception):
    """The cell raised; ``.error`` is what IPython caught (``str`` is its message)."""

    def __init__(self, error: BaseException) -> None:
        super().__init__(str(error))
        self.error = error


def run_cell(shell: Any, source: str) -> Any:
    """Run ``source`` as a cell; return its value or raise ``CellFailed``."""
    result = shell.run_cell(source, store_history=True)
    error = result.error_before_exec or result.error_in_exec
    if error is not None:
        raise CellFailed(error)
    return result.result


def ipython() -> Any:
    """The process's test IPython shell (one per process, as in a kernel)."""
    from IPython.core.interactiveshell import InteractiveShell
    from IPython.terminal.interactiveshell import TerminalInteractiveShell

    if InteractiveShell.initialized() and not isinstance(
        InteractiveShell.instance(), TerminalInteractiveShell
    ):
        # Outside a kernel, IPython's display formatting (a flow's display() in an earlier
        # test) makes a bare singleton shell, which would refuse the test shell: drop it.
        InteractiveShell.clear_instance()
    return globalipapp.start_ipython() or globalipapp.get_ipython()


@contextlib.contextmanager
def connected(shell: Any, handle: Any, alias: str, **namespace: Any) -> Iterator[Any]:
    """``shell`` connected to the sandbox ``handle`` as ``alias`` (``%d365 connect``, token
    passed by variable as users must); afterwards the connection is closed and the one that
    was current before is current again."""
    from d365nb.client.registry import connections

    before = connections.current
    shell.user_ns.update(_sb_url=handle.url, _sb_token=handle.token, **namespace)
    run_cell(shell, f"%d365 connect {{_sb_url}} --token {{_sb_token}} --alias {alias}")
    conn = connections.get(alias)
    try:
        yield shell
    finally:
        connections.remove(conn)
        conn.close()
        for name, existing in connections.items():
            if existing is before:
                connections.use(name)


@pytest.fixture
def bare_shell() -> Iterator[Any]:
    """The test shell with d365nb loaded and no connection made by this fixture."""
    shell = ipython()
    shell.run_line_magic("load_ext", "d365nb")
    before = set(shell.user_ns)
    yield shell
    shell.run_line_magic("unload_ext", "d365nb")
    # %config D365Magic.x persists in the shell's config (as in a real kernel): reset it.
    shell.config.pop("D365Magic", None)
    for name in set(shell.user_ns) - before:
        shell.user_ns.pop(name, None)


@pytest.fixture
def shell(bare_shell, sandbox) -> Iterator[Any]:
    """The test shell connected to the session sandbox as alias ``nbtest``."""
    with connected(bare_shell, sandbox, "nbtest"):
        yield bare_shell


@pytest.fixture
def magic(shell) -> Any:
    """The shell's D365Magic instance (a fresh one per test: the fixture reloads d365nb)."""
    from d365nb.notebook.extension import _LOADED

    return _LOADED[id(shell)]
