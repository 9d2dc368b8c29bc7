"""The runs-over-time chart of ``%d365 flow status``: runs per time bucket, stacked by outcome.

Pure SVG (no matplotlib: the chart must draw in any kernel and in a saved notebook's HTML) with
a sparkline for text/plain. Buckets are aligned to whole minutes/hours/days in UTC and span
only the first to the last run, so the same runs always draw the same chart.
"""

from __future__ import annotations

import html
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime

#: Outcome groups drawn, bottom to top; each gathers run statuses (a Logic Apps run view's).
GROUPS = {
    "Succeeded": ("Succeeded",),
    "Failed": ("Failed", "TimedOut"),
    "Cancelled": ("Cancelled", "Skipped"),
    "Running": ("Running", "Queued"),
}
_GROUP_OF = {status: group for group, statuses in GROUPS.items() for status in statuses}
#: Bucket widths tried, smallest first, until the runs fit in `MAX_BUCKETS`.
WIDTHS = (
    (60, "1 min"),
    (300, "5 min"),
    (900, "15 min"),
    (3600, "1 h"),
    (6 * 3600, "6 h"),
    (86400, "1 day"),
    (7 * 86400, "1 week"),
    (30 * 86400, "30 days"),
)
MAX_BUCKETS = 24
BAR_W, BAR_GAP, CHART_H = 10, 3, 60
_TICKS = "▁▂▃▄▅▆▇█"


@dataclass
class Buckets:
    """Runs counted per bucket of ``width`` seconds from ``start`` (UTC epoch seconds)."""

    start: int
    width: int
    label: str
    counts: list[dict[str, int]] = field(default_factory=list)

    @property
    def totals(self) -> dict[str, int]:
        return {g: sum(c.get(g, 0) for c in self.counts) for g in GROUPS}

    def bucket_time(self, index: int) -> str:
        return datetime.fromtimestamp(self.start + index * self.width, UTC).strftime(
            "%Y-%m-%d %H:%M:%S"
        )


def _epoch(text: str | None) -> float | None:
    if not text:
        return None
    try:
        moment = datetime.fromisoformat(str(text))
    except ValueError:
        return None
    if moment.tzinfo is None:  # history stores UTC
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()


def bucket_runs(runs: Iterable[tuple[str | None, str]]) -> Buckets | None:
    """``(ISO time, status)`` pairs -> counts per bucket and outcome group; None without runs."""
    timed = [(t, _GROUP_OF.get(status, "Running")) for when, status in runs
             if (t := _epoch(when)) is not None]  # fmt: skip
    if not timed:
        return None
    first, last = min(t for t, _ in timed), max(t for t, _ in timed)
    width, label = next(
        ((w, name) for w, name in WIDTHS if last // w - first // w < MAX_BUCKETS), WIDTHS[-1]
    )
    # Older runs than the widest buckets reach are left out: the chart shows the latest ones.
    start = int(max(first // width, last // width - MAX_BUCKETS + 1)) * width
    n = int(last // width) - start // width + 1
    counts: list[dict[str, int]] = [{} for _ in range(n)]
    for t, group in timed:
        index = int(t // width) - start // width
        if index >= 0:
            counts[index][group] = counts[index].get(group, 0) + 1
    return Buckets(start, width, label, counts)


def _colours() -> dict[str, str]:
    """Each group's colour: the stroke colour the forms' flow view gives that status."""
    from d365nb.notebook.forms.flowview import STATUS_COLOURS

    return {group: STATUS_COLOURS[group][1] for group in GROUPS}


def _summary(counts: dict[str, int]) -> str:
    # "Succeeded 3, Failed 1": a status name is always followed by its count.
    return ", ".join(f"{g} {counts[g]}" for g in GROUPS if counts.get(g))


def chart_svg(buckets: Buckets | None) -> str:
    """Stacked bars of runs per bucket, a tooltip per bar, and a caption with the range."""
    if buckets is None:
        return "<div class='d365nb-runs-chart'><i>no runs yet</i></div>"
    colours = _colours()
    peak = max(sum(c.values()) for c in buckets.counts) or 1
    bars = []
    for i, count in enumerate(buckets.counts):
        x = i * (BAR_W + BAR_GAP)
        y = CHART_H
        rects = []
        for group in GROUPS:
            n = count.get(group, 0)
            if not n:
                continue
            h = max(1.0, n / peak * (CHART_H - 2))
            y -= h
            rects.append(
                f"<rect x='{x}' y='{y:.1f}' width='{BAR_W}' height='{h:.1f}' "
                f"fill='{colours[group]}' data-group='{group}' data-count='{n}'/>"
            )
        tip = f"{buckets.bucket_time(i)} (+{buckets.label}): {_summary(count) or 'no runs'}"
        bars.append(f"<g><title>{html.escape(tip)}</title>{''.join(rects)}</g>")
    width = max(len(buckets.counts) * (BAR_W + BAR_GAP), 40)
    svg = (
        f"<svg class='d365nb-runs-chart' xmlns='http://www.w3.org/2000/svg' width='{width}' "
        f"height='{CHART_H + 1}'><line x1='0' y1='{CHART_H + 0.5}' x2='{width}' "
        f"y2='{CHART_H + 0.5}' stroke='#b0bec5'/>{''.join(bars)}</svg>"
    )
    legend = " &nbsp; ".join(
        f"<span style='color:{colours[g]}'>■ {g} {n}</span>" for g, n in buckets.totals.items() if n
    )
    caption = (
        f"runs per {buckets.label} from {buckets.bucket_time(0)} UTC"
        if len(buckets.counts) > 1
        else f"runs in the {buckets.label} from {buckets.bucket_time(0)} UTC"
    )
    return (
        f"<div class='d365nb-runs-chart'>{svg}<div style='font-size:11px'>{legend}</div>"
        f"<div style='font-size:11px;color:#607d8b'>{html.escape(caption)}</div></div>"
    )


def sparkline(buckets: Buckets | None) -> str:
    """``runs per 1 min: ▁▃█▂ (Succeeded 9, Failed 1)``, or '' without runs."""
    if buckets is None:
        return ""
    totals = [sum(c.values()) for c in buckets.counts]
    peak = max(totals) or 1
    line = "".join(
        " " if n == 0 else _TICKS[min(len(_TICKS) - 1, (n * len(_TICKS) - 1) // peak)]
        for n in totals
    )
    return f"runs per {buckets.label}: {line} ({_summary(buckets.totals)})"
