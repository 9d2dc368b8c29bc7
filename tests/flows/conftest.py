"""Flow tests run against an empty sandbox of the module's own (see ``tests/support/flows.py``
for ``sandbox_handle``, ``d365``, ``history``, ``shell`` and the in-process ``conn``); the root
``tests/conftest.py`` stops every flow a test defined after it."""

from __future__ import annotations

from tests.support.flows import conn, d365, history, sandbox_handle, shell

__all__ = ["conn", "d365", "history", "sandbox_handle", "shell"]
