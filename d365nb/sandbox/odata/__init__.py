"""The sandbox's OData query engine: `$filter $orderby $select $expand $top $count` -> SQL.

Contract (used by `app.py`, `metadata.py` and others)::

    from d365nb.sandbox import odata

    result = odata.execute(conn, schema, "lead", params, user_id=uid, page_size=5000,
                           skiptoken=None)
    result.rows            # list[dict]: storage-form values keyed by column logical name,
                           # always with the primary key and versionnumber (lookups: the id
                           # under the attribute name plus `<attr>__type`); may carry extra
                           # columns the engine needed - output those in `select`.
                           # Expanded navs under row["$expand"][nav] (odata.expanded(row, nav)):
                           # dict | None (single-valued) or list[dict] (collection-valued); not
                           # row[nav], since `primarycontactid` is a column and a nav at once.
                           # A paged expanded collection whose page is full has its next
                           # page's skiptoken under row["$expand"][odata.next_page_key(nav)].
    result.select          # list[str] | None: column logical names ($select; lookups by
                           # attribute name, e.g. "parentaccountid" for _parentaccountid_value);
                           # None = all columns
    result.expand          # dict[nav, ExpandPlan]: kind "single"/"collection", table, select,
                           # nested expand, options (nested option text, for nextLinks)
    result.next_skiptoken  # str | None: `<cookie pagenumber="2" pagingcookie="..." istracking=
                           # "False" />`; URL-encode it once (quote(tok, safe="")) as $skiptoken
    result.count           # int | None ($count=true): matching rows, capped at 5000
    result.count_limit_exceeded  # bool: more than 5000 matched

    odata.count(conn, schema, "lead", params, user_id=uid) -> int     # /$count (capped at 5000)
    odata.parse_filter(text, aliases=None) -> Node                     # tree of `odata.nodes`
    odata.compile_query(schema, "lead", params, user_id=uid) -> Query  # SQL text + params + plan
    odata.ODataError(message, position)   # any syntax/semantic error -> HTTP 400 0x80060888

`params` are the raw (URL-decoded) query parameters: `$select`, `$filter`, `$orderby`, `$top`,
`$count`, `$expand`, and aliases `@p1`.... `table_name` may be the logical name or the entity-set
name. `$skip`, `$search`, `$format`, `$apply` (answered by `odata.apply` on entity-set
collections, see `aggregates.py`) and other unknown `$` options raise ODataError;
`$skiptoken` and `$deltatoken` keys are ignored (pass the skiptoken through `skiptoken=`). The
caller holds the store's lock around `execute`/`count` if the connection is shared between
threads.

Modules: `parser` (Lark LALR grammar -> `nodes`, cached per text), `sql` (binds names against the
schema, type-checks, emits parameterised SQL), `functions` (what each query function means:
date ranges, bounds, value lists) and `function_sql` (their arguments checked, SQL written),
`navigation` (navigation properties from the schema's lookups), `options` ($select, $expand,
$top, $count), `ordering` ($orderby keys - lookups sort by the related primary name - and the
keyset condition), `paging` (the signed skiptoken), `execute` (runs it all, one query per
$expand level).

"Now" for the date query functions comes from `now=` or from `odata.set_clock(callable)`.
"""

from __future__ import annotations

from . import nodes
from .errors import ODataError
from .execute import (
    EXPANDED,
    MAX_PAGE_SIZE,
    Query,
    Result,
    compile_query,
    count,
    execute,
    expanded,
    next_page_key,
    set_clock,
)
from .function_sql import compile_query_function
from .options import ExpandPlan, implied_columns
from .parser import parse_filter, parse_orderby
from .sql import FilterCompiler

# The query functions build on the filter compiler: plugged in here, above both modules.
FilterCompiler.query_functions = staticmethod(compile_query_function)

__all__ = [
    "EXPANDED",
    "MAX_PAGE_SIZE",
    "ExpandPlan",
    "ODataError",
    "Query",
    "Result",
    "compile_query",
    "count",
    "execute",
    "expanded",
    "implied_columns",
    "next_page_key",
    "nodes",
    "parse_filter",
    "parse_orderby",
    "set_clock",
]
