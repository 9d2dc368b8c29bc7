"""One run: the flow's steps in definition order against one trigger record.

A step runs on a worker thread (user code is synchronous and may block); the run itself is a
coroutine on the engine loop, so retries wait with ``asyncio.sleep`` and a stop cancels at once.
A failed step fails the run and the remaining steps are recorded as skipped (Logic Apps'
``runAfter`` default). Transient failures (408, 429, 5xx, connection errors) are retried per the
step's policy, honouring ``Retry-After``.
"""

from __future__ import annotations

import asyncio
import traceback
from collections.abc import Callable
from concurrent.futures import Executor
from dataclasses import dataclass
from typing import Any

from d365nb.flows.history import RunRow, StepRecord
from d365nb.flows.model import Step, utcnow_iso
from d365nb.flows.output import FlowOutput, StepSink, routed
from d365nb.flows.steps import Record, RunContext, StepConnection

_SKIPPED = object()
TRANSIENT_STATUSES = frozenset({408, 429})


@dataclass
class RunSpec:
    """What a run needs from its flow, captured when the run starts."""

    flow: str
    steps: list[Step]
    conn: Any
    watched: set[str]  # the trigger's table names (entity set and logical name)
    output: FlowOutput | None
    note_write: Callable[..., None]  # (record_id, undo=False): the loop guard


@dataclass
class RunResult:
    run_id: str
    status: str
    error: str | None
    steps: list[StepRecord]
    started: str
    ended: str


def is_transient(err: BaseException) -> bool:
    """Worth retrying: throttling, server errors, timeouts of the request, lost connections."""
    flagged = getattr(err, "is_transient", None)
    if flagged:
        return True
    status = getattr(err, "status", None)
    if isinstance(status, int) and (status in TRANSIENT_STATUSES or status >= 500):
        return True
    # httpx transport errors and OS-level connection failures, without importing httpx here.
    names = {cls.__name__ for cls in type(err).__mro__}
    return bool(names & {"TransportError", "ConnectionError", "TimeoutException"})


def describe_error(err: BaseException, step: str) -> str:
    """One line: the error, and the line of the step's code that raised it."""
    line = None
    for frame in traceback.extract_tb(err.__traceback__):
        if frame.filename == f"<step {step}>":
            line = frame.lineno
    text = " ".join(str(err).split()) or type(err).__name__
    if not getattr(err, "status", None) and type(err).__name__ not in text:
        text = f"{type(err).__name__}: {text}"
    return f"{text} (line {line})" if line else text


def summarise(value: Any) -> Any:
    """A step output as stored in history: JSON-able, bounded."""
    if value is None or isinstance(value, str | int | float | bool):
        return value
    if hasattr(value, "shape") and hasattr(value, "columns"):  # a DataFrame
        return {"rows": int(value.shape[0]), "columns": [str(c) for c in value.columns][:50]}
    if isinstance(value, dict):
        return {str(k): summarise(v) for k, v in list(value.items())[:200]}
    if isinstance(value, list | tuple | set):
        return [summarise(v) for v in list(value)[:200]]
    return repr(value)[:2000]


async def execute(spec: RunSpec, run: RunRow, executor: Executor, attempt: int = 1) -> RunResult:
    """Run every step of ``spec`` for ``run``; never raises except on cancellation."""
    loop = asyncio.get_running_loop()
    started = utcnow_iso()
    outputs: dict[str, Any] = {}
    records: list[StepRecord] = []
    failed: str | None = None
    error: str | None = None
    for step in spec.steps:
        if failed is not None:
            records.append(
                StepRecord(step.name, "Skipped", error=f"skipped: step {failed!r} failed")
            )
            continue
        record = await _run_step(spec, run, step, outputs, executor, loop, attempt)
        records.append(record)
        if record.status in ("Failed", "TimedOut"):
            failed, error = step.name, f"step {step.name!r}: {record.error}"
    status = "Failed" if failed else "Succeeded"
    return RunResult(run.run_id, status, error, records, started, utcnow_iso())


async def _run_step(
    spec: RunSpec,
    run: RunRow,
    step: Step,
    outputs: dict[str, Any],
    executor: Executor,
    loop: asyncio.AbstractEventLoop,
    attempt: int,
) -> StepRecord:
    record = StepRecord(step.name, "Running", started=utcnow_iso())
    sink = StepSink(spec.output, step.name)
    condition = step.check
    tries = 0
    while True:
        tries += 1
        context = RunContext(run.run_id, run.key, spec.flow, attempt=attempt, step=step.name)
        namespace = dict(step.namespace or {})
        namespace.update(
            trigger=Record(run.change.record),
            d365=StepConnection(spec.conn, context, spec.watched, spec.note_write),
            steps=dict(outputs),
            run=context,
            display=sink.display,
        )

        def call(namespace: dict[str, Any] = namespace) -> Any:
            with routed(sink):
                if condition is not None and not condition(namespace):
                    return _SKIPPED
                return step.func(namespace)

        try:
            future = loop.run_in_executor(executor, call)
            async with asyncio.timeout(step.timeout):  # None = no limit
                value = await future
        except TimeoutError:
            context.abandoned = True  # the thread runs on; its writes are refused
            record.status, record.error = "TimedOut", f"timed out after {step.timeout:g}s"
            sink.write(f"[{step.name}] {record.error}\n", "stderr")
            break
        except asyncio.CancelledError:
            context.abandoned = True  # stopped: the run is re-executed on the next start
            raise
        except BaseException as err:  # noqa: BLE001 - user code may raise anything
            message = describe_error(err, step.name)
            if is_transient(err) and tries <= step.retry.retries:
                delay = step.retry.delay(tries, getattr(err, "retry_after", None))
                sink.parts.append(f"[retry {tries}] {message}; waiting {delay:g}s\n")
                await asyncio.sleep(delay)
                continue
            record.status, record.error = "Failed", message
            sink.write(f"[{step.name}] {message}\n", "stderr")
            break
        if value is _SKIPPED:
            record.status = "Skipped"
            record.error = "skipped: --if was false"
        else:
            record.status = "Succeeded"
            outputs[step.name] = value
            record.outputs = summarise(value)
        break
    record.attempts = tries
    record.inputs = summarise(namespace.get("_inputs")) if "_inputs" in namespace else step.source
    record.ended = utcnow_iso()
    record.log = sink.text
    return record
