"""One run: the flow's steps in definition order against one trigger record.

A step runs on a worker thread (user code is synchronous and may block); the run itself is a
coroutine on the engine loop, so retries wait on the engine's clock (`d365nb.flows.clock`: real
time, or a manual clock in tests) and a stop cancels at once.
A failed step fails the run and the remaining steps are recorded as skipped (Logic Apps'
``runAfter`` default). Transient failures (408, 429, 5xx, connection errors) are retried per the
step's policy, honouring ``Retry-After``; without ``--retry`` that is Logic Apps' default
(exponential, 4 retries). A step past its ``--timeout`` is TimedOut and its late result is
discarded: its thread may run on, but its writes are refused from then on.
"""

from __future__ import annotations

import asyncio
import traceback
from collections.abc import Callable
from concurrent.futures import Executor
from dataclasses import dataclass, field
from typing import Any

from d365nb.flows.clock import Clock
from d365nb.flows.history import RunRow, StepRecord
from d365nb.flows.model import Scope, Step, utcnow_iso
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
    clock: Clock = field(default_factory=Clock)  # the engine's (retry waits, step timeouts)
    scopes: dict[str, Scope] = field(default_factory=dict)  # name -> its steps, run as a block


@dataclass
class _Execution:
    """What the steps of one execution of a run share; ``outputs`` grows as steps succeed."""

    spec: RunSpec
    run: RunRow
    outputs: dict[str, Any]
    executor: Executor
    loop: asyncio.AbstractEventLoop
    attempt: int

    def scope(self, step: Step, label: str) -> tuple[RunContext, dict[str, Any]]:
        """A fresh run context for ``label`` and the names a step's code sees: its own, the
        trigger record, the earlier steps' outputs and the run."""
        run = self.run
        context = RunContext(run.run_id, run.key, self.spec.flow, attempt=self.attempt, step=label)
        namespace = dict(step.namespace or {})
        namespace.update(trigger=Record(run.change.record), steps=dict(self.outputs), run=context)
        return context, namespace


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
    """Run the steps of ``spec`` for ``run`` as Logic Apps would; never raises except on
    cancellation.

    A step runs after the step before it succeeded, unless its ``--after`` says otherwise
    (``step:failed`` etc., Logic Apps' ``runAfter``); one whose run-after is not met is
    Skipped. A step with ``--if COND --else OTHER``: OTHER runs instead when COND is false (the
    pair is one ``If``: what follows runs after the branch that ran). A ``--foreach`` step runs
    its body once per item, ``--concurrency`` at a time, results kept in order. A scope runs its
    steps as one block where its first step stands (Failed when one of them failed unhandled),
    with a run-after of its own. The run fails when a step failed (or timed out) and no step
    ran after that failure to handle it.
    """
    started = utcnow_iso()
    outputs: dict[str, Any] = {}
    execution = _Execution(spec, run, outputs, executor, asyncio.get_running_loop(), attempt)
    records: list[StepRecord] = []
    status: dict[str, str] = {}
    taken: dict[str, bool] = {}  # --if step -> whether its condition held
    by_name = {s.name: s for s in spec.steps}
    else_of = {s.otherwise: s.name for s in spec.steps if s.otherwise in by_name}
    member_of = {m: sc.name for sc in spec.scopes.values() for m in sc.members if m in by_name}
    everything = [*spec.steps, *spec.scopes.values()]

    def plan(steps: list[Step], inside: str | None) -> list[Any]:
        """Steps (and scopes, where their first member stands) in execution order."""
        order: list[Any] = []
        for s in steps:
            scope = member_of.get(s.name)
            if scope != inside:
                if inside is None and scope not in [getattr(o, "name", None) for o in order]:
                    order.append(spec.scopes[scope])  # type: ignore[index]
                continue
            if s.name in else_of:
                continue  # runs right after its --if step
            order.append(s)
            if s.otherwise in by_name:
                order.append(by_name[s.otherwise])  # type: ignore[index]
        return order

    def effective(name: str) -> str:
        """The status of ``name`` as what follows sees it: an --if/--else pair is one If."""
        other = by_name[name].otherwise if name in by_name else None
        if other in by_name and taken.get(name) is False:
            return status.get(other, "Skipped")  # type: ignore[arg-type]
        return status.get(name, "Skipped")

    def skip(name: str, why: str) -> None:
        records.append(StepRecord(name, "Skipped", error=why))
        status[name] = "Skipped"

    def unhandled(names: list[str]) -> list[str]:
        handled = {
            k
            for s in everything
            if s.after and status.get(s.name) not in (None, "Skipped")
            for k, ok in s.after.items()
            if {"Failed", "TimedOut"} & set(ok)
        }
        return [n for n in names if status.get(n) in ("Failed", "TimedOut") and n not in handled]

    async def block(items: list[Any]) -> None:
        previous: str | None = None
        for item in items:
            owner = else_of.get(item.name)
            if owner is not None:  # an --else branch: only when the owner's --if was false
                if taken.get(owner) is not False:
                    why = "it was true" if owner in taken else "it did not run"
                    skip(item.name, f"skipped: else of {owner}, whose --if {why}")
                    continue
            else:
                if item.after is not None:
                    after = {k: tuple(v) for k, v in item.after.items()}
                    seen = {k: status.get(k, "Skipped") for k in after}
                else:
                    after = {previous: ("Succeeded",)} if previous else {}
                    seen = {k: effective(k) for k in after}
                previous = item.name
                unmet = [(k, ok) for k, ok in after.items() if seen[k] not in ok]
                if unmet:
                    k, ok = unmet[0]
                    why = f"skipped: runs after {k} ({'|'.join(ok)}), which is {seen[k]}"
                    skip(item.name, why)
                    for member in getattr(item, "members", ()):
                        if member in by_name:
                            skip(member, f"skipped: its scope {item.name} did not run")
                    continue
            if isinstance(item, Scope):
                record = StepRecord(item.name, "Running", started=utcnow_iso())
                record.inputs = {"scope": list(item.members)}
                records.append(record)
                inner = [s for s in spec.steps if member_of.get(s.name) == item.name]
                await block(plan(inner, item.name))
                failed = unhandled([s.name for s in inner])
                record.status = "Failed" if failed else "Succeeded"
                if failed:
                    record.error = f"step {failed[0]!r} failed: {status_error(failed[0])}"
                record.attempts, record.ended = 1, utcnow_iso()
                status[item.name] = record.status
                continue
            if item.foreach:
                parent, iterations, value = await _run_foreach(execution, item)
                records.append(parent)
                records.extend(iterations)
                record = parent
            else:
                record, value = await _run_step(execution, item)
                records.append(record)
                if item.when:
                    taken[item.name] = value is not _SKIPPED
            status[item.name] = record.status
            if record.status == "Succeeded":
                outputs[item.name] = value

    def status_error(name: str) -> str | None:
        return next((r.error for r in records if r.name == name), None)

    await block(plan(spec.steps, None))
    # Inside a scope a failure is the scope's: the run sees the scope (handled or not).
    top = [s.name for s in spec.steps if s.name not in member_of] + list(spec.scopes)
    failures = unhandled(top)
    error = f"step {failures[0]!r}: {status_error(failures[0])}" if failures else None
    return RunResult(
        run.run_id, "Failed" if failures else "Succeeded", error, records, started, utcnow_iso()
    )


