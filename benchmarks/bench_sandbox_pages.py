"""Sandbox page speed: serving 5000-row pages, and a filtered first page as the table grows.

    python benchmarks/bench_sandbox_pages.py [--rows 200000]

Prints, from one run:
1. 5000-row pages of leads with 10 selected columns: server time per page (query engine +
   serializer + JSON encoding, in process) and rows/s; the same over real loopback HTTP; and the
   ratio to a baseline measured here: a raw SQLite SELECT of the same rows + orjson encoding of
   them as dicts. Targets: >= 30,000 rows/s and <= 3x the baseline.
2. A filtered, ordered first page (`statuscode eq 1`, `$orderby=createdon desc`, indexed) at
   20,000 and at 200,000 rows: server time (target <= 50 ms) and how it grows (it should not).
"""

from __future__ import annotations

import argparse
import random
import time
from datetime import UTC, datetime, timedelta

import httpx
import orjson
from timing import best_ms

from d365nb.sandbox import odata
from d365nb.sandbox import server as sandbox_server
from d365nb.sandbox.responses import writer_for
from d365nb.sandbox.serialize import Annotations, context_url

SELECT = [
    "subject",
    "firstname",
    "lastname",
    "companyname",
    "emailaddress1",
    "telephone1",
    "address1_city",
    "estimatedvalue",
    "statuscode",
    "createdon",
]
PAGE = 5000


def make_leads(n: int, start: int, rng: random.Random) -> list[dict]:
    now = datetime(2026, 1, 1, tzinfo=UTC)
    cities = ["Seattle", "Berlin", "Paris", "Lisbon", "Osaka", "Toronto", "Lyon", "Oslo"]
    rows = []
    for i in range(start, start + n):
        status = rng.choice([1, 2, 3, 4, 5, 6, 7])
        created = now - timedelta(seconds=rng.randrange(0, 365 * 86400))
        rows.append(
            {
                "subject": f"Interested in product {i % 97}",
                "firstname": f"First{i % 1000}",
                "lastname": f"Last{i:07d}",
                "companyname": f"Company {i % 5000}",
                "emailaddress1": f"lead{i}@example.com",
                "telephone1": f"+1 555 {i % 10000:04d}",
                "address1_city": cities[i % len(cities)],
                "estimatedvalue": float(rng.randrange(1000, 500000)),
                "statuscode": status,
                "statecode": 0 if status <= 2 else (1 if status == 3 else 2),
                "createdon": created.strftime("%Y-%m-%dT%H:%M:%SZ"),
            }
        )
    return rows


def server_page(
    org,
    params: dict[str, str],
    skiptoken: str | None = None,
    size: int = PAGE,
    annotations: Annotations | None = None,
):
    """What the collection GET does for one page, minus the socket: query, serialize, encode."""
    table = org.schema["lead"]
    with org.store.lock:
        result = odata.execute(
            org.store.conn,
            org.schema,
            "lead",
            params,
            user_id=org.user_id,
            page_size=size,
            skiptoken=skiptoken,
        )
    writer = writer_for(org, table, result.select, result.expand, annotations or Annotations())
    body = {
        "@odata.context": context_url("http://127.0.0.1/api/data/v9.2/", table, SELECT),
        "value": writer.records(result.rows),
    }
    return orjson.dumps(body), result.next_skiptoken


def query_only(org, params: dict[str, str], size: int) -> int:
    with org.store.lock:
        result = odata.execute(
            org.store.conn, org.schema, "lead", params, user_id=org.user_id, page_size=size
        )
    return len(result.rows)


def baseline_page(org, after: str | None):
    """Raw SQLite: the same 10 columns + key, keyset-ordered, 5000 rows, encoded by orjson."""
    cols = ["leadid", "versionnumber", *SELECT]
    sql = f"SELECT {', '.join(cols)} FROM lead"
    args: tuple = ()
    if after is not None:
        sql += " WHERE leadid > ?"
        args = (after,)
    sql += f" ORDER BY leadid LIMIT {PAGE}"
    with org.store.lock:
        rows = org.store.conn.execute(sql, args).fetchall()
    data = orjson.dumps({"value": [dict(zip(cols, r, strict=True)) for r in rows]})
    return data, rows[-1][0]


