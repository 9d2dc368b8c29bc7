"""The suite's shared fixtures, each defined once in ``tests/support/`` (see its docstring):
``sandbox``, ``api``, ``empty_sandbox``, ``empty_api`` (``sandboxes``); ``d365``,
``empty_d365``, ``entra`` (``connections``); ``bare_shell``, ``shell``, ``magic`` (``shells``).
Helpers import as ``from tests.support.<module> import ...``, never from a ``conftest``."""

import os
import sys

pytest_plugins = [
    "tests.support.sandboxes",
    "tests.support.connections",
    "tests.support.shells",
]


def pytest_configure(config) -> None:
    # Kernels, `d365nb flow run` and the CLI each import the package in a new process. With
    # PYTHONDONTWRITEBYTECODE set (as on CI machines) every one of them compiled all ~165 modules
    # from source (~0.2 s each time); letting the first write its bytecode (git-ignored) spares
    # the others. Set before xdist starts its workers, so they and their children inherit it.
    if os.environ.pop("PYTHONDONTWRITEBYTECODE", None) is not None:
        sys.dont_write_bytecode = False
