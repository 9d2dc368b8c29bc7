"""Flows on leads a test tags as its own: the flow's trigger filters on a fresh tag at the start of
the subject, so leads other tests in the module write to the shared sandbox never trigger it.

``tagged_leads_flow`` builds the flow and gives the tag to put in the subject of the test's
leads (``flow_on_a_new_lead`` writes one such lead too); ``started`` starts the flow and waits until it is Running, before the test writes what
should trigger it.
"""

from __future__ import annotations

import uuid
from typing import Any

from d365nb.flows import Flow
from tests.support.waiting import wait_for


def tagged_leads_flow(
    name: str, d365: Any, history: Any, *, on: str = "created", every: str = "1s"
) -> tuple[Flow, str]:
    """Flow ``name`` triggered when a lead whose subject starts with the tag is ``on``
    (``created`` or ``updated``), and the tag."""
    tag = uuid.uuid4().hex[:8]
    trigger = getattr(Flow(name, d365, history=history), f"on_{on}")
    return trigger("leads", every=every, filter=f"startswith(subject,'{tag}')"), tag


def flow_on_a_new_lead(
    name: str,
    d365: Any,
    history: Any,
    lead: dict[str, Any],
    *,
    on: str = "created",
    every: str = "1s",
) -> tuple[Flow, str]:
    """``tagged_leads_flow`` and the id of a new lead it watches (``lead`` its values but the
    subject)."""
    flow, tag = tagged_leads_flow(name, d365, history, on=on, every=every)
    return flow, d365.create("leads", {"subject": f"{tag} {name}", **lead})


def started(flow: Flow) -> Flow:
    flow.start()
    wait_for(lambda: flow.state == "Running")
    return flow
