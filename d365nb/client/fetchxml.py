"""FetchXML queries: ``d365.fetchxml(xml, all_pages=False)`` -> DataFrame.

The query goes to ``GET <entityset>?fetchXml=<url-encoded xml>``; with ``all_pages`` the
paging cookie of each answer (``@Microsoft.Dynamics.CRM.fetchxmlpagingcookie``) is decoded
twice and sent back as the ``paging-cookie`` attribute with the next ``page``, as Microsoft
describes (https://learn.microsoft.com/power-apps/developer/data-platform/fetchxml/page-results).
Columns of a ``link-entity`` are named ``alias.column``; the service leaves null values out, so
a column exists when any row has a value.
"""

from __future__ import annotations

import time
import warnings
import xml.etree.ElementTree as ET
from collections.abc import Generator
from typing import Any
from urllib.parse import quote, unquote

import orjson
import pandas as pd

from d365nb.client.batch import BatchPart, build_batch, parse_batch
from d365nb.client.errors import ValidationError
from d365nb.client.http import ApiRequest
from d365nb.client.metadata import TableMeta
from d365nb.client.operations import _part_error
from d365nb.client.results import TruncatedRead

Op = Generator[Any, Any, Any]

PAGING_COOKIE = "@Microsoft.Dynamics.CRM.fetchxmlpagingcookie"
MORE_RECORDS = "@Microsoft.Dynamics.CRM.morerecords"
FORMATTED = "@OData.Community.Display.V1.FormattedValue"
PREFER = (
    'odata.include-annotations="Microsoft.Dynamics.CRM.fetchxmlpagingcookie,'
    'Microsoft.Dynamics.CRM.morerecords"'
)
PREFER_LABELS = 'odata.include-annotations="*"'
MAX_PAGE = 5000
# Room for the query in a GET URL: Dataverse refuses URLs over 32,768 characters; keep a margin
# for the organisation's address and the API path.
URL_ROOM = 32_768 - 512


def parse_fetch(xml: Any) -> ET.Element:
    """The ``<fetch>`` element of ``xml``; a one-line ``ValidationError`` when it is not one."""
    if not isinstance(xml, str) or not xml.strip():
        raise ValidationError("fetchxml: give the query as text: <fetch><entity name='...'>...")
    try:
        root = ET.fromstring(xml.strip())
    except ET.ParseError as exc:
        raise ValidationError(f"fetchxml: not well-formed XML ({exc})") from None
    if root.tag != "fetch":
        raise ValidationError(f"fetchxml: the root element must be <fetch>, not <{root.tag}>")
    entity = root.find("entity")
    if entity is None or not (entity.get("name") or "").strip():
        raise ValidationError("fetchxml: <fetch> needs an <entity name='...'> element")
    return root


def link_tables(root: ET.Element) -> dict[str, str]:
    """``alias -> table`` of every link-entity (unaliased ones named like the service does:
    ``<name>1``, ``<name>2``, ...)."""
    out: dict[str, str] = {}
    numbers: dict[str, int] = {}
    for link in root.iter("link-entity"):
        name = link.get("name") or ""
        alias = link.get("alias")
        if not alias:
            numbers[name] = numbers.get(name, 0) + 1
            alias = f"{name}{numbers[name]}"
        out[alias] = name
    return out


def fetch_op(conn: Any, xml: str, *, all_pages: bool = False) -> Op:
    """Send a FetchXML query (following paging cookies when ``all_pages``); returns
    ``(meta, records, pages, more)``."""
    root = parse_fetch(xml)
    meta: TableMeta = yield from conn.metadata.load_op(root.find("entity").get("name").strip())
    paging = all_pages and root.get("top") is None and root.get("aggregate") != "true"
    if paging:
        root.set("page", root.get("page") or "1")
        root.set("count", root.get("count") or str(MAX_PAGE))
    records: list[dict] = []
    pages = 0
    while True:
        body = yield from _send(conn, meta, ET.tostring(root, encoding="unicode"))
        pages += 1
        records.extend(body.get("value", []))
        more = bool(body.get(MORE_RECORDS))
        if not (paging and more):
            return meta, records, pages, more
        cookie = body.get(PAGING_COOKIE)
        if cookie:
            # `<cookie pagenumber="2" pagingcookie="<url-encoded twice>" ... />`
            encoded = ET.fromstring(cookie).get("pagingcookie") or ""
            root.set("paging-cookie", unquote(unquote(encoded)))
        root.set("page", str(int(root.get("page") or "1") + 1))


