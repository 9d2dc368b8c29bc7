"""`$apply` aggregation speed: 200,000 leads grouped by a choice column (statuscode).

Side by side, on the same SQLite store, best of N (ms):
  1. baseline: the equivalent raw SQLite statement
     `SELECT statuscode, COUNT(*), SUM(estimatedvalue) FROM lead GROUP BY statuscode`;
  2. engine: `odata.apply.run_apply` (parse, bind, the engine's SQL, typed result rows);
  3. HTTP: `GET leads?$apply=groupby((statuscode),aggregate($count as n,estimatedvalue with sum
     as total))` answered by the running sandbox over loopback (httpx, JSON decoded).

Target (issue 13): the aggregate answers in <= 3x the raw `GROUP BY`. The sandbox's 50,000-row
aggregate limit (Dataverse's) is lifted for the run (`org.config["aggregate_limit"] = None`), so
the engine's speed over 200,000 rows can be measured at all.

    python benchmarks/bench_sandbox_apply.py [--rows 200000] [--repeat 7]
"""

from __future__ import annotations

import argparse
import contextlib
import random
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx

from d365nb import sandbox
from d365nb.sandbox.odata.apply import compile_apply, run_apply

APPLY = "groupby((statuscode),aggregate($count as n,estimatedvalue with sum as total))"
RAW_SQL = (
    'SELECT "statuscode", COUNT(*), SUM("estimatedvalue") FROM "lead" '
    'GROUP BY "statuscode" ORDER BY "statuscode"'
)
# statuscode -> its statecode (the store keeps the pair consistent on writes, not on bulk loads)
STATUSES = [(1, 0), (1, 0), (1, 0), (2, 0), (2, 0), (3, 1), (4, 2), (5, 2), (6, 2), (7, 2)]


def populate(store, rows: int, seed: int = 1) -> None:
    """`rows` leads with random status, value and owner, inserted in storage form."""
    rng = random.Random(seed)
    owner = store.conn.execute('SELECT "systemuserid" FROM "systemuser" LIMIT 1').fetchone()[0]
    batch = []
    for i in range(rows):
        status, state = rng.choice(STATUSES)
        batch.append(
            {
                "subject": f"lead {i}",
                "lastname": f"Name{i % 997}",
                "statuscode": status,
                "statecode": state,
                "estimatedvalue": float(rng.randrange(1000, 100000)),
                "ownerid": owner,
                "ownerid__type": "systemuser",
            }
        )
        if len(batch) == 20000:
            store.insert_many("lead", batch)
            batch = []
    if batch:
        store.insert_many("lead", batch)
    with store.lock:
        store.conn.execute("ANALYZE")


def best(fns: list[Callable[[], object]], repeat: int) -> list[float]:
    """Best-of-`repeat` wall time in ms of each function (after one warm-up run), the functions
    taking turns in each round so that a busy moment of the shared machine hits all of them."""
    for fn in fns:
        fn()
    samples: list[list[float]] = [[] for _ in fns]
    for _ in range(repeat):
        for i, fn in enumerate(fns):
            t0 = time.perf_counter()
            fn()
            samples[i].append((time.perf_counter() - t0) * 1000)
    return [min(s) for s in samples]


@contextlib.contextmanager
def leads_sandbox(description: str) -> Iterator[tuple[argparse.Namespace, Any]]:
    """`--rows`/`--repeat` from the command line, and an empty sandbox holding that many leads
    with the aggregate limit lifted (shared with bench_client_aggregate.py)."""
    parser = argparse.ArgumentParser(description=description.splitlines()[0])
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()
    with sandbox.start(data="empty") as handle:
        t0 = time.perf_counter()
        populate(handle.org.store, args.rows)
        print(f"built {args.rows:,} leads in {time.perf_counter() - t0:.1f} s")
        handle.org.config["aggregate_limit"] = None
        yield args, handle


def main() -> None:
    with leads_sandbox(__doc__) as (args, handle):
        org = handle.org
        conn, table = org.store.conn, org.schema["lead"]

        def raw():
            with org.store.lock:
                return conn.execute(RAW_SQL).fetchall()

        def engine():
            with org.store.lock:
                return run_apply(conn, org.schema, table, {"$apply": APPLY}, limit=None)

        client = httpx.Client(
            base_url=handle.api, headers={"Authorization": f"Bearer {handle.token}"}, timeout=60
        )

        def http():
            r = client.get("leads", params={"$apply": APPLY})
            r.raise_for_status()
            return r.json()

        expected = {status: (n, total) for status, n, total in raw()}
        answer = {row["statuscode"]: (row["n"], row["total"]) for row in http()["value"]}
        assert answer == expected, "the aggregate must equal the raw GROUP BY"

        t_raw, t_engine, t_http = best([raw, engine, http], args.repeat)
        client.close()
        plan = "; ".join(r[-1] for r in conn.execute("EXPLAIN QUERY PLAN " + RAW_SQL))
        compiled = compile_apply(org.schema, table, {"$apply": APPLY})
        engine_plan = "; ".join(
            r[-1] for r in conn.execute("EXPLAIN QUERY PLAN " + compiled.sql, compiled.params)
        )

    print(f"{len(expected)} groups; raw plan: {plan}; engine plan: {engine_plan}")
    print(f"{'best of ' + str(args.repeat) + ', ms':28} {'time':>9} {'vs raw':>8}")
    print(f"{'raw SQLite GROUP BY':28} {t_raw:9.2f} {1.0:7.2f}x")
    print(f"{'engine (run_apply)':28} {t_engine:9.2f} {t_engine / t_raw:7.2f}x")
    print(f"{'HTTP GET ?$apply=...':28} {t_http:9.2f} {t_http / t_raw:7.2f}x")
    ratio = t_http / t_raw
    print(
        f"target: aggregate over {args.rows:,} leads <= 3x raw GROUP BY: HTTP {ratio:.2f}x "
        f"({'met' if ratio <= 3 else 'NOT met'}), engine {t_engine / t_raw:.2f}x"
    )


if __name__ == "__main__":
    main()
