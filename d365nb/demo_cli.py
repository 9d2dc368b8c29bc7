"""``d365nb demo``: the seed's walkthrough in a terminal, in a few seconds, offline.

Starts an embedded sandbox, runs the lead -> task flow headless (when a lead is created, create
a task whose subject is the lead's Topic - or its Last Name - regarding the lead), creates a few
leads, waits for their tasks, prints the tasks and the run history, and exits 0.

The flow comes from the same trigger line and action cell as ``notebooks/lead_to_task.ipynb``
and runs through the same headless runner as ``d365nb flow run``.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

FLOW = "lead_to_task"
TRIGGER = f"{FLOW} created leads --every 1s"
ACTION = f"{FLOW} create_task"
ACTION_BODY = """\
subject = trigger["subject"] or trigger["lastname"]
task_id = d365.create("tasks", {"subject": subject,
                                "regardingobjectid": f"leads({trigger['leadid']})"})
print(f"task {task_id} for lead {trigger['leadid']}")
task_id
"""
LEADS = [
    {"subject": "Interested in 20 e-bikes", "lastname": "Smith", "companyname": "Contoso"},
    {"subject": "Fleet renewal, 150 vans", "lastname": "Garcia", "companyname": "Fabrikam"},
    {"subject": "Solar panels for 3 sites", "lastname": "Okafor", "companyname": "Northwind"},
    {"subject": "Office coffee contract", "lastname": "Novak", "companyname": "Tailspin"},
    {"subject": "Warehouse robots pilot", "lastname": "Tanaka", "companyname": "Litware"},
]


def register(subparsers: Any) -> None:
    """Add the ``demo`` subcommand to the ``d365nb`` parser."""
    p = subparsers.add_parser(
        "demo",
        help="see a flow work: sandbox + lead -> task flow + a few leads",
        description=__doc__.split("\n\n")[1] if __doc__ else None,
    )
    p.add_argument("--leads", type=int, default=3, help=f"leads to create, 1-{len(LEADS)} (3)")
    p.add_argument(
        "--dir",
        default=None,
        help="keep the flow history here (then: d365nb flow runs --dir DIR); default: a temp dir",
    )
    p.add_argument("--timeout", type=float, default=30.0, help="seconds to wait for the tasks")
    p.set_defaults(func=run)


def _tasks_for(d365: Any, lead_ids: list[str]) -> dict[str, dict[str, Any]]:
    """The task regarding each lead, for the leads that have one."""
    from d365nb.client.query import format_filter

    found: dict[str, dict[str, Any]] = {}
    for lead_id in lead_ids:
        for page in d365.iter_pages(
            "tasks",
            filter=format_filter("_regardingobjectid_value eq {id}", id=lead_id),
            select=["subject", "_regardingobjectid_value"],
            max_pages=1,
        ):
            if page:
                found[lead_id] = page[0]
    return found


def run(args: argparse.Namespace) -> int:
    """Run the demo; 0 when every lead got its task, 1 when the wait timed out."""
    if not 1 <= args.leads <= len(LEADS):
        print(f"d365nb demo: --leads must be 1 to {len(LEADS)}", file=sys.stderr)
        return 2
    if args.dir is not None:
        return _demo(Path(args.dir), args)
    with tempfile.TemporaryDirectory(prefix="d365nb-demo-") as folder:
        return _demo(Path(folder), args)


def _demo(folder: Path, args: argparse.Namespace) -> int:
    import d365nb
    from d365nb.flows import headless
    from d365nb.flows.cli import _shutdown, format_rows, history_rows

    out = sys.stdout
    began = time.monotonic()
    folder.mkdir(parents=True, exist_ok=True)
    d365 = d365nb.connect("sandbox", alias="demo")
    print(f"sandbox: {d365.url} (demo data, embedded)", file=out)
    cells = headless.NotebookFlows(
        folder / "lead_to_task.ipynb",
        triggers=[(FLOW, TRIGGER)],
        actions=[(FLOW, ACTION, ACTION_BODY)],
    )
    stop = threading.Event()
    started = threading.Event()
    failure: list[BaseException] = []
    try:
        # A kept --dir may hold an earlier sandbox's checkpoint: checkpoints carry their
        # organisation, and a new embedded sandbox is a new one, so it is not applied.
        flows = headless.load_flows(cells, d365)

        def engine() -> None:
            try:
                headless.run_flows(flows, stop, out=out, on_started=started.set)
            except BaseException as err:  # reported by the main thread
                failure.append(err)
                started.set()

        runner = threading.Thread(target=engine, name="d365nb-demo-flows", daemon=True)
        runner.start()
        started.wait(60)
        if failure:
            raise failure[0]
        lead_ids = []
        for values in LEADS[: args.leads]:
            lead_ids.append(d365.create("leads", values))
            print(f"lead created: {values['subject']} ({values['lastname']})", file=out)
        out.flush()
        deadline = time.monotonic() + args.timeout
        tasks = _tasks_for(d365, lead_ids)
        while len(tasks) < len(lead_ids) and time.monotonic() < deadline and not failure:
            stop.wait(0.2)
            tasks = _tasks_for(d365, lead_ids)
        stop.set()
        runner.join(30)
        print("\ntasks created by the flow:", file=out)
        for lead_id in lead_ids:
            task = tasks.get(lead_id)
            subject = task["subject"] if task else "(none yet)"
            print(f"  {subject!r} regarding lead {lead_id}", file=out)
        where = folder / ".d365nb" / "flows.sqlite" if args.dir else "temporary; keep it with --dir"
        print(f"\nrun history ({where}):", file=out)
        print(format_rows(history_rows(folder, FLOW, limit=len(lead_ids))), file=out)
        missing = len(lead_ids) - len(tasks)
        seconds = time.monotonic() - began
        if missing:
            print(f"\n{missing} lead(s) got no task within {args.timeout:g}s", file=out)
            return 1
        print(f"\ndone in {seconds:.1f}s: {len(tasks)} lead(s), {len(tasks)} task(s)", file=out)
        return 0
    except ValueError as err:  # FlowError / client validation: one line
        print(f"d365nb demo: {' '.join(str(err).split())}", file=sys.stderr)
        return 2
    finally:
        stop.set()
        _shutdown(d365)
