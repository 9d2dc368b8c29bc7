"""Storage rows -> Dataverse JSON records (values, `_x_value` lookups, annotations, etags).

Speed matters here (a page is up to 5000 rows): the per-query work (which columns, which keys,
which formatter) is done once by `RecordWriter`; the plain path (no annotations) turns a row into
a record with one generated dict display, so there is no per-cell Python dispatch.
"""

from __future__ import annotations

import fnmatch
import functools
from collections.abc import Callable, Iterable
from typing import Any

from . import choices
from .schema.model import CHOICE_TYPES, LOOKUP_TYPES, MULTI_CHOICE, Column, Table

FORMATTED = "OData.Community.Display.V1.FormattedValue"
LOOKUP_LOGICAL_NAME = "Microsoft.Dynamics.CRM.lookuplogicalname"
ASSOCIATED_NAV = "Microsoft.Dynamics.CRM.associatednavigationproperty"


def output_name(column: Column) -> str:
    """The JSON property a column is read as: lookups are `_<attr>_value`."""
    return f"_{column.name}_value" if column.type in LOOKUP_TYPES else column.name


class Annotations:
    """Which annotation terms the client asked for with `odata.include-annotations`."""

    def __init__(self, patterns: Iterable[str] = ()) -> None:
        self.patterns = [p.strip() for p in patterns if p.strip()]

    def wants(self, term: str) -> bool:
        return any(p == "*" or fnmatch.fnmatchcase(term, p) for p in self.patterns)

    def __bool__(self) -> bool:
        return any(self.wants(t) for t in (FORMATTED, LOOKUP_LOGICAL_NAME, ASSOCIATED_NAV))


# -- formatted values ---------------------------------------------------------------------------


def _fmt_datetime(value: str) -> str:
    # "2026-01-31T09:05:00Z" -> "1/31/2026 9:05 AM" (en-US, UTC: the sandbox user's zone).
    y, mo, d = value[0:4], int(value[5:7]), int(value[8:10])
    if len(value) < 16:
        return f"{mo}/{d}/{y}"
    h, mi = int(value[11:13]), value[14:16]
    suffix = "AM" if h < 12 else "PM"
    return f"{mo}/{d}/{y} {(h % 12) or 12}:{mi} {suffix}"


def _fmt_date(value: str) -> str:
    return f"{int(value[5:7])}/{int(value[8:10])}/{value[0:4]}"


def _fmt_money(value: float) -> str:
    return f"-${-value:,.2f}" if value < 0 else f"${value:,.2f}"


def formatter(column: Column) -> Callable[[Any], str | None] | None:
    """How Dataverse displays a column's value (None for plain text, which has no annotation)."""
    t = column.type
    if t in CHOICE_TYPES or t == "Boolean":
        labels = {o.value: o.label for o in column.options}
        return labels.get
    if t in ("Integer", "BigInt"):
        return lambda v: f"{v:,}"
    if t == "Money":
        return _fmt_money
    if t in ("Decimal", "Double"):
        digits = column.precision if column.precision is not None else 2
        return lambda v: f"{v:,.{digits}f}"
    if t == "DateTime":
        return _fmt_date if column.date_format == "DateOnly" else _fmt_datetime
    if t == MULTI_CHOICE:  # "Swimming; Camping" (see `choices`)
        return lambda v: choices.formatted(column, v)
    return None


# -- records ------------------------------------------------------------------------------------


@functools.lru_cache(maxsize=512)
def _plain_converter(
    table: str, columns: tuple[tuple[str, str, bool], ...]
) -> Callable[[dict[str, Any]], dict[str, Any]]:
    """Compile `row -> record` for (output name, storage name, boolean?) columns. The names come
    from the schema (never from a request), so the generated source is safe; cached, since the
    same selections repeat."""
    parts = ["'@odata.etag': ('W/\"%s\"' % r['versionnumber']) if 'versionnumber' in r else None"]
    for out, key, is_bool in columns:
        value = (
            f"(None if (v := r.get({key!r})) is None else v == 1)" if is_bool else f"r.get({key!r})"
        )
        parts.append(f"{out!r}: {value}")
    source = "def convert(r):\n    return {" + ", ".join(parts) + "}\n"
    scope: dict[str, Any] = {}
    exec(compile(source, f"<record {table}>", "exec"), scope)  # noqa: S102
    return scope["convert"]


