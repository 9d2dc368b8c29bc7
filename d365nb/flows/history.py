"""Durable flow state beside the notebook: ``.d365nb/flows.sqlite``.

One SQLite file holds, per flow, its definition, its trigger checkpoint (watermark or delta
token), the runs it owes (``Queued``: found by a poll but not finished - the in-flight runs),
finished runs with their per-step detail, trigger checks, the ids its own steps wrote (loop
guard) and the column values ``--columns`` compares against.

Why this shape: a poll inserts the runs for a page of changes and advances the checkpoint in
one transaction, so a crash either keeps both or neither - no event is lost, and the unique
``(flow, dedupe)`` key means a change found twice still gives one run (at-least-once delivery,
no duplicates in normal operation). WAL with ``synchronous=NORMAL`` survives a killed process.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import uuid
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from d365nb.flows.model import utcnow_iso

DEFAULT_PATH = Path(".d365nb") / "flows.sqlite"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS flows (
    name TEXT PRIMARY KEY, definition TEXT NOT NULL, checkpoint TEXT, updated TEXT
);
CREATE TABLE IF NOT EXISTS runs (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    run_id TEXT UNIQUE NOT NULL, flow TEXT NOT NULL, record_id TEXT, key TEXT NOT NULL,
    dedupe TEXT, change TEXT, status TEXT NOT NULL, queued TEXT, started TEXT, ended TEXT,
    error TEXT, attempts INTEGER DEFAULT 0, trigger TEXT, origin TEXT DEFAULT 'trigger',
    resubmit_of TEXT
);
CREATE UNIQUE INDEX IF NOT EXISTS runs_dedupe ON runs(flow, dedupe);
CREATE INDEX IF NOT EXISTS runs_flow_status ON runs(flow, status);
CREATE TABLE IF NOT EXISTS steps (
    run_id TEXT NOT NULL, position INTEGER NOT NULL, name TEXT NOT NULL, status TEXT NOT NULL,
    inputs TEXT, outputs TEXT, error TEXT, attempts INTEGER, started TEXT, ended TEXT, log TEXT,
    PRIMARY KEY (run_id, position)
);
CREATE TABLE IF NOT EXISTS checks (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, flow TEXT NOT NULL, at TEXT NOT NULL,
    status TEXT NOT NULL, found INTEGER, fired INTEGER, requests INTEGER, error TEXT
);
CREATE INDEX IF NOT EXISTS checks_flow ON checks(flow, seq);
CREATE TABLE IF NOT EXISTS own_writes (
    flow TEXT NOT NULL, record_id TEXT NOT NULL, pending INTEGER NOT NULL,
    PRIMARY KEY (flow, record_id)
);
CREATE TABLE IF NOT EXISTS snapshots (
    flow TEXT NOT NULL, record_id TEXT NOT NULL, "values" TEXT NOT NULL,
    PRIMARY KEY (flow, record_id)
);
"""

KEEP_CHECKS = 2000  # trigger checks kept per flow (runs are kept)
FINAL = ("Succeeded", "Failed", "Cancelled", "TimedOut")


@dataclass
class Change:
    """One trigger event: a record that was created, updated or deleted."""

    record_id: str
    key: str  # idempotency key: record id + change version
    change: str  # created | updated | deleted
    record: dict[str, Any] = field(default_factory=dict)


@dataclass
class RunRow:
    """A run the engine owes: its id and the change it is for."""

    run_id: str
    flow: str
    key: str
    change: Change
    origin: str = "trigger"
    attempts: int = 0


@dataclass
class StepRecord:
    """What one step did in one run (the Logic Apps run view's row)."""

    name: str
    status: str
    inputs: Any = None
    outputs: Any = None
    error: str | None = None
    attempts: int = 0
    started: str | None = None
    ended: str | None = None
    log: str = ""


def new_run_id() -> str:
    """A short unique run id (16 hex digits)."""
    return uuid.uuid4().hex[:16]


def _json(value: Any) -> str:
    return json.dumps(value, default=str, ensure_ascii=False)


