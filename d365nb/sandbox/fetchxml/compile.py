"""A parsed `Fetch` -> one SQL statement over the storage convention (see `schema/model.py`).

Every name is checked against the schema before it reaches SQL (unknown attributes raise
Dataverse's QueryBuilderNoAttribute error); values only ever travel as `?` parameters.
`link-entity` becomes a JOIN (LEFT JOIN for `outer`) whose filters sit in its ON clause, so an
outer link's conditions restrict the linked rows, not the main ones. Aggregates are SQL
aggregates with GROUP BY; the statement also counts the rows it aggregated, so the aggregate
limit needs no second scan.
"""

from __future__ import annotations

import datetime as dt
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from typing import Any

from ..errors import DataverseError, FetchXmlNoAttribute, InvalidArgument, InvalidFetchXml
from ..odata.apply import Field
from ..odata.ordering import OrderKey, keyset
from ..odata.sql import kind_of, quote
from ..schema.model import Column, Table
from ..serialize import output_name
from ..values import is_guid, number_text, whole_number
from .parse import MAX_PAGE, Condition, Entity, Fetch, Filter, Link

_NUMERIC = {"Integer", "BigInt", "Decimal", "Double", "Money"}
_AGGREGATES = ("count", "countcolumn", "sum", "avg", "min", "max")
_DATE_PARTS = {
    "year": "CAST(substr({x}, 1, 4) AS INTEGER)",
    "quarter": "((CAST(substr({x}, 6, 2) AS INTEGER) + 2) / 3)",
    "month": "CAST(substr({x}, 6, 2) AS INTEGER)",
    "day": "CAST(substr({x}, 9, 2) AS INTEGER)",
}
_COMPARE = {"eq": "=", "ne": "<>", "lt": "<", "le": "<=", "gt": ">", "ge": ">="}
_LIKE = {
    "like": ("{v}", False),
    "not-like": ("{v}", True),
    "begins-with": ("{v}%", False),
    "not-begin-with": ("{v}%", True),
    "ends-with": ("%{v}", False),
    "not-end-with": ("%{v}", True),
}
_ON = {"on": "=", "on-or-after": ">=", "on-or-before": "<=", "not-on": "<>"}
ROWS = "__rows"


@dataclass
class Output:
    """One property of the answer: the field, its SQL and (lookups) the SQL of its `__type`."""

    field: Field
    sql: str
    type_sql: str | None = None


@dataclass
class Compiled:
    table: Table
    sql: str
    params: list[Any]
    outputs: list[Output]
    aggregate: bool
    page: int
    page_size: int
    paged: bool  # False with `top`: never a next page
    key: str | None  # JSON name of the main primary key among the outputs (paging cookie)
    etag: bool  # the last selected column is the main row's versionnumber
    aggregate_limit: int | None = None
    names: list[str] = field(default_factory=list)  # main-entity names for @odata.context
    # Paging cookie: the sort keys it records (FetchXML attribute name, column; the primary key
    # last) and where their values sit in each result tuple; empty when the query pages by
    # number only (sorted by a linked column, distinct, top, aggregate).
    cookie_keys: list[tuple[str, Column]] = field(default_factory=list)
    cookie_at: int = 0


@dataclass
class _Scope:
    entity: Entity
    table: Table
    alias: str  # SQL alias
    name: str  # FetchXML alias (link) or the entity name (main)
    main: bool


