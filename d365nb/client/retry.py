"""The one retry policy: how many retries, and how long to wait before each.

The client retries requests it may resend (``connect(retry=RetryPolicy(...))``; by default 10
retries, waits doubling from 0.25 s up to 20 s, each drawn at random from the upper half of its
band so that many waiting clients do not come back together). Flow steps use this same class
with Logic Apps' defaults (``d365nb.flows.RetryPolicy``: exponential, 4 retries, 7 s, at most
1 h, the top of the band, no jitter). A ``Retry-After`` the service sent replaces the computed
wait. Which failures are retried is the caller's rule (the HTTP session's, the flow runner's
``is_transient``), not the policy's.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field
from typing import Literal

from d365nb.client.errors import ValidationError

__all__ = ["RetryPolicy"]

_RNG = random.Random()
_TYPES = ("exponential", "fixed", "none")


@dataclass(frozen=True)
class RetryPolicy:
    """``exponential`` waits ``interval * 2**(n-1)`` before retry n (capped by ``maximum``;
    with ``jitter`` a random time in the upper half of that); ``fixed`` waits ``interval``;
    ``none`` never retries. No wait is shorter than ``minimum``, except that a ``Retry-After``
    always wins (capped by ``max_retry_after`` unless that is None)."""

    type: Literal["exponential", "fixed", "none"] = "exponential"
    count: int = 10
    interval: float = 0.25
    minimum: float = 0.0
    maximum: float = 20.0
    max_retry_after: float | None = 300.0
    jitter: bool = True
    rng: random.Random | None = field(default=None, compare=False, repr=False)

    def __post_init__(self) -> None:
        if self.type not in _TYPES:
            raise ValidationError(f"retry: type must be one of {', '.join(_TYPES)}")
        numbers = (self.count, self.interval, self.minimum, self.maximum)
        if any(
            isinstance(n, bool) or not isinstance(n, int | float) or not math.isfinite(n)
            for n in numbers
        ):
            raise ValidationError("retry: count and intervals must be finite numbers")
        if self.count < 0 or self.interval < 0 or self.minimum < 0:
            raise ValidationError("retry: count and intervals must not be negative")

    @property
    def retries(self) -> int:
        """How many times a failed attempt is retried."""
        return 0 if self.type == "none" else int(self.count)

    def delay(self, retry_number: int, retry_after: float | None = None) -> float:
        """Seconds to wait before retry ``retry_number`` (1-based)."""
        rng = self.rng or _RNG
        if retry_after is not None:
            # The service said when to come back (429/503): sooner is refused, later is waste.
            wait = float(retry_after)
            if self.max_retry_after is not None:
                wait = min(wait, self.max_retry_after)
            # A little jitter so many waiting clients don't return in the same millisecond.
            return wait + rng.uniform(0, 0.05) if self.jitter else wait
        if self.type == "fixed":
            wait = self.interval
        else:
            top = min(self.maximum, self.interval * 2 ** (retry_number - 1))
            wait = rng.uniform(top / 2, top) if self.jitter else top
        return max(wait, self.minimum)