def bench_pages(org, handle) -> None:
    params = {"$select": ",".join(SELECT)}

    # walk the first 8 pages each way, so keyset continuation is part of the cost
    def ours() -> None:
        token = None
        for _ in range(8):
            _, token = server_page(org, params, token)

    def raw() -> None:
        after = None
        for _ in range(8):
            _, after = baseline_page(org, after)

    def annotated() -> None:
        token = None
        for _ in range(8):
            _, token = server_page(org, params, token, annotations=Annotations(["*"]))

    server_ms = best_ms(ours, 5) / 8
    annotated_ms = best_ms(annotated, 3) / 8
    base_ms = best_ms(raw, 5) / 8
    client = httpx.Client(headers={"Authorization": f"Bearer {handle.token}"}, timeout=60)
    url = handle.api + "leads?$select=" + ",".join(SELECT)

    def http() -> None:
        next_url = url
        for _ in range(8):
            r = client.get(next_url)
            r.raise_for_status()
            next_url = r.json()["@odata.nextLink"]

    http_ms = best_ms(http, 3) / 8
    client.close()
    print("5000-row pages of leads, 10 selected columns (best of 5 walks of 8 pages, per page)")
    print(
        f"  server (query + serialize + JSON): {server_ms:8.1f} ms  {PAGE / server_ms * 1000:>10,.0f} rows/s"
    )
    print(
        f"  baseline (raw SELECT + orjson):    {base_ms:8.1f} ms  {PAGE / base_ms * 1000:>10,.0f} rows/s"
    )
    print(
        f"  over loopback HTTP (+ client JSON):{http_ms:8.1f} ms  {PAGE / http_ms * 1000:>10,.0f} rows/s"
    )
    ratio = server_ms / base_ms
    print(
        f"  server, include-annotations=*:     {annotated_ms:8.1f} ms  "
        f"{PAGE / annotated_ms * 1000:>10,.0f} rows/s (formatted values for 4 of the columns)"
    )
    print(f"  ratio server / baseline: {ratio:.2f}x   (target <= 3x)")
    print(f"  target >= 30,000 rows/s: {'met' if PAGE / server_ms * 1000 >= 30000 else 'NOT met'}")


FILTERED = {
    "$select": ",".join(SELECT),
    "$filter": "statuscode eq 1",
    "$orderby": "createdon desc",
}


def bench_filtered(org, label: str) -> dict[str, float]:
    """Server time of a filtered, ordered first page, for a full 5000-row page and a 50-row page
    (the 50-row page has the same size at every table size, so its growth is the honest one)."""
    out = {}
    for size in (PAGE, 50):
        rows = query_only(org, FILTERED, size)
        q = best_ms(lambda size=size: query_only(org, FILTERED, size), 7)
        full = best_ms(lambda size=size: server_page(org, FILTERED, size=size), 7)
        out[f"query{size}"], out[f"full{size}"], out[f"rows{size}"] = q, full, rows
        print(
            f"  {label:>8} rows, page {size:>4} ({rows:>4} rows): query {q:6.1f} ms, "
            f"query + serialize + JSON {full:6.1f} ms"
        )
    contains = {**FILTERED, "$filter": "contains(companyname,'pany 42')"}
    ms = best_ms(lambda: server_page(org, contains, size=50), 3)
    print(f"  {label:>8} rows, contains() (not indexable), page 50, for contrast: {ms:6.1f} ms")
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=200_000)
    args = parser.parse_args()
    rng = random.Random(7)
    org = sandbox_server.build_org(data="empty")
    t = time.perf_counter()
    org.store.insert_many("lead", make_leads(20_000, 0, rng))
    print(f"inserted 20,000 leads in {time.perf_counter() - t:.1f} s")
    print("Filtered, ordered first page (5000 rows max, server time, best of 7):")
    small = bench_filtered(org, "20,000")
    t = time.perf_counter()
    org.store.insert_many("lead", make_leads(args.rows - 20_000, 20_000, rng))
    print(f"inserted {args.rows - 20_000:,} more leads in {time.perf_counter() - t:.1f} s")
    large = bench_filtered(org, f"{args.rows:,}")
    for size in (PAGE, 50):
        grow = large[f"full{size}"] / small[f"full{size}"]
        per_row = (large[f"full{size}"] / large[f"rows{size}"]) / (
            small[f"full{size}"] / small[f"rows{size}"]
        )
        print(
            f"  growth {args.rows:,} vs 20,000 rows, page {size}: {grow:.2f}x per page, "
            f"{per_row:.2f}x per row served"
        )
    verdict = "met" if large[f"full{PAGE}"] <= 50 else "NOT met"
    print(f"  target <= 50 ms for the full first page at {args.rows:,} rows: {verdict}")
    # serve the same org over HTTP for the loopback figure
    handle = sandbox_server.serve(org)
    try:
        bench_pages(org, handle)
    finally:
        handle.stop()


if __name__ == "__main__":
    main()
