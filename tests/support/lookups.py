"""Records created already bound to an account through one of their lookups, over HTTP.

``create_under(client, account, "tasks", {"subject": "t"}, "regardingobjectid_account_task")``
POSTs the body with ``<lookup>@odata.bind: /accounts(<account>)`` and returns the new id.
"""

from __future__ import annotations

from typing import Any

import httpx

from tests.support.records import create


def create_under(
    client: httpx.Client, account: str, entity_set: str, body: dict[str, Any], lookup: str
) -> str:
    """Create a record in ``entity_set`` whose ``lookup`` points at ``account``; its id."""
    return create(client, entity_set, {**body, f"{lookup}@odata.bind": f"/accounts({account})"})