def _send(conn: Any, meta: TableMeta, xml: str) -> Op:
    """One FetchXML request -> the JSON answer. A query too long for a GET URL (Dataverse's
    limit is 32,768 characters) goes in a ``$batch`` GET part instead, the documented way
    around it (up to 64 KB; .../fetchxml/retrieve-data#use-fetchxml-within-a-batch-request)."""
    url = f"{meta.entity_set}?fetchXml={quote(xml, safe='')}"
    if len(url) <= URL_ROOM:
        response = yield ApiRequest(
            "GET", meta.entity_set, params={"fetchXml": xml}, headers={"Prefer": PREFER}
        )
        return orjson.loads(response.content)
    part = BatchPart("GET", url, headers={"Accept": "application/json", "Prefer": PREFER})
    content, content_type = build_batch([part], conn.api_path)
    response = yield ApiRequest(
        "POST",
        "$batch",
        content=content,
        idempotent=True,  # a read: safe to send again
        headers={"Content-Type": content_type, "Prefer": "odata.continue-on-error"},
    )
    answers = parse_batch(response.content, response.headers.get("content-type", ""))
    if not answers:
        raise ValidationError("fetchxml: the $batch answer held no response")
    if not answers[0].ok:
        raise _part_error(answers[0])
    return answers[0].body


def records_frame(
    records: list[dict], meta: TableMeta, links: dict[str, TableMeta] | None = None
) -> pd.DataFrame:
    """Records (annotations dropped) -> DataFrame; DateTime columns of the main and linked
    tables become timezone-aware datetimes."""
    columns: dict[str, None] = {}
    for record in records:
        for key in record:
            if "@" not in key:
                columns.setdefault(key, None)
    frame = pd.DataFrame.from_records(
        [{k: v for k, v in r.items() if "@" not in k} for r in records], columns=list(columns)
    )
    for name in frame.columns:
        column = _column(name, meta, links or {})
        if column is not None and column.type == "DateTime":
            frame[name] = pd.to_datetime(frame[name], utc=True, errors="coerce")
    return frame


def _column(name: str, meta: TableMeta, links: dict[str, TableMeta]) -> Any:
    if "." in name:
        alias, _, col = name.partition(".")
        table = links.get(alias)
        return table.columns.get(col) if table is not None else None
    return meta.find(name)


def fetchxml_op(conn: Any, xml: str, *, all_pages: bool = False) -> Op:
    """``d365.fetchxml``: the whole call, returning the DataFrame."""
    started = time.perf_counter()
    root = parse_fetch(xml)
    meta, records, pages, more = yield from fetch_op(conn, xml, all_pages=all_pages)
    links: dict[str, TableMeta] = {}
    for alias, name in link_tables(root).items():
        links[alias] = yield from conn.metadata.load_op(name)
    frame = records_frame(records, meta, links)
    truncated = more and not all_pages
    frame.attrs.update(
        table=meta.logical_name,
        pages=pages,
        elapsed=time.perf_counter() - started,
        truncated=truncated,
        more_records=more,
    )
    if truncated:

        warnings.warn(
            f"{meta.logical_name}: fetchxml returned the first page ({len(frame):,} rows) and "
            "more match; all_pages=True follows the paging cookies",
            TruncatedRead,
            stacklevel=4,
        )
    return frame
