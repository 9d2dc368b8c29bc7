"""A flow's own output area.

Steps run on engine worker threads while the user runs other cells. Whatever a step prints,
displays or raises must land in the flow's output area - never in the cell that happens to be
running. So ``sys.stdout``/``sys.stderr`` get a routing stream, installed once: a write goes to
the sink of the *task* doing it (a context variable set by the runner around each step) and
otherwise to the stream that was there before - the running cell keeps its own output.

A step's output always goes to a per-step capture stored in run history (``flow run <id>``
shows it) and, in a kernel, to the flow's `FlowOutput`: plain output records that listeners
follow. This layer draws nothing: the notebook layer registers a presenter
(`d365nb.flows.views.register_presenters`) that shows the area as a widget.
"""

from __future__ import annotations

import contextvars
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

_sink: contextvars.ContextVar[StepSink | None] = contextvars.ContextVar(
    "d365nb_flow_sink", default=None
)
_install_lock = threading.Lock()


class RoutingStream:
    """Stands in for ``sys.stdout``/``sys.stderr``; routes each write by the writer's task.

    Everything but ``write``/``flush``/``isatty`` is the wrapped stream's (encoding, fileno, ...),
    so code that inspects ``sys.stdout`` sees what it saw before.
    """

    def __init__(self, inner: Any, name: str) -> None:
        self.inner = inner
        self.name = name

    def write(self, text: str) -> int:
        sink = _sink.get()
        if sink is None:
            return self.inner.write(text)
        sink.write(text, self.name)
        return len(text)

    def flush(self) -> None:
        if _sink.get() is None:
            self.inner.flush()

    def isatty(self) -> bool:
        return False if _sink.get() is not None else self.inner.isatty()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


def install() -> None:
    """Put routing streams in front of the current stdout/stderr (again if someone replaced them)."""
    with _install_lock:
        for name in ("stdout", "stderr"):
            current = getattr(sys, name)
            if not isinstance(current, RoutingStream):
                setattr(sys, name, RoutingStream(current, name))


class FlowOutput:
    """The output area of one flow as data: notebook-style output records (``{"output_type":
    "stream"|"display_data", ...}``) that listeners (a widget of the notebook layer) follow.

    Collected in a kernel or once someone listens; elsewhere nothing (history keeps the log).
    It keeps the last `KEEP` outputs, consecutive writes to one stream merged into one entry:
    a widget syncs its whole output list on every change, so a flow running all day must not
    grow it without end (run history keeps every step's full log).
    """

    KEEP = 200

    def __init__(self, name: str) -> None:
        self.name = name
        self.outputs: tuple[dict[str, Any], ...] = ()
        self._outputs: list[dict[str, Any]] = []
        self._listeners: list[Callable[[tuple[dict[str, Any], ...]], None]] = []
        self._collecting = in_kernel()
        self._lock = threading.Lock()  # steps of concurrent runs write from several threads

    def add_listener(self, callback: Callable[[tuple[dict[str, Any], ...]], None]) -> None:
        """Call ``callback(outputs)`` now and after every change (from the writer's thread)."""
        with self._lock:
            self._collecting = True
            self._listeners.append(callback)
            outputs = self.outputs
        callback(outputs)

    def write(self, text: str, stream: str = "stdout") -> None:
        if not self._collecting or not text:
            return
        with self._lock:
            last = self._outputs[-1] if self._outputs else None
            if last is not None and last["output_type"] == "stream" and last["name"] == stream:
                self._outputs[-1] = {**last, "text": last["text"] + text}
            else:
                self._outputs.append({"output_type": "stream", "name": stream, "text": text})
            self._publish()

    def display(self, obj: Any) -> None:
        if not self._collecting:
            return
        from IPython.core.formatters import format_display_data

        data, metadata = format_display_data(obj)
        with self._lock:
            self._outputs.append(
                {"output_type": "display_data", "data": data, "metadata": metadata}
            )
            self._publish()

    def clear(self) -> None:
        with self._lock:
            self._outputs.clear()
            self._publish()

    def _publish(self) -> None:
        del self._outputs[: -self.KEEP]
        self.outputs = tuple(self._outputs)
        for callback in list(self._listeners):
            callback(self.outputs)

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, Any]:
        """``display(flow.output)``: the live area where a presenter is registered."""
        from d365nb.flows.views import presenter

        present = presenter("output")
        if present is not None:
            bundle = present(self)
            if bundle:
                return bundle
        return {"text/plain": f"output area of flow {self.name} ({len(self.outputs)} outputs)"}


class StepSink:
    """Collects one step's output (for history) and forwards it to the flow's output area."""

    def __init__(self, output: FlowOutput | None, label: str) -> None:
        self.output = output
        self.label = label
        self.parts: list[str] = []
        self._started = False

    def write(self, text: str, stream: str = "stdout") -> None:
        self.parts.append(text)
        if self.output is not None:
            self.output.write(text, stream)

    def display(self, *objs: Any, **_: Any) -> None:
        """``display()`` inside a step: into the flow's area, summarised in history."""
        for obj in objs:
            self.parts.append(f"[display] {obj!r}\n" if not isinstance(obj, str) else obj + "\n")
            if self.output is not None:
                self.output.display(obj)

    @property
    def text(self) -> str:
        return "".join(self.parts)


@contextmanager
def routed(sink: StepSink) -> Iterator[None]:
    """Route this task's prints to ``sink`` for the duration of the block."""
    install()
    token = _sink.set(sink)
    try:
        yield
    finally:
        _sink.reset(token)


def in_kernel() -> bool:
    """True inside an IPython kernel (where a frontend can render widgets)."""
    shell = sys.modules.get("IPython")
    if shell is None:
        return False
    try:
        from IPython import get_ipython

        ip = get_ipython()
    except Exception:
        return False
    return ip is not None and getattr(ip, "kernel", None) is not None
