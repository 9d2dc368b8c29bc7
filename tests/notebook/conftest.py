"""Fixtures for the magics tests. The shells (``bare_shell``, ``shell`` connected to the session
sandbox as ``nbtest``, ``magic``) come from ``tests/support/shells.py``; here ``d365`` is the
magic runner: ``d365(shell, line, cell=None)`` runs ``%d365 line`` (or a ``%%d365`` cell) the
way a notebook cell does."""

from __future__ import annotations

from typing import Any

import pytest

from tests.support.shells import run_cell


@pytest.fixture
def d365():
    """``d365(shell, "list leads ...")`` or ``d365(shell, "create tasks", cell="...")``."""

    def run(shell: Any, line: str, cell: str | None = None) -> Any:
        source = f"%d365 {line}" if cell is None else f"%%d365 {line}\n{cell}"
        return run_cell(shell, source)

    return run
