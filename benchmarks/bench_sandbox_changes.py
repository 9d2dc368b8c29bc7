"""Change tracking speed: a delta request's cost follows the changes, not the table.

Prints, for leads tables of 20,000 and 200,000 rows: the time of a delta request with no changes
and with 1,000 changes (median of repeated requests over loopback HTTP, which bounds the server
time from above), plus the server-side read alone, and the ratios between them.
Target (issue 3): no-change delta on 200,000 rows <= 5 ms server time.

    python benchmarks/bench_sandbox_changes.py [--sizes 20000,200000] [--repeat 30]
"""

from __future__ import annotations

import argparse
import statistics
import time
from urllib.parse import parse_qs, urlsplit

import httpx

from d365nb import sandbox
from d365nb.sandbox import changes


def _leads(n: int, start: int = 0):
    for i in range(start, start + n):
        yield {"subject": f"Lead {i}", "lastname": f"Last{i % 977}", "firstname": "Bench"}


def _full_sync(client: httpx.Client, api: str, expected: int) -> str:
    """Follow an initial track-changes sync to its deltaLink; returns the deltaLink."""
    url = f"{api}leads?$select=subject,lastname"
    rows = 0
    while True:
        r = client.get(url, headers={"Prefer": "odata.track-changes"})
        r.raise_for_status()
        body = r.json()
        rows += len(body["value"])
        if "@odata.deltaLink" in body:
            assert rows == expected, (rows, expected)
            return body["@odata.deltaLink"]
        url = body["@odata.nextLink"]


def _median_ms(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1000)
    return statistics.median(times)


def measure(size: int, repeat: int) -> dict[str, float]:
    with sandbox.start(data="empty") as h:
        store = h.org.store
        table = h.org.schema["lead"]
        ids = store.insert_many("lead", _leads(size))
        client = httpx.Client(headers={"Authorization": f"Bearer {h.token}"}, timeout=120)
        t0 = time.perf_counter()
        delta_link = _full_sync(client, h.api, size)
        full_sync_s = time.perf_counter() - t0
        since = changes.parse_token(parse_qs(urlsplit(delta_link).query)["$deltatoken"][0]).version
        columns = ["leadid", "subject", "lastname", "versionnumber"]

        def http_delta() -> int:
            r = client.get(delta_link)
            r.raise_for_status()
            return len(r.json()["value"])

        def server_read() -> None:
            changes.read_changes(store, table, columns, since, None, 5000)

        assert http_delta() == 0
        out = {
            "rows": size,
            "full_sync_s": full_sync_s,
            "http_0": _median_ms(http_delta, repeat),
            "read_0": _median_ms(server_read, repeat),
        }
        # 1,000 changes: updates through the store (same versioning as the HTTP writes).
        with store.transaction():
            for i in ids[:: max(1, size // 1000)][:1000]:
                store.update("lead", i, {"subject": "changed"})
        assert http_delta() == 1000
        out["http_1000"] = _median_ms(http_delta, max(5, repeat // 3))
        out["read_1000"] = _median_ms(server_read, max(5, repeat // 3))
        client.close()
        return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="20000,200000")
    parser.add_argument("--repeat", type=int, default=30)
    args = parser.parse_args()
    results = [measure(int(s), args.repeat) for s in args.sizes.split(",")]
    print(
        f"{'rows':>8} {'full sync s':>11} {'delta 0 ms':>11} {'read 0 ms':>10} "
        f"{'delta 1000 ms':>14} {'read 1000 ms':>13}"
    )
    for r in results:
        print(
            f"{r['rows']:>8} {r['full_sync_s']:>11.2f} {r['http_0']:>11.2f} {r['read_0']:>10.3f} "
            f"{r['http_1000']:>14.2f} {r['read_1000']:>13.3f}"
        )
    if len(results) >= 2:
        small, big = results[0], results[-1]
        print(
            f"table x{big['rows'] / small['rows']:.0f}: no-change delta time x"
            f"{big['http_0'] / small['http_0']:.2f} (HTTP), x{big['read_0'] / small['read_0']:.2f} "
            "(server read)"
        )
    for r in results:
        print(
            f"{r['rows']} rows: 1000 changes vs 0 changes: x{r['http_1000'] / r['http_0']:.1f} (HTTP)"
        )
    big = results[-1]
    verdict = "OK" if big["http_0"] <= 5 else "OVER"
    print(
        f"target: no-change delta on {big['rows']} rows <= 5 ms -> {big['http_0']:.2f} ms "
        f"over HTTP (server read {big['read_0']:.3f} ms): {verdict}"
    )


if __name__ == "__main__":
    main()
