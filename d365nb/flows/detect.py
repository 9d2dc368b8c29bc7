"""Finding what changed since the last poll: the trigger side of a flow.

Two strategies, chosen per trigger:

* **watermark** (created/updated): a keyset query ordered by ``versionnumber`` - Dataverse's
  row version, one counter for the whole organisation, bumped by every write - so no two rows
  tie and a record written between polls can never slip behind the watermark. (A ``createdon``
  watermark with ties broken by id cannot promise that: timestamps have whole seconds, so a
  record created later in the same second with a smaller id would be missed.) ``created`` also
  keeps ``createdon`` at or after the flow's start and tells creations from updates with it.
  A table without ``versionnumber`` is watched with change tracking. An idle poll is exactly
  one request (``$top`` = page size, no rows).
* **changes** (deleted, or any trigger with ``mode="changes"``): Dataverse change tracking, the
  delta token is the checkpoint.

A poll yields pages: each page is a batch of `Change` plus the checkpoint after it, so the engine
can store both atomically and drain a backlog page by page. Several updates of one record
between polls come back as one row with its latest state - one run.

Creation or update? A row counts as an update when it was created before the flow started
watching, or when ``modifiedon`` moved past ``createdon``. Timestamps have whole seconds, so the
checkpoint also remembers the records first seen as creations during the current second
(``fresh``): if one comes back, a later write happened, and it is an update. What cannot be
told apart: a record created *and* updated within one second before any poll saw it - that is
one creation (the record's latest state), never an update.

``--since`` a past time with change tracking starts from a full initial sync and drops what is
older (change tracking cannot filter by time); a deleted trigger can only watch from now, since
change tracking keeps no deletions from before its first token.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from d365nb.client.query import literal
from d365nb.flows.history import Change
from d365nb.flows.model import FlowError, Trigger

PAGE_SIZE = 1000
FORMATTED = "@OData.Community.Display.V1.FormattedValue"


@dataclass
class Page:
    """One batch of changes and the checkpoint that follows it."""

    changes: list[Change]
    checkpoint: dict[str, Any]
    requests: int = 1
    found: int = 0  # rows the service returned (before loop guard / --columns / dedupe)
    snapshots: dict[str, dict[str, Any]] = field(default_factory=dict)
    own: list[str] = field(default_factory=list)  # own writes seen (consumed by this page)


class Detector:
    """Turns a `Trigger` into polls against one connection."""

    def __init__(self, trigger: Trigger, conn: Any, page_size: int = PAGE_SIZE) -> None:
        self.trigger = trigger
        self.conn = conn
        self.page_size = page_size
        self.meta = conn.metadata.table(trigger.table)
        self.table = self.meta.entity_set
        self.id = self.meta.primary_id
        self.strategy = self._choose_strategy()
        self._check()
        # versionnumber: one organisation-wide counter, so the keyset has no ties (timestamps
        # have whole seconds, and a (createdon, id) keyset can miss a record written later in
        # the same second with a smaller id).
        self.order = ["versionnumber"]
        self.select = self._select()

    # -- definition checks ----------------------------------------------------------------
    def _choose_strategy(self) -> str:
        t = self.trigger
        has_version = "versionnumber" in self.meta.columns
        if t.kind == "deleted" or t.mode == "changes" or (t.mode == "auto" and not has_version):
            if not self.meta.change_tracking:
                raise FlowError(
                    f"table {self.table} has no change tracking, so a {t.kind} trigger cannot see "
                    + ("its deletions" if t.kind == "deleted" else "its changes")
                    + "; enable change tracking on the table"
                    + (" or use a created/updated trigger" if t.kind == "deleted" else "")
                )
            return "changes"
        if not has_version:
            raise FlowError(
                f"table {self.table} has no versionnumber column to watch; use mode=changes"
            )
        return "watermark"

    def _check(self) -> None:
        t = self.trigger
        columns = self.meta.columns
        for name in (t.select or []) + (t.columns or []):
            if name not in columns:
                raise FlowError(f"table {self.table} has no column {name!r}")
        if t.columns and t.kind != "updated":
            raise FlowError("--columns only applies to updated triggers")
        if t.kind == "deleted" and t.since not in (None, "now"):
            raise FlowError(
                f"a deleted trigger can only watch from now (--since {t.since} is not possible): "
                "change tracking keeps no deletions from before its first token"
            )
        if self.strategy == "changes" and t.filter:
            raise FlowError(
                f"--filter cannot be used with a {t.kind} trigger: change tracking does not filter"
            )
        for item in t.orderby or []:
            column = item.split()[0]
            if column not in columns:
                raise FlowError(f"bad --orderby: table {self.table} has no column {column!r}")
        if self.strategy == "changes" and (t.orderby or t.top):
            raise FlowError(
                f"--orderby and --top cannot be used with a {t.kind} trigger on change tracking: "
                "it returns every change since the last poll, in the service's order"
            )

        # versionnumber: one organisation-wide counter, so the keyset has no ties (timestamps
        # have whole seconds, and a (createdon, id) keyset can miss a record written later in
        # the same second with a smaller id).
        self.order = ["versionnumber"]

    def _select(self) -> list[str] | None:
        if not self.trigger.select:
            return None
        wanted = [self.id, "createdon", "modifiedon", *self.order, *(self.trigger.columns or [])]
        names = list(self.trigger.select)
        for name in wanted:
            if name in self.meta.columns and name not in names:
                names.append(name)
        return names

    # -- checkpoints ----------------------------------------------------------------------
    def signature(self) -> dict[str, Any]:
        """What a checkpoint belongs to; a redefined trigger with another one starts afresh."""
        t = self.trigger
        return {
            "kind": t.kind,
            "table": self.table,
            "strategy": self.strategy,
            "filter": t.filter,
            "since": t.since,
        }

    def fits(self, checkpoint: dict[str, Any] | None) -> bool:
        return bool(checkpoint) and checkpoint.get("signature") == self.signature()

    def start(self, since: str | None) -> dict[str, Any]:
        """The first checkpoint: watch from ``now`` (default), the ``beginning`` or an ISO time."""
        since = since or "now"
        cp: dict[str, Any] = {"signature": self.signature(), "since": since}
        if since not in ("now", "beginning"):
            cp["floor"] = since  # changes at or after this time
        if self.strategy == "changes":
            # From a past time: a full initial sync, then `floor` drops what is older.
            cp["token"] = self._current_token() if since == "now" else None
        else:
            cp["position"] = self._latest_position() if since == "now" else None
        if since == "now" and self.trigger.kind != "deleted":
            cp.update(self._existing())
        return cp

    def _latest_position(self) -> list[Any] | None:
        rows = self._page(
            filter=None,
            orderby=[f"{c} desc" for c in self.order],
            top=1,
            select=[self.id, *self.order],
        )
        return [rows[0].get(c) for c in self.order] if rows else None

    def _existing(self) -> dict[str, Any]:
        """Where "already there" ends: the newest ``createdon`` at the start and the ids created
        in that same second (timestamps have whole seconds), so an update to an old record is
        never mistaken for a creation."""
        rows = self._page(
            filter=None, orderby=["createdon desc"], top=1, select=[self.id, "createdon"]
        )
        if not rows:
            return {"born": None, "born_seen": []}
        born = rows[0]["createdon"]
        same = self._page(filter=f"createdon eq {born}", orderby=None, top=5000, select=[self.id])
        return {"born": born, "born_seen": [str(r[self.id]).lower() for r in same]}

    def _current_token(self) -> str:
        # The initial sync reads the whole table once; only its token matters for "now".
        return self.conn.changes(self.table, None, select=[self.id]).token

    def _page(
        self, filter: str | None, orderby: list[str] | None, top: int, select: list[str] | None
    ) -> list[dict[str, Any]]:
        for page in self.conn.iter_pages(
            self.table,
            filter=filter,
            orderby=orderby,
            select=select,
            top=top,
            max_pages=1,
            labels=True,
        ):
            return _records(page)
        return []

    # -- polling --------------------------------------------------------------------------
    def poll(
        self, checkpoint: dict[str, Any], own: set[str], history: Any, flow: str
    ) -> Iterator[Page]:
        """Pages of changes after ``checkpoint``; stops when the backlog is drained."""
        if self.strategy == "changes":
            yield self._poll_changes(checkpoint, own, history, flow)
            return
        cp = dict(checkpoint)
        # --top: one poll takes at most that many (the oldest changes first, so none is
        # skipped); the rest wait for the next poll, as the connector's trigger does.
        size = min(self.page_size, self.trigger.top or self.page_size)
        while True:
            rows = self._page(
                filter=self._keyset_filter(cp),
                orderby=[f"{c} asc" for c in self.order],
                top=size,
                select=self.select,
            )
            if rows:
                cp = {**cp, "position": [rows[-1].get(c) for c in self.order]}
            if self.trigger.orderby:  # --orderby: the order of this poll's runs
                rows = _ordered(rows, self.trigger.orderby)
            page = self._classify(rows, cp, own, history, flow)
            yield page
            if len(rows) < size or self.trigger.top:
                return

    def _keyset_filter(self, cp: dict[str, Any]) -> str | None:
        parts = []
        position = cp.get("position")
        if position is not None:
            parts.append(f"versionnumber gt {literal(position[0])}")
        stamp = "createdon" if self.trigger.kind == "created" else "modifiedon"
        if cp.get("floor"):
            parts.append(f"{stamp} ge {cp['floor']}")
        if self.trigger.kind == "created" and cp.get("born"):
            parts.append(f"createdon ge {cp['born']}")
        if self.trigger.filter:
            parts.append(f"({self.trigger.filter})")
        return " and ".join(parts) or None

    def _poll_changes(
        self, checkpoint: dict[str, Any], own: set[str], history: Any, flow: str
    ) -> Page:
        result = self.conn.changes(self.table, checkpoint.get("token"), select=self.select)
        cp = {**checkpoint, "token": result.token}
        if self.trigger.kind == "deleted":
            changes, mine = [], []
            for rid in result.deleted:
                rid = str(rid).lower()
                if rid in own:
                    mine.append(rid)
                    continue
                changes.append(Change(rid, f"{rid}:deleted", "deleted", {self.id: rid}))
            return Page(changes, cp, found=len(result.deleted), own=mine)
        rows = list(result.upserted)
        page = self._classify(rows, cp, own, history, flow)
        page.found = len(result.upserted) + len(result.deleted)
        return page

    def _classify(
        self, rows: list[dict[str, Any]], cp: dict[str, Any], own: set[str], history: Any, flow: str
    ) -> Page:
        """Rows -> changes: loop guard, creation vs update, ``--columns``."""
        kind = self.trigger.kind
        fresh = dict(cp.get("fresh") or {})  # see below: creations not yet a second old
        changes: list[Change] = []
        mine: list[str] = []
        snapshots: dict[str, dict[str, Any]] = {}
        columns = self.trigger.columns
        previous = (
            history.snapshots(flow, [str(r.get(self.id)).lower() for r in rows]) if columns else {}
        )
        for row in rows:
            rid = str(row.get(self.id)).lower()
            if columns:
                current = {c: row.get(c) for c in columns}
                before = previous.get(rid)
                snapshots[rid] = current
            if rid in own:
                mine.append(rid)
                continue
            is_new = self._is_new(row, rid, cp)
            if kind == "created":
                if is_new:
                    changes.append(Change(rid, f"{rid}:created", "created", row))
                continue
            if cp.get("floor") and str(row.get("modifiedon") or "") < cp["floor"]:
                continue  # changed before --since (change tracking cannot filter by time)
            # Timestamps have whole seconds: an update in the second of the creation leaves
            # modifiedon == createdon. The first sighting is the creation; seeing the record
            # again means a later write (the keyset and change tracking only return new ones).
            if is_new and row.get("createdon") == row.get("modifiedon") and rid not in fresh:
                fresh[rid] = row.get("createdon")
                continue
            if columns and before is not None and before == current:
                continue  # none of the watched columns changed
            version = row.get("versionnumber") or row.get("modifiedon")
            changes.append(Change(rid, f"{rid}:{version}", "updated", row))
        if kind == "updated" and (fresh or cp.get("fresh")):
            # The service's clock has reached the newest modifiedon seen: a record created in
            # an earlier second can no longer be updated without modifiedon moving on.
            clock = max((str(r.get("modifiedon") or "") for r in rows), default="")
            fresh = {rid: born for rid, born in fresh.items() if str(born) >= clock}
            cp = {**cp, "fresh": fresh}
        return Page(changes, cp, found=len(rows), snapshots=snapshots, own=mine)

    @staticmethod
    def _is_new(row: dict[str, Any], rid: str, cp: dict[str, Any]) -> bool:
        """Created after the flow started watching (see `_existing`)."""
        created = str(row.get("createdon") or "")
        if cp.get("floor") and created < cp["floor"]:
            return False
        born = cp.get("born")
        if born is None:
            return True
        return created > born or (created == born and rid not in set(cp.get("born_seen") or ()))

    def baseline(self, history: Any, flow: str) -> None:
        """``--columns`` from now: remember today's values so the first update can be compared."""
        if not self.trigger.columns:
            return
        select = [self.id, *self.trigger.columns]
        for rows in self.conn.iter_pages(
            self.table, filter=self.trigger.filter, select=select, page_size=5000
        ):
            rows = _records(rows)
            history.put_snapshots(
                flow,
                {
                    str(r[self.id]).lower(): {c: r.get(c) for c in self.trigger.columns}
                    for r in rows
                },
            )


def _records(page: Any) -> list[dict[str, Any]]:
    """A page from the client: a list of records (or an object holding them)."""
    return list(getattr(page, "records", page))


def formatted(record: dict[str, Any], column: str) -> Any:
    """A column's formatted value (label, localised date) when the service sent one."""
    return record.get(column + FORMATTED, record.get(column))


def _ordered(rows: list[dict[str, Any]], orderby: list[str]) -> list[dict[str, Any]]:
    """``rows`` sorted as OData ``$orderby`` would (nulls first when ascending)."""
    out = list(rows)
    for item in reversed(orderby):  # stable sorts, last key first
        column, direction = item.split()
        out.sort(
            key=lambda r, c=column: (r.get(c) is not None, r.get(c) if r.get(c) is not None else 0),
            reverse=direction == "desc",
        )
    return out
