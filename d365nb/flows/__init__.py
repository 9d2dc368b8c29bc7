"""Flows: a trigger (created / updated / deleted records of a table, polled every N s/m/h/d)
wired to ordered steps, run by a background engine with durable run history.

>>> from d365nb import Flow
>>> Flow("lead_followup", d365).on_created("leads", every="10s").step(
...     "create_task", 'create tasks subject="Follow up: {trigger[subject]}"').start()
"""

from d365nb.flows.flow import Flow, flows, get_flow
from d365nb.flows.model import FlowError, RetryPolicy, parse_interval

__all__ = ["Flow", "FlowError", "RetryPolicy", "flows", "get_flow", "get_engine", "parse_interval"]


def get_engine():  # type: ignore[no-untyped-def]
    """The process's flow engine (one thread with its own asyncio loop)."""
    from d365nb.flows.engine import get_engine as _get

    return _get()
