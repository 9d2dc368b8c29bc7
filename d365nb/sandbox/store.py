"""SQLite storage for the sandbox: tables made from the schema, versions, tombstones.

No HTTP and no validation here (that is `service`): the store writes rows in the storage form
described in `schema/model.py`, keeps one global version counter (every write gets the next
`versionnumber`, as Dataverse's row versions do) and records a tombstone for every delete, which
change tracking reads. `transaction()` is re-entrant: the outermost block commits, inner blocks
are savepoints, so a failed inner write (one part of a batch) rolls back alone.
"""

from __future__ import annotations

import functools
import json
import os
import random
import sqlite3
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from . import collation
from .schema.cache import PerSchema
from .schema.model import LOOKUP_TYPES, AlternateKey, Column, Table

TOMBSTONES = "_tombstones"
META = "_meta"
CURRENCY = "transactioncurrency"
BUSINESS_UNIT_TABLE = "businessunit"
BUSINESS_UNIT = "business_unit_id"  # `_meta` key of the root business unit
# `_meta` key of the organisation's base currency (a `transactioncurrency` row, made with the store).
BASE_CURRENCY = "base_currency_id"
ALTERNATE_KEYS = "alternate_keys"  # `_meta` key: the alternate keys made at run time (JSON)

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
    "MultiSelectPicklist": "TEXT",  # "1,2": the selected values, as the Web API writes them
}


def format_datetime(value: datetime) -> str:
    """Storage form of a moment: ISO-8601 UTC to the second (`2026-01-31T09:15:00Z`)."""
    if value.tzinfo is not None:
        value = value.astimezone(UTC)
    return value.strftime("%Y-%m-%dT%H:%M:%SZ")


def sequential_guid(value: int, rng: random.Random) -> str:
    """A GUID whose text sorts by `value` (a 60-bit counter: milliseconds << 12 | sequence).

    Dataverse assigns sequential GUIDs, so rows read without `$orderby` (ordered by primary key)
    come back in creation order. The layout is RFC 9562 version 7: 48 bits of Unix milliseconds,
    the version nibble, 12 bits of sequence within the millisecond, then random bits; as
    lowercase text it sorts like the counter.
    """
    stamp, sequence = value >> 12, value & 0xFFF
    tail = rng.getrandbits(62) | (0b10 << 62)  # RFC variant
    text = f"{stamp:012x}7{sequence:03x}{tail:016x}"
    return f"{text[:8]}-{text[8:12]}-{text[12:16]}-{text[16:20]}-{text[20:]}"


def sequence_of(guid: str) -> int | None:
    """The counter of a `sequential_guid` (None for other GUIDs, e.g. client-supplied ones)."""
    if len(guid) != 36 or guid[14] != "7":
        return None
    try:
        return int(guid[:8] + guid[9:13] + guid[15:18], 16)
    except ValueError:
        return None


def storage_columns(table: Table) -> list[str]:
    """SQLite column names of a table: every attribute, plus `<attr>__type` after each lookup."""
    return list(_column_defs(table))


def _column_defs(table: Table) -> dict[str, str]:
    """Storage column name -> its SQL definition, in `storage_columns` order."""
    defs: dict[str, str] = {}
    for col in table.columns.values():
        if col.name == table.primary_id:
            defs[col.name] = f'"{col.name}" TEXT NOT NULL PRIMARY KEY'
            continue
        defs[col.name] = f'"{col.name}" {_SQL_TYPES[col.type]}'
        if col.type in LOOKUP_TYPES:
            defs[f"{col.name}__type"] = f'"{col.name}__type" TEXT'
    return defs


def indexed_columns(table: Table) -> list[str]:
    """Columns that get an index `(column, primary key)`; the key makes keyset paging index-only."""
    wanted = {"createdon", "modifiedon", "statecode", "statuscode", "versionnumber"}
    out = []
    for col in table.columns.values():
        if col.name == table.primary_id or col.name in _UNINDEXED_LOOKUPS:
            continue
        if col.name in wanted or col.type in LOOKUP_TYPES or col.name == table.primary_name:
            out.append(col.name)
    return out


