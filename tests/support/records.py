"""Writing records over HTTP in tests: the one way to create a record and learn its id.

``create(client, "accounts", {...})`` POSTs the body and returns the new id, failing the test
with the sandbox's answer when the create is refused; ``created_id(response)`` reads the id from
a create's ``OData-EntityId`` header (`.../accounts(<id>)`).
"""

from __future__ import annotations

from typing import Any

import httpx
import pandas as pd


def created_id(response: httpx.Response) -> str:
    """The id of the record a create answered for (its ``OData-EntityId`` header)."""
    assert response.status_code == 204, response.text
    return response.headers["OData-EntityId"].rsplit("(", 1)[1].rstrip(")")


def present(**values: Any) -> dict[str, Any]:
    """The values that are not None: a test row's empty cells left out of a create body."""
    return {name: value for name, value in values.items() if value is not None}


def create(client: httpx.Client, entity_set: str, body: dict[str, Any]) -> str:
    """POST ``body`` to ``entity_set`` (a client on the API root); the new record's id."""
    return created_id(client.post(entity_set, json=body))


def dataverse_ascending(values: Any) -> list[Any]:
    """``values`` in the order ``$orderby=<column> asc`` returns them on Dataverse.

    SQL Server, under Dataverse, sorts empty (null) values first in ascending order and compares
    text case-insensitively; other tests may leave leads without a last name in the shared sandbox.
    """
    return sorted(values, key=lambda v: (not pd.isna(v), "" if pd.isna(v) else str(v).lower()))
