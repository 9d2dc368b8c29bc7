""" "Did you mean" for names the server refused.

The client checks ``--select`` and ``field=value`` names against metadata itself, but names
inside ``--filter``, ``--orderby``, ``--expand`` and ``--where`` are OData text that only the
server parses; Dataverse then answers "Could not find a property named 'lastnam' on type
'Microsoft.Dynamics.CRM.lead'." with no suggestion. This adds one from the table's cached
columns, as a note on the exception (shown by ``error_lines.render_error`` and by tracebacks).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

__all__ = ["column_hints"]

_UNKNOWN_PROPERTY = re.compile(r"Could not find a property named '([^']+)'")


def _column_names(conn: Any, table: str) -> list[str]:
    """Names usable in OData text: columns, and ``_x_value`` for lookups (cache only)."""
    meta = conn.metadata.cached(table) if hasattr(conn.metadata, "cached") else None
    if meta is None:
        return []
    names = list(meta.columns)
    names += [c.read_name for c in meta.columns.values() if getattr(c, "read_name", None)]
    return sorted(set(names))


@contextmanager
def column_hints(conn: Any, table: str) -> Iterator[None]:
    """Add "did you mean ..." to a server error about an unknown property of ``table``."""
    try:
        yield
    except Exception as exc:
        match = _UNKNOWN_PROPERTY.search(str(getattr(exc, "message", "") or exc))
        if match:
            from d365nb.notebook.args import closest

            hint = closest(match.group(1), _column_names(conn, table))
            if hint:
                exc.add_note(f"did you mean {', '.join(hint)}?")
        raise
