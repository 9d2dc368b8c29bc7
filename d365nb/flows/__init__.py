"""Flows: a trigger (created / updated / deleted records of a table, polled every N s/m/h/d)
wired to ordered steps, run by a background engine with durable run history.

>>> from d365nb import Flow
>>> Flow("lead_followup", d365).on_created("leads", every="10s").step(
...     "create_task", 'create tasks subject="Follow up: {trigger[subject]}"').start()

The names below are imported on first use, so reading `d365nb.flows.definitions` (tab
completion does, at a keystroke) does not load the engine.
"""

from __future__ import annotations

import importlib
from typing import Any

__all__ = ["Flow", "FlowError", "RetryPolicy", "flows", "get_flow", "get_engine", "parse_interval"]

_LAZY = {
    "Flow": "d365nb.flows.flow",
    "flows": "d365nb.flows.flow",
    "get_flow": "d365nb.flows.flow",
    "FlowError": "d365nb.flows.model",
    "RetryPolicy": "d365nb.flows.model",
    "parse_interval": "d365nb.flows.model",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'd365nb.flows' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def get_engine():  # type: ignore[no-untyped-def]
    """The process's flow engine (one thread with its own asyncio loop)."""
    from d365nb.flows.engine import get_engine as _get

    return _get()