def _expanded(row: dict[str, Any], nav: str) -> Any:
    # odata nests expansions under row["$expand"][nav]: a single-valued nav often has the same
    # name as its lookup column (`primarycontactid`), whose id stays in row[nav].
    return (row.get("$expand") or {}).get(nav)


class RecordWriter:
    """Turns storage rows of one query into JSON records.

    `columns`: the storage columns to output (None = all); `expand`: nav name -> `Expansion`
    for expanded navigation properties nested in the rows; `names`: callable (table, ids) -> {id: primary name}, used for lookup FormattedValues.
    """

    def __init__(
        self,
        schema: dict[str, Table],
        table: Table,
        columns: list[str] | None,
        annotations: Annotations | None = None,
        names: Callable[[str, Iterable[str]], dict[str, str | None]] | None = None,
        expand: dict[str, Expansion] | None = None,
        etag: bool = True,
        principal: bool = False,
    ) -> None:
        self.schema = schema
        self.table = table
        cols = table.columns
        if columns is None:
            chosen = list(cols.values())
        else:
            wanted = dict.fromkeys(columns)
            wanted[table.primary_id] = None  # the key is always returned
            chosen = [cols[n] for n in cols if n in wanted]
        self.columns = chosen
        self.annotations = annotations or Annotations()
        self.names = names
        self.expand = expand or {}
        # Records nested in an entity-set query carry no @odata.etag; a user or team read
        # through a navigation property also carries `ownerid` (the principal key it
        # inherits), as in the join-tables examples.
        self.etag = etag
        self.principal = principal and table.logical_name in ("systemuser", "team")
        self.formatted = self.annotations.wants(FORMATTED)
        self.logical = self.annotations.wants(LOOKUP_LOGICAL_NAME)
        self.navprop = self.annotations.wants(ASSOCIATED_NAV)
        self._lookups = [c for c in chosen if c.type in LOOKUP_TYPES]
        self._annotating = self.formatted or self.logical or self.navprop
        if self._annotating:
            self._convert = self._annotated
            self._cells = [self._cell(c) for c in chosen]
        else:
            self._convert = self._compile_plain()

    # The plain path: one generated function building the whole record in a dict display.
    def _compile_plain(self) -> Callable[[dict[str, Any]], dict[str, Any]]:
        return _plain_converter(
            self.table.logical_name,
            tuple((output_name(c), c.name, c.type == "Boolean") for c in self.columns),
        )

    def _cell(self, col: Column) -> Callable[[dict[str, Any], dict[str, Any], dict], None]:
        key, out = col.name, output_name(col)
        fmt_key = f"{out}@{FORMATTED}"
        if col.type in LOOKUP_TYPES:
            type_key = f"{key}__type"
            navs = {r.target: r.navigation for r in col.relationships}
            single_target = col.relationships[0].target if len(col.relationships) == 1 else None
            formatted, logical, navprop = self.formatted, self.logical, self.navprop

            nav_key, logical_key = f"{out}@{ASSOCIATED_NAV}", f"{out}@{LOOKUP_LOGICAL_NAME}"

            def lookup(r: dict, rec: dict, names: dict) -> None:
                value = r.get(key)
                if value is not None:
                    target = r.get(type_key) or single_target
                    if navprop:
                        rec[nav_key] = navs.get(target, key)
                    if logical:
                        rec[logical_key] = target
                    if formatted:
                        name = names.get((target, value))
                        if name is not None:
                            rec[fmt_key] = name
                rec[out] = value

            return lookup
        fmt = formatter(col) if self.formatted else None
        is_bool = col.type == "Boolean"

        def cell(r: dict, rec: dict, names: dict) -> None:
            value = r.get(key)
            if value is not None and fmt is not None:
                text = fmt(value)
                if text is not None:
                    rec[fmt_key] = text
            rec[out] = (value == 1) if is_bool and value is not None else value

        return cell

    def _annotated(self, r: dict[str, Any], names: dict | None = None) -> dict[str, Any]:
        rec: dict[str, Any] = {}
        if "versionnumber" in r:
            rec["@odata.etag"] = f'W/"{r["versionnumber"]}"'
        names = names or {}
        for cell in self._cells:
            cell(r, rec, names)
        return rec

    def _lookup_names(self, rows: list[dict[str, Any]]) -> dict[tuple[str, str], str | None]:
        """Primary names of every lookup target on the page: one query per target table."""
        if not (self.formatted and self._lookups and self.names):
            return {}
        wanted: dict[str, set[str]] = {}
        for col in self._lookups:
            type_key = f"{col.name}__type"
            single = col.relationships[0].target if len(col.relationships) == 1 else None
            for r in rows:
                value = r.get(col.name)
                if value is not None:
                    wanted.setdefault(r.get(type_key) or single, set()).add(value)
        out: dict[tuple[str, str], str | None] = {}
        for target, ids in wanted.items():
            if target in self.schema:
                for id_, name in self.names(target, ids).items():
                    out[(target, id_)] = name
        return out

    def records(self, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """JSON records for a page of storage rows (expanded navs included)."""
        if self._annotating:
            names = self._lookup_names(rows)
            out = [self._annotated(r, names) for r in rows]
        else:
            convert = self._convert
            out = [convert(r) for r in rows]
            if "versionnumber" not in (rows[0] if rows else {"versionnumber": 1}):
                for rec in out:
                    rec.pop("@odata.etag", None)
        if not self.etag:
            for rec in out:
                rec.pop("@odata.etag", None)
        if self.principal:
            pk = self.table.primary_id
            for rec in out:
                rec["ownerid"] = rec.get(pk)
        for expansion in self.expand.values():
            expansion.attach(out, rows)
        return out

    def record(self, row: dict[str, Any]) -> dict[str, Any]:
        return self.records([row])[0]

    def select_names(self) -> list[str]:
        """The JSON names of the selected columns (for `@odata.context`)."""
        return [output_name(c) for c in self.columns]


EXPANDED = "$expand"  # where the query engine nests expanded rows in a storage row


class Expansion:
    """How to write one expanded navigation property: a writer per possible target table
    (owner lookups have two), whether it is a collection, and the lookup column whose
    `__type` says which target a single-valued row came from.

    `link(parent_row) -> url | None`: the `<nav>@odata.nextLink` of a collection;
    `ref(target_table, id) -> url`: for `<nav>/$ref`, the `@odata.id` written instead of the
    record."""

    def __init__(
        self,
        nav: str,
        writers: dict[str, RecordWriter],
        many: bool,
        type_column: str | None = None,
        link: Callable[[dict[str, Any]], str | None] | None = None,
        ref: Callable[[str, str], str] | None = None,
    ) -> None:
        self.nav = nav
        self.writers = writers
        self.many = many
        self.type_column = type_column
        self.default = next(iter(writers.values()))
        self.link = link
        self.ref = ref

    def attach(self, records: list[dict[str, Any]], rows: list[dict[str, Any]]) -> None:
        nav = self.nav
        if self.many:
            link_key = f"{nav}@odata.nextLink"
            for rec, r in zip(records, rows, strict=True):
                children = (r.get(EXPANDED) or {}).get(nav) or []
                rec[nav] = self.default.records(children)
                url = self.link(r) if self.link is not None else None
                if url is not None:
                    rec[link_key] = url
            return
        for rec, r in zip(records, rows, strict=True):
            child = (r.get(EXPANDED) or {}).get(nav)
            if child is None:
                rec[nav] = None
                continue
            if self.ref is not None:
                target = self.default.table
                if self.type_column and len(self.writers) > 1:
                    target = self.writers.get(r.get(self.type_column) or "", self.default).table
                rec[nav] = {"@odata.id": self.ref(target.entity_set, child[target.primary_id])}
                continue
            writer = self.default
            if self.type_column and len(self.writers) > 1:
                writer = self.writers.get(r.get(self.type_column) or "", self.default)
            rec[nav] = writer.record(child)


def context_url(api: str, table: Table, select: list[str] | None, entity: bool = False) -> str:
    """`@odata.context`: `<api>$metadata#leads(subject,fullname)` (+ `/$entity` for one record)."""
    target = table.entity_set
    if select:
        target += "(" + ",".join(select) + ")"
    return f"{api}$metadata#{target}" + ("/$entity" if entity else "")
