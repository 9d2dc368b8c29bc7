"""``d365nb flow run <notebook.ipynb> [--flow NAME] [--org URL | --sandbox]``,
``d365nb flow runs [--dir D] [--flow NAME] [--limit N]`` and
``d365nb flow export <notebook.ipynb> [--flow NAME] (--org URL | --sandbox) [--target URL]
[--legacy] [--arm] [-o FILE]``.

``flow run`` polls the notebook's flows until SIGINT/SIGTERM (then exits 0), printing one line
per finished run. ``--org`` signs in like ``d365nb.connect(url)`` (a bearer token in the
``D365NB_TOKEN`` environment variable, else ``AZURE_TENANT_ID``/``AZURE_CLIENT_ID``/
``AZURE_CLIENT_SECRET``, else device code); ``--sandbox`` starts an embedded sandbox with demo
data. Errors a user can fix are one line on stderr with exit code 2.
"""

from __future__ import annotations

import argparse
import os
import signal
import sqlite3
import sys
import tempfile
import threading
import time
from datetime import datetime
from pathlib import Path
from typing import Any

from d365nb.flows.model import FlowError

TOKEN_ENV = "D365NB_TOKEN"
STEP_THREADS = "d365nb-step"  # the engine's worker thread names
STEP_GRACE_SECONDS = 2.0  # how long a stopped flow's step code may take to return


def register(subparsers: Any) -> None:
    """Add ``flow run`` and ``flow runs`` to the ``d365nb`` parser."""
    p = subparsers.add_parser(
        "flow",
        help="run a notebook's flows headless; show their run history",
        description="Run notebook flows without Jupyter, or print their run history.",
    )
    sub = p.add_subparsers(dest="flow_command", required=True)
    run = sub.add_parser(
        "run",
        help="run a notebook's flows until SIGINT/SIGTERM",
        description="Run the flows a notebook defines (its %d365 trigger lines and %%d365 action "
        "cells; no other cell is run) with the notebook's own checkpoints and run history "
        "(.d365nb/flows.sqlite beside it), until SIGINT/SIGTERM.",
        epilog=f"--org signs in with a bearer token from ${TOKEN_ENV} if set, else "
        "AZURE_TENANT_ID/AZURE_CLIENT_ID/AZURE_CLIENT_SECRET, else a device code.",
    )
    run.add_argument("notebook", help="the .ipynb file")
    run.add_argument(
        "--flow",
        help="run only this flow (default: every flow in the notebook; also one built with the Python API and stored in .d365nb/flows.sqlite)",
    )
    where = run.add_mutually_exclusive_group(required=True)
    where.add_argument(
        "--org", metavar="URL", help="organisation, e.g. https://contoso.crm.dynamics.com"
    )
    where.add_argument("--sandbox", action="store_true", help="an embedded sandbox with demo data")
    run.set_defaults(func=cmd_run)
    runs = sub.add_parser(
        "runs",
        help="print flow run history",
        description="Print the run history kept in <dir>/.d365nb/flows.sqlite.",
    )
    runs.add_argument("--dir", default=".", help="the notebook's folder (default: here)")
    runs.add_argument("--flow", help="only this flow")
    runs.add_argument("--limit", type=int, default=20, help="runs per flow, newest first (20)")
    runs.set_defaults(func=cmd_runs)
    export = sub.add_parser(
        "export",
        help="export a notebook's flow as an Azure Logic Apps workflow",
        description="Export a flow the notebook defines as a Logic Apps (Consumption) workflow "
        "definition (or ARM template). Table metadata comes from --org or --sandbox.",
    )
    export.add_argument("notebook", help="the .ipynb file")
    export.add_argument("--flow", help="the flow (needed when the notebook defines several)")
    source = export.add_mutually_exclusive_group(required=True)
    source.add_argument("--org", metavar="URL", help="organisation to read table metadata from")
    source.add_argument("--sandbox", action="store_true", help="read metadata from a sandbox")
    export.add_argument(
        "--target", metavar="URL", help="organisation the workflow runs against (default: --org)"
    )
    export.add_argument("--legacy", action="store_true", help="legacy Dynamics 365 trigger")
    export.add_argument("--arm", action="store_true", help="wrap in an ARM template")
    export.add_argument(
        "--placeholders", action="store_true", help="export Python steps as Compose placeholders"
    )
    export.add_argument(
        "--connection",
        choices=("oauth", "service-principal"),
        default="oauth",
        help="the ARM template's API connection",
    )
    export.add_argument("-o", "--out", help="write to this file (default: stdout)")
    export.set_defaults(func=cmd_export)