def sparse_lookups(table: Table) -> list[str]:
    """Lookups left out of `indexed_columns` that most rows leave empty (delegates, merge
    masters): they get a partial index over the rows that are set."""
    return [
        col.name
        for col in table.columns.values()
        if col.name in _SPARSE_LOOKUPS and col.type in LOOKUP_TYPES
    ]


_SPARSE_LOOKUPS = frozenset({"createdonbehalfby", "modifiedonbehalfby", "masterid"})

# System lookups that nearly every row shares or leaves empty (the business unit, the base
# currency, delegates, merge masters): a full index on them would only slow every insert. The
# mostly-empty ones get a partial index instead (`sparse_lookups`).
_UNINDEXED_LOOKUPS = frozenset(
    {
        "owningbusinessunit",
        "transactioncurrencyid",
        "createdonbehalfby",
        "modifiedonbehalfby",
        "masterid",
    }
)


def create_schema(conn: sqlite3.Connection, schema: Mapping[str, Table]) -> None:
    """Create every table of `schema` that ``conn`` lacks, with its indexes (and complete the
    tables of a database made by an earlier d365nb), and the store's own tables."""
    stmts = [
        f"CREATE TABLE IF NOT EXISTS {TOMBSTONES} (tablename TEXT NOT NULL, id TEXT NOT NULL, "
        "versionnumber INTEGER NOT NULL, deletedon TEXT NOT NULL)",
        f"CREATE INDEX IF NOT EXISTS ix_tombstones_version ON {TOMBSTONES} "
        "(tablename, versionnumber)",
        f"CREATE TABLE IF NOT EXISTS {META} (key TEXT PRIMARY KEY, value TEXT)",
    ]
    for table in schema.values():
        defs = _column_defs(table)
        name = table.logical_name
        stmts.append(f'CREATE TABLE IF NOT EXISTS "{name}" ({", ".join(defs.values())})')
        stmts.extend(_added_columns(conn, name, defs))
        for col in indexed_columns(table):
            stmts.append(
                f'CREATE INDEX IF NOT EXISTS "ix_{name}_{col}" ON "{name}" '
                f'("{col}", "{table.primary_id}")'
            )
        # Deleting a record looks up every row pointing at it (to clear the lookup); without
        # an index that is a table scan per delete, quadratic over a bulk delete. A partial
        # index holds only the rows that point somewhere, so mostly-empty lookups cost
        # inserts nothing.
        for col in sparse_lookups(table):
            stmts.append(
                f'CREATE INDEX IF NOT EXISTS "ix_{name}_{col}_set" ON "{name}" ("{col}") '
                f'WHERE "{col}" IS NOT NULL'
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
        conn.execute(stmt)


def _added_columns(conn: sqlite3.Connection, name: str, defs: dict[str, str]) -> list[str]:
    """``ALTER TABLE ... ADD COLUMN`` for the columns a database made by an earlier
    d365nb lacks (a reopened ``--db``: the shipped tables gain documented columns between
    versions). Existing rows read them as null, as Dataverse's do for a new column."""
    have = {row[1] for row in conn.execute(f'PRAGMA table_info("{name}")')}
    if not have:  # a new table: CREATE TABLE makes it whole
        return []
    return [f'ALTER TABLE "{name}" ADD COLUMN {d}' for c, d in defs.items() if c not in have]


def _empty_database_of(schema: Mapping[str, Table]) -> bytes:
    conn = sqlite3.connect(":memory:")
    try:
        collation.register(conn)
        create_schema(conn, schema)
        return conn.serialize()
    finally:
        conn.close()


_empty_database: PerSchema[bytes] = PerSchema(_empty_database_of)


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
        collation.register(self.conn)  # Dataverse's text comparison, for the query engine
        self.lock = threading.RLock()
        self._depth = 0
        self._plans: dict[str, tuple] = {}
        self._get_sql: dict[str, str] = {}  # table -> SELECT of one row (see `get`)
        self._columns = {name: storage_columns(t) for name, t in schema.items()}
        self._rng = random.Random(os.urandom(16))
        self._sequence = 0  # the counter of the last id handed out (see `new_id`)
        self._rates: dict[str, float | None] = {}  # currency id -> exchange rate (cache)
        self._business_unit: str | None = None  # the root business unit (see below)
        with self.lock:
            if path:
                self.conn.execute("PRAGMA journal_mode=WAL")
                self.conn.execute("PRAGMA synchronous=NORMAL")
            self._create()
            self._version = self._max_version()
            if path:
                self._sequence = self._max_sequence()
            self._ensure_root_business_unit()
            self._ensure_base_currency()

    # -- schema -------------------------------------------------------------------------------

    def _create(self) -> None:
        if self.path is None:
            # A fresh in-memory database: a copy of this schema's empty one, made once per
            # process (~200 DDL statements; tests and kernels start many sandboxes).
            self.conn.deserialize(_empty_database(self.schema))
        else:
            create_schema(self.conn, self.schema)

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

    def _max_sequence(self) -> int:
        """The highest sequential id already stored (a reopened database keeps counting up)."""
        best = 0
        for name, table in self.schema.items():
            pk = table.primary_id
            found = self.conn.execute(
                f'SELECT max("{pk}") FROM "{name}" WHERE substr("{pk}", 15, 1) = \'7\''
            ).fetchone()[0]
            value = sequence_of(found) if found else None
            if value is not None and value > best:
                best = value
        return best

    def new_id(self) -> str:
        """A server-assigned primary key: sequential (later ids sort after earlier ones)."""
        with self.lock:
            stamp = int(self.clock().timestamp() * 1000) << 12
            self._sequence = max(stamp, self._sequence + 1)
            return sequential_guid(self._sequence, self._rng)

    def _note_ids(self, ids: Iterable[str]) -> None:
        """Keep `new_id` above the sequential ids written by others (demo data, imports)."""
        for key in ids:
            value = sequence_of(key)
            if value is not None and value > self._sequence:
                self._sequence = value

    def _ensure_root_business_unit(self) -> None:
        """Every organisation has a root business unit, which owns users and records; a new
        database gets it (its id is the `business_unit_id` WhoAmI returns)."""
        self._business_unit = self.get_meta(BUSINESS_UNIT)
        if BUSINESS_UNIT_TABLE not in self.schema or self._business_unit is not None:
            return
        unit = self.new_id()
        self.set_meta(BUSINESS_UNIT, unit)
        self.insert_many(BUSINESS_UNIT_TABLE, [{"businessunitid": unit, "name": "sandbox"}])
        self._business_unit = unit

    # -- currency -----------------------------------------------------------------------------

    def _ensure_base_currency(self) -> None:
        """Every organisation has a base currency (US Dollar, exchange rate 1 here); a new
        database gets it, in demo and empty sandboxes alike."""
        if CURRENCY not in self.schema or self.get_meta(BASE_CURRENCY) is not None:
            return
        row = {
            "transactioncurrencyid": self.new_id(),
            "currencyname": "US Dollar",
            "isocurrencycode": "USD",
            "currencysymbol": "$",
            "currencyprecision": 2,
            "currencytype": 0,  # System
            "exchangerate": 1.0,
        }
        self.insert_many(CURRENCY, [row])
        self.set_meta(BASE_CURRENCY, row["transactioncurrencyid"])

    @property
    def base_currency_id(self) -> str | None:
        """The organisation's base currency (`Organization.BaseCurrencyId`)."""
        return self.get_meta(BASE_CURRENCY)

    def exchange_rate(self, currency_id: str) -> float | None:
        """`transactioncurrency.exchangerate` of a currency (units per one base currency unit)."""
        if currency_id not in self._rates:
            found = self.conn.execute(
                f'SELECT exchangerate FROM "{CURRENCY}" WHERE transactioncurrencyid = ?',
                (currency_id,),
            ).fetchone()
            self._rates[currency_id] = None if found is None else found[0]
        return self._rates[currency_id]

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
                self._rates.clear()  # a rolled-back currency write may have been cached
                if depth == 0:
                    self.conn.execute("ROLLBACK")
                else:
                    self.conn.execute(f"ROLLBACK TO {savepoint}")
                    self.conn.execute(f"RELEASE {savepoint}")
                raise
            self._depth -= 1
            self.conn.execute("COMMIT" if depth == 0 else f"RELEASE {savepoint}")

    def begin_open(self) -> None:
        """Open an outermost transaction that is NOT tied to the calling thread: `lock` is held
        only while BEGIN runs. A `$batch` change set uses it so that its parts can each run on a
        worker thread (nesting as savepoints) while other clients' reads interleave between
        parts. The caller must exclude other writers (the org's write lock does) and end it
        with `end_open`."""
        with self.lock:
            if self._depth:
                raise RuntimeError("begin_open() inside another transaction")
            self.conn.execute("BEGIN")
            self._depth = 1

    def end_open(self, commit: bool) -> None:
        """Commit or roll back a transaction opened by `begin_open`."""
        with self.lock:
            self._depth = 0
            self.conn.execute("COMMIT" if commit else "ROLLBACK")

    @property
    def in_transaction(self) -> bool:
        return self._depth > 0

    # -- rows ---------------------------------------------------------------------------------

    def complete(self, table: Table, row: dict[str, Any], *, creating: bool) -> None:
        """Fill what Dataverse fills itself: state/status pairing, defaults (create), computed
        columns. Works in place on a storage-form row (for updates: the merged row)."""
        plan = self._plans.get(table.logical_name) or self._plan(table)
        defaults, state, status, computed, money, owning = plan
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
        for name, parts, separator in computed:
            text = separator.join(str(v) for v in (row.get(p) for p in parts) if v)
            row[name] = text or None
        if creating:
            # What Dataverse fills in on create: the creator administers a new team, and records
            # of business-owned tables belong to the root business unit.
            if "administratorid" in table.columns and row.get("administratorid") is None:
                row["administratorid"] = row.get("createdby")
                row["administratorid__type"] = row.get("createdby__type")
            unit = table.columns.get("businessunitid")
            if unit is not None and unit.is_lookup and row.get("businessunitid") is None:
                row["businessunitid"] = self._business_unit
                row["businessunitid__type"] = self._business_unit and BUSINESS_UNIT_TABLE
        if owning:
            self._complete_owner(row, owning)
        if money is not None:
            self._complete_money(row, money, creating)

    def _complete_owner(self, row: dict[str, Any], owning: tuple[str, ...]) -> None:
        """owninguser/owningteam follow ownerid; owningbusinessunit is the organisation's one
        business unit (the sandbox has no other)."""
        owner, kind = row.get("ownerid"), row.get("ownerid__type")
        if "owninguser" in owning:
            user = owner if kind == "systemuser" else None
            row["owninguser"], row["owninguser__type"] = user, user and "systemuser"
        if "owningteam" in owning:
            team = owner if kind == "team" else None
            row["owningteam"], row["owningteam__type"] = team, team and "team"
        if "owningbusinessunit" in owning and row.get("owningbusinessunit") is None:
            unit = self._business_unit if owner else None
            row["owningbusinessunit"] = unit
            row["owningbusinessunit__type"] = unit and "businessunit"

    def _complete_money(
        self, row: dict[str, Any], pairs: tuple[tuple[str, str], ...], creating: bool
    ) -> None:
        """Currency columns as Dataverse keeps them: a record without a transaction currency gets
        the base currency on create; `exchangerate` is that currency's rate; each `<money>_base`
        is `<money> / exchangerate`, rounded to the base columns' 4 decimals."""
        currency = row.get("transactioncurrencyid")
        if currency is None and creating:
            currency = self.base_currency_id
            row["transactioncurrencyid"] = currency
            row["transactioncurrencyid__type"] = currency and CURRENCY
        rate = self.exchange_rate(currency) if currency else None
        row["exchangerate"] = rate
        for name, base in pairs:
            value = row.get(name)
            row[base] = None if value is None or not rate else round(value / rate, 4)

    def _plan(self, table: Table) -> tuple:
        cols = table.columns
        state, status = cols.get("statecode"), cols.get("statuscode")
        if state is None or status is None:
            state = status = None
        money = None
        currency = cols.get("transactioncurrencyid")
        if currency is not None and currency.type == "Lookup" and "exchangerate" in cols:
            money = tuple(
                (c.name, f"{c.name}_base")
                for c in cols.values()
                if c.type == "Money" and f"{c.name}_base" in cols
            )
        owning: tuple[str, ...] = ()
        if "ownerid" in cols:
            owning = tuple(
                n for n in ("owninguser", "owningteam", "owningbusinessunit") if n in cols
            )
        plan = (
            [(c.name, c.default) for c in cols.values() if c.default is not None],
            state,
            status,
            [
                (c.name, c.computed_from, c.computed_separator)
                for c in cols.values()
                if c.computed_from
            ],
            money,
            owning,
        )
        self._plans[table.logical_name] = plan
        return plan

    def insert_many(self, table: str, rows: Iterable[dict[str, Any]]) -> list[str]:
        """Bulk insert storage-form rows (no validation); returns the ids (see `insert_rows`)."""
        pk = self.schema[table].primary_id
        return [row[pk] for row in self.insert_rows(table, rows)]

    def insert(self, table: str, row: dict[str, Any]) -> dict[str, Any]:
        """Insert one storage-form row; returns it as stored (see `insert_rows`)."""
        return self.insert_rows(table, [row])[0]

    def insert_rows(self, table: str, rows: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
        """The one way rows go in: assigns missing primary keys, versionnumber, createdon and
        modifiedon (kept when given, e.g. by demo data), defaults and computed columns, then
        writes them with one `executemany`. Returns the stored rows, in order."""
        t = self.schema[table]
        names = self._columns[table]
        pk = t.primary_id
        now = self.now()
        stored: list[dict[str, Any]] = []
        values: list[tuple[Any, ...]] = []
        with self.lock:
            for source in rows:
                row = dict(source)
                if not row.get(pk):
                    row[pk] = self.new_id()
                self.complete(t, row, creating=True)
                if row.get("createdon") is None:
                    row["createdon"] = now
                if row.get("modifiedon") is None:
                    row["modifiedon"] = row["createdon"]
                self._version += 1
                row["versionnumber"] = self._version
                # map/zip run in C: a demo populate builds ~4,400 rows of up to ~190 columns.
                values.append(tuple(map(row.get, names)))
                stored.append(dict(zip(names, values[-1], strict=True)))
            with self.transaction():
                self.conn.executemany(_insert_sql(table, names), values)
            self._note_ids(row[pk] for row in stored)
            if table == CURRENCY:
                self._rates.clear()
        return stored

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
            # Only what changed is written: a row has ~150 columns and SQLite rewrites the
            # index entries of every column it is told to set (a bulk update was 1 ms a row).
            names = tuple(
                n for n in self._columns[table] if n != t.primary_id and row.get(n) != current[n]
            )
            self.conn.execute(
                _update_sql(table, t.primary_id, names), (*(row.get(n) for n in names), id)
            )
            if table == CURRENCY:
                self._rates.clear()
            return row

    def delete(self, table: str, id: str) -> bool:
        """Delete a row and leave a tombstone for change tracking; False if it did not exist."""
        t = self.schema[table]
        with self.lock, self.transaction():
            cur = self.conn.execute(f'DELETE FROM "{table}" WHERE "{t.primary_id}" = ?', (id,))
            if cur.rowcount == 0:
                return False
            if table == CURRENCY:
                self._rates.clear()
            self.conn.execute(
                f"INSERT INTO {TOMBSTONES} (tablename, id, versionnumber, deletedon) "
                "VALUES (?, ?, ?, ?)",
                (table, id, self.next_version(), self.now()),
            )
            return True

    def get(self, table: str, id: str) -> dict[str, Any] | None:
        """One row in storage form, or None."""
        names = self._columns[table]
        sql = self._get_sql.get(table)
        if sql is None:  # built once per table: ~150 column names, every read of a record
            cols = ", ".join(f'"{n}"' for n in names)
            sql = f'SELECT {cols} FROM "{table}" WHERE "{self.schema[table].primary_id}" = ?'
            self._get_sql[table] = sql
        with self.lock:
            found = self.conn.execute(sql, (id,)).fetchone()
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
        """Primary-name values for a set of ids (for lookup FormattedValues)."""
        t = self.schema[table]
        return dict(self._rows_by_id(table, [t.primary_id, t.primary_name], ids))

    def existing_ids(self, table: str, ids: Iterable[str]) -> set[str]:
        """Which of `ids` are records of `table` (bound records and key clashes of a bulk
        create, checked in one query per 900 ids instead of one per id)."""
        return {key for (key,) in self._rows_by_id(table, [self.schema[table].primary_id], ids)}

    def _rows_by_id(self, table: str, columns: list[str], ids: Iterable[str]) -> list[tuple]:
        """`columns` of the rows whose primary key is one of `ids`, one query each 900 ids
        (SQLite's default limit on bound parameters is 999)."""
        pk = self.schema[table].primary_id
        select = ", ".join(f'"{c}"' for c in columns)
        wanted = list({i for i in ids if i})
        out: list[tuple] = []
        with self.lock:
            for start in range(0, len(wanted), 900):
                chunk = wanted[start : start + 900]
                marks = ",".join("?" * len(chunk))
                out.extend(
                    self.conn.execute(
                        f'SELECT {select} FROM "{table}" WHERE "{pk}" IN ({marks})', chunk
                    )
                )
        return out

    def referring_ids(self, table: str, column: str, id: str) -> list[str]:
        """Ids of the rows of `table` whose lookup `column` points at `id`."""
        pk = self.schema[table].primary_id
        with self.lock:
            return [
                r[0]
                for r in self.conn.execute(
                    f'SELECT "{pk}" FROM "{table}" WHERE "{column}" = ?', (id,)
                )
            ]

    def has_match(self, table: str, values: dict[str, Any], *, other_than: str) -> bool:
        """Whether a row other than `other_than` has all these column values (text compares
        case-insensitively, by the columns' collation): a duplicate detection rule."""
        pk = self.schema[table].primary_id
        where = " AND ".join(f'"{c}" = ?' for c in values)
        sql = f'SELECT 1 FROM "{table}" WHERE {where} AND "{pk}" <> ? LIMIT 1'
        with self.lock:
            return self.conn.execute(sql, (*values.values(), other_than)).fetchone() is not None

    # -- change tracking ----------------------------------------------------------------------

    def changed_rows(
        self, table: str, columns: list[str], after: int, upto: int, limit: int
    ) -> list[dict[str, Any]]:
        """Rows of `table` written after version `after` up to `upto`, in version order (with
        their `versionnumber`), at most `limit`."""
        select = ", ".join(f'"{c}"' for c in dict.fromkeys([*columns, "versionnumber"]))
        with self.lock:
            cur = self.conn.execute(upserts_sql(table, select), (after, upto, limit))
            names = [d[0] for d in cur.description]
            return [dict(zip(names, r, strict=True)) for r in cur.fetchall()]

    def deleted_ids(self, table: str, after: int, upto: int, limit: int) -> list[tuple[str, int]]:
        """(id, version) of the deletes in that range whose row is still gone, version order."""
        pk = self.schema[table].primary_id
        with self.lock:
            return self.conn.execute(deletes_sql(table, pk), (table, after, upto, limit)).fetchall()

    def count_changes(self, table: str, after: int, upto: int) -> int:
        """How many rows `changed_rows` plus `deleted_ids` would report for that range."""
        pk = self.schema[table].primary_id
        with self.lock:
            upserts = self.conn.execute(
                f'SELECT count(*) FROM "{table}" WHERE "versionnumber" > ? AND "versionnumber" <= ?',
                (after, upto),
            ).fetchone()[0]
            deletes = self.conn.execute(
                f"SELECT count(*) FROM {TOMBSTONES} t WHERE t.tablename = ? "
                "AND t.versionnumber > ? AND t.versionnumber <= ? "
                f'AND NOT EXISTS (SELECT 1 FROM "{table}" r WHERE r."{pk}" = t.id)',
                (table, after, upto),
            ).fetchone()[0]
        return upserts + deletes

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

    # -- alternate keys (EntityDefinitions(...)/Keys) -----------------------------------------

    def alternate_keys(self, table: str) -> list[AlternateKey]:
        """The alternate keys defined on `table`, in creation order (kept in `_meta`, so a
        file-backed sandbox keeps them when reopened)."""
        return [k for k in self._all_keys() if k.table == table]

    def _all_keys(self) -> list[AlternateKey]:
        # Every create and update checks the keys: read `_meta` once, then from memory (the
        # cache is dropped by each key write; set lazily, `__init__` stays as it is).
        cached = getattr(self, "_key_cache", None)
        if cached is not None:
            return cached
        text = self.get_meta(ALTERNATE_KEYS)
        keys = [
            AlternateKey(d["table"], d["schema_name"], d["display"], tuple(d["attributes"]))
            for d in json.loads(text or "[]")
        ]
        self._key_cache = keys
        return keys

    def add_alternate_key(self, key: AlternateKey) -> None:
        """Record `key` and create its unique index. Raises sqlite3.IntegrityError (and changes
        nothing) when existing rows already share values of the key's columns."""
        cols = ", ".join(f'"{c}"' for c in key.attributes)
        keys = [*self._all_keys(), key]
        with self.lock, self.transaction():
            self.conn.execute(f'CREATE UNIQUE INDEX "{key_index(key)}" ON "{key.table}" ({cols})')
            self._save_keys(keys)

    def remove_alternate_key(self, key: AlternateKey) -> None:
        """Forget `key` and drop its unique index."""
        gone = (key.table, key.logical_name)
        keys = [k for k in self._all_keys() if (k.table, k.logical_name) != gone]
        with self.lock, self.transaction():
            self.conn.execute(f'DROP INDEX IF EXISTS "{key_index(key)}"')
            self._save_keys(keys)

    def _save_keys(self, keys: list[AlternateKey]) -> None:
        body = [
            {
                "table": k.table,
                "schema_name": k.schema_name,
                "display": k.display,
                "attributes": list(k.attributes),
            }
            for k in keys
        ]
        self.set_meta(ALTERNATE_KEYS, json.dumps(body))
        self._key_cache = None  # re-read after the transaction, committed or not

    def find_by_values(self, table: str, values: dict[str, Any]) -> list[str]:
        """Ids of the rows whose columns equal `values` (an alternate key's lookup; text
        compares by the columns' collation, case-insensitively), at most two."""
        pk = self.schema[table].primary_id
        where = " AND ".join(f'"{c}" = ?' for c in values)
        sql = f'SELECT "{pk}" FROM "{table}" WHERE {where} LIMIT 2'
        with self.lock:
            return [r[0] for r in self.conn.execute(sql, tuple(values.values()))]

    # -- tables and columns made at run time (EntityDefinitions writes) ----------------------

    def add_table(self, schema: dict[str, Table], name: str) -> None:
        """Serve `schema` (a new dict holding the new table `name`): create its SQLite table
        and indexes as `create_schema` does for the shipped ones."""
        with self.lock:
            before = self.schema
            try:
                with self.transaction():
                    self._adopt(schema)
                    create_schema(self.conn, self.schema)
            except BaseException:
                self._adopt(before)  # the table was not made: keep serving the old schema
                raise

    def add_column(self, schema: dict[str, Table], table: str, column: Column) -> None:
        """Serve `schema` (a new dict whose `table` has the new `column`): add its SQLite
        column(s); existing rows hold null in it."""
        with self.lock, self.transaction():
            self.conn.execute(
                f'ALTER TABLE "{table}" ADD COLUMN "{column.name}" {_SQL_TYPES[column.type]}'
            )
            if column.type in LOOKUP_TYPES:
                self.conn.execute(f'ALTER TABLE "{table}" ADD COLUMN "{column.name}__type" TEXT')
            self._adopt(schema)

    def restore_schema(self, schema: dict[str, Table]) -> None:
        """Serve `schema` (the shipped tables plus the custom ones a reopened database holds,
        see `metadata.custom_schema`): counters continue above their rows too."""
        with self.lock:
            self._adopt(schema)
            self._version = max(self._version, self._max_version())
            self._sequence = max(self._sequence, self._max_sequence())

    def _adopt(self, schema: dict[str, Table]) -> None:
        self.schema = schema
        self._columns = {name: storage_columns(t) for name, t in schema.items()}
        self._plans.clear()
        self._get_sql.clear()


def key_index(key: AlternateKey) -> str:
    """The SQLite name of an alternate key's unique index."""
    return f"ak_{key.table}_{key.logical_name}"


def upserts_sql(table: str, select: str) -> str:
    """Rows written in a version range, in version order (a range scan of the version index;
    params: after, upto, limit)."""
    return (
        f'SELECT {select} FROM "{table}" WHERE "versionnumber" > ? AND "versionnumber" <= ? '
        'ORDER BY "versionnumber" LIMIT ?'
    )


def deletes_sql(table: str, pk: str) -> str:
    """Tombstones in a version range whose row is still gone (params: table, after, upto,
    limit). A tombstone whose id exists again (deleted, then re-created with the same key) is
    not a delete any more: change tracking reports that row as an upsert instead."""
    return (
        f"SELECT t.id, t.versionnumber FROM {TOMBSTONES} t WHERE t.tablename = ? "
        "AND t.versionnumber > ? AND t.versionnumber <= ? "
        f'AND NOT EXISTS (SELECT 1 FROM "{table}" r WHERE r."{pk}" = t.id) '
        "ORDER BY t.versionnumber LIMIT ?"
    )


def table_names(path: str) -> set[str]:
    """The names of the tables in an existing SQLite file, opened read-only (to tell a sandbox
    database from another one before writing into it). Raises sqlite3.Error if unreadable."""
    probe = sqlite3.connect(f"{Path(path).resolve().as_uri()}?mode=ro", uri=True)
    try:
        return {r[0] for r in probe.execute("SELECT name FROM sqlite_master")}
    finally:
        probe.close()


@functools.lru_cache(maxsize=512)
def _update_sql(table: str, primary_id: str, names: tuple[str, ...]) -> str:
    """``UPDATE`` of ``names`` (a bulk update sets the same few columns row after row)."""
    assignments = ", ".join(f'"{n}" = ?' for n in names)
    return f'UPDATE "{table}" SET {assignments} WHERE "{primary_id}" = ?'


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


__all__ = [
    "META",
    "TOMBSTONES",
    "Store",
    "deletes_sql",
    "format_datetime",
    "indexed_columns",
    "sequence_of",
    "sequential_guid",
    "storage_columns",
    "table_names",
    "upserts_sql",
]
