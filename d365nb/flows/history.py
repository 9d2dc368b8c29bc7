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
import math
import os
import sqlite3
import threading
import time
import uuid
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
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
    resubmit_of TEXT, org TEXT, org_url TEXT
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
CREATE TABLE IF NOT EXISTS leases (
    flow TEXT PRIMARY KEY, holder TEXT NOT NULL, host TEXT, pid INTEGER, since TEXT,
    heartbeat REAL NOT NULL, expires REAL NOT NULL
);
"""
# Columns added after the first release: (table, column, declaration), added when missing.
_ADDED_COLUMNS = (
    ("runs", "org", "TEXT"),  # organisation id the run's trigger record came from
    ("runs", "org_url", "TEXT"),
)

KEEP_CHECKS = 2000  # trigger checks kept per flow
# Run history retention: finished runs kept per flow (newest first), and optionally for how many
# days. Pruned as runs finish; queued and running runs are never pruned. Override per store with
# History(path, keep_runs=..., keep_days=...) or the D365NB_FLOW_KEEP_RUNS / D365NB_FLOW_KEEP_DAYS
# environment variables (a headless `d365nb flow run` reads them too).
KEEP_RUNS = 1000
KEEP_DAYS: float | None = None
FINAL = ("Succeeded", "Failed", "Cancelled", "TimedOut")
PRIVATE_DIR = 0o700  # .d365nb/: run history holds record data; only its owner may read it
PRIVATE_FILE = 0o600  # flows.sqlite and its -wal / -shm


def _setting(name: str, default: float | None, integer: bool) -> float | None:
    text = os.environ.get(name)
    if text is None or not text.strip():
        return default
    try:
        value = int(text) if integer else float(text)
    except ValueError:
        raise ValueError(f"bad {name}={text!r}: use a positive number") from None
    if not math.isfinite(value) or value <= 0:
        raise ValueError(f"bad {name}={text!r}: use a positive number")
    return value


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
    org: str | None = None  # organisation id the change was read from (None: not recorded)


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


def _use_wal(db: sqlite3.Connection, patience: float = 30.0) -> None:
    """Switch a store to WAL (once: the mode stays with the file). Switching needs the file to
    itself and SQLite does not wait for that, so a second process opening a fresh store at the
    same moment (another runner, a `flow runs`) retries instead of failing "database is locked"."""
    deadline = time.monotonic() + patience
    while True:
        try:
            if db.execute("PRAGMA journal_mode").fetchone()[0].lower() != "wal":
                db.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as err:
            if "locked" not in str(err) or time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def _org(org: dict[str, Any] | None) -> tuple[str | None, str | None]:
    return (org.get("id"), org.get("url")) if org else (None, None)


def _json(value: Any) -> str:
    return json.dumps(value, default=str, ensure_ascii=False)


class History:
    """The flows database. Thread-safe: one SQLite connection per thread."""

    def __init__(
        self,
        path: str | Path | None = None,
        *,
        keep_runs: int | None = None,
        keep_days: float | None = None,
    ) -> None:
        self.path = Path(path) if path is not None else Path.cwd() / DEFAULT_PATH
        if keep_runs is None:
            keep_runs = int(_setting("D365NB_FLOW_KEEP_RUNS", KEEP_RUNS, True))  # type: ignore[arg-type]
        if keep_days is None:
            keep_days = _setting("D365NB_FLOW_KEEP_DAYS", KEEP_DAYS, False)
        self.keep_runs, self.keep_days = keep_runs, keep_days
        if not keep_runs >= 1 or (keep_days is not None and not keep_days > 0):
            raise ValueError("run history retention must keep at least one run and one day")
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
                    self._make_private_file()
            db = sqlite3.connect(
                self.path, timeout=30, isolation_level=None, check_same_thread=False
            )
            _use_wal(db)
            db.execute("PRAGMA synchronous=NORMAL")
            db.row_factory = sqlite3.Row
            self._local.db = db
            if not self._created:
                with self._create_lock:
                    db.executescript(_SCHEMA)
                    self._migrate(db)
                    self._tighten()
                    self._created = True
        return db

    @staticmethod
    def _migrate(db: sqlite3.Connection) -> None:
        """Add the columns a store made by an earlier version lacks (another process may be
        doing the same: the check and the change are one transaction)."""
        db.execute("BEGIN IMMEDIATE")
        try:
            for table, column, declaration in _ADDED_COLUMNS:
                have = {r[1] for r in db.execute(f"PRAGMA table_info({table})")}
                if column not in have:
                    db.execute(f"ALTER TABLE {table} ADD COLUMN {column} {declaration}")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")

    def _make_private_file(self) -> None:
        """Create ``.d365nb/`` (0700) and ``flows.sqlite`` (0600) before SQLite opens it: SQLite
        gives the -wal and -shm files the database file's permissions."""
        folder = self.path.parent
        made = not folder.exists()
        folder.mkdir(parents=True, exist_ok=True)
        if made or folder.name == DEFAULT_PATH.parent.name:
            os.chmod(folder, PRIVATE_DIR)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, PRIVATE_FILE)
        os.close(fd)
        self._tighten()

    def _tighten(self) -> None:
        """A store made by an earlier version (or under a loose umask) is made private too."""
        for suffix in ("", "-wal", "-shm"):
            path = Path(f"{self.path}{suffix}")
            try:
                if path.exists() and path.stat().st_mode & 0o077:
                    os.chmod(path, PRIVATE_FILE)
            except OSError:  # not ours to change (a read-only share): leave it
                pass

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
            for table in ("runs", "checks", "own_writes", "snapshots", "leases", "flows"):
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
        self,
        flow: str,
        changes: Iterable[Change],
        checkpoint: dict[str, Any] | None,
        org: dict[str, Any] | None = None,
    ) -> list[RunRow]:
        """Record runs for ``changes`` and move the checkpoint past them, atomically.

        A change whose key already has a run is skipped (returned list excludes it). ``org``
        (``{"id", "url"}``) is the organisation the changes were read from.
        """
        now = utcnow_iso()
        created: list[RunRow] = []
        org_id, org_url = _org(org)
        with self._tx() as db:
            for change in changes:
                run_id = new_run_id()
                cursor = db.execute(
                    "INSERT OR IGNORE INTO runs(run_id, flow, record_id, key, dedupe, change, status,"
                    " queued, trigger, org, org_url) VALUES (?,?,?,?,?,?,'Queued',?,?,?,?)",
                    (
                        run_id,
                        flow,
                        change.record_id,
                        change.key,
                        change.key,
                        change.change,
                        now,
                        _json(change.record),
                        org_id,
                        org_url,
                    ),
                )
                if cursor.rowcount:
                    created.append(RunRow(run_id, flow, change.key, change))
            self._put_checkpoint(db, flow, checkpoint)
        return created

    def add_run(
        self,
        flow: str,
        change: Change,
        origin: str,
        resubmit_of: str | None = None,
        org: dict[str, Any] | None = None,
    ) -> RunRow:
        """A run outside the trigger's dedupe (resubmit, test): always a new run."""
        run_id = new_run_id()
        org_id, org_url = _org(org)
        with self._tx() as db:
            db.execute(
                "INSERT INTO runs(run_id, flow, record_id, key, dedupe, change, status, queued,"
                " trigger, origin, resubmit_of, org, org_url)"
                " VALUES (?,?,?,?,NULL,?,'Queued',?,?,?,?,?,?)",
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
                    org_id,
                    org_url,
                ),
            )
        return RunRow(run_id, flow, change.key, change, origin)

    def pending_runs(self, flow: str) -> list[RunRow]:
        """Runs found but not finished (in flight when the engine stopped), oldest first."""
        rows = (
            self._db()
            .execute(
                "SELECT run_id, key, record_id, change, trigger, origin, attempts, org FROM runs "
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
                r["org"],
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
            flow = db.execute("SELECT flow FROM runs WHERE run_id=?", (run_id,)).fetchone()
            if flow is not None:
                self._prune(db, flow[0])

    def _prune(self, db: sqlite3.Connection, flow: str) -> None:
        """Keep the newest ``keep_runs`` finished runs of ``flow`` (and none older than
        ``keep_days``); queued and running runs are owed, never pruned."""
        finals = ",".join("?" * len(FINAL))
        old = (
            f"SELECT run_id FROM runs WHERE flow=? AND status IN ({finals}) AND seq <= "
            f"(SELECT seq FROM runs WHERE flow=? AND status IN ({finals})"
            " ORDER BY seq DESC LIMIT 1 OFFSET ?)"
        )
        params: tuple[Any, ...] = (flow, *FINAL, flow, *FINAL, self.keep_runs)
        if self.keep_days is not None:
            cutoff = datetime.now(UTC) - timedelta(days=self.keep_days)
            old += f" UNION SELECT run_id FROM runs WHERE flow=? AND status IN ({finals}) AND ended < ?"
            params += (flow, *FINAL, cutoff.strftime("%Y-%m-%dT%H:%M:%S.%fZ"))
        doomed = [r[0] for r in db.execute(old, params)]
        for start in range(0, len(doomed), 500):
            chunk = doomed[start : start + 500]
            marks = ",".join("?" * len(chunk))
            db.execute(f"DELETE FROM steps WHERE run_id IN ({marks})", chunk)
            db.execute(f"DELETE FROM runs WHERE run_id IN ({marks})", chunk)

    def runs(
        self, flow: str, limit: int | None = None, org: str | None = None
    ) -> list[dict[str, Any]]:
        """Runs of ``flow``, newest first; with ``org``, only those of that organisation."""
        sql = (
            "SELECT run_id, record_id, status, started, ended, error, attempts, key, change,"
            " origin, resubmit_of, queued, org, org_url FROM runs WHERE flow=?"
            + (" AND org=?" if org else "")
            + " ORDER BY seq DESC"
        )
        params: tuple[Any, ...] = (flow, org) if org else (flow,)
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

    def counts(self, flow: str, org: str | None = None) -> dict[str, int]:
        """Runs of ``flow`` per status (of organisation ``org`` only, when given)."""
        rows = self._db().execute(
            "SELECT status, COUNT(*) FROM runs WHERE flow=?"
            + (" AND org=?" if org else "")
            + " GROUP BY status",
            (flow, org) if org else (flow,),
        )
        return {status: n for status, n in rows}

    def last_error(self, flow: str, org: str | None = None) -> str | None:
        row = (
            self._db()
            .execute(
                "SELECT error FROM runs WHERE flow=? AND status='Failed'"
                + (" AND org=?" if org else "")
                + " ORDER BY seq DESC LIMIT 1",
                (flow, org) if org else (flow,),
            )
            .fetchone()
        )
        return row[0] if row else None

    # -- one runner per flow ------------------------------------------------------------------
    def acquire_lease(
        self, flow: str, holder: str, host: str, pid: int, ttl: float
    ) -> dict[str, Any] | None:
        """Take (or renew) ``flow``'s runner lease for ``holder`` until ``ttl`` seconds from now.

        Returns the other holder's lease when a live one (not expired) has it; then nothing
        changes. An expired lease - its holder stopped heartbeating: killed, crashed, asleep -
        is taken over.
        """
        now = time.time()
        with self._tx() as db:
            row = db.execute("SELECT * FROM leases WHERE flow=?", (flow,)).fetchone()
            if row is not None and row["holder"] != holder and row["expires"] > now:
                return dict(row)
            since = row["since"] if row is not None and row["holder"] == holder else utcnow_iso()
            db.execute(
                "INSERT OR REPLACE INTO leases VALUES (?,?,?,?,?,?,?)",
                (flow, holder, host, pid, since, now, now + ttl),
            )
        return None

    def renew_lease(self, flow: str, holder: str, ttl: float) -> bool:
        """Heartbeat: extend ``holder``'s lease; False when another runner has taken it over."""
        now = time.time()
        with self._tx() as db:
            cursor = db.execute(
                "UPDATE leases SET heartbeat=?, expires=? WHERE flow=? AND holder=?",
                (now, now + ttl, flow, holder),
            )
        return bool(cursor.rowcount)

    def release_lease(self, flow: str, holder: str) -> None:
        with self._tx() as db:
            db.execute("DELETE FROM leases WHERE flow=? AND holder=?", (flow, holder))

    def lease(self, flow: str) -> dict[str, Any] | None:
        row = self._db().execute("SELECT * FROM leases WHERE flow=?", (flow,)).fetchone()
        return dict(row) if row else None

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
