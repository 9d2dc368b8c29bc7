"""Result types of the client's operations."""

from __future__ import annotations

from dataclasses import dataclass, field

from d365nb.client.errors import D365Error

__all__ = ["BulkResult", "Changes", "Page", "TruncatedRead"]


@dataclass
class BulkResult:
    """Per-record outcome of a bulk write, aligned with the input order.

    ``ids[i]`` is the record id of input ``i`` (None if it failed); ``errors`` maps failed
    input positions to their error. ``requests`` counts HTTP requests sent (retries included).
    """

    table: str
    ids: list[str | None] = field(default_factory=list)
    errors: dict[int, D365Error] = field(default_factory=dict)
    requests: int = 0

    @property
    def ok(self) -> bool:
        return not self.errors

    @property
    def succeeded(self) -> int:
        return len(self.ids) - len(self.errors)

    @property
    def failed(self) -> int:
        return len(self.errors)

    def raise_for_errors(self) -> BulkResult:
        """Raise the first error (its message says how many failed), else return self."""
        if self.errors:
            index, first = min(self.errors.items())
            raise type(first)(
                f"{self.failed} of {len(self.ids)} {self.table} records failed; "
                f"first (record {index}): {first.message}",
                status=first.status,
                code=first.code,
                request_id=first.request_id,
            )
        return self

    def __repr__(self) -> str:
        return (
            f"BulkResult(table={self.table!r}, succeeded={self.succeeded}, "
            f"failed={self.failed}, requests={self.requests})"
        )


@dataclass
class Changes:
    """What changed since a delta token: ``upserted`` records (created or updated - the service
    does not tell them apart), ``deleted`` ids, and the ``token`` for the next call."""

    upserted: list[dict]
    deleted: list[str]
    token: str

    def __repr__(self) -> str:
        return (
            f"Changes(upserted={len(self.upserted)}, deleted={len(self.deleted)}, "
            f"token={self.token!r})"
        )


@dataclass
class Page:
    """One page of records, yielded by paging operations to the iterating driver."""

    records: list[dict]
    count: int | None = None


class TruncatedRead(UserWarning):
    """``list(max_pages=N)`` stopped before the last matching row."""
