"""Bulk write speed: 1,000 leads by single POSTs, by CreateMultiple and by one $batch.

Prints each time and the ratios, all measured in this run against a fresh empty sandbox.
Target (issue 3): CreateMultiple of 1,000 leads <= 0.5 s; $batch of 1,000 creates: time and
ratio to CreateMultiple.

    python benchmarks/bench_sandbox_bulk.py [--count 1000] [--rounds 3]
"""

from __future__ import annotations

import argparse
import statistics
import time
import uuid

import httpx
import orjson

from d365nb import sandbox


def _lead(i: int) -> dict:
    return {"subject": f"Bulk lead {i}", "lastname": f"Last{i}", "firstname": "Bench"}


def single_posts(client: httpx.Client, api: str, n: int) -> None:
    for i in range(n):
        client.post(f"{api}leads", json=_lead(i)).raise_for_status()


def create_multiple(client: httpx.Client, api: str, n: int) -> None:
    targets = [{"@odata.type": "Microsoft.Dynamics.CRM.lead", **_lead(i)} for i in range(n)]
    r = client.post(f"{api}leads/Microsoft.Dynamics.CRM.CreateMultiple", json={"Targets": targets})
    r.raise_for_status()
    assert len(r.json()["Ids"]) == n


def batch_creates(client: httpx.Client, api: str, n: int) -> None:
    boundary = f"batch_{uuid.uuid4()}"
    parts = []
    for i in range(n):
        parts.append(
            f"--{boundary}\r\nContent-Type: application/http\r\nContent-Transfer-Encoding: binary"
            f"\r\n\r\nPOST /api/data/v9.2/leads HTTP/1.1\r\nContent-Type: application/json; "
            f"type=entry\r\n\r\n{orjson.dumps(_lead(i)).decode()}\r\n"
        )
    body = "".join(parts) + f"--{boundary}--\r\n"
    r = client.post(
        f"{api}$batch",
        content=body.encode(),
        headers={"Content-Type": f"multipart/mixed; boundary={boundary}"},
    )
    r.raise_for_status()
    assert r.text.count("HTTP/1.1 204") == n


def timed(fn, client, api, n: int, rounds: int) -> float:
    times = []
    for _ in range(rounds):
        t0 = time.perf_counter()
        fn(client, api, n)
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    n = args.count
    with sandbox.start(data="empty") as h:
        client = httpx.Client(headers={"Authorization": f"Bearer {h.token}"}, timeout=300)
        single = timed(single_posts, client, h.api, n, 1)
        bulk = timed(create_multiple, client, h.api, n, args.rounds)
        batch = timed(batch_creates, client, h.api, n, args.rounds)
        total = h.org.store.count("lead")
        client.close()
    print(f"{n} leads, median of {args.rounds} rounds (single POSTs: 1 round)")
    print(f"  single POSTs    {single:8.3f} s  ({n / single:8.0f} records/s)")
    print(f"  CreateMultiple  {bulk:8.3f} s  ({n / bulk:8.0f} records/s)")
    print(f"  $batch          {batch:8.3f} s  ({n / batch:8.0f} records/s)")
    print(
        f"  ratios: single/CreateMultiple x{single / bulk:.1f}, $batch/CreateMultiple "
        f"x{batch / bulk:.1f}, single/$batch x{single / batch:.1f}"
    )
    print(f"  rows written: {total} (expected {n * (1 + 2 * args.rounds)})")
    verdict = "OK" if bulk <= 0.5 else "OVER"
    print(f"target: CreateMultiple of {n} leads <= 0.5 s -> {bulk:.3f} s: {verdict}")


if __name__ == "__main__":
    main()
