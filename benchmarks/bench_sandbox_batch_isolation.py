"""A 1000-operation `$batch` must not stall other clients of the sandbox.

    python benchmarks/bench_sandbox_batch_isolation.py [--rounds 3] [--parts 1000]

One run measures, over real loopback HTTP:
1. baseline: p50/p99 latency of small GETs (`leads?$top=5&$select=lastname`) from client B with
   nothing else running;
2. the same GETs from client B while client A sends 1000-operation `$batch` requests: plain
   parts (each its own request) and one change set of 1000 creates (all or nothing);
and prints each p99, its ratio to the baseline p99, and whether it meets the target: p99 of the
small GETs during a batch <= 200 ms. Only the GETs that started while a batch was running
count for the "during" figures. The SQLite work of every request runs on worker threads (see
`Org.off_loop`), so the event loop keeps answering client B between the batch's parts.
"""

from __future__ import annotations

import argparse
import statistics
import threading
import time
import uuid

import httpx

from d365nb import sandbox

TARGET_MS = 200.0
SMALL_GET = "leads?$top=5&$select=lastname"


def _client(handle) -> httpx.Client:
    return httpx.Client(
        base_url=handle.api,
        headers={"Authorization": f"Bearer {handle.token}", "Accept": "application/json"},
        timeout=120,
    )


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index]


def _batch_body(parts: int, changeset: bool) -> tuple[bytes, str]:
    lines = []
    for i in range(parts):
        head = "Content-Type: application/http\r\nContent-Transfer-Encoding: binary\r\n"
        if changeset:
            head += f"Content-ID: {i + 1}\r\n"
        body = f'{{"lastname":"Batch {i}","subject":"isolation {uuid.uuid4().hex[:8]}"}}'
        lines.append(
            f"--{'c' if changeset else 'b'}\r\n{head}\r\n"
            "POST /api/data/v9.2/leads HTTP/1.1\r\nContent-Type: application/json\r\n\r\n"
            f"{body}\r\n"
        )
    if changeset:
        inner = "".join(lines) + "--c--\r\n"
        text = f"--b\r\nContent-Type: multipart/mixed; boundary=c\r\n\r\n{inner}--b--\r\n"
    else:
        text = "".join(lines) + "--b--\r\n"
    return text.encode(), "multipart/mixed; boundary=b"


class Prober:
    """Client B: small GETs back to back on its own connection, with their start times."""

    def __init__(self, handle) -> None:
        self.handle = handle
        self.samples: list[tuple[float, float]] = []  # (start, latency ms)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        with _client(self.handle) as client:
            while not self._stop.is_set():
                start = time.perf_counter()
                response = client.get(SMALL_GET)
                elapsed = (time.perf_counter() - start) * 1000
                assert response.status_code == 200, response.text[:200]
                self.samples.append((start, elapsed))
                time.sleep(0.002)

    def __enter__(self) -> Prober:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def between(self, start: float, end: float) -> list[float]:
        return [ms for t, ms in self.samples if start <= t <= end]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3, help="batches of each kind")
    parser.add_argument("--parts", type=int, default=1000, help="operations per batch")
    parser.add_argument("--baseline-seconds", type=float, default=3.0)
    args = parser.parse_args()

    with sandbox.start(data="demo", seed=0) as handle, Prober(handle) as prober:
        time.sleep(0.5)  # warm up
        start = time.perf_counter()
        time.sleep(args.baseline_seconds)
        baseline = prober.between(start, time.perf_counter())

        during: dict[str, list[float]] = {"plain parts": [], "one change set": []}
        batch_seconds: dict[str, list[float]] = {k: [] for k in during}
        with _client(handle) as writer:
            for _ in range(args.rounds):
                for kind in during:
                    body, content_type = _batch_body(args.parts, kind == "one change set")
                    started = time.perf_counter()
                    response = writer.post(
                        "$batch", content=body, headers={"Content-Type": content_type}
                    )
                    ended = time.perf_counter()
                    assert response.status_code == 200, response.text[:300]
                    assert response.text.count("HTTP/1.1 204") == args.parts
                    during[kind] += prober.between(started, ended)
                    batch_seconds[kind].append(ended - started)
                    time.sleep(0.3)

    base_p50, base_p99 = _percentile(baseline, 50), _percentile(baseline, 99)
    print(
        f"small GETs, baseline (no batch): n={len(baseline)} p50={base_p50:.1f} ms "
        f"p99={base_p99:.1f} ms"
    )
    ok = True
    for kind, values in during.items():
        p50, p99 = _percentile(values, 50), _percentile(values, 99)
        met = p99 <= TARGET_MS
        ok = ok and met
        print(
            f"small GETs during {args.parts}-operation $batch ({kind}): n={len(values)} "
            f"p50={p50:.1f} ms p99={p99:.1f} ms max={max(values):.1f} ms; "
            f"p99 ratio to baseline {p99 / base_p99:.1f}x; batch took "
            f"{statistics.mean(batch_seconds[kind]):.2f} s on average; "
            f"target p99 <= {TARGET_MS:.0f} ms: {'met' if met else 'NOT met'}"
        )
    print("RESULT:", "target met" if ok else "target NOT met")


if __name__ == "__main__":
    main()
