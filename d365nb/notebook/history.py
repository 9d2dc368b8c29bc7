"""Take a secret back out of the input history the kernel keeps.

IPython records every cell before it runs: the ``In``/``_ih`` lists, ``_i``/``_ii``/``_iii``/
``_i<N>`` variables, the history manager's own lists and its SQLite database (written by a
background thread, so the text may already be on disk when a magic sees it). A secret typed
literally into a ``%d365`` line is replaced by ``***`` in all of these. The saved notebook file
is out of reach of the kernel, which is why ``connect`` refuses a literal token.
"""

from __future__ import annotations

import re
import sqlite3
from typing import Any

__all__ = ["scrub"]

MASK = "***"
_INPUT_VARS = re.compile(r"^_i(i{0,2}|\d+|00)$")  # _i, _ii, _iii, _i00, _i<N>


def _scrub_text(text: str, secret: str, only_with: str | None) -> str:
    if secret not in text or (only_with is not None and only_with not in text):
        return text
    return text.replace(secret, MASK)


def _scrub_list(entries: Any, secret: str, only_with: str | None = None) -> None:
    if isinstance(entries, list):
        for i, entry in enumerate(entries):
            if isinstance(entry, str):
                entries[i] = _scrub_text(entry, secret, only_with)


def _scrub_database(manager: Any, secret: str, only_with: str | None = None) -> None:
    """Replace the secret in this session's rows of the history database (and its cache)."""
    lock = getattr(manager, "db_input_cache_lock", None)
    if lock is None:
        return
    with lock:  # the saving thread writes the cache out under the same lock
        cache = getattr(manager, "db_input_cache", None)
        if isinstance(cache, list):
            cache[:] = [
                tuple(_scrub_text(x, secret, only_with) if isinstance(x, str) else x for x in row)
                for row in cache
            ]
        db = getattr(manager, "db", None)
        if not isinstance(db, sqlite3.Connection):  # history disabled (DummyDB)
            return
        try:
            with db:
                db.execute(
                    "UPDATE history SET source = replace(source, ?1, ?2), "
                    "source_raw = replace(source_raw, ?1, ?2) WHERE session = ?3 "
                    "AND instr(source_raw, ?4) > 0",
                    (secret, MASK, manager.session_number, only_with or ""),
                )
        except sqlite3.Error:  # a locked or read-only history file: the lists are still clean
            pass


def scrub(shell: Any, secret: str, *, only_with: str | None = None) -> None:
    """Replace ``secret`` with ``***`` everywhere ``shell`` keeps the text of past inputs.

    ``only_with`` limits it to inputs containing that text (``"--token"``): a short secret is
    then masked where it was typed, not in every cell that happens to contain it.
    """
    if shell is None or not secret:
        return
    manager = getattr(shell, "history_manager", None)
    _scrub_list(shell.user_ns.get("In"), secret, only_with)
    _scrub_list(shell.user_ns.get("_ih"), secret, only_with)
    for key, value in list(shell.user_ns.items()):
        if _INPUT_VARS.match(key) and isinstance(value, str):
            shell.user_ns[key] = _scrub_text(value, secret, only_with)
    if manager is None:
        return
    _scrub_list(manager.input_hist_parsed, secret, only_with)
    _scrub_list(manager.input_hist_raw, secret, only_with)
    for attr in ("_i00", "_i", "_ii", "_iii"):
        value = getattr(manager, attr, None)
        if isinstance(value, str):
            setattr(manager, attr, _scrub_text(value, secret, only_with))
    _scrub_database(manager, secret, only_with)
