"""`d365nb sandbox`: serve a sandbox until SIGINT/SIGTERM.

Contract (scripts rely on it): once the server accepts requests, exactly one JSON line on stdout,
`{"url": ..., "token": ..., "api": ...}` (+ `"ca"` with `--tls`); logs go to stderr; a signal
stops it with exit code 0.
"""

from __future__ import annotations

import argparse
import json
import logging
import signal
import sys
import threading
from typing import Any


def register(subparsers: Any) -> None:
    """Add the `sandbox` subcommand to the `d365nb` parser."""
    p = subparsers.add_parser(
        "sandbox",
        help="run a local Dataverse Web API emulator",
        description="Serve an offline Dataverse Web API v9.2 emulator until interrupted. "
        "Prints one JSON line with url, token and api once it accepts requests.",
    )
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=0, help="port (default 0: a free port)")
    p.add_argument("--token", default=None, help="bearer token to require (default: random)")
    p.add_argument(
        "--data",
        choices=("demo", "empty"),
        default="demo",
        help="start with demo data or empty (default demo)",
    )
    p.add_argument(
        "--db",
        default=None,
        metavar="PATH",
        help="SQLite file to keep the data in across restarts (default: in memory)",
    )
    p.add_argument(
        "--tls",
        action="store_true",
        help="serve https with a self-signed certificate (its path is printed as ca)",
    )
    p.add_argument(
        "--limits",
        default=None,
        metavar="SPEC",
        help="service-protection limits, e.g. requests=6000,window=300,concurrent=52",
    )
    p.add_argument(
        "--faults",
        default=None,
        metavar="SPEC",
        help="fault injection rates, e.g. 503=0.1,429=0.1,drop=0.05,latency=0.02",
    )
    p.add_argument("--seed", type=int, default=None, help="seed for demo data and faults")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Start the sandbox, print the JSON line, wait for a signal."""
    logging.basicConfig(
        stream=sys.stderr,
        level=logging.INFO,
        format="%(asctime)s %(name)s %(levelname)s %(message)s",
    )
    from .server import start

    # Handlers first: a signal that arrives while the demo data is being made must still end
    # the process with 0 (not a KeyboardInterrupt traceback or a default SIGTERM death).
    stop = threading.Event()

    def on_signal(signum: int, frame: Any) -> None:
        stop.set()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    try:
        handle = start(
            host=args.host,
            port=args.port,
            token=args.token,
            data=args.data,
            db=args.db,
            tls=args.tls,
            limits=args.limits,
            faults=args.faults,
            seed=args.seed,
        )
    except (ValueError, OSError, RuntimeError) as exc:
        print(f"d365nb sandbox: {str(exc).splitlines()[0]}", file=sys.stderr)
        return 2
    if stop.is_set():  # stopped before it was ready: no JSON line, nothing to serve
        handle.stop()
        return 0
    line = {"url": handle.url, "token": handle.token, "api": handle.api}
    if handle.ca:
        line["ca"] = handle.ca
    sys.stdout.write(json.dumps(line) + "\n")
    sys.stdout.flush()
    try:
        while not stop.wait(0.5):
            if not handle.running:
                logging.getLogger("d365nb.sandbox").error("the server stopped unexpectedly")
                return 1
    finally:
        handle.stop()
    return 0
