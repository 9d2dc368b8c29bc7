"""What a flow is made of: its trigger, its steps and their retry policies.

Pure data and parsing, no I/O: the engine, the runner and the notebook commands share these.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

from d365nb.client.retry import RetryPolicy as ClientRetryPolicy
from d365nb.flows.definitions import TRIGGER_KINDS

TriggerKind = Literal["created", "updated", "deleted"]
KINDS: tuple[str, ...] = tuple(TRIGGER_KINDS)  # `d365nb.flows.definitions` declares them

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_INTERVAL = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhd])\s*$", re.IGNORECASE | re.ASCII)
# Logic Apps' own upper bounds per unit (limits doc), so an exported flow stays deployable.
_MAX_SECONDS = {"s": 9_999_999, "m": 72_000 * 60, "h": 12_000 * 3600, "d": 500 * 86400}
# The shortest trigger recurrence: Logic Apps' Recurrence takes a whole number of seconds, at
# least 1 (frequency Second, interval 1..9,999,999 - limits doc), so a flow polled faster could
# not be exported as it runs here. Step timeouts and retry waits may be shorter.
MIN_RECURRENCE = 1.0


class FlowError(ValueError):
    """A flow definition or command the user can fix; `str()` is one actionable line."""


def parse_interval(text: str | float | int, minimum: float = 0.0, what: str = "interval") -> float:
    """Seconds in a duration such as ``10s``, ``3m``, ``1h`` or ``1d`` (or a number of seconds).

    NaN, infinities, zero, negative values, anything below ``minimum`` and anything longer than
    Logic Apps allows for the unit are refused with one line.

    >>> parse_interval("3m")
    180.0
    """
    hint = "e.g. 10s, 3m, 1h, 1d"
    if isinstance(text, bool):
        raise FlowError(f"bad {what} {text!r}: use a number and a unit s|m|h|d, {hint}")
    if isinstance(text, int | float):
        if not math.isfinite(text):
            raise FlowError(f"bad {what} {text!r}: it must be a finite number of seconds, {hint}")
        seconds, unit = float(text), "s"
    else:
        match = _INTERVAL.match(str(text))
        if not match:
            raise FlowError(f"bad {what} {text!r}: use a number and a unit s|m|h|d, {hint}")
        number, unit = float(match.group(1)), match.group(2).lower()
        seconds = number * _UNITS[unit]
    if seconds <= 0:
        raise FlowError(f"bad {what} {text!r}: it must be more than zero, {hint}")
    if seconds < minimum:
        raise FlowError(f"bad {what} {text!r}: the shortest allowed is {minimum:g}s")
    if seconds > _MAX_SECONDS[unit]:
        raise FlowError(f"bad {what} {text!r}: longer than Logic Apps allows for that unit")
    return seconds


def parse_recurrence(text: str | float | int) -> float:
    """A trigger's polling interval (``--every``): at least `MIN_RECURRENCE` seconds."""
    return parse_interval(text, MIN_RECURRENCE, "interval")


def format_interval(seconds: float) -> str:
    """The shortest ``N<unit>`` spelling of an interval (``180`` -> ``3m``)."""
    for unit in ("d", "h", "m"):
        size = _UNITS[unit]
        if seconds >= size and seconds % size == 0:
            return f"{int(seconds // size)}{unit}"
    return f"{seconds:g}s"


def parse_since(value: str | datetime | None) -> str | None:
    """Normalise ``--since``: ``"now"``, ``"beginning"`` or an ISO-8601 UTC timestamp."""
    if value is None:
        return None
    if isinstance(value, datetime):
        moment = value if value.tzinfo else value.replace(tzinfo=UTC)
        return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    text = str(value).strip()
    if text.lower() in ("now", "beginning"):
        return text.lower()
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise FlowError(
            f"bad --since {text!r}: use now, beginning or an ISO time such as 2026-01-31T09:00:00Z"
        ) from None
    return parse_since(moment)


