"""Names people type: the one fuzzy matcher behind every "did you mean" hint, and the one
resolver of a lookup's read name (``_x_value``, as records and ``$select`` carry it) back to its
column ``x``. Pure functions without heavy imports: the notebook uses them while loading."""

from __future__ import annotations

import difflib
from collections.abc import Iterable

__all__ = ["closest", "lookup_base"]


def closest(word: str, candidates: Iterable[str], n: int = 3, cutoff: float = 0.6) -> list[str]:
    """Up to ``n`` candidates close to ``word``, best first, ignoring case (``Leads`` finds
    ``leads``); each returned as spelled in ``candidates``."""
    lowered: dict[str, str] = {}
    for candidate in candidates:
        lowered.setdefault(candidate.lower(), candidate)
    hits = difflib.get_close_matches(word.lower(), list(lowered), n=n, cutoff=cutoff)
    return [lowered[hit] for hit in hits]


def lookup_base(name: str) -> str | None:
    """``x`` for a lookup's read name ``_x_value``; None for any other name. (The other way
    round is ``ColumnMeta.read_name``.)"""
    if len(name) > 7 and name.startswith("_") and name.endswith("_value"):
        return name[1:-6]
    return None