def foreach_items(expression: str, namespace: dict[str, Any], step: str) -> list[Any]:
    """The items of ``--foreach``: a template naming one value (``{steps[find]}``) or a Python
    expression; a list step's records (a DataFrame, or ``{"value": [...]}``) become dicts."""
    text = expression.strip()
    if text.startswith("{") and text.endswith("}") and text.count("{") == 1:
        from string import Formatter

        value = Formatter().get_field(text[1:-1], (), namespace)[0]
    else:
        value = eval(compile(text, f"<foreach {step}>", "eval"), namespace)  # noqa: S307
    if hasattr(value, "to_dict") and hasattr(value, "columns"):  # a DataFrame of records
        frame = value.reset_index() if value.index.name else value
        return frame.to_dict("records")
    if isinstance(value, dict) and isinstance(value.get("value"), list):
        return list(value["value"])
    if isinstance(value, str | bytes | dict) or value is None:
        raise TypeError(f"--foreach {expression} gave {type(value).__name__}, not a list of items")
    return list(value)


async def _run_foreach(
    execution: _Execution, step: Step
) -> tuple[StepRecord, list[StepRecord], list[Any]]:
    parent = StepRecord(step.name, "Running", started=utcnow_iso())
    inputs: dict[str, Any] = {"foreach": step.foreach, "concurrency": step.concurrency}
    parent.inputs = inputs
    _, namespace = execution.scope(step, step.name)
    try:
        items = await execution.loop.run_in_executor(
            execution.executor, foreach_items, step.foreach, namespace, step.name
        )
    except Exception as err:  # noqa: BLE001 - a bad expression fails the step, in one line
        parent.status, parent.error = "Failed", describe_error(err, step.name)
        parent.attempts = 1
        parent.ended = utcnow_iso()
        return parent, [], []
    gate = asyncio.Semaphore(max(1, step.concurrency))

    async def one(index: int, item: Any) -> tuple[StepRecord, Any]:
        async with gate:
            return await _run_step(execution, step, item=(index, item))

    done = await asyncio.gather(*(one(i, item) for i, item in enumerate(items)))
    iterations = [record for record, _ in done]
    values = [None if value is _SKIPPED else value for _, value in done]
    bad = [r for r in iterations if r.status in ("Failed", "TimedOut")]
    parent.status = "Failed" if bad else "Succeeded"
    if bad:
        parent.error = (
            f"{len(bad)} of {len(items)} iteration(s) failed; {bad[0].name}: {bad[0].error}"
        )
    parent.attempts = 1
    inputs["items"] = len(items)
    parent.outputs = summarise(values)
    parent.ended = utcnow_iso()
    return parent, iterations, values


