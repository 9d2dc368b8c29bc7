"""``%d365 update <table> --from df`` for a frame read by ``list``: the changed cells only.

Without ``--yes`` it shows the changes (id, column, old, new) and writes nothing; with
``--yes`` it sends them, each record with ``If-Match`` on the etag it was read with (see
``client.roundtrip``). Columns that cannot be written are named in one line. A frame not read
by ``list`` (built by hand) keeps the plain bulk update of every row.
"""

from __future__ import annotations

import time
from typing import Any

from d365nb.notebook.commands.bulk_frames import bulk_frame, progress_for
from d365nb.notebook.display import format_footer, remember_footer


def write_back(magic: Any, conn: Any, table: str, source: Any, *, yes: bool) -> Any:
    """The preview or the write; None when ``source`` carries no read snapshot of ``table``."""
    from d365nb.client.roundtrip import snapshot_for

    meta = conn.metadata.table(table)
    if snapshot_for(source, meta) is None:
        return None
    started = time.perf_counter()
    if not yes:
        plan = conn.update_many(table, source, dry_run=True).plan
        if plan.skipped_line():
            print(plan.skipped_line())
        if not plan.ids:
            print(f"no changed cells in {meta.logical_name} records: nothing to update")
            return None
        print(
            f"{plan.cells:,} changed cell{'s' if plan.cells != 1 else ''} in {len(plan.ids):,} "
            f"{meta.logical_name} records would be updated; nothing changed. "
            "Re-run with --yes to update them."
        )
        preview = plan.changes.head(max(magic.preview_rows, 1))
        footer = format_footer(
            len(plan.changes), alias=getattr(conn, "alias", None),
            extra=f"preview of {len(preview)} changes · add --yes to update",
        )  # fmt: skip
        return remember_footer(preview, footer)
    with progress_for(magic, table) as progress:
        result = conn.update_many(table, source, progress=progress)
    plan = result.plan
    if plan.skipped_line():
        print(plan.skipped_line())
    if not plan.ids:
        print(f"no changed cells in {meta.logical_name} records: nothing to update")
        return None
    import pandas as pd

    index = pd.Index(pd.array(plan.ids, dtype="string"), name=meta.primary_id)
    return bulk_frame(result, index, conn, "updated", time.perf_counter() - started)
