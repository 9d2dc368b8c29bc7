"""Client read speed: 50,000 leads (10 pages of 5,000) into a DataFrame.

    python benchmarks/bench_client_list.py [--rows 50000] [--repeat 3]

Against the TLS sandbox served by ``d365nb sandbox --tls`` in its own process (so the figures
are the clients' own: the server neither shares this process's GIL nor counts in its memory),
from one run, prints the best-of-N wall time and peak Python memory (tracemalloc, measured in a
separate pass so it does not slow the timed one) of:

1. baseline: httpx GET of the same pages (following @odata.nextLink) + json.loads +
   pandas.DataFrame(records) - no dtypes, no index;
2. d365nb: ``Dataverse.list("leads")`` - typed columns (string/Int64/Float64/boolean/UTC
   datetimes), index = leadid;
3. Microsoft's PowerPlatform-Dataverse-Client: ``client.dataframe.get("lead", page_size=5000)``
   + ``set_index("leadid")`` (its frame keeps object/float dtypes).

Targets: d365nb <= 1.25x the baseline, and faster than Microsoft's client.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import json
import os
import random
import signal
import subprocess
import sys
import time
import tracemalloc
import warnings
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

import httpx
import pandas as pd

from d365nb.client.api import Dataverse

FIRST = ["Ada", "Grace", "Alan", "Edsger", "Barbara", "Donald", "Ken", "Margaret", "Linus"]
LAST = ["Lovelace", "Hopper", "Turing", "Dijkstra", "Liskov", "Knuth", "Thompson", "Hamilton"]
CITIES = ["Lisbon", "Oslo", "Austin", "Pune", "Osaka", "Lyon", "Perth", "Quito"]


def lead(rng: random.Random, i: int) -> dict:
    first, last = rng.choice(FIRST), rng.choice(LAST)
    return {
        "subject": f"Interested in product {i % 97}",
        "firstname": first,
        "lastname": last,
        "companyname": f"{last} & Co {i % 1000}",
        "jobtitle": "Buyer",
        "emailaddress1": f"{first}.{last}{i}@example.com".lower(),
        "telephone1": f"+1 555 {i:07d}",
        "address1_city": rng.choice(CITIES),
        "estimatedvalue": round(rng.uniform(1000, 90000), 2),
        "numberofemployees": rng.randint(1, 5000),
        "leadsourcecode": rng.randint(1, 10),
        "leadqualitycode": rng.randint(1, 3),
        "donotemail": rng.random() < 0.2,
        "estimatedclosedate": (
            datetime(2026, 1, 1, tzinfo=UTC) + timedelta(days=rng.randint(0, 365))
        )
        .date()
        .isoformat(),
    }


@contextlib.contextmanager
def cli_sandbox() -> Iterator[SimpleNamespace]:
    """``d365nb sandbox --data empty --tls`` in a child process; its url, api, token and ca."""
    process = subprocess.Popen(
        [sys.executable, "-m", "d365nb.cli", "sandbox", "--data", "empty", "--tls"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        # The CLI prints its one JSON line only once it accepts requests.
        yield SimpleNamespace(**json.loads(process.stdout.readline()))
    finally:
        process.send_signal(signal.SIGINT)
        process.wait(30)


def baseline(handle) -> pd.DataFrame:
    headers = {
        "Authorization": f"Bearer {handle.token}",
        "Accept": "application/json",
        "OData-MaxVersion": "4.0",
        "OData-Version": "4.0",
        "Prefer": "odata.maxpagesize=5000",
    }
    records: list[dict] = []
    with httpx.Client(verify=handle.ca, headers=headers, timeout=120) as client:
        url: str | None = handle.api + "leads"
        while url:
            body = json.loads(client.get(url).content)
            records.extend(body["value"])
            url = body.get("@odata.nextLink")
    return pd.DataFrame(records)


def microsoft_client(handle):
    from azure.core.credentials import AccessToken
    from PowerPlatform.Dataverse.client import DataverseClient

    class StaticCredential:
        def get_token(self, *scopes, **kwargs):
            return AccessToken(handle.token, int(time.time()) + 3600)

    os.environ["REQUESTS_CA_BUNDLE"] = handle.ca  # the client uses requests
    return DataverseClient(handle.url, StaticCredential())


def peak_mib(fn: Callable[[], pd.DataFrame]) -> float:
    gc.collect()
    tracemalloc.start()
    frame = fn()
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    del frame
    return peak / 2**20


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=50_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--no-microsoft", action="store_true", help="skip Microsoft's client")
    args = parser.parse_args()

    with cli_sandbox() as handle:
        conn = Dataverse(handle.url, token=handle.token, verify=handle.ca)
        rng = random.Random(1)
        started = time.perf_counter()
        result = conn.create_many("leads", [lead(rng, i) for i in range(args.rows)])
        assert result.ok, result
        print(
            f"setup: {args.rows:,} leads created in {time.perf_counter() - started:.1f} s "
            f"({result.requests} requests)"
        )

        runs: dict[str, Callable[[], pd.DataFrame]] = {
            "baseline (httpx + json + DataFrame)": lambda: baseline(handle),
            "d365nb Dataverse.list": lambda: conn.list("leads"),
        }
        if not args.no_microsoft:
            ms = microsoft_client(handle)
            runs["Microsoft PowerPlatform-Dataverse-Client"] = lambda: ms.dataframe.get(
                "lead", page_size=5000
            ).set_index("leadid")
            warnings.filterwarnings("ignore", category=DeprecationWarning)
        for fn in runs.values():
            fn()  # warm-up: connections, metadata caches, imports
        # Round-robin repeats, best of each: the machine is shared, so noise only adds time.
        best = dict.fromkeys(runs, float("inf"))
        frames: dict[str, pd.DataFrame] = {}
        for _ in range(args.repeat):
            for name, fn in runs.items():
                gc.collect()
                started = time.perf_counter()
                frames[name] = fn()
                best[name] = min(best[name], time.perf_counter() - started)
        results = {name: (best[name], peak_mib(fn), frames[name]) for name, fn in runs.items()}
        base = results["baseline (httpx + json + DataFrame)"][0]
        print(f"\n{'run':45} {'rows':>7} {'cols':>5} {'best s':>8} {'x base':>7} {'peak MiB':>9}")
        for name, (seconds, peak, frame) in results.items():
            print(
                f"{name:45} {len(frame):7,} {frame.shape[1]:5} {seconds:8.3f} "
                f"{seconds / base:7.2f} {peak:9.1f}"
            )
        ours = results["d365nb Dataverse.list"][0]
        print(f"\nd365nb / baseline = {ours / base:.2f} (target <= 1.25)")
        if "Microsoft PowerPlatform-Dataverse-Client" in results:
            theirs = results["Microsoft PowerPlatform-Dataverse-Client"][0]
            print(f"Microsoft / d365nb = {theirs / ours:.2f} (target > 1)")
        frame = results["d365nb Dataverse.list"][2]
        print("d365nb dtypes:", dict(frame.dtypes.astype(str).value_counts()))
        conn.close()


if __name__ == "__main__":
    main()
