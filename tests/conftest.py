"""The suite's shared fixtures, each defined once in ``tests/support/`` (see its docstring):
``sandbox``, ``api``, ``empty_sandbox``, ``empty_api`` (``sandboxes``); ``d365``,
``empty_d365``, ``entra`` (``connections``); ``bare_shell``, ``shell``, ``magic`` (``shells``).
Helpers import as ``from tests.support.<module> import ...``, never from a ``conftest``."""

pytest_plugins = [
    "tests.support.sandboxes",
    "tests.support.connections",
    "tests.support.shells",
]
