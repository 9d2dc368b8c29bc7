"""How long the demo data takes to make (target: under 2 s), against a raw-SQLite baseline.

Prints rows per table and, best and median of 5 runs:
* `demo.populate` end to end into an in-memory store (the figure the target is about);
* its two halves: generating the rows in memory, and inserting them through
  `Store.insert_many` (defaults, computed names, versions);
* the baseline for the insert half: the same rows as prepared tuples written by one plain
  `executemany` per table into the same tables - and the ratio of the two.

Run: `python benchmarks/bench_sandbox_demo.py`.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from datetime import UTC, datetime

from d365nb.sandbox import demo, schema
from d365nb.sandbox.store import Store, storage_columns

NOW = datetime(2026, 6, 15, 12, 0, tzinfo=UTC)
RUNS = 5


def timed(prepare: Callable[[], object], run: Callable[[object], None]) -> tuple[float, float]:
    """Best and median seconds of `run(prepare())` (preparation not timed)."""
    times = []
    for _ in range(RUNS):
        state = prepare()
        start = time.perf_counter()
        run(state)
        times.append(time.perf_counter() - start)
    return min(times), statistics.median(times)


def main() -> None:
    tables = schema.load()
    rows = demo.generate(tables, seed=0, now=NOW)
    total = sum(len(r) for r in rows.values())
    print("demo rows:", {k: len(v) for k, v in rows.items()}, f"total {total}")

    def through_store(store: Store) -> None:
        with store.transaction():
            for name, batch in rows.items():
                store.insert_many(name, batch)

    prepared = {
        name: [tuple(r.get(c) for c in storage_columns(tables[name])) for r in batch]
        for name, batch in rows.items()
    }

    def raw(store: Store) -> None:
        with store.transaction():
            for name, values in prepared.items():
                cols = storage_columns(tables[name])
                names = ", ".join(f'"{c}"' for c in cols)
                sql = f'INSERT INTO "{name}" ({names}) VALUES ({", ".join("?" * len(cols))})'
                store.conn.executemany(sql, values)

    def empty_store() -> Store:
        return Store(tables, None)

    figures = {
        "demo.populate (end to end)": timed(
            empty_store, lambda st: demo.populate(st, tables, seed=0, now=NOW)
        ),
        "  generate rows in memory": timed(
            lambda: None, lambda _: demo.generate(tables, seed=0, now=NOW)
        ),
        "  insert via Store.insert_many": timed(empty_store, through_store),
        "baseline: raw executemany": timed(empty_store, raw),
    }
    for label, (best, median) in figures.items():
        print(f"{label:32s} best {best * 1000:7.1f} ms   median {median * 1000:7.1f} ms")
    populate = figures["demo.populate (end to end)"][1]
    print(
        f"populate: {total / populate:,.0f} rows/s; target < 2000 ms: "
        f"{'met' if populate < 2 else 'MISSED'} ({populate * 1000:.0f} ms median)"
    )
    store_insert = figures["  insert via Store.insert_many"][0]
    baseline = figures["baseline: raw executemany"][0]
    print(f"ratio insert_many / raw executemany: {store_insert / baseline:.2f}x")


if __name__ == "__main__":
    main()
