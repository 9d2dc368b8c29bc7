"""Fixtures for the magics tests: an IPython shell with ``%load_ext d365nb``, connected to the
session sandbox over loopback HTTP, and ``d365(shell, line, cell=None)`` that runs a magic the
way a notebook cell does (through ``run_cell``, so IPython's input handling applies)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from IPython.testing import globalipapp


class MagicFailed(Exception):
    """The cell raised; ``.error`` is what IPython caught."""

    def __init__(self, error: BaseException) -> None:
        super().__init__(str(error))
        self.error = error


def run_cell(shell: Any, source: str) -> Any:
    """Run ``source`` as a cell; return its value or raise ``MagicFailed``."""
    result = shell.run_cell(source, store_history=True)
    error = result.error_before_exec or result.error_in_exec
    if error is not None:
        raise MagicFailed(error)
    return result.result


@pytest.fixture
def d365():
    """``d365(shell, "list leads ...")`` or ``d365(shell, "create tasks", cell="...")``."""

    def run(shell: Any, line: str, cell: str | None = None) -> Any:
        source = f"%d365 {line}" if cell is None else f"%%d365 {line}\n{cell}"
        return run_cell(shell, source)

    return run


@pytest.fixture
def bare_shell() -> Iterator[Any]:
    """The test shell with d365nb loaded and no connection made by this fixture."""
    shell = globalipapp.start_ipython() or globalipapp.get_ipython()
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
    from d365nb.client.registry import connections

    bare_shell.user_ns["_sb_url"] = sandbox.url
    bare_shell.user_ns["_sb_token"] = sandbox.token
    run_cell(bare_shell, "%d365 connect {_sb_url} --token {_sb_token} --alias nbtest")
    conn = connections.get("nbtest")
    yield bare_shell
    connections.remove(conn)
    conn.close()


@pytest.fixture
def magic(shell) -> Any:
    """The shell's D365Magic instance (a fresh one per test: the fixture reloads d365nb)."""
    from d365nb.notebook.extension import _LOADED

    return _LOADED[id(shell)]
