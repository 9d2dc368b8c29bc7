"""Client aggregate speed: `d365.aggregate` over 200,000 leads against the sandbox's own answer.

From one run, best of N (ms), taking turns:
  1. baseline: a raw httpx GET of the very URL the client sends (`leads?$apply=...`) + JSON
     decode - the sandbox's own answer time;
  2. d365nb: `Dataverse.aggregate("leads", groupby="statuscode", agg={...})` - validated
     against metadata (cached after the first call), one request, typed DataFrame.

Target (issue 14): one request, and <= 1.2x the baseline. The sandbox's 50,000-row aggregate
limit (Dataverse's) is lifted for the run so the aggregate runs over all 200,000 leads.

    python benchmarks/bench_client_aggregate.py [--rows 200000] [--repeat 7]
"""

from __future__ import annotations

import httpx
from bench_sandbox_apply import best, leads_sandbox  # same data and timing as (a)

from d365nb.client.api import Dataverse

AGG = {"n": "count()", "total": "sum(estimatedvalue)", "avg": "avg(estimatedvalue)"}


def main() -> None:
    with leads_sandbox(__doc__) as (args, handle):
        conn = Dataverse(handle.url, token=handle.token)
        frame = conn.aggregate("leads", groupby="statuscode", agg=AGG)  # loads metadata once
        query = frame.attrs["query"]
        raw_client = httpx.Client(
            base_url=handle.api, headers={"Authorization": f"Bearer {handle.token}"}, timeout=60
        )

        def raw():
            r = raw_client.get("leads", params=query)
            r.raise_for_status()
            return r.json()

        def client():
            return conn.aggregate("leads", groupby="statuscode", agg=AGG)

        before = conn.requests_sent
        result = client()
        requests = conn.requests_sent - before
        assert int(result["n"].sum()) == args.rows
        assert len(result) == len(raw()["value"])

        t_raw, t_client = best([raw, client], args.repeat)
        conn.close()
        raw_client.close()

    print(f"query: {query}")
    print(f"requests per aggregate call: {requests}")
    print(f"{'best of ' + str(args.repeat) + ', ms':32} {'time':>9} {'ratio':>8}")
    print(f"{'raw httpx GET (sandbox answer)':32} {t_raw:9.2f} {1.0:7.2f}x")
    print(f"{'d365.aggregate -> DataFrame':32} {t_client:9.2f} {t_client / t_raw:7.2f}x")
    ratio = t_client / t_raw
    print(
        f"target: one request and <= 1.2x the sandbox's own answer: {requests} request, "
        f"{ratio:.2f}x ({'met' if requests == 1 and ratio <= 1.2 else 'NOT met'})"
    )


if __name__ == "__main__":
    main()