class History:
    """The flows database. Thread-safe: one SQLite connection per thread."""

    def __init__(self, path: str | Path | None = None) -> None:
        self.path = Path(path) if path is not None else Path.cwd() / DEFAULT_PATH
        self._local = threading.local()
        # The file is created on first use, not here: checking a definition (or a typo in one)
        # must leave nothing behind beside the notebook.
        self._created = False
        self._create_lock = threading.Lock()

    def __repr__(self) -> str:
        return f"History({str(self.path)!r})"

    # -- plumbing -------------------------------------------------------------------------
    def _db(self) -> sqlite3.Connection:
        db = getattr(self._local, "db", None)
        if db is None:
            if not self._created:
                with self._create_lock:
                    self.path.parent.mkdir(parents=True, exist_ok=True)
            db = sqlite3.connect(
                self.path, timeout=30, isolation_level=None, check_same_thread=False
            )
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=NORMAL")
            db.row_factory = sqlite3.Row
            self._local.db = db
            if not self._created:
                with self._create_lock:
                    db.executescript(_SCHEMA)
                    self._created = True
        return db

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        db = self._db()
        db.execute("BEGIN IMMEDIATE")
        try:
            yield db
        except BaseException:
            db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")

    # -- flows ----------------------------------------------------------------------------
    def save_flow(self, name: str, definition: dict[str, Any]) -> None:
        with self._tx() as db:
            db.execute(
                "INSERT INTO flows(name, definition, updated) VALUES (?,?,?) "
                "ON CONFLICT(name) DO UPDATE SET definition=excluded.definition, updated=excluded.updated",
                (name, _json(definition), utcnow_iso()),
            )

    def flow_definition(self, name: str) -> dict[str, Any] | None:
        row = self._db().execute("SELECT definition FROM flows WHERE name=?", (name,)).fetchone()
        return json.loads(row[0]) if row else None

    def flow_names(self) -> list[str]:
        return [r[0] for r in self._db().execute("SELECT name FROM flows ORDER BY name")]

    def delete_flow(self, name: str) -> None:
        """Forget a flow and everything recorded about it."""
        with self._tx() as db:
            runs = "SELECT run_id FROM runs WHERE flow=?"
            db.execute(f"DELETE FROM steps WHERE run_id IN ({runs})", (name,))
            for table in ("runs", "checks", "own_writes", "snapshots", "flows"):
                column = "name" if table == "flows" else "flow"
                db.execute(f"DELETE FROM {table} WHERE {column}=?", (name,))

    def checkpoint(self, name: str) -> dict[str, Any] | None:
        row = self._db().execute("SELECT checkpoint FROM flows WHERE name=?", (name,)).fetchone()
        return json.loads(row[0]) if row and row[0] else None

    def set_checkpoint(self, name: str, checkpoint: dict[str, Any] | None) -> None:
        with self._tx() as db:
            self._put_checkpoint(db, name, checkpoint)

    @staticmethod
    def _put_checkpoint(
        db: sqlite3.Connection, name: str, checkpoint: dict[str, Any] | None
    ) -> None:
        value = None if checkpoint is None else _json(checkpoint)
        db.execute(
            "INSERT INTO flows(name, definition, checkpoint, updated) VALUES (?, '{}', ?, ?) "
            "ON CONFLICT(name) DO UPDATE SET checkpoint=excluded.checkpoint, updated=excluded.updated",
            (name, value, utcnow_iso()),
        )

    # -- runs -----------------------------------------------------------------------------
    def enqueue(
        self, flow: str, changes: Iterable[Change], checkpoint: dict[str, Any] | None
    ) -> list[RunRow]:
        """Record runs for ``changes`` and move the checkpoint past them, atomically.

        A change whose key already has a run is skipped (returned list excludes it).
        """
        now = utcnow_iso()
        created: list[RunRow] = []
        with self._tx() as db:
            for change in changes:
                run_id = new_run_id()
                cursor = db.execute(
                    "INSERT OR IGNORE INTO runs(run_id, flow, record_id, key, dedupe, change, status,"
                    " queued, trigger) VALUES (?,?,?,?,?,?,'Queued',?,?)",
                    (
                        run_id,
                        flow,
                        change.record_id,
                        change.key,
                        change.key,
                        change.change,
                        now,
                        _json(change.record),
                    ),
                )
                if cursor.rowcount:
                    created.append(RunRow(run_id, flow, change.key, change))
            self._put_checkpoint(db, flow, checkpoint)
        return created

    def add_run(
        self, flow: str, change: Change, origin: str, resubmit_of: str | None = None
    ) -> RunRow:
        """A run outside the trigger's dedupe (resubmit, test): always a new run."""
        run_id = new_run_id()
        with self._tx() as db:
            db.execute(
                "INSERT INTO runs(run_id, flow, record_id, key, dedupe, change, status, queued,"
                " trigger, origin, resubmit_of) VALUES (?,?,?,?,NULL,?,'Queued',?,?,?,?)",
                (
                    run_id,
                    flow,
                    change.record_id,
                    change.key,
                    change.change,
                    utcnow_iso(),
                    _json(change.record),
                    origin,
                    resubmit_of,
                ),
            )
        return RunRow(run_id, flow, change.key, change, origin)

    def pending_runs(self, flow: str) -> list[RunRow]:
        """Runs found but not finished (in flight when the engine stopped), oldest first."""
        rows = (
            self._db()
            .execute(
                "SELECT run_id, key, record_id, change, trigger, origin, attempts FROM runs "
                "WHERE flow=? AND status IN ('Queued','Running') AND origin='trigger' ORDER BY seq",
                (flow,),
            )
            .fetchall()
        )
        return [
            RunRow(
                r["run_id"],
                flow,
                r["key"],
                Change(r["record_id"], r["key"], r["change"], json.loads(r["trigger"] or "{}")),
                r["origin"],
                r["attempts"] or 0,
            )
            for r in rows
        ]

    def unfinished_manual_runs(self, flow: str) -> list[str]:
        """Test and resubmit runs never finished: the process running them went away."""
        rows = self._db().execute(
            "SELECT run_id FROM runs WHERE flow=? AND status IN ('Queued','Running')"
            " AND origin != 'trigger' ORDER BY seq",
            (flow,),
        )
        return [r[0] for r in rows]

    def mark_started(self, run_id: str) -> int:
        """The run is executing (again): status Running, and which execution this is - more
        than 1 when a stop or a crash interrupted an earlier one (at-least-once)."""
        with self._tx() as db:
            db.execute(
                "UPDATE runs SET status='Running', started=?, attempts=attempts+1 WHERE run_id=?",
                (utcnow_iso(), run_id),
            )
            row = db.execute("SELECT attempts FROM runs WHERE run_id=?", (run_id,)).fetchone()
        return int(row[0]) if row else 1

    def finish_run(
        self,
        run_id: str,
        status: str,
        error: str | None,
        steps: list[StepRecord],
        started: str,
        ended: str,
    ) -> None:
        """Store a finished run and its steps in one transaction (``attempts`` stays the number
        of executions; each step keeps its own tries)."""
        with self._tx() as db:
            db.execute(
                "UPDATE runs SET status=?, error=?, started=?, ended=? WHERE run_id=?",
                (status, error, started, ended, run_id),
            )
            db.execute("DELETE FROM steps WHERE run_id=?", (run_id,))
            db.executemany(
                "INSERT INTO steps VALUES (?,?,?,?,?,?,?,?,?,?,?)",
                [
                    (
                        run_id,
                        i,
                        s.name,
                        s.status,
                        _json(s.inputs),
                        _json(s.outputs),
                        s.error,
                        s.attempts,
                        s.started,
                        s.ended,
                        s.log,
                    )
                    for i, s in enumerate(steps)
                ],
            )

    def runs(self, flow: str, limit: int | None = None) -> list[dict[str, Any]]:
        """Runs of ``flow``, newest first."""
        sql = (
            "SELECT run_id, record_id, status, started, ended, error, attempts, key, change,"
            " origin, resubmit_of, queued FROM runs WHERE flow=? ORDER BY seq DESC"
        )
        params: tuple[Any, ...] = (flow,)
        if limit:
            sql += " LIMIT ?"
            params += (limit,)
        return [dict(r) for r in self._db().execute(sql, params)]

    def run(self, run_id: str) -> dict[str, Any] | None:
        """One run with its trigger record and step detail."""
        db = self._db()
        row = db.execute("SELECT * FROM runs WHERE run_id=?", (run_id,)).fetchone()
        if row is None:
            return None
        run = dict(row)
        run["trigger"] = json.loads(run["trigger"] or "{}")
        run["steps"] = [
            {**dict(s), "inputs": json.loads(s["inputs"]), "outputs": json.loads(s["outputs"])}
            for s in db.execute("SELECT * FROM steps WHERE run_id=? ORDER BY position", (run_id,))
        ]
        return run

    def counts(self, flow: str) -> dict[str, int]:
        rows = self._db().execute(
            "SELECT status, COUNT(*) FROM runs WHERE flow=? GROUP BY status", (flow,)
        )
        return {status: n for status, n in rows}

    def last_error(self, flow: str) -> str | None:
        row = (
            self._db()
            .execute(
                "SELECT error FROM runs WHERE flow=? AND status='Failed' ORDER BY seq DESC LIMIT 1",
                (flow,),
            )
            .fetchone()
        )
        return row[0] if row else None

    # -- trigger checks ---------------------------------------------------------------------
    def record_check(
        self,
        flow: str,
        status: str,
        found: int = 0,
        fired: int = 0,
        requests: int = 0,
        error: str | None = None,
    ) -> None:
        """One poll of the trigger: Succeeded (fired), Skipped (nothing new) or Failed."""
        with self._tx() as db:
            cursor = db.execute(
                "INSERT INTO checks(flow, at, status, found, fired, requests, error)"
                " VALUES (?,?,?,?,?,?,?)",
                (flow, utcnow_iso(), status, found, fired, requests, error),
            )
            if cursor.lastrowid % 500 == 0:  # a poll a second must not grow the file forever
                db.execute(
                    "DELETE FROM checks WHERE flow=? AND seq < (SELECT seq FROM checks WHERE flow=?"
                    " ORDER BY seq DESC LIMIT 1 OFFSET ?)",
                    (flow, flow, KEEP_CHECKS),
                )

    def checks(self, flow: str, limit: int = 100) -> list[dict[str, Any]]:
        rows = self._db().execute(
            "SELECT at, status, found, fired, requests, error FROM checks WHERE flow=?"
            " ORDER BY seq DESC LIMIT ?",
            (flow, limit),
        )
        return [dict(r) for r in rows]

    # -- loop guard -------------------------------------------------------------------------
    def note_own_writes(self, flow: str, record_ids: Iterable[str]) -> None:
        """Remember records this flow's steps wrote in its own table (each write counts once)."""
        ids = [str(i).lower() for i in record_ids]
        if not ids:
            return
        with self._tx() as db:
            db.executemany(
                "INSERT INTO own_writes VALUES (?,?,1) "
                "ON CONFLICT(flow, record_id) DO UPDATE SET pending=pending+1",
                [(flow, i) for i in ids],
            )

    def unnote_own_write(self, flow: str, record_id: str) -> int:
        """Take back one noted write that failed; returns how many are still pending."""
        with self._tx() as db:
            db.execute(
                "UPDATE own_writes SET pending=pending-1 WHERE flow=? AND record_id=?",
                (flow, record_id),
            )
            db.execute(
                "DELETE FROM own_writes WHERE flow=? AND record_id=? AND pending<=0",
                (flow, record_id),
            )
            row = db.execute(
                "SELECT pending FROM own_writes WHERE flow=? AND record_id=?", (flow, record_id)
            ).fetchone()
        return int(row[0]) if row else 0

    def own_writes(self, flow: str) -> set[str]:
        rows = self._db().execute(
            "SELECT record_id FROM own_writes WHERE flow=? AND pending>0", (flow,)
        )
        return {r[0] for r in rows}

    def consume_own_writes(self, flow: str, record_ids: Iterable[str]) -> None:
        """A poll saw these records' own writes: they are used up."""
        ids = list(record_ids)
        if not ids:
            return
        with self._tx() as db:
            db.executemany(
                "DELETE FROM own_writes WHERE flow=? AND record_id=?", [(flow, i) for i in ids]
            )

    # -- --columns snapshots ----------------------------------------------------------------
    def snapshots(self, flow: str, record_ids: Iterable[str]) -> dict[str, dict[str, Any]]:
        ids = list(record_ids)
        found: dict[str, dict[str, Any]] = {}
        db = self._db()
        for start in range(0, len(ids), 500):
            chunk = ids[start : start + 500]
            marks = ",".join("?" * len(chunk))
            for r in db.execute(
                f'SELECT record_id, "values" FROM snapshots WHERE flow=? AND record_id IN ({marks})',
                (flow, *chunk),
            ):
                found[r[0]] = json.loads(r[1])
        return found

    def put_snapshots(self, flow: str, values: dict[str, dict[str, Any]]) -> None:
        if not values:
            return
        with self._tx() as db:
            db.executemany(
                "INSERT OR REPLACE INTO snapshots VALUES (?,?,?)",
                [(flow, rid, _json(v)) for rid, v in values.items()],
            )

    def clear_state(self, flow: str) -> None:
        """Forget the checkpoint and snapshots (the trigger was redefined)."""
        with self._tx() as db:
            db.execute("UPDATE flows SET checkpoint=NULL WHERE name=?", (flow,))
            db.execute("DELETE FROM snapshots WHERE flow=?", (flow,))
            db.execute("DELETE FROM own_writes WHERE flow=?", (flow,))

    def close(self) -> None:
        db = getattr(self._local, "db", None)
        if db is not None:
            db.close()
            self._local.db = None