@dataclass(frozen=True)
class RetryPolicy(ClientRetryPolicy):
    """How a failed step is retried (Logic Apps' ``retryPolicy``): the client's policy class
    (``d365nb.client.retry``, which computes the waits) with Logic Apps' defaults.

    Retried: HTTP 408, 429 and 5xx, and connection failures; a ``Retry-After`` from the server
    wins over the computed delay. ``exponential`` waits ``interval * 2**(n-1)`` before retry n
    (capped by ``maximum``); ``fixed`` waits ``interval``; ``none`` never retries.

    The default is Logic Apps' own (exponential, 4 retries, ``PT7S``, at most ``PT1H``), so a
    flow behaves the same once exported. Logic Apps draws retry n at random from
    ``[i*2**(n-2), i*2**(n-1)]``; we wait the top of that band (7, 14, 28, 56 s) - never later
    than Logic Apps would, and predictable in run history. These retries come on top of the
    client's own short retries of throttled and failed requests: a step is retried only once
    the client gave up.
    """

    count: int = 4
    interval: float = 7.0
    maximum: float = 3600.0
    max_retry_after: float | None = None
    jitter: bool = False

    def __post_init__(self) -> None:
        if self.type not in ("exponential", "fixed", "none"):
            raise FlowError(f"bad retry type {self.type!r}: use exponential, fixed or none")
        numbers = (self.count, self.interval, self.minimum, self.maximum)
        if any(not isinstance(n, int | float) or not math.isfinite(n) for n in numbers):
            raise FlowError("bad retry policy: count and intervals must be finite numbers")
        if self.count < 0 or self.interval < 0:
            raise FlowError("bad retry policy: count and interval must not be negative")

    @classmethod
    def parse(cls, value: RetryPolicy | str | dict[str, Any] | None) -> RetryPolicy:
        """Accept a policy, a dict of its fields, or ``none`` / ``default`` / ``fixed:5s:3`` /
        ``exponential:2s:4`` (type, interval, retries)."""
        if value is None:
            return cls()
        if isinstance(value, RetryPolicy):
            return value
        if isinstance(value, dict):
            return cls(**value)
        parts = str(value).strip().lower().split(":")
        kind = parts[0] or "exponential"
        if kind == "none":
            return cls(type="none", count=0)
        if kind == "default":
            return cls()
        interval = parse_interval(parts[1]) if len(parts) > 1 and parts[1] else cls.interval
        try:
            count = int(parts[2]) if len(parts) > 2 else 4
        except ValueError:
            raise FlowError(
                f"bad retry {value!r}: use none, fixed:5s:3 or exponential:2s:4"
            ) from None
        return cls(type=kind, interval=interval, count=count)  # type: ignore[arg-type]


@dataclass
class Trigger:
    """When a record of ``table`` is created / updated / deleted, checked every ``every`` seconds."""

    kind: str
    table: str  # entity-set name (leads)
    every: float
    filter: str | None = None
    select: list[str] | None = None
    columns: list[str] | None = None  # updated only: fire only when one of these changed
    since: str | None = None  # None = "now" on first start
    mode: str = "auto"  # auto | watermark | changes (change tracking)
    # The connector trigger's $orderby / $top: the order of one poll's runs ("col [asc|desc]")
    # and how many records one poll takes at most (the rest wait for the next poll).
    orderby: list[str] | None = None
    top: int | None = None

    def describe(self) -> str:
        text = f"when a record of {self.table} is {self.kind}, every {format_interval(self.every)}"
        if self.filter:
            text += f" where {self.filter}"
        if self.columns:
            text += f" (columns {', '.join(self.columns)})"
        if self.orderby:
            text += f", ordered by {', '.join(self.orderby)}"
        if self.top:
            text += f", at most {self.top} per poll"
        return text

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "table": self.table,
            "every": self.every,
            "filter": self.filter,
            "select": self.select,
            "columns": self.columns,
            "since": self.since,
            "mode": self.mode,
            "orderby": self.orderby,
            "top": self.top,
        }


