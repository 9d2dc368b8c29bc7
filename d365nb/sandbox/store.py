"""SQLite storage for the sandbox: tables made from the schema, versions, tombstones.

No HTTP and no validation here (that is `service`): the store writes rows in the storage form
described in `schema/model.py`, keeps one global version counter (every write gets the next
`versionnumber`, as Dataverse's row versions do) and records a tombstone for every delete, which
change tracking reads. `transaction()` is re-entrant: the outermost block commits, inner blocks
are savepoints, so a failed inner write (one part of a batch) rolls back alone.
"""

from __future__ import annotations

import sqlite3
import threading
import uuid
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

from .schema.model import LOOKUP_TYPES, Column, Table

TOMBSTONES = "_tombstones"
META = "_meta"

_SQL_TYPES = {
    "String": "TEXT COLLATE NOCASE",
    "Memo": "TEXT COLLATE NOCASE",
    "Integer": "INTEGER",
    "BigInt": "INTEGER",
    "Picklist": "INTEGER",
    "State": "INTEGER",
    "Status": "INTEGER",
    "Boolean": "INTEGER",
    "Decimal": "REAL",
    "Double": "REAL",
    "Money": "REAL",
    "DateTime": "TEXT",
    "Uniqueidentifier": "TEXT",
    "Lookup": "TEXT",
    "Customer": "TEXT",
    "Owner": "TEXT",
}


def format_datetime(value: datetime) -> str:
    """Storage form of a moment: ISO-8601 UTC to the second (`2026-01-31T09:15:00Z`)."""
    if value.tzinfo is not None:
        value = value.astimezone(UTC)
    return value.strftime("%Y-%m-%dT%H:%M:%SZ")


def storage_columns(table: Table) -> list[str]:
    """SQLite column names of a table: every attribute, plus `<attr>__type` after each lookup."""
    names: list[str] = []
    for col in table.columns.values():
        names.append(col.name)
        if col.type in LOOKUP_TYPES:
            names.append(f"{col.name}__type")
    return names


def indexed_columns(table: Table) -> list[str]:
    """Columns that get an index `(column, primary key)`; the key makes keyset paging index-only."""
    wanted = {"createdon", "modifiedon", "statecode", "statuscode", "versionnumber"}
    out = []
    for col in table.columns.values():
        if col.name == table.primary_id:
            continue
        if col.name in wanted or col.type in LOOKUP_TYPES or col.name == table.primary_name:
            out.append(col.name)
    return out


