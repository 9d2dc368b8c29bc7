"""How long the demo data takes to make (target: under 2 s), against a raw-SQLite baseline.

Prints: rows per table, time to generate the rows in memory, time of `demo.populate` into an
in-memory store, and the baseline - the same rows written with one plain `executemany` per table
into the same tables - with the ratio populate / baseline. Run: `python benchmarks/bench_sandbox_demo.py`.
"""

from __future__ import annotations

import statistics
import time
from datetime import UTC, datetime

from d365nb.sandbox import demo, schema
from d365nb.sandbox.store import Store, storage_columns

NOW = datetime(2026, 6, 15, 12, 0, tzinfo=UTC)
RUNS = 5


def best(fn) -> tuple[float, float]:
    times = []
    for _ in range(RUNS):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times), statistics.median(times)


def main() -> None:
    tables = schema.load()
    rows = demo.generate(tables, seed=0, now=NOW)
    total = sum(len(r) for r in rows.values())

    def generate() -> None:
        demo.generate(tables, seed=0, now=NOW)

    def populate() -> None:
        demo.populate(Store(tables, None), tables, seed=0, now=NOW)

    def baseline() -> None:
        # The floor: an empty store's tables filled by plain executemany of prepared tuples
        # (no defaults, computed names or versions), generation included as populate has it.
        store = Store(tables, None)
        made = demo.generate(tables, seed=0, now=NOW)
        with store.transaction():
            for name, batch in made.items():
                cols = storage_columns(tables[name])
                sql = f'INSERT INTO "{name}" ({", ".join(cols)}) VALUES ({", ".join("?" * len(cols))})'
                store.conn.executemany(sql, [tuple(r.get(c) for c in cols) for r in batch])

    print("demo rows:", {k: len(v) for k, v in rows.items()}, f"total {total}")
    gen_best, gen_med = best(generate)
    pop_best, pop_med = best(populate)
    base_best, base_med = best(baseline)
    print(f"generate in memory   best {gen_best * 1000:7.1f} ms  median {gen_med * 1000:7.1f} ms")
    print(
        f"demo.populate        best {pop_best * 1000:7.1f} ms  median {pop_med * 1000:7.1f} ms"
        f"  ({total / pop_best:,.0f} rows/s; target < 2000 ms: {'OK' if pop_med < 2 else 'MISSED'})"
    )
    print(f"raw executemany      best {base_best * 1000:7.1f} ms  median {base_med * 1000:7.1f} ms")
    print(f"ratio populate / raw baseline: {pop_best / base_best:.2f}x")


if __name__ == "__main__":
    main()