def _fail(command: str, message: str, code: int = 2) -> int:
    print(f"d365nb flow {command}: {' '.join(str(message).split())}", file=sys.stderr)
    return code


def connect(org: str | None, sandbox: bool) -> Any:
    """The connection ``flow run`` works on (the token never reaches output)."""
    from d365nb.client.api import connect

    if sandbox:
        return connect("sandbox", alias="sandbox")
    token = os.environ.get(TOKEN_ENV) or None
    return connect(org, token=token) if token else connect(org)


def cmd_run(args: argparse.Namespace) -> int:
    """``d365nb flow run``: load, start, log runs until a signal, stop cleanly."""
    from d365nb.client.errors import D365Error
    from d365nb.flows import headless

    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    out = sys.stdout
    try:
        cells = headless.read_notebook(args.notebook)
        if not cells.triggers and not args.flow:
            raise FlowError(f"{cells.path.name} defines no flows: it has no %d365 trigger cell")
        conn = connect(args.org, args.sandbox)
    except (FlowError, D365Error, ValueError) as err:
        return _fail("run", str(err))
    code = 0
    try:
        flows = headless.load_flows(cells, conn, only=args.flow)
        where = "an embedded sandbox (demo data)" if args.sandbox else conn.url
        print(f"{cells.path.name}: {len(flows)} flow(s) on {where}", file=out)
        # A new embedded sandbox is a new organisation: once it holds the flow's lease, the
        # engine leaves the old organisation's checkpoint and queued runs alone and says so.
        headless.run_flows(flows, stop, out=out)
    except (FlowError, D365Error, ValueError) as err:
        code = _fail("run", str(err))
    finally:
        _shutdown(conn)
    _leave_blocked_steps(code)
    return code


def _shutdown(conn: Any) -> None:
    from d365nb.flows import engine

    if engine._engine is not None:
        engine._engine.shutdown()
    conn.close()


def _leave_blocked_steps(code: int, grace: float = STEP_GRACE_SECONDS) -> None:
    """Exit now if step code still blocks a worker thread after the flows stopped.

    Python joins the engine's step workers at exit, so a sleeping step could hold SIGTERM off
    for minutes. Its run is already stored as unfinished and runs again on the next start
    (creates keep their run-key ids, so nothing is written twice).
    """
    deadline = time.monotonic() + grace

    def busy() -> list[threading.Thread]:
        return [
            t for t in threading.enumerate() if t.name.startswith(STEP_THREADS) and t.is_alive()
        ]

    while busy() and time.monotonic() < deadline:
        busy()[0].join(max(0.0, deadline - time.monotonic()))
    if busy():
        print(
            "d365nb flow run: a step was still running; its run stays queued for the next start",
            file=sys.stderr,
        )
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)


# -- flow export ------------------------------------------------------------------------------
def cmd_export(args: argparse.Namespace) -> int:
    """``d365nb flow export``: the flow's Logic Apps JSON on stdout or in a file."""
    import json

    from d365nb.client.errors import D365Error
    from d365nb.flows import headless
    from d365nb.flows.export_command import export_with

    conn = None
    try:
        cells = headless.read_notebook(args.notebook)
        if not cells.triggers and not args.flow:
            raise FlowError(f"{cells.path.name} defines no flows: it has no %d365 trigger cell")
        if args.flow is None and len(cells.names) > 1:
            raise FlowError(
                f"{cells.path.name} defines {len(cells.names)} flows "
                f"({', '.join(cells.names)}): choose one with --flow"
            )
        conn = connect(args.org, args.sandbox)
        # Built on a throwaway store: exporting must not touch the notebook's checkpoints.
        with tempfile.TemporaryDirectory(prefix="d365nb-export-") as scratch:
            from d365nb.flows.history import History

            store = History(Path(scratch) / "flows.sqlite")
            [flow] = headless.load_flows(
                cells, conn, only=args.flow or cells.names[0], history=store
            )
            result = export_with(flow, args, args.target)
            store.close()
    except (FlowError, D365Error, ValueError) as err:
        return _fail("export", str(err))
    finally:
        if conn is not None:
            conn.close()
    for note in result.warnings:
        print(f"warning: {note}", file=sys.stderr)
    text = json.dumps(result.document, indent=2) + "\n"
    if not args.out:
        sys.stdout.write(text)
        return 0
    try:
        Path(args.out).write_text(text, encoding="utf-8")
    except OSError as err:
        return _fail("export", f"cannot write {args.out}: {err.strerror or err}")
    kind = "ARM template" if args.arm else "workflow definition"
    print(f"flow {flow.name} exported to {args.out} (Logic Apps {kind})", file=sys.stderr)
    return 0


