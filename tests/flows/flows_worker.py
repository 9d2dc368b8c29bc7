"""A flow in a process of its own, for the kill test: ``python flows_worker.py HISTORY TAG LOG``.

Connects to the sandbox named by D365NB_URL / D365NB_TOKEN (environment, so the token is not on
a command line), starts the ``crash`` flow and runs until killed.
"""

from __future__ import annotations

import os
import sys
import threading

import d365nb
from d365nb.flows import Flow

STEP_LOG = """
with open(log_path, "a") as log:
    log.write(trigger["leadid"] + "\\n")
"""


def build(conn, history: str, tag: str, log: str) -> Flow:
    flow = Flow("crash", conn, history=history, concurrency=4, page_size=50)
    flow.on_created("leads", every="1s", filter=f"startswith(subject,'{tag}')", since="beginning")
    flow.step("log", STEP_LOG, namespace={"log_path": log})
    flow.step(
        "task",
        'create tasks subject="{trigger[subject]}" regardingobjectid=leads({trigger[leadid]})',
    )
    return flow


if __name__ == "__main__":
    history, tag, log = sys.argv[1:4]
    conn = d365nb.connect(os.environ["D365NB_URL"], token=os.environ["D365NB_TOKEN"])
    build(conn, history, tag, log).start()
    print("started", flush=True)
    threading.Event().wait()
