"""One function per ``%d365`` command: ``name(magic, options, cell) -> result``.

``options`` is the argparse namespace from ``notebook.args``; the result is what the magic
returns (a DataFrame is displayed with its footer). Commands live in modules named for what
they touch: ``connection`` (connect/connections/use/whoami), ``schema`` (tables/describe),
``reading`` (list/get/changes), ``writing`` (create/update/delete).
"""

from __future__ import annotations

import importlib
from argparse import Namespace
from typing import Any

__all__ = ["run", "store"]

_MODULES = {
    "help": "help",
    "connect": "connection",
    "connections": "connection",
    "use": "connection",
    "whoami": "connection",
    "tables": "schema",
    "describe": "schema",
    "list": "reading",
    "get": "reading",
    "changes": "reading",
    "create": "writing",
    "update": "writing",
    "delete": "writing",
    "aggregate": "aggregate",
    "fetchxml": "aggregate",
}


def run(magic: Any, name: str, options: Namespace, cell: str | None) -> Any:
    """Run command ``name``; stores the result in ``-o VAR`` when asked."""
    module = importlib.import_module(f"d365nb.notebook.commands.{_MODULES[name]}")
    func = getattr(module, f"cmd_{name}")
    _check_out(options)  # a bad -o is refused before the command runs (or writes)
    result = func(magic, options, cell)
    return store(magic, options, result)


def _check_out(options: Namespace) -> None:
    import keyword

    var = getattr(options, "out", None)
    if var is not None and (not var.isidentifier() or keyword.iskeyword(var)):
        raise ValueError(f"-o {var!r}: not a valid Python variable name")


def store(magic: Any, options: Namespace, result: Any) -> Any:
    """``-o VAR``: put ``result`` in the user namespace as well as returning it."""
    var = getattr(options, "out", None)
    if var:
        _check_out(options)
        magic.namespace[var] = result
    return result