# -- flow runs --------------------------------------------------------------------------------
# org: the organisation a run was for (the start of its id), so runs of several stay apart.
_COLUMNS = ("flow", "run", "status", "change", "record", "started", "seconds", "org", "error")


def _seconds(started: str | None, ended: str | None) -> str:
    if not started or not ended:
        return ""
    try:
        a = datetime.fromisoformat(started.replace("Z", "+00:00"))
        b = datetime.fromisoformat(ended.replace("Z", "+00:00"))
    except ValueError:
        return ""
    return f"{(b - a).total_seconds():.2f}"


def history_rows(
    folder: str | Path, flow: str | None = None, limit: int = 20
) -> list[dict[str, str]]:
    """Run history rows (newest first per flow) from ``<folder>/.d365nb/flows.sqlite``."""
    path = Path(folder) / ".d365nb" / "flows.sqlite"
    if not path.is_file():
        raise FlowError(f"no flow history in {Path(folder).resolve()} (no .d365nb/flows.sqlite)")
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=30)
    db.row_factory = sqlite3.Row
    try:
        names = [r[0] for r in db.execute("SELECT DISTINCT flow FROM runs ORDER BY flow")]
        if flow is not None:
            if flow not in names:
                known = ", ".join(names) or "none"
                raise FlowError(f"no runs of flow {flow!r} in {path} (flows with runs: {known})")
            names = [flow]
        # A store written before runs recorded their organisation has no org column.
        has_org = any(r[1] == "org" for r in db.execute("PRAGMA table_info(runs)"))
        org = "org" if has_org else "NULL AS org"
        rows = []
        for name in names:
            for r in db.execute(
                f"SELECT run_id, status, change, record_id, started, ended, error, {org} FROM runs "
                "WHERE flow=? ORDER BY seq DESC LIMIT ?",
                (name, max(1, limit)),
            ):
                rows.append(
                    {
                        "flow": name,
                        "run": r["run_id"],
                        "status": r["status"],
                        "change": r["change"] or "",
                        "record": r["record_id"] or "",
                        "started": (r["started"] or "")[:19].replace("T", " "),
                        "seconds": _seconds(r["started"], r["ended"]),
                        "org": (r["org"] or "")[:8],
                        "error": " ".join((r["error"] or "").split())[:80],
                    }
                )
        return rows
    finally:
        db.close()


def format_rows(rows: list[dict[str, str]]) -> str:
    """A plain text table (no pandas: the command should answer at once)."""
    widths = {c: max([len(c), *(len(r[c]) for r in rows)]) for c in _COLUMNS}
    lines = ["  ".join(c.ljust(widths[c]) for c in _COLUMNS).rstrip()]
    lines += ["  ".join(r[c].ljust(widths[c]) for c in _COLUMNS).rstrip() for r in rows]
    return "\n".join(lines)


def cmd_runs(args: argparse.Namespace) -> int:
    """``d365nb flow runs``: print the run history table."""
    try:
        rows = history_rows(args.dir, args.flow, args.limit)
    except (FlowError, sqlite3.Error) as err:
        return _fail("runs", str(err))
    try:
        print(format_rows(rows) if rows else "no runs yet")
        sys.stdout.flush()
    except BrokenPipeError:  # `d365nb flow runs | head`: the reader has seen enough
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    return 0
