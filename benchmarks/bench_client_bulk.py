"""Client bulk write speed: create_many of 10,000 tasks vs 10,000 single creates.

    python benchmarks/bench_client_bulk.py [--records 10000] [--singles 10000]

From one run against an embedded sandbox, prints the HTTP requests and wall time of
``create_many("tasks", ...)`` (CreateMultiple in chunks of 1,000) and of the same number of
``create()`` calls (the baseline), and their ratio. Targets: <= 15 requests; >= 20x faster.
``--singles`` may be lowered to time fewer single creates (the rate is scaled to --records).
"""

from __future__ import annotations

import argparse
import time
import uuid

import httpx
import orjson

from d365nb import sandbox
from d365nb.client.api import Dataverse


def tasks(n: int, tag: str) -> list[dict]:
    return [
        {
            "subject": f"{tag} {i}",
            "percentcomplete": i % 101,
            "prioritycode": i % 3,
            "scheduledend": "2026-03-01T09:00:00Z",
            "description": "Follow up on the lead.",
        }
        for i in range(n)
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=10_000)
    parser.add_argument("--singles", type=int, default=10_000)
    args = parser.parse_args()

    with sandbox.start(data="empty") as handle, Dataverse(handle.url, token=handle.token) as conn:
        conn.metadata.table("tasks")  # metadata is cached per connection: not part of either run
        conn.create("tasks", {"subject": "warm-up"})

        before = conn.requests_sent
        started = time.perf_counter()
        result = conn.create_many("tasks", tasks(args.records, "bulk"))
        bulk_s = time.perf_counter() - started
        bulk_requests = conn.requests_sent - before
        assert result.ok and result.succeeded == args.records, result

        # The server's own share: the same CreateMultiple chunks, pre-encoded, sent by raw httpx.
        targets = tasks(args.records, "raw")
        for target in targets:
            target.update(
                {"@odata.type": "Microsoft.Dynamics.CRM.task", "activityid": str(uuid.uuid4())}
            )
        bodies = [
            orjson.dumps({"Targets": targets[i : i + 1000]}) for i in range(0, len(targets), 1000)
        ]
        with httpx.Client(
            base_url=handle.api,
            headers={"Authorization": f"Bearer {handle.token}", "Content-Type": "application/json"},
        ) as raw:
            started = time.perf_counter()
            for body in bodies:
                raw.post(
                    "tasks/Microsoft.Dynamics.CRM.CreateMultiple", content=body
                ).raise_for_status()
            raw_s = time.perf_counter() - started

        records = tasks(args.singles, "single")
        before = conn.requests_sent
        started = time.perf_counter()
        for record in records:
            conn.create("tasks", record)
        singles_s = time.perf_counter() - started
        singles_requests = conn.requests_sent - before
        singles_scaled = singles_s * args.records / args.singles

        print(f"{'run':38} {'records':>8} {'requests':>9} {'seconds':>8} {'records/s':>10}")
        print(
            f"{'create_many (CreateMultiple)':38} {args.records:8,} {bulk_requests:9,} "
            f"{bulk_s:8.2f} {args.records / bulk_s:10,.0f}"
        )
        print(
            f"{'raw httpx CreateMultiple (server share)':38} {args.records:8,} {len(bodies):9,} "
            f"{raw_s:8.2f} {args.records / raw_s:10,.0f}"
        )
        print(
            f"{'single create() calls (baseline)':38} {args.singles:8,} {singles_requests:9,} "
            f"{singles_s:8.2f} {args.singles / singles_s:10,.0f}"
        )
        print(f"\nrequests for {args.records:,} records: {bulk_requests} (target <= 15)")
        print(
            f"speed-up vs single creates: {singles_scaled / bulk_s:.1f}x (target >= 20x); "
            f"server-bound ceiling (singles / raw CreateMultiple): {singles_scaled / raw_s:.1f}x"
            + (
                ""
                if args.singles == args.records
                else f" (single-create time scaled from {args.singles:,} to {args.records:,})"
            )
        )


if __name__ == "__main__":
    main()
