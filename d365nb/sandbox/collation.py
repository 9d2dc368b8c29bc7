"""Dataverse's text comparison on SQLite: case-insensitive, accent-sensitive, for all of Unicode.

Dataverse compares strings with SQL Server's `Latin1_General_CI_AS` collation, so `eq 'ZOË'`
matches `Zoë` but not `Zoe`. SQLite's `NOCASE` folds ASCII letters only. The query engine keeps
`NOCASE` (which the columns and their indexes are declared with) whenever a literal is plain
ASCII - then both agree - and uses the `D365_CI_AS` collation and `d365_fold()` function
registered here only for literals with other characters, so common queries keep their indexes.
"""

from __future__ import annotations

import sqlite3
import unicodedata

COLLATION = "D365_CI_AS"
FOLD = "d365_fold"


def fold(text: str | None) -> str | None:
    """The comparison key of a string: case folded (`ß` -> `ss`), composed (NFC), accents kept."""
    if text is None:
        return None
    if not isinstance(text, str):
        return text
    if text.isascii():
        return text.lower()
    return unicodedata.normalize("NFC", text.casefold())


def _compare(a: str, b: str) -> int:
    fa, fb = fold(a), fold(b)
    return (fa > fb) - (fa < fb)


def register(conn: sqlite3.Connection) -> None:
    """Make `COLLATE D365_CI_AS` and `d365_fold(x)` available on a connection."""
    conn.create_collation(COLLATION, _compare)
    conn.create_function(FOLD, 1, fold, deterministic=True)


def ensure(conn: sqlite3.Connection, sql: str) -> None:
    """Register on `conn` before running `sql` if the statement uses the collation or the fold
    (the store registers them on its own connection; this covers any other connection). No SQL
    is run to find out, so statement traces stay as they were."""
    if COLLATION in sql or FOLD in sql:
        register(conn)


def needs_fold(text: object) -> bool:
    """Whether a literal needs the Unicode-aware comparison (NOCASE is right for ASCII)."""
    return isinstance(text, str) and not text.isascii()