async def _run_step(
    execution: _Execution, step: Step, item: tuple[int, Any] | None = None
) -> tuple[StepRecord, Any]:
    # One iteration of a --foreach is its own record, `step[i]`, with `item` in scope; its
    # creates get ids of their own (the run context names the iteration).
    spec = execution.spec
    label = step.name if item is None else f"{step.name}[{item[0]}]"
    record = StepRecord(label, "Running", started=utcnow_iso())
    sink = StepSink(spec.output, label)
    condition = step.check
    tries = 0
    value: Any = None
    while True:
        tries += 1
        context, namespace = execution.scope(step, label)
        namespace.update(
            d365=StepConnection(spec.conn, context, spec.watched, spec.note_write),
            display=sink.display,
        )
        if item is not None:
            namespace["item"] = item[1]

        def call(namespace: dict[str, Any] = namespace) -> Any:
            with routed(sink):
                if condition is not None and not condition(namespace):
                    return _SKIPPED
                return step.func(namespace)

        try:
            future = execution.loop.run_in_executor(execution.executor, call)
            value = await spec.clock.within(step.timeout, future)  # None = no limit
        except TimeoutError:
            context.abandoned = True  # the thread runs on; its writes are refused
            record.status, record.error = "TimedOut", f"timed out after {step.timeout:g}s"
            sink.write(f"[{label}] {record.error}\n", "stderr")
            break
        except asyncio.CancelledError:
            context.abandoned = True  # stopped: the run is re-executed on the next start
            raise
        except BaseException as err:  # noqa: BLE001 - user code may raise anything
            message = describe_error(err, step.name)
            if is_transient(err) and tries <= step.retry.retries:
                delay = step.retry.delay(tries, getattr(err, "retry_after", None))
                sink.parts.append(f"[retry {tries}] {message}; waiting {delay:g}s\n")
                await spec.clock.sleep(delay)
                continue
            record.status, record.error = "Failed", message
            sink.write(f"[{label}] {message}\n", "stderr")
            break
        if value is _SKIPPED:
            record.status = "Skipped"
            record.error = "skipped: --if was false"
        else:
            record.status = "Succeeded"
            record.outputs = summarise(value)
        break
    record.attempts = tries
    record.inputs = summarise(namespace.get("_inputs")) if "_inputs" in namespace else step.source
    record.ended = utcnow_iso()
    record.log = sink.text
    return record, value