class Store:
    """The sandbox database. `Store(schema, path)`; `path=None` keeps everything in memory."""

    def __init__(
        self,
        schema: dict[str, Table],
        path: str | None = None,
        *,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        self.schema = schema
        self.path = path
        self.clock = clock or (lambda: datetime.now(UTC))
        # One connection shared by the server thread and (rarely) a test peeking from another
        # thread; `lock` serialises them. Autocommit mode: transactions are explicit.
        self.conn = sqlite3.connect(
            path or ":memory:", check_same_thread=False, isolation_level=None
        )
        self.lock = threading.RLock()
        self._depth = 0
        self._plans: dict[str, tuple] = {}
        self._columns = {name: storage_columns(t) for name, t in schema.items()}
        with self.lock:
            if path:
                self.conn.execute("PRAGMA journal_mode=WAL")
                self.conn.execute("PRAGMA synchronous=NORMAL")
            self._create()
            self._version = self._max_version()

    # -- schema -------------------------------------------------------------------------------

    def _create(self) -> None:
        stmts = [
            f"CREATE TABLE IF NOT EXISTS {TOMBSTONES} (tablename TEXT NOT NULL, id TEXT NOT NULL, "
            "versionnumber INTEGER NOT NULL, deletedon TEXT NOT NULL)",
            f"CREATE INDEX IF NOT EXISTS ix_tombstones_version ON {TOMBSTONES} "
            "(tablename, versionnumber)",
            f"CREATE TABLE IF NOT EXISTS {META} (key TEXT PRIMARY KEY, value TEXT)",
        ]
        for table in self.schema.values():
            defs = []
            for col in table.columns.values():
                sql_type = _SQL_TYPES[col.type]
                if col.name == table.primary_id:
                    defs.append(f'"{col.name}" TEXT NOT NULL PRIMARY KEY')
                    continue
                defs.append(f'"{col.name}" {sql_type}')
                if col.type in LOOKUP_TYPES:
                    defs.append(f'"{col.name}__type" TEXT')
            name = table.logical_name
            stmts.append(f'CREATE TABLE IF NOT EXISTS "{name}" ({", ".join(defs)})')
            for col in indexed_columns(table):
                stmts.append(
                    f'CREATE INDEX IF NOT EXISTS "ix_{name}_{col}" ON "{name}" '
                    f'("{col}", "{table.primary_id}")'
                )
            # (added by the odata helper) "statuscode eq 1" newest first is the typical list:
            # one range of a composite index instead of walking createdon and skipping rows.
            for col in ("statecode", "statuscode"):
                if col in table.columns and "createdon" in table.columns:
                    stmts.append(
                        f'CREATE INDEX IF NOT EXISTS "ix_{name}_{col}_createdon" ON "{name}" '
                        f'("{col}", "createdon", "{table.primary_id}")'
                    )
        for stmt in stmts:
            self.conn.execute(stmt)

    def columns(self, table: str) -> list[str]:
        """Storage column names of `table` (see `storage_columns`)."""
        return self._columns[table]

    # -- versions and time --------------------------------------------------------------------

    def _max_version(self) -> int:
        best = 0
        for name in [*self.schema, TOMBSTONES]:
            value = self.conn.execute(f'SELECT max(versionnumber) FROM "{name}"').fetchone()[0]
            if value is not None and value > best:
                best = value
        return best

    @property
    def version(self) -> int:
        """The latest version handed out (the store-wide high-water mark)."""
        return self._version

    def next_version(self) -> int:
        """Advance the global counter: every write, in any table, gets a higher version."""
        with self.lock:
            self._version += 1
            return self._version

    def now(self) -> str:
        """The current time in storage form."""
        return format_datetime(self.clock())

    # -- transactions -------------------------------------------------------------------------

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """All-or-nothing block; re-entrant (inner blocks are savepoints)."""
        with self.lock:
            depth = self._depth
            savepoint = f"sp{depth}"
            self.conn.execute("BEGIN" if depth == 0 else f"SAVEPOINT {savepoint}")
            self._depth += 1
            try:
                yield self.conn
            except BaseException:
                self._depth -= 1
                if depth == 0:
                    self.conn.execute("ROLLBACK")
                else:
                    self.conn.execute(f"ROLLBACK TO {savepoint}")
                    self.conn.execute(f"RELEASE {savepoint}")
                raise
            self._depth -= 1
            self.conn.execute("COMMIT" if depth == 0 else f"RELEASE {savepoint}")

    @property
    def in_transaction(self) -> bool:
        return self._depth > 0

    # -- rows ---------------------------------------------------------------------------------

    def complete(self, table: Table, row: dict[str, Any], *, creating: bool) -> None:
        """Fill what Dataverse fills itself: state/status pairing, defaults (create), computed
        columns. Works in place on a storage-form row (for updates: the merged row)."""
        plan = self._plans.get(table.logical_name) or self._plan(table)
        defaults, state, status, computed = plan
        if state is not None:
            # A status implies its state; a state alone gets its default status.
            if row.get("statuscode") is not None and row.get("statecode") is None:
                row["statecode"] = _state_of(status, row["statuscode"])
            elif row.get("statecode") is not None and row.get("statuscode") is None:
                row["statuscode"] = _default_status(state, row["statecode"])
        if creating:
            for name, value in defaults:
                if row.get(name) is None:
                    row[name] = value
        for name, parts in computed:
            text = " ".join(str(v) for v in (row.get(p) for p in parts) if v)
            row[name] = text or None

    def _plan(self, table: Table) -> tuple:
        cols = table.columns
        state, status = cols.get("statecode"), cols.get("statuscode")
        if state is None or status is None:
            state = status = None
        plan = (
            [(c.name, c.default) for c in cols.values() if c.default is not None],
            state,
            status,
            [(c.name, c.computed_from) for c in cols.values() if c.computed_from],
        )
        self._plans[table.logical_name] = plan
        return plan

    def insert_many(self, table: str, rows: Iterable[dict[str, Any]]) -> list[str]:
        """Bulk insert storage-form rows (no validation); assigns missing primary keys,
        versionnumber, createdon/modifiedon, defaults and computed columns. Returns the ids."""
        t = self.schema[table]
        names = self._columns[table]
        pk = t.primary_id
        now = self.now()
        ids: list[str] = []
        values = []
        with self.lock:
            for source in rows:
                row = dict(source)
                if not row.get(pk):
                    row[pk] = str(uuid.uuid4())
                self.complete(t, row, creating=True)
                row.setdefault("createdon", now)
                if row.get("modifiedon") is None:
                    row["modifiedon"] = row["createdon"] or now
                if row["createdon"] is None:
                    row["createdon"] = now
                self._version += 1
                row["versionnumber"] = self._version
                ids.append(row[pk])
                values.append(tuple(map(row.get, names)))
            sql = _insert_sql(table, names)
            with self.transaction():
                self.conn.executemany(sql, values)
        return ids

    def insert(self, table: str, row: dict[str, Any]) -> dict[str, Any]:
        """Insert one complete storage-form row, stamping version and times; returns it."""
        t = self.schema[table]
        with self.lock:
            now = self.now()
            row = dict(row)
            row.setdefault("createdon", now)
            row["modifiedon"] = now
            row["versionnumber"] = self.next_version()
            self.complete(t, row, creating=True)
            names = self._columns[table]
            self.conn.execute(_insert_sql(table, names), tuple(row.get(n) for n in names))
            return {n: row.get(n) for n in names}

    def update(self, table: str, id: str, changes: dict[str, Any]) -> dict[str, Any] | None:
        """Apply storage-form changes to a row (merging computed columns); None if missing."""
        t = self.schema[table]
        with self.lock:
            current = self.get(table, id)
            if current is None:
                return None
            row = {**current, **changes}
            self.complete(t, row, creating=False)
            row["modifiedon"] = self.now()
            row["versionnumber"] = self.next_version()
            names = [n for n in self._columns[table] if n != t.primary_id]
            assignments = ", ".join(f'"{n}" = ?' for n in names)
            self.conn.execute(
                f'UPDATE "{table}" SET {assignments} WHERE "{t.primary_id}" = ?',
                (*(row.get(n) for n in names), id),
            )
            return row

    def delete(self, table: str, id: str) -> bool:
        """Delete a row and leave a tombstone for change tracking; False if it did not exist."""
        t = self.schema[table]
        with self.lock, self.transaction():
            cur = self.conn.execute(f'DELETE FROM "{table}" WHERE "{t.primary_id}" = ?', (id,))
            if cur.rowcount == 0:
                return False
            self.conn.execute(
                f"INSERT INTO {TOMBSTONES} (tablename, id, versionnumber, deletedon) "
                "VALUES (?, ?, ?, ?)",
                (table, id, self.next_version(), self.now()),
            )
            return True

    def get(self, table: str, id: str) -> dict[str, Any] | None:
        """One row in storage form, or None."""
        t = self.schema[table]
        names = self._columns[table]
        cols = ", ".join(f'"{n}"' for n in names)
        with self.lock:
            found = self.conn.execute(
                f'SELECT {cols} FROM "{table}" WHERE "{t.primary_id}" = ?', (id,)
            ).fetchone()
        return None if found is None else dict(zip(names, found, strict=True))

    def exists(self, table: str, id: str) -> bool:
        t = self.schema[table]
        with self.lock:
            return (
                self.conn.execute(
                    f'SELECT 1 FROM "{table}" WHERE "{t.primary_id}" = ?', (id,)
                ).fetchone()
                is not None
            )

    def count(self, table: str) -> int:
        with self.lock:
            return self.conn.execute(f'SELECT count(*) FROM "{table}"').fetchone()[0]

    def primary_names(self, table: str, ids: Iterable[str]) -> dict[str, str | None]:
        """Primary-name values for a set of ids (for lookup FormattedValues), in one query each
        900 ids."""
        t = self.schema[table]
        wanted = list({i for i in ids if i})
        out: dict[str, str | None] = {}
        with self.lock:
            for start in range(0, len(wanted), 900):
                chunk = wanted[start : start + 900]
                marks = ",".join("?" * len(chunk))
                for key, name in self.conn.execute(
                    f'SELECT "{t.primary_id}", "{t.primary_name}" FROM "{table}" '
                    f'WHERE "{t.primary_id}" IN ({marks})',
                    chunk,
                ):
                    out[key] = name
        return out

    # -- organisation settings ----------------------------------------------------------------

    def get_meta(self, key: str) -> str | None:
        with self.lock:
            found = self.conn.execute(f"SELECT value FROM {META} WHERE key = ?", (key,)).fetchone()
        return None if found is None else found[0]

    def set_meta(self, key: str, value: str) -> None:
        with self.lock:
            self.conn.execute(
                f"INSERT INTO {META} (key, value) VALUES (?, ?) "
                "ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                (key, value),
            )

    def close(self) -> None:
        with self.lock:
            self.conn.close()


def _insert_sql(table: str, names: list[str]) -> str:
    cols = ", ".join(f'"{n}"' for n in names)
    marks = ", ".join("?" * len(names))
    return f'INSERT INTO "{table}" ({cols}) VALUES ({marks})'


def _default_status(state: Column, value: Any) -> Any:
    for opt in state.options:
        if opt.value == value:
            return opt.default_status
    return None


def _state_of(status: Column, value: Any) -> Any:
    for opt in status.options:
        if opt.value == value:
            return opt.state
    return None


__all__ = ["META", "TOMBSTONES", "Store", "format_datetime", "indexed_columns", "storage_columns"]
