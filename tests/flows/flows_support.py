"""A small in-memory stand-in for a Dataverse connection, for engine/runner/history tests that
do not need HTTP. It understands only the queries the flow detector sends (keyset on
versionnumber, createdon bounds, ``col eq N`` filters); detection against the real service is
tested against the sandbox (test_detect.py)."""

from __future__ import annotations

import re
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any


class CellFailed(Exception):
    """A cell run in the test shell raised (the message is what the user would see)."""


def cell(shell: Any, source: str) -> Any:
    """Run ``source`` as a notebook cell; its result, or `CellFailed` with the error."""
    result = shell.run_cell(source, store_history=True)
    error = result.error_before_exec or result.error_in_exec
    if error is not None:
        raise CellFailed(str(error))
    return result.result


def wait_for(predicate: Callable[[], Any], timeout: float = 15.0, what: str = "condition") -> Any:
    """Poll ``predicate`` until it is truthy; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.01)


@dataclass
class Meta:
    logical_name: str
    entity_set: str
    primary_id: str
    change_tracking: bool = True
    columns: dict[str, Any] = field(default_factory=dict)


class FakeError(Exception):
    def __init__(self, status: int, retry_after: float | None = None) -> None:
        super().__init__(f"fake HTTP {status}")
        self.status = status
        self.retry_after = retry_after
        self.is_transient = status in (408, 429) or status >= 500


class FakeMetadata:
    def __init__(self, tables: dict[str, Meta]) -> None:
        self.tables = tables

    def table(self, name: str) -> Meta:
        for meta in self.tables.values():
            if name in (meta.logical_name, meta.entity_set):
                return meta
        raise LookupError(f"unknown table {name!r}")


_CLAUSE = re.compile(r"^\(?(\w+) (gt|ge|eq) ([^)]+)\)?$")


class FakeConn:
    """Tables ``leads`` and ``tasks``; records are dicts; one version counter."""

    def __init__(self) -> None:
        cols = {
            c: None
            for c in (
                "subject",
                "lastname",
                "statuscode",
                "createdon",
                "modifiedon",
                "versionnumber",
            )
        }
        self.metadata = FakeMetadata(
            {
                "lead": Meta("lead", "leads", "leadid", columns={"leadid": None, **cols}),
                "task": Meta(
                    "task",
                    "tasks",
                    "activityid",
                    change_tracking=False,
                    columns={"activityid": None, **cols, "regarding": None},
                ),
            }
        )
        self.rows: dict[str, dict[str, dict[str, Any]]] = {"leads": {}, "tasks": {}}
        self.version = 0
        self.requests = 0
        self.lock = threading.Lock()
        self.url = "fake://"

    def _meta(self, table: str) -> Meta:
        return self.metadata.table(table)

    def insert(self, table: str, values: dict[str, Any], id: str | None = None) -> str:
        meta = self._meta(table)
        with self.lock:
            self.version += 1
            now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
            rid = id or str(uuid.uuid4())
            self.rows[meta.entity_set][rid] = {
                meta.primary_id: rid,
                **values,
                "createdon": now,
                "modifiedon": now,
                "versionnumber": self.version,
            }
            return rid

    def create(self, table: str, values: dict[str, Any], id: str | None = None) -> str:
        self.requests += 1
        meta = self._meta(table)
        if id and id in self.rows[meta.entity_set]:
            raise FakeError(412)
        return self.insert(table, values, id)

    def update(self, table: str, id: str, values: dict[str, Any]) -> None:
        self.requests += 1
        meta = self._meta(table)
        with self.lock:
            self.version += 1
            row = self.rows[meta.entity_set][id]
            row.update(values)
            row["modifiedon"] = "9999-12-31T00:00:00Z"  # later than any createdon
            row["versionnumber"] = self.version

    def get(self, table: str, id: str, select: Any = None) -> dict[str, Any]:
        self.requests += 1
        return dict(self.rows[self._meta(table).entity_set][id])

    def iter_pages(
        self,
        table: str,
        filter: str | None = None,
        orderby: Any = None,
        select: Any = None,
        top: int | None = None,
        max_pages: int | None = None,
        labels: bool = False,
        page_size: int | None = None,
    ):
        self.requests += 1
        meta = self._meta(table)
        with self.lock:
            rows = [dict(r) for r in self.rows[meta.entity_set].values()]
        for clause in (filter or "").split(" and ") if filter else []:
            match = _CLAUSE.match(clause.strip())
            assert match, f"fake cannot read {clause!r}"
            col, op, raw = match.groups()
            value: Any = int(raw) if raw.isdigit() else raw
            if op == "gt":
                rows = [r for r in rows if r.get(col) is not None and r[col] > value]
            elif op == "ge":
                rows = [r for r in rows if r.get(col) is not None and r[col] >= value]
            else:
                rows = [r for r in rows if r.get(col) == value]
        order = (orderby or ["versionnumber asc"])[0]
        col, direction = order.split()
        rows.sort(key=lambda r: r.get(col) or "", reverse=direction == "desc")
        yield rows[:top] if top else rows
