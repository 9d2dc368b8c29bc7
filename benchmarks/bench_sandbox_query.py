"""Query engine speed: filtered, ordered pages over 20,000 and 200,000 leads.

Prints, for each table size, the server-side time (compile + execute, no HTTP) of:
  * `statuscode eq 1` ordered by `createdon desc` - first page (5000 and 50 rows) and page 10,
  * `contains(subject,'blue')` ordered the same way, for contrast (LIKE cannot use an index),
and the same statement run as hand-written raw SQL through sqlite3 (the baseline: the engine's
overhead is the ratio). Then parse+compile of a typical filter in microseconds.

Targets (issue 2): first filtered ordered page over 200,000 leads <= 50 ms; the cost of a page
does not grow with the table (ratio 200k/20k ~ 1).

    python benchmarks/bench_sandbox_query.py [--rows 200000] [--small 20000]
"""

from __future__ import annotations

import argparse
import datetime as dt
import random
import time

from timing import best_ms

from d365nb.sandbox import odata, schema
from d365nb.sandbox.odata.parser import _parse
from d365nb.sandbox.store import Store

WORDS = [
    "blue",
    "green",
    "red",
    "fast",
    "slow",
    "big",
    "small",
    "new",
    "old",
    "quick",
    "bright",
    "dark",
]
STATUSES = [1, 1, 1, 2, 2, 3, 4, 5, 6, 7]


def build(rows: int, seed: int = 1) -> Store:
    store = Store(schema.load(), None)
    rng = random.Random(seed)
    users = store.insert_many(
        "systemuser",
        [{"firstname": f"U{i}", "lastname": "User", "domainname": f"u{i}@x"} for i in range(10)],
    )
    start = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)
    batch = []
    for i in range(rows):
        created = start + dt.timedelta(seconds=rng.randrange(0, 2 * 365 * 86400))
        batch.append(
            {
                "subject": f"{rng.choice(WORDS)} {rng.choice(WORDS)} lead {i}",
                "firstname": rng.choice(["Ann", "Bob", "Cy", "Di"]),
                "lastname": f"Name{i % 997}",
                "companyname": f"Company {i % 1500}",
                "emailaddress1": f"lead{i}@example.com",
                "statuscode": rng.choice(STATUSES),
                "createdon": created.strftime("%Y-%m-%dT%H:%M:%SZ"),
                "ownerid": rng.choice(users),
                "ownerid__type": "systemuser",
                "estimatedvalue": float(rng.randrange(1000, 100000)),
            }
        )
        if len(batch) == 20000:
            store.insert_many("lead", batch)
            batch = []
    if batch:
        store.insert_many("lead", batch)
    store.conn.execute("ANALYZE")
    return store


def timed(fn, repeat: int = 9) -> float:
    """Best-of-`repeat` wall time of `fn()` in ms, after one untimed run."""
    return best_ms(fn, repeat, warm_up=True)


def engine(store: Store, params: dict, page_size: int, pages: int = 1):
    def run():
        token = None
        for _ in range(pages):
            result = odata.execute(
                store.conn,
                store.schema,
                "lead",
                params,
                user_id=None,
                page_size=page_size,
                skiptoken=token,
            )
            token = result.next_skiptoken
        return result

    return run


def raw(store: Store, params: dict, page_size: int):
    """The baseline: the engine's own SQL statement run straight through sqlite3, rows turned
    into dicts the same way - what is left is the engine's overhead (parse, bind, tokens)."""
    query = odata.compile_query(store.schema, "lead", params, page_size=page_size)

    def run():
        cursor = store.conn.execute(query.sql, query.params)
        return [dict(zip(query.columns, r, strict=True)) for r in cursor.fetchall()]

    return run


def measure(store: Store) -> dict[str, float]:
    status = {"$filter": "statuscode eq 1", "$orderby": "createdon desc"}
    text = {"$filter": "contains(subject,'blue')", "$orderby": "createdon desc"}
    return {
        "status 5000": timed(engine(store, status, 5000)),
        "status 5000 raw": timed(raw(store, status, 5000)),
        "status 50": timed(engine(store, status, 50)),
        "status 50 raw": timed(raw(store, status, 50)),
        "status 50, pages 1-20 (avg)": timed(engine(store, status, 50, pages=20)) / 20,
        "contains 50": timed(engine(store, text, 50)),
        "contains 5000": timed(engine(store, text, 5000), repeat=3),
        "count": timed(engine(store, {**status, "$count": "true"}, 50)),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--small", type=int, default=20_000)
    args = parser.parse_args()

    results = {}
    for n in (args.small, args.rows):
        t0 = time.perf_counter()
        store = build(n)
        print(f"built {n:,} leads in {time.perf_counter() - t0:.1f} s")
        results[n] = measure(store)
        status_params = {"$filter": "statuscode eq 1", "$orderby": "createdon desc"}
        first_page = odata.compile_query(store.schema, "lead", status_params, page_size=50)
        plan = store.conn.execute(
            "EXPLAIN QUERY PLAN " + first_page.sql, first_page.params
        ).fetchall()
        results[n]["plan"] = "; ".join(row[-1] for row in plan)
        first = odata.execute(
            store.conn, store.schema, "lead", status_params, user_id=None, page_size=50
        )
        page2 = odata.compile_query(
            store.schema, "lead", status_params, page_size=50, skiptoken=first.next_skiptoken
        )
        plan2 = store.conn.execute("EXPLAIN QUERY PLAN " + page2.sql, page2.params).fetchall()
        results[n]["plan2"] = "; ".join(row[-1] for row in plan2)
        store.close()

    small, big = results[args.small], results[args.rows]
    print()
    print(f"{'server time, ms (best of 9)':34} {args.small:>10,} {args.rows:>10,}   ratio")
    for key in small:
        if key.startswith("plan"):
            continue
        ratio = big[key] / small[key] if small[key] else float("nan")
        print(f"{key:34} {small[key]:10.2f} {big[key]:10.2f}   {ratio:5.2f}x")
    print(f"query plan, first page ({args.rows:,}): {big['plan']}")
    print(f"query plan, next page (keyset):      {big['plan2']}")
    print()
    print(
        f"engine / raw SQL, first page of 5000: {big['status 5000'] / big['status 5000 raw']:.2f}x"
    )
    print(f"engine / raw SQL, first page of 50:   {big['status 50'] / big['status 50 raw']:.2f}x")
    target = big["status 5000"]
    print(
        f"target: filtered ordered first page over {args.rows:,} leads <= 50 ms: "
        f"{target:.1f} ms ({'met' if target <= 50 else 'NOT met'})"
    )

    typical = "statuscode eq 1 and createdon ge 2025-01-01T00:00:00Z and contains(subject,'blue')"
    tables = schema.load()
    n = 2000
    t0 = time.perf_counter()
    for _ in range(n):
        _parse(typical, "start")
    parse_us = (time.perf_counter() - t0) / n * 1e6
    t0 = time.perf_counter()
    for _ in range(n):
        odata.compile_query(tables, "lead", {"$filter": typical, "$orderby": "createdon desc"})
    compile_us = (time.perf_counter() - t0) / n * 1e6
    print()
    print(f"parse of a typical filter (uncached):           {parse_us:8.1f} us")
    print(f"compile_query of it (parse cached, SQL built):  {compile_us:8.1f} us")
    print(f"parse + compile:                                {parse_us + compile_us:8.1f} us")


if __name__ == "__main__":
    main()