@dataclass
class Step:
    """One action: Python source, a declarative ``%d365``-style command, or a callable."""

    name: str
    func: Callable[..., Any]  # compiled: func(context) -> output
    source: str  # what the user wrote, shown in `flow steps` and stored in run history
    kind: str = "python"  # python | declarative | callable
    when: str | None = None  # --if expression evaluated against the run's namespace
    check: Callable[[dict[str, Any]], bool] | None = None  # `when`, compiled
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    timeout: float | None = None
    namespace: dict[str, Any] | None = None  # the notebook's globals, when defined from a cell
    # Control flow (Logic Apps' runAfter, Foreach and If): None = after the step before, when it
    # Succeeded; else step -> the statuses it may end in for this one to run.
    after: dict[str, tuple[str, ...]] | None = None
    foreach: str | None = None  # the items: a template ({steps[find]}) or a Python expression
    concurrency: int = 1  # --foreach iterations at the same time (Logic Apps' repetitions)
    otherwise: str | None = None  # --else: the step that runs when --if is false


@dataclass
class Scope:
    """``%%d365 scope <flow> <name>``: steps run as one block (Logic Apps' ``Scope``), Failed
    when one of them failed unhandled, so ``--after <scope>:failed`` catches any of them."""

    name: str
    members: tuple[str, ...]
    after: dict[str, tuple[str, ...]] | None = None


def split_names(value: str | list[str] | tuple[str, ...] | None) -> list[str] | None:
    """``"a, b"`` or ``["a", "b"]`` -> ``["a", "b"]`` (None stays None)."""
    if value is None:
        return None
    if isinstance(value, str):
        names = [part.strip() for part in value.split(",")]
    else:
        names = [str(part).strip() for part in value]
    names = [name for name in names if name]
    return names or None


# Logic Apps' runAfter statuses a step may wait for (the designer's four).
RUN_AFTER = {
    "succeeded": "Succeeded",
    "failed": "Failed",
    "skipped": "Skipped",
    "timedout": "TimedOut",
}


def parse_after(value: Any) -> dict[str, tuple[str, ...]] | None:
    """``--after find`` / ``find:failed`` / ``find:failed|timedout`` (several allowed) ->
    ``{"find": ("Failed", "TimedOut")}``; a dict is checked and passed on."""
    if value is None or value == [] or value == "":
        return None
    if isinstance(value, dict):
        items = [
            f"{k}:{'|'.join(v) if isinstance(v, list | tuple) else v}" for k, v in value.items()
        ]
    else:
        items = [value] if isinstance(value, str) else list(value)
    after: dict[str, tuple[str, ...]] = {}
    for text in items:
        name, _, states = str(text).strip().partition(":")
        if not name.isidentifier():
            raise FlowError(f"bad --after {text!r}: use step[:succeeded|failed|skipped|timedout]")
        wanted = []
        for state in (states or "succeeded").replace(",", "|").split("|"):
            key = state.strip().lower().replace("_", "")
            if key not in RUN_AFTER:
                raise FlowError(
                    f"bad --after {text!r}: {state!r} is not succeeded, failed, skipped or timedout"
                )
            wanted.append(RUN_AFTER[key])
        merged = after.get(name, ()) + tuple(w for w in wanted if w not in after.get(name, ()))
        after[name] = merged
    return after


def parse_orderby(value: str | list[str] | None) -> list[str] | None:
    """``"createdon desc, subject"`` -> ``["createdon desc", "subject asc"]`` (OData $orderby)."""
    items = split_names(value)
    if not items:
        return None
    out = []
    for item in items:
        words = item.split()
        if len(words) > 2 or (len(words) == 2 and words[1].lower() not in ("asc", "desc")):
            raise FlowError(f"bad --orderby {item!r}: use column [asc|desc], e.g. createdon desc")
        out.append(f"{words[0]} {words[1].lower() if len(words) == 2 else 'asc'}")
    return out


def parse_top(value: int | str | None) -> int | None:
    """``--top``: records one poll takes at most (1-5000, Dataverse's page limit)."""
    if value is None:
        return None
    try:
        top = int(value)
    except (TypeError, ValueError):
        raise FlowError(f"bad --top {value!r}: use a whole number from 1 to 5000") from None
    if isinstance(value, bool) or not 1 <= top <= 5000 or str(top) != str(value).strip():
        raise FlowError(f"bad --top {value!r}: use a whole number from 1 to 5000")
    return top


def utcnow_iso() -> str:
    """Now, as the ISO-8601 UTC text stored in run history."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