class Compiler:
    def __init__(
        self, schema: dict[str, Table], table: Table, *, user_id: str | None, now: dt.datetime
    ):
        self.schema = schema
        self.table = table
        self.user_id = user_id
        self.now = now
        self.params: list[Any] = []
        self.scopes: dict[str, _Scope] = {}
        self._auto: dict[str, int] = {}
        self._sql_aliases = 0

    # -- names ------------------------------------------------------------------------------

    def _table(self, name: str) -> Table:
        table = self.schema.get(name)
        if table is None:
            raise InvalidFetchXml(
                f"The entity with a name = '{name}' was not found in the MetadataCache."
            )
        return table

    def column(self, table: Table, name: str) -> Column:
        column = table.columns.get(name)
        if column is None:
            raise FetchXmlNoAttribute(name, table.logical_name)
        return column

    def _link_alias(self, link: Link) -> str:
        if link.alias:
            return link.alias
        n = self._auto.get(link.name, 0) + 1
        self._auto[link.name] = n
        return f"{link.name}{n}"

    # -- entry --------------------------------------------------------------------------------

    def compile(self, fetch: Fetch, aggregate_limit: int | None) -> Compiled:
        main = fetch.entity
        if main.name != self.table.logical_name:
            raise InvalidFetchXml(
                f"The entity name '{main.name}' in the FetchXML does not match the entity set "
                f"'{self.table.entity_set}' of the request (entity '{self.table.logical_name}')."
            )
        root = _Scope(main, self.table, "t0", main.name, True)
        self.scopes[main.name] = root
        scopes = [root]
        joins: list[str] = []
        self._links(root, joins, scopes)
        where = [c for c in (self._filter(f, root) for f in main.filters) if c]
        outputs = self._outputs(fetch, scopes)
        names = [o.field.name for o in outputs]
        if len(set(names)) != len(names):
            raise InvalidFetchXml("Two attributes have the same name or alias: use an alias.")
        if fetch.aggregate and not outputs:
            raise InvalidFetchXml(
                "An aggregate query needs an attribute with an aggregate or groupby."
            )
        key = None
        if not fetch.aggregate and (not fetch.distinct or not outputs):
            # the primary key is always returned (and names the rows in the paging cookie)
            pk = self.table.primary_id
            key = output_name(self.table.columns[pk])
            if key not in names:
                pk_field = Field(key, "group", self.table.columns[pk])
                outputs.append(Output(pk_field, f"t0.{quote(pk)}"))
        # SELECT list: the outputs (o0, o1, ...), then the lookups' `__type` columns, then the
        # aggregated row count or the version (etag): `query._records` reads it in this order.
        selects = [f"{o.sql} AS {quote(f'o{i}')}" for i, o in enumerate(outputs)]
        for i, o in enumerate(outputs):
            if o.type_sql:
                selects.append(f"{o.type_sql} AS {quote(f'o{i}__type')}")
        etag = False
        group: list[str] = []
        if fetch.aggregate:
            selects.append(f"COUNT(*) AS {quote(ROWS)}")
            for o in outputs:
                if o.field.kind == "group":
                    group.append(o.sql)
                    if o.type_sql:
                        group.append(o.type_sql)
        elif not fetch.distinct and "versionnumber" in self.table.columns:
            etag = True
            selects.append(f"t0.{quote('versionnumber')} AS {quote('__version')}")
        cookie_keys = self._cookie_keys(fetch, scopes)
        cookie_at = len(selects)
        for i, (_, column) in enumerate(cookie_keys):
            selects.append(f"t0.{quote(column.name)} AS {quote(f'__k{i}')}")
        position = self._position(fetch, cookie_keys)
        if position is not None:
            where.append(keyset(position[0], position[1], self.params))
        distinct = "DISTINCT " if fetch.distinct and not fetch.aggregate else ""
        sql = f"SELECT {distinct}{', '.join(selects)} FROM {quote(self.table.logical_name)} t0"
        if joins:
            sql += " " + " ".join(joins)
        if where:
            sql += " WHERE " + " AND ".join(where)
        if group:
            sql += " GROUP BY " + ", ".join(group)
        order = self._order(fetch, scopes, outputs)
        if order:
            sql += " ORDER BY " + ", ".join(order)
        paged = fetch.top is None and not fetch.aggregate
        page = fetch.page or 1
        page_size = fetch.count or MAX_PAGE
        params = list(self.params)
        if fetch.top is not None:
            sql += " LIMIT ?"
            params.append(fetch.top)
        elif paged and position is not None:
            sql += " LIMIT ?"  # the cookie positions the page: no rows skipped one by one
            params.append(page_size + 1)
        elif paged:
            sql += " LIMIT ? OFFSET ?"  # simple paging, by page number
            params += [page_size + 1, (page - 1) * page_size]
        limit = aggregate_limit
        if fetch.aggregate_limit is not None:
            limit = fetch.aggregate_limit if limit is None else min(limit, fetch.aggregate_limit)
        context = [o.field.name for o in outputs if "." not in o.field.name]
        return Compiled(
            self.table,
            sql,
            params,
            outputs,
            fetch.aggregate,
            page,
            page_size,
            paged,
            key,
            etag,
            limit,
            context,
            cookie_keys,
            cookie_at,
        )

    # -- paging cookie ----------------------------------------------------------------------

    def _cookie_keys(self, fetch: Fetch, scopes: list[_Scope]) -> list[tuple[str, Column]]:
        """The sort keys a paging cookie records: the main entity's order attributes, then the
        primary key. None when a linked column or an alias sorts the rows: as Dataverse does,
        such queries page by number only (page-results.md, "Queries that don't support paging
        cookies")."""
        if fetch.aggregate or fetch.distinct or fetch.top is not None:
            return []
        if any(scope.entity.orders for scope in scopes[1:]):
            return []
        keys: list[tuple[str, Column]] = []
        for order in scopes[0].entity.orders:
            if order.alias:
                return []
            column = self.column(self.table, order.attribute or "")
            if column.name not in [k[0] for k in keys]:
                keys.append((column.name, column))
        pk = self.table.primary_id
        if pk not in [k[0] for k in keys]:
            keys.append((pk, self.table.columns[pk]))
        return keys

    def _position(
        self, fetch: Fetch, keys: list[tuple[str, Column]]
    ) -> tuple[list[OrderKey], list[Any]] | None:
        """Sort keys and the previous page's last values, from a paging cookie that belongs to
        this query and the page before; None (page by number) otherwise."""
        page = fetch.page or 1
        if not keys or not fetch.paging_cookie or page < 2:
            return None
        try:
            cookie = ET.fromstring(fetch.paging_cookie)
        except ET.ParseError:
            return None
        items = list(cookie)
        if cookie.tag != "cookie" or cookie.get("page") != str(page - 1):
            return None
        if [item.tag for item in items] != [name for name, _ in keys]:
            return None
        descending = {o.attribute: o.descending for o in fetch.entity.orders if o.attribute}
        order_keys, values = [], []
        for item, (name, column) in zip(items, keys, strict=True):
            last = item.get("last")
            try:
                values.append(None if last is None else self._value(self.table, column, last))
            except DataverseError:
                return None  # a cookie the service did not write: page by number
            never_null = name == self.table.primary_id or column.required == "SystemRequired"
            sql = f"t0.{quote(column.name)}"
            order_keys.append(OrderKey(name, sql, descending.get(name, False), never_null, False))
        return order_keys, values

    # -- joins --------------------------------------------------------------------------------

    def _links(self, parent: _Scope, joins: list[str], scopes: list[_Scope]) -> None:
        for link in parent.entity.links:
            assert isinstance(link, Link)
            table = self._table(link.name)
            name = self._link_alias(link)
            if name in self.scopes:
                raise InvalidFetchXml(f"The alias '{name}' is used twice in the FetchXML.")
            self._sql_aliases += 1
            scope = _Scope(link, table, f"l{self._sql_aliases}", name, False)
            self.scopes[name] = scope
            scopes.append(scope)
            from_col = self.column(table, link.from_)
            to_col = self.column(parent.table, link.to)
            on = [f"{scope.alias}.{quote(from_col.name)} = {parent.alias}.{quote(to_col.name)}"]
            on += [c for c in (self._filter(f, scope) for f in link.filters) if c]
            kind = "LEFT JOIN" if link.link_type == "outer" else "JOIN"
            joins.append(f"{kind} {quote(table.logical_name)} {scope.alias} ON {' AND '.join(on)}")
            self._links(scope, joins, scopes)

    # -- attributes -----------------------------------------------------------------------------

    def _name(self, scope: _Scope, column: Column) -> str:
        return output_name(column) if scope.main else f"{scope.name}.{column.name}"

    def _outputs(self, fetch: Fetch, scopes: list[_Scope]) -> list[Output]:
        outputs: list[Output] = []
        seen: set[str] = set()
        for scope in scopes:
            entity = scope.entity
            if entity.all_attributes and not fetch.aggregate:
                for column in scope.table.columns.values():
                    name = self._name(scope, column)
                    if name not in seen:
                        seen.add(name)
                        outputs.append(self._plain(scope, column, name))
            for attr in entity.attributes:
                column = self.column(scope.table, attr.name)
                sql = f"{scope.alias}.{quote(column.name)}"
                if fetch.aggregate:
                    outputs.append(self._aggregated(scope, column, attr, sql))
                    continue
                if attr.aggregate or attr.groupby:
                    raise InvalidFetchXml(
                        "An attribute with 'aggregate' or 'groupby' needs <fetch aggregate='true'>."
                    )
                name = attr.alias or self._name(scope, column)
                if name in seen:
                    continue
                seen.add(name)
                outputs.append(self._plain(scope, column, name))
        return outputs

    def _plain(self, scope: _Scope, column: Column, name: str) -> Output:
        sql = f"{scope.alias}.{quote(column.name)}"
        type_sql = f"{scope.alias}.{quote(column.name + '__type')}" if column.is_lookup else None
        return Output(Field(name, "group", column, None, "t" if type_sql else None), sql, type_sql)

    def _aggregated(self, scope: _Scope, column: Column, attr, sql: str) -> Output:
        if not attr.alias:
            raise InvalidFetchXml(
                f"The attribute '{attr.name}' of an aggregate query needs an 'alias'."
            )
        if attr.groupby:
            if attr.dategrouping:
                part = _DATE_PARTS.get(attr.dategrouping)
                if column.type != "DateTime" or part is None:
                    raise InvalidFetchXml(
                        f"dategrouping '{attr.dategrouping}' is not supported here; the sandbox "
                        f"groups DateTime columns by {', '.join(_DATE_PARTS)}."
                    )
                return Output(Field(attr.alias, "group", None, "dategrouping"), part.format(x=sql))
            type_sql = (
                f"{scope.alias}.{quote(column.name + '__type')}" if column.is_lookup else None
            )
            field_ = Field(attr.alias, "group", column, None, "t" if type_sql else None)
            return Output(field_, sql, type_sql)
        how = attr.aggregate
        if how not in _AGGREGATES:
            raise InvalidFetchXml(
                f"The attribute '{attr.name}' of an aggregate query needs groupby='true' or an "
                f"aggregate ({', '.join(_AGGREGATES)})."
            )
        if how in ("count", "countcolumn"):
            if attr.distinct:
                return Output(
                    Field(attr.alias, "aggregate", column, "countdistinct"),
                    f"COUNT(DISTINCT {sql})",
                )
            expr = "COUNT(*)" if how == "count" else f"COUNT({sql})"
            return Output(Field(attr.alias, "aggregate", column, "count"), expr)
        if how in ("sum", "avg") and column.type not in _NUMERIC:
            raise InvalidFetchXml(
                f"The aggregate '{how}' needs a number or currency attribute; '{attr.name}' is "
                f"{column.type}."
            )
        if how in ("min", "max") and column.type not in _NUMERIC and column.type != "DateTime":
            raise InvalidFetchXml(
                f"The aggregate '{how}' needs a number, currency or date attribute; "
                f"'{attr.name}' is {column.type}."
            )
        expr = {"sum": "SUM", "avg": "AVG", "min": "MIN", "max": "MAX"}[how] + f"({sql})"
        if how == "avg" and column.type in ("Integer", "BigInt"):
            expr = f"CAST(AVG({sql}) AS INTEGER)"  # SQL Server averages whole numbers as such
        method = {"avg": "average"}.get(how, how)
        return Output(Field(attr.alias, "aggregate", column, method), expr)

    # -- order ----------------------------------------------------------------------------------

    def _order(self, fetch: Fetch, scopes: list[_Scope], outputs: list[Output]) -> list[str]:
        by_name = {o.field.name: f"o{i}" for i, o in enumerate(outputs)}
        out: list[str] = []
        for scope in scopes:
            for order in scope.entity.orders:
                direction = "DESC" if order.descending else "ASC"
                if order.alias:
                    if order.alias not in by_name:
                        raise InvalidFetchXml(
                            f"The order alias '{order.alias}' does not name an attribute alias."
                        )
                    out.append(f"{quote(by_name[order.alias])} {direction}")
                    continue
                column = self.column(scope.table, order.attribute or "")
                if fetch.aggregate:
                    raise InvalidFetchXml(
                        "An aggregate query orders by 'alias', not by 'attribute'."
                    )
                out.append(f"{scope.alias}.{quote(column.name)} {direction}")
        if fetch.aggregate:
            if not out:
                out = [quote(f"o{i}") for i, o in enumerate(outputs) if o.field.kind == "group"]
        elif fetch.distinct:
            out += [quote(f"o{i}") for i in range(len(outputs))]
        else:
            out.append(f"t0.{quote(self.table.primary_id)}")  # stable pages
        return out

    # -- filters --------------------------------------------------------------------------------

    def _filter(self, node: Filter, scope: _Scope) -> str:
        parts = []
        for item in node.items:
            if isinstance(item, Filter):
                sql = self._filter(item, scope)
            else:
                sql = self._condition(item, scope)
            if sql:
                parts.append(sql)
        if not parts:
            return ""
        joiner = " AND " if node.type == "and" else " OR "
        return "(" + joiner.join(parts) + ")"

    def _condition(self, cond: Condition, scope: _Scope) -> str:
        if cond.entityname:
            target = self.scopes.get(cond.entityname)
            if target is None:
                raise InvalidFetchXml(
                    f"The entityname '{cond.entityname}' of a condition names no link-entity alias."
                )
            scope = target
        column = self.column(scope.table, cond.attribute)
        sql = f"{scope.alias}.{quote(column.name)}"
        op, values = cond.operator, cond.values

        def one() -> Any:
            if len(values) != 1:
                raise InvalidFetchXml(f"The condition operator '{op}' takes exactly one value.")
            return self._value(scope.table, column, values[0])

        if op in _COMPARE:
            self.params.append(one())
            return f"({sql} {_COMPARE[op]} ?)"
        if op in ("null", "not-null"):
            return f"({sql} IS {'NOT ' if op == 'not-null' else ''}NULL)"
        if op in ("in", "not-in"):
            if not values:
                raise InvalidFetchXml(f"The condition operator '{op}' needs <value> elements.")
            self.params += [self._value(scope.table, column, v) for v in values]
            marks = ", ".join("?" * len(values))
            return f"({sql} {'NOT ' if op == 'not-in' else ''}IN ({marks}))"
        if op in ("between", "not-between"):
            if len(values) != 2:
                raise InvalidFetchXml(f"The condition operator '{op}' needs two <value> elements.")
            self.params += [self._value(scope.table, column, v) for v in values]
            return f"({sql} {'NOT ' if op == 'not-between' else ''}BETWEEN ? AND ?)"
        if op in _LIKE:
            if kind_of(column) != "text":
                raise InvalidFetchXml(f"The condition operator '{op}' needs a text attribute.")
            pattern, negate = _LIKE[op]
            if len(values) != 1:
                raise InvalidFetchXml(f"The condition operator '{op}' takes exactly one value.")
            self.params.append(pattern.format(v=values[0]))
            return f"({'NOT ' if negate else ''}{sql} LIKE ?)"
        if op in _ON:
            if column.type != "DateTime":
                raise InvalidFetchXml(f"The condition operator '{op}' needs a date attribute.")
            value = one()
            self.params.append(value[:10])
            return f"(substr({sql}, 1, 10) {_ON[op]} ?)"
        days = {"today": 0, "yesterday": -1, "tomorrow": 1}
        if op in days or op in ("last-x-days", "next-x-days", "last-seven-days", "next-seven-days"):
            if column.type != "DateTime":
                raise InvalidFetchXml(f"The condition operator '{op}' needs a date attribute.")
            today = self.now.astimezone(dt.UTC).date()
            if op in days:
                start = end = today + dt.timedelta(days=days[op])
            else:
                n = 7 if "seven" in op else _whole(values, op)
                try:
                    start, end = (
                        (today - dt.timedelta(days=n), today)
                        if op.startswith("last")
                        else (today, today + dt.timedelta(days=n))
                    )
                except OverflowError:  # past year 9999 or before year 1
                    raise InvalidFetchXml(
                        f"The condition operator '{op}' got {n} days, past the supported dates."
                    ) from None
            self.params += [start.isoformat(), end.isoformat()]
            return f"(substr({sql}, 1, 10) BETWEEN ? AND ?)"
        if op in ("eq-userid", "ne-userid"):
            self.params.append(self.user_id)
            return f"({sql} {'=' if op == 'eq-userid' else '<>'} ?)"
        raise InvalidFetchXml(f"The condition operator '{op}' is not supported by the sandbox.")

    def _value(self, table: Table, column: Column, text: str) -> Any:
        kind = kind_of(column)
        value = text.strip()

        def wrong(expected: str) -> InvalidArgument:
            return InvalidArgument(
                f"An exception System.FormatException was thrown while trying to convert input "
                f"value '{text}' to attribute '{table.logical_name}.{column.name}'. Expected "
                f"type of attribute value: {expected}."
            )

        if kind == "text":
            return text
        if kind == "number":
            number = number_text(value)  # refuses nan, Infinity, 1_000 and out-of-range integers
            if number is None:
                raise wrong("a number")
            if column.type in ("Money", "Decimal", "Double"):
                return float(number)
            if isinstance(number, float) and not (number.is_integer() and -(2**63) <= number < 2**63):
                raise wrong("a whole number")
            return int(number)
        if kind == "bool":
            if value.lower() in ("1", "true"):
                return 1
            if value.lower() in ("0", "false"):
                return 0
            raise wrong("System.Boolean")
        if kind == "guid":
            guid = value.strip("{}").lower()
            if not is_guid(guid):
                raise wrong("System.Guid")
            return guid
        try:
            if len(value) == 10:
                day = dt.date.fromisoformat(value)
                return day.isoformat() if kind == "date" else f"{day.isoformat()}T00:00:00Z"
            moment = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            raise wrong("System.DateTime") from None
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=dt.UTC)
        moment = moment.astimezone(dt.UTC)
        return (
            moment.date().isoformat() if kind == "date" else moment.strftime("%Y-%m-%dT%H:%M:%SZ")
        )


def _whole(values: list[str], op: str) -> int:
    number = whole_number(values[0]) if len(values) == 1 else None
    if number is None:
        raise InvalidFetchXml(f"The condition operator '{op}' needs a whole number of days.")
    return number
