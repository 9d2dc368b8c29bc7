"""Helpers shared by the forms tests: a raw Web API reader (no d365nb client involved) and a
metadata-driven form filler."""

from __future__ import annotations

import uuid
from typing import Any

import httpx

from d365nb.notebook.forms import columns as cols
from d365nb.notebook.forms.fields import Field

DEMO_TABLES = ["account", "contact", "lead", "systemuser", "task", "team"]


class SandboxReader:
    """Reads records straight from the sandbox's Web API (no d365nb client involved)."""

    def __init__(self, handle: Any) -> None:
        self.http = httpx.Client(
            base_url=handle.api,
            headers={"Authorization": f"Bearer {handle.token}", "Accept": "application/json"},
            timeout=30,
        )

    def get(self, entity_set: str, record_id: str) -> dict | None:
        response = self.http.get(f"{entity_set}({record_id})")
        if response.status_code == 404:
            return None
        response.raise_for_status()
        return response.json()

    def query(self, entity_set: str, **params: str) -> list[dict]:
        response = self.http.get(entity_set, params={f"${k}": v for k, v in params.items()})
        response.raise_for_status()
        return response.json()["value"]

    def count(self, entity_set: str) -> int:
        response = self.http.get(f"{entity_set}/$count")
        response.raise_for_status()
        return int(response.text.strip().lstrip("\ufeff"))

    def create(self, entity_set: str, body: dict) -> str:
        response = self.http.post(entity_set, json=body)
        response.raise_for_status()
        return response.headers["OData-EntityId"].rsplit("(", 1)[1].rstrip(")")


def unique(prefix: str = "Form") -> str:
    return f"{prefix} {uuid.uuid4().hex[:8]}"


def typed_value(field: Field, seed: str) -> tuple[Any, Any] | None:
    """(what to type into the field, what the sandbox should then hold), or None to skip."""
    column = field.column
    kind = cols.kind(column)
    if kind in (cols.TEXT, cols.MEMO):
        fmt = (getattr(column, "format", None) or "").lower()
        text = {
            "email": f"{seed}@example.com",
            "url": f"https://example.com/{seed}",
            "phone": "555-0100",
        }.get(fmt, f"Form {seed}")
        text = text[: column.max_length or None]
        return text, text
    if kind in (cols.WHOLE, cols.DECIMAL):
        lo = column.min_value if column.min_value is not None else 0
        hi = column.max_value if column.max_value is not None else 100
        number = int(min(max(lo, 0) + 7, hi))
        return str(number), number
    if kind == cols.DATE:
        return "03/31/2026", "2026-03-31"
    if kind == cols.CHOICE:
        if column.type in ("State", "Status"):
            return None  # the record starts in its default state
        value, label = next(iter(cols.options(column).items()))
        return label, value
    if kind == cols.BOOLEAN:
        return True, True
    if kind == cols.LOOKUP:
        picker = field.picker
        found = picker.search("")  # first records by primary name
        if not found:
            return None
        picker.results.value = found[0][1]
        return None, found[0][1]
    return None


def fill(form: Any, names: list[str] | None = None) -> dict[str, Any]:
    """Type valid values into ``names`` (default: required fields plus the first of each kind);
    returns ``{column: expected stored value}``."""
    if names is None:
        names, seen = [], set()
        for name, field in form.fields.items():
            kind = cols.kind(field.column)
            if field.required or kind not in seen:
                names.append(name)
                seen.add(kind)
    expected = {}
    seed = uuid.uuid4().hex[:8]
    for name in names:
        field = form.fields[name]
        planned = typed_value(field, seed)
        if planned is None:
            continue
        typed, stored = planned
        kind = cols.kind(field.column)
        if kind == cols.DATE:
            field.text.value = typed
        elif kind == cols.CHOICE:
            field.set(typed)
        elif kind == cols.BOOLEAN or kind != cols.LOOKUP:
            field.input.value = typed
        expected[name] = stored
    return expected


def stored(record: dict, column: Any) -> Any:
    """A column's value as read back from the Web API (lookups via ``_x_value``)."""
    value = record.get(column.read_name)
    if cols.kind(column) == cols.DATE and isinstance(value, str):
        return value[:10]
    return value



FAKE_AUTHORITY = "https://login.entra.test"


def FakeEntra(access_token: str) -> Any:  # noqa: N802 - kept as the class name tests use
    """The shared fake Entra ID (``tests/support/entra.py``) for the connection form: the token
    endpoint answers ``authorization_pending`` until ``approve()`` - as while the person is
    signing in - and then issues ``access_token``; ``start()``/``stop()``."""
    from tests.support.entra import FakeEntra as SharedFakeEntra

    return SharedFakeEntra(
        access_token, authority=FAKE_AUTHORITY, user_code="FORM-2468", approved=False
    )
