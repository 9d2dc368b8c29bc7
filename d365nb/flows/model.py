"""What a flow is made of: its trigger, its steps and their retry policies.

Pure data and parsing, no I/O: the engine, the runner and the notebook commands share these.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

TriggerKind = Literal["created", "updated", "deleted"]
KINDS: tuple[str, ...] = ("created", "updated", "deleted")

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_INTERVAL = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhd])\s*$", re.IGNORECASE)
# Logic Apps' own upper bounds per unit (limits doc), so an exported flow stays deployable.
_MAX_SECONDS = {"s": 9_999_999, "m": 72_000 * 60, "h": 12_000 * 3600, "d": 500 * 86400}


class FlowError(ValueError):
    """A flow definition or command the user can fix; `str()` is one actionable line."""


def parse_interval(text: str | float | int) -> float:
    """Seconds in a recurrence such as ``10s``, ``3m``, ``1h`` or ``1d``.

    >>> parse_interval("3m")
    180.0
    """
    if isinstance(text, int | float) and not isinstance(text, bool):
        seconds = float(text)
        if seconds <= 0:
            raise FlowError(
                f"bad interval {text!r}: it must be more than zero, e.g. 10s, 3m, 1h, 1d"
            )
        return seconds
    match = _INTERVAL.match(str(text))
    if not match:
        raise FlowError(
            f"bad interval {text!r}: use a number and a unit s|m|h|d, e.g. 10s, 3m, 1h, 1d"
        )
    number, unit = float(match.group(1)), match.group(2).lower()
    seconds = number * _UNITS[unit]
    if seconds <= 0:
        raise FlowError(f"bad interval {text!r}: it must be more than zero, e.g. 10s, 3m, 1h, 1d")
    if seconds > _MAX_SECONDS[unit]:
        raise FlowError(f"bad interval {text!r}: longer than Logic Apps allows for that unit")
    return seconds


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
class RetryPolicy:
    """How a failed step is retried (Logic Apps' ``retryPolicy``).

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

    type: Literal["exponential", "fixed", "none"] = "exponential"
    count: int = 4
    interval: float = 7.0
    minimum: float = 0.0
    maximum: float = 3600.0

    def __post_init__(self) -> None:
        if self.type not in ("exponential", "fixed", "none"):
            raise FlowError(f"bad retry type {self.type!r}: use exponential, fixed or none")
        if self.count < 0 or self.interval < 0:
            raise FlowError("bad retry policy: count and interval must not be negative")

    @property
    def retries(self) -> int:
        return 0 if self.type == "none" else self.count

    def delay(self, retry_number: int, retry_after: float | None = None) -> float:
        """Seconds to wait before retry ``retry_number`` (1-based)."""
        if self.type == "fixed":
            wait = self.interval
        else:
            wait = min(self.maximum, self.interval * 2 ** (retry_number - 1))
        wait = max(wait, self.minimum)
        if retry_after is not None:
            # The service said when to come back (429/503): sooner is refused, later is waste.
            wait = float(retry_after)
        return wait

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

    def describe(self) -> str:
        text = f"when a record of {self.table} is {self.kind}, every {format_interval(self.every)}"
        if self.filter:
            text += f" where {self.filter}"
        if self.columns:
            text += f" (columns {', '.join(self.columns)})"
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


def utcnow_iso() -> str:
    """Now, as the ISO-8601 UTC text stored in run history."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
