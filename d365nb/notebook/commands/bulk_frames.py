"""How bulk writes show up in a notebook: a progress bar, and the per-record result frame."""

from __future__ import annotations

from typing import Any

from d365nb.notebook.display import format_footer, remember_footer
from d365nb.notebook.progress import Progress


def progress_for(magic: Any, table: str, unit: str = "records") -> Progress:
    return Progress(table, unit=unit, after=magic.progress_after, enabled=magic.show_progress)


def bulk_frame(result: Any, index: Any, conn: Any, verb: str, elapsed: float) -> Any:
    """A BulkResult as a DataFrame (input index; id and error per record) with a footer."""
    import pandas as pd

    errors = {pos: str(getattr(err, "message", err)) for pos, err in result.errors.items()}
    frame = pd.DataFrame(
        {
            "id": pd.array(result.ids, dtype="string"),
            "error": pd.array([errors.get(i) for i in range(len(result.ids))], dtype="string"),
        },
        index=index if index is not None and len(index) == len(result.ids) else None,
    )
    frame.attrs.update(table=result.table, requests=result.requests)
    requests = f"{result.requests} request" + ("" if result.requests == 1 else "s")
    extra = f"{result.succeeded:,} {verb}, {result.failed:,} failed · {requests}"
    footer = format_footer(
        len(frame), elapsed=elapsed, alias=getattr(conn, "alias", None), extra=extra
    )
    return remember_footer(frame, footer)
