"""What a new sandbox organisation costs to set up, against building each part from scratch.

Tests, kernels and `d365nb flow run --sandbox` start many short-lived sandboxes in one process;
every one of them loads the same shipped tables. Prints, best of 15 runs each, in ms:

* a new in-memory `Store` (a copy of the empty database made once per schema) against the
  baseline of running its ~200 DDL statements on a fresh connection (`store.create_schema`);
* the metadata catalog of a freshly loaded schema (`catalog_for`, shared by organisations with
  the same tables) against building a `Catalog` from scratch;
* for scale, a whole empty sandbox started and stopped (uvicorn thread included).

Run: `python benchmarks/bench_sandbox_start.py`.
"""

from __future__ import annotations

import sqlite3

from timing import best_ms

from d365nb import sandbox
from d365nb.sandbox import collation, schema
from d365nb.sandbox.metadata.catalog import Catalog, catalog_for
from d365nb.sandbox.store import Store, create_schema

REPEAT = 15


def main() -> None:
    tables = schema.load()

    def ddl() -> None:
        conn = sqlite3.connect(":memory:")
        collation.register(conn)
        create_schema(conn, tables)
        conn.close()

    rows = [
        ("new in-memory Store", lambda: Store(tables).close(), "run the DDL", ddl),
        (
            "catalog of a new org's schema",
            lambda: catalog_for(schema.load()),
            "build a Catalog",
            lambda: Catalog(tables),
        ),
    ]
    for label, ours, base_label, baseline in rows:
        mine = best_ms(ours, REPEAT, warm_up=True)
        base = best_ms(baseline, REPEAT, warm_up=True)
        print(
            f"{label:31s} {mine:7.2f} ms   baseline ({base_label}) {base:7.2f} ms   "
            f"{base / mine:5.1f}x faster"
        )
    whole = best_ms(lambda: sandbox.start(data="empty").stop(), REPEAT, warm_up=True)
    print(f"{'empty sandbox start + stop':31s} {whole:7.2f} ms")


if __name__ == "__main__":
    main()
