"""FetchXML queries: `GET <entityset>?fetchXml=<url-encoded <fetch>>`.

    from d365nb.sandbox import fetchxml
    result = fetchxml.run(conn, schema, table, text, user_id=uid, now=now,
                          aggregate_limit=50_000)
    result.rows          # JSON records (null values left out, as Dataverse does for FetchXML);
                         # link-entity columns named `<alias>.<column>`
    result.more          # more rows after this page (`@Microsoft.Dynamics.CRM.morerecords`)
    result.cookie        # the paging cookie for the next page, or None

Modules: `parse` (XML -> `Fetch`), `compile` (`Fetch` -> one SQL statement; names checked
against the schema), `query` (runs it, types the cells, builds the paging cookie) and `route`
(the HTTP answer). Errors are the sandbox's `errors` classes: not-XML / invalid query -> 400
`0x80040201`, unknown attribute -> 400 `0x80041103` (QueryBuilderNoAttribute; wording as observed
on Dataverse), more than the aggregate limit -> 400 `0x8004e023`. The paging cookie holds the
sort values and key of the page's last row and positions the next page; without one (or for
a query sorted by a linked column, which gets none) the `page` number does.
https://learn.microsoft.com/power-apps/developer/data-platform/fetchxml/overview
"""

from __future__ import annotations

from .query import FetchResult, run
from .route import get_fetched

__all__ = ["FetchResult", "get_fetched", "run"]
