"""``flow.test(dry_run=True)`` / ``%d365 flow test <flow> --dry-run``: a run without side effects.

The steps run as in a real run, but against a `RecordingConnection`: reads go to the service
(the step sees real records), writes are checked against the table's metadata as the client
would check them, then listed - table, operation, id, payload - and never sent. Nothing is
stored in run history and the checkpoint is left alone. Writes a step makes through its
``d365`` (an ``--alias`` connection included) are recorded; a connection the step reaches some
other way (a notebook variable) is not ours to intercept.
"""

from __future__ import annotations

import contextlib
import threading
import uuid
from dataclasses import dataclass, field
from typing import Any

from d365nb.flows.history import StepRecord
from d365nb.flows.model import FlowError

# Client methods that could write without going through the recorded ones.
_REFUSED = ("aio", "update_many_op", "close")


@dataclass
class Write:
    """A write a dry run would have sent."""

    table: str
    operation: str  # create | update | upsert | delete | create_many | ...
    id: str | None
    payload: Any


class RecordingConnection:
    """A connection whose reads are real and whose writes are only recorded."""

    def __init__(self, conn: Any, writes: list[Write] | None = None) -> None:
        self._conn = conn
        self.writes: list[Write] = writes if writes is not None else []
        self._lock = threading.Lock()

    def __getattr__(self, name: str) -> Any:
        if name in _REFUSED:
            raise FlowError(f"dry run: {name} is not available in a dry run (it could write)")
        return getattr(self._conn, name)

    def __repr__(self) -> str:
        return f"<dry-run connection to {getattr(self._conn, 'url', '?')}: writes recorded>"

    def recording(self, conn: Any) -> RecordingConnection:
        """Another connection (a step's ``--alias``), recorded into the same list."""
        if isinstance(conn, RecordingConnection):
            return conn
        return RecordingConnection(conn, self.writes)

    def _record(self, table: str, operation: str, record_id: Any, payload: Any) -> None:
        entity_set = table
        # The write's own check already refused an unknown table; this is only the spelling.
        with contextlib.suppress(Exception):
            entity_set = self._conn.metadata.table(table).entity_set
        with self._lock:
            self.writes.append(
                Write(entity_set, operation, None if record_id is None else str(record_id), payload)
            )

    def _checked(self, table: str, values: Any, for_update: bool) -> Any:
        # The client's own check (types, choices, lookups): a write that would be refused
        # fails the dry run the same way.
        return self._conn.validate(table, dict(values), for_update=for_update)

    def create(self, table: str, values: dict, id: Any = None) -> str:
        payload = self._checked(table, values, for_update=False)
        record_id = str(id or uuid.uuid4())
        self._record(table, "create", record_id, payload)
        return record_id

    def update(self, table: str, id: Any, values: dict) -> None:
        self._record(table, "update", id, self._checked(table, values, for_update=True))

    def upsert(self, table: str, id: Any, values: dict) -> bool:
        self._record(table, "upsert", id, self._checked(table, values, for_update=True))
        return True

    def delete(self, table: str, id: Any) -> None:
        self._conn.metadata.table(table)  # an unknown table fails as the real delete would
        self._record(table, "delete", id, None)

    def _many(self, operation: str, table: str, records: Any) -> None:
        rows = records.to_dict("records") if hasattr(records, "to_dict") else list(records)
        for row in rows:
            self._record(table, operation, None, row)

    def create_many(self, table: str, records: Any, *args: Any, **kwargs: Any) -> None:
        self._many("create_many", table, records)

    def update_many(self, table: str, records: Any, *args: Any, **kwargs: Any) -> None:
        self._many("update_many", table, records)

    def upsert_many(self, table: str, records: Any, *args: Any, **kwargs: Any) -> None:
        self._many("upsert_many", table, records)

    def delete_many(self, table: str, ids: Any, *args: Any, **kwargs: Any) -> None:
        for record_id in list(ids):
            self._record(table, "delete_many", record_id, None)


@dataclass
class DryRun:
    """What a dry run did: each step's record, and the writes it would have sent."""

    flow: str
    record_id: str
    status: str
    error: str | None
    steps: list[StepRecord]
    writes: list[Write] = field(default_factory=list)

    def step(self, name: str) -> dict[str, Any]:
        for record in self.steps:
            if record.name == name:
                return dict(record.__dict__)
        raise FlowError(f"no step {name!r} in this dry run")

    def writes_frame(self) -> Any:
        """The writes as a DataFrame: table, operation, id, payload."""
        import pandas as pd

        return pd.DataFrame(
            [w.__dict__ for w in self.writes], columns=["table", "operation", "id", "payload"]
        )

    def __repr__(self) -> str:
        lines = [
            f"dry run of flow {self.flow} on record {self.record_id}: {self.status}"
            + (f" ({self.error})" if self.error else "")
            + f"; {len(self.writes)} write(s) not sent"
        ]
        for record in self.steps:
            lines.append(
                f"  step {record.name}: {record.status}"
                + (f" - {record.error}" if record.error else "")
            )
        for w in self.writes:
            target = f"{w.table}({w.id})" if w.id else w.table
            lines.append(f"  would {w.operation} {target}: {w.payload!r}")
        return "\n".join(lines)
