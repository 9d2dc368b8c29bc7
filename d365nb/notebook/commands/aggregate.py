"""``aggregate`` and the ``%%d365 fetchxml`` cell: grouped numbers and FetchXML as DataFrames.

    %d365 aggregate leads --groupby statuscode --agg "n=count(),total=sum(estimatedvalue)" --plot bar

    %%d365 fetchxml -o rows --all
    <fetch><entity name='lead'><attribute name='fullname'/></entity></fetch>

Both go through the client (``d365.aggregate`` / ``d365.fetchxml``), so a bad spec or column is
refused before any request, in one line with the closest names. ``--plot`` draws the frame with
pandas' plotting; without matplotlib (the ``d365nb[plot]`` extra) it prints a one-line hint and
still returns the table.
"""

from __future__ import annotations

import time
import warnings
from argparse import Namespace
from typing import Any
from xml.sax.saxutils import escape

from IPython.core.error import UsageError

from d365nb.client.api import TruncatedRead
from d365nb.client.names import lookup_base
from d365nb.notebook.commands.reading import finish_read
from d365nb.notebook.display import format_footer, remember_footer
from d365nb.notebook.hints import column_hints, translate_labels
from d365nb.notebook.values import interpolate, interpolate_filter

_XML_QUOTES = {'"': "&quot;", "'": "&apos;"}  # escape() does & < > only
PLOT_HINT = "--plot needs matplotlib: pip install 'd365nb[plot]' (the table is shown without it)"


def cmd_aggregate(magic: Any, options: Namespace, cell: str | None) -> Any:
    """Groups and aggregates of a table in one request; ``--plot`` draws them."""
    conn = magic.connection()
    ns = magic.namespace
    table = interpolate(options.table, ns)
    groupby = interpolate(options.groupby, ns) if options.groupby else None
    agg = interpolate(options.agg, ns) if options.agg else None
    if not groupby and not agg:
        raise UsageError(
            '%d365 aggregate: give --groupby, --agg or both, e.g. --groupby statuscode --agg "n=count()"'
        )
    flt = interpolate_filter(options.filter, ns) if options.filter is not None else None
    if flt is not None:
        if not flt.strip():
            raise UsageError("%d365 aggregate: --filter is empty (leave it out to use every row)")
        flt = translate_labels(flt, conn.metadata.table(table))
    with column_hints(conn, table, flt):
        frame = conn.aggregate(
            table, groupby=groupby, agg=agg, filter=flt, labels=options.labels or magic.labels
        )
    elapsed = frame.attrs.get("elapsed")
    how = "FetchXML" if "fetchXml" in (frame.attrs.get("query") or {}) else "$apply"
    frame = finish_read(magic, options, frame)
    if options.plot:
        draw(frame, options.plot, _group_columns(frame, groupby))
    footer = format_footer(
        len(frame), elapsed=elapsed, alias=getattr(conn, "alias", None),
        extra=f"{frame.attrs.get('table', table)} · 1 request ({how})",
    )  # fmt: skip
    return remember_footer(frame, footer)


def _group_columns(frame: Any, groupby: str | None) -> list[str]:
    """The frame's group columns: those before the first aggregate (they come first)."""
    count = len([g for g in (groupby or "").split(",") if g.strip()])
    columns = list(frame.columns)
    groups = columns[:count]
    # a lookup with --labels adds its `x_label` column right after the id: plot by the name
    return [
        next((c for c in columns if c == f"{base}_label"), g)
        if (base := lookup_base(g)) is not None
        else g
        for g in groups
    ]


def draw(frame: Any, kind: str, groups: list[str]) -> Any:
    """Plot the aggregates against the groups with pandas (matplotlib); a hint when absent."""
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        print(PLOT_HINT)
        return None
    values = [c for c in frame.columns if c not in groups and not c.endswith("_label")]
    values = [c for c in values if str(frame[c].dtype) not in ("string", "str", "object")]
    if not values:
        print("--plot: nothing numeric to draw")
        return None
    data = frame.copy()
    if groups:
        data.index = data[groups].astype(str).agg(" · ".join, axis=1)
    data = data[values].astype("float64")
    if kind == "pie":
        return data[values[0]].plot(kind="pie", ylabel="", title=values[0])
    return data.plot(kind=kind)


def interpolate_xml(text: str, namespace: dict[str, Any]) -> str:
    """FetchXML with each ``{expr}`` replaced by its value, XML-escaped (quotes included), so a
    value can never change the query's structure."""
    return interpolate(text, namespace, lambda value: escape(value, _XML_QUOTES))


def cmd_fetchxml(magic: Any, options: Namespace, cell: str | None) -> Any:
    """The cell body is a FetchXML query; ``--all`` follows the paging cookies."""
    if cell is None or not cell.strip():
        raise UsageError(
            "%%d365 fetchxml: put the query in the cell body: %%d365 fetchxml on the first line, "
            "then <fetch>...</fetch>"
        )
    conn = magic.connection()
    xml = interpolate_xml(cell, magic.namespace)
    started = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", TruncatedRead)  # the footer says it
        frame = conn.fetchxml(xml, all_pages=options.all)
    extra = [frame.attrs.get("table", "")]
    pages = frame.attrs.get("pages")
    if frame.attrs.get("truncated"):
        extra.append(f"first {len(frame):,} rows · more: --all")
    frame = finish_read(magic, options, frame)
    footer = format_footer(
        len(frame), pages=pages, elapsed=time.perf_counter() - started,
        alias=getattr(conn, "alias", None), extra=" · ".join(e for e in extra if e),
    )  # fmt: skip
    return remember_footer(frame, footer)
