"""Table and column metadata, read from ``EntityDefinitions`` and cached per connection.

The first use of a connection reads the table list (one request); the first use of a table reads
its attributes, option sets (through the typed casts) and many-to-one relationships. Everything
is kept for the life of the connection; ``cached_*`` methods never make a request (tab
completion must not block on the network).

Requests are described as generators yielding :class:`~d365nb.client.http.ApiRequest` so the
sync and async connections share this code (see ``api.py``).
"""

from __future__ import annotations

import threading
from collections.abc import Generator
from dataclasses import dataclass, field
from typing import Any

import orjson

from d365nb.client.errors import UnknownColumn, UnknownTable
from d365nb.client.http import ApiRequest
from d365nb.client.names import closest, lookup_base

__all__ = ["ColumnMeta", "TableMeta", "MetadataCache", "closest"]

Op = Generator[ApiRequest, Any, Any]

CHOICE_TYPES = frozenset({"Picklist", "State", "Status"})
LOOKUP_TYPES = frozenset({"Lookup", "Customer", "Owner"})
_OPTION_CASTS = (
    "PicklistAttributeMetadata",
    "StateAttributeMetadata",
    "StatusAttributeMetadata",
    "BooleanAttributeMetadata",
)
_TABLE_SELECT = (
    "LogicalName,EntitySetName,PrimaryIdAttribute,PrimaryNameAttribute,DisplayName,"
    "DisplayCollectionName,ChangeTrackingEnabled,IsActivity,OwnershipType"
)


def _label(value: Any) -> str:
    if isinstance(value, dict):
        user = value.get("UserLocalizedLabel")
        if isinstance(user, dict) and user.get("Label"):
            return str(user["Label"])
        for item in value.get("LocalizedLabels") or ():
            if item.get("Label"):
                return str(item["Label"])
        return ""
    return str(value or "")


@dataclass
class ColumnMeta:
    """One column (attribute). ``type`` is the Dataverse AttributeType (String, Integer,
    DateTime, Picklist, Lookup, ...); ``options`` maps choice values to labels; ``targets`` are
    the logical names a lookup may point to."""

    name: str
    type: str
    display_name: str = ""
    required: bool = False
    required_level: str = "None"
    max_length: int | None = None
    min_value: float | None = None
    max_value: float | None = None
    options: dict[int, str] = field(default_factory=dict)
    targets: list[str] = field(default_factory=list)
    read_only: bool = False
    valid_for_create: bool = True
    valid_for_update: bool = True
    valid_for_read: bool = True
    date_only: bool = False
    format: str | None = None
    attribute_of: str | None = None
    is_primary_id: bool = False

    @property
    def is_lookup(self) -> bool:
        return self.type in LOOKUP_TYPES

    @property
    def is_choice(self) -> bool:
        return self.type in CHOICE_TYPES

    @property
    def read_name(self) -> str:
        """The property name in a read record: ``_x_value`` for lookups."""
        return f"_{self.name}_value" if self.is_lookup else self.name


@dataclass
class TableMeta:
    """One table: names, keys and columns. ``navigation(column, target)`` resolves the
    single-valued navigation property to bind a lookup, e.g. ``regardingobjectid_lead_task``."""

    logical_name: str
    entity_set: str
    primary_id: str
    primary_name: str | None
    display_name: str = ""
    change_tracking: bool = False
    columns: dict[str, ColumnMeta] = field(default_factory=dict)
    # (lookup column, target logical name) -> navigation property
    navigations: dict[tuple[str, str], str] = field(default_factory=dict)

    def find(self, name: str) -> ColumnMeta | None:
        """The column named ``name`` (logical name, or ``_x_value`` for lookup ``x``), or None.
        Every reader of names from records, frames and ``$select`` resolves them here."""
        col = self.columns.get(name)
        if col is None and (base := lookup_base(name)) is not None:
            col = self.columns.get(base)
        return col

    def column(self, name: str) -> ColumnMeta:
        """The column named ``name`` (logical name, or ``_x_value`` for a lookup)."""
        col = self.find(name)
        if col is None:
            hint = closest(name, list(self.columns))
            more = f"; did you mean {', '.join(hint)}?" if hint else ""
            raise UnknownColumn(f"table {self.logical_name!r} has no column {name!r}{more}")
        return col

    def navigation(self, column: str, target: str) -> str:
        """The navigation property binding ``column`` to a record of table ``target``."""
        nav = self.navigations.get((column, target))
        if nav:
            return nav
        col = self.column(column)
        if col.type == "Owner" or len(col.targets) <= 1:
            return column
        if col.type == "Customer":
            return f"{column}_{target}"
        return f"{column}_{target}_{self.logical_name}"


@dataclass
class _TableEntry:
    logical_name: str
    entity_set: str
    primary_id: str
    primary_name: str | None
    display_name: str
    display_collection: str
    change_tracking: bool


def _column_from(item: dict[str, Any]) -> ColumnMeta:
    required_level = item.get("RequiredLevel")
    if isinstance(required_level, dict):
        required_level = required_level.get("Value")
    required_level = required_level or "None"
    valid_create = bool(item.get("IsValidForCreate", True))
    valid_update = bool(item.get("IsValidForUpdate", True))
    behavior = item.get("DateTimeBehavior")
    behavior = behavior.get("Value") if isinstance(behavior, dict) else behavior
    fmt = item.get("Format")
    return ColumnMeta(
        name=item["LogicalName"],
        type=str(item.get("AttributeType") or "String"),
        display_name=_label(item.get("DisplayName")),
        required=required_level in ("ApplicationRequired", "SystemRequired"),
        required_level=str(required_level),
        max_length=item.get("MaxLength"),
        min_value=item.get("MinValue"),
        max_value=item.get("MaxValue"),
        targets=list(item.get("Targets") or []),
        read_only=not (valid_create or valid_update),
        valid_for_create=valid_create,
        valid_for_update=valid_update,
        valid_for_read=bool(item.get("IsValidForRead", True)),
        date_only=behavior == "DateOnly" or fmt == "DateOnly",
        format=fmt if isinstance(fmt, str) else None,
        attribute_of=item.get("AttributeOf"),
        is_primary_id=bool(item.get("IsPrimaryId")),
    )


def _options_from(item: dict[str, Any]) -> dict[int, str]:
    option_set = item.get("OptionSet") or item.get("GlobalOptionSet") or {}
    if "TrueOption" in option_set:
        out = {}
        for key in ("FalseOption", "TrueOption"):
            opt = option_set.get(key) or {}
            if opt.get("Value") is not None:
                out[int(opt["Value"])] = _label(opt.get("Label"))
        return out
    return {
        int(opt["Value"]): _label(opt.get("Label"))
        for opt in option_set.get("Options") or ()
        if opt.get("Value") is not None
    }


class MetadataCache:
    """Per-connection cache of tables and columns.

    ``table(name)`` is filled on first use by the owning connection (sync: a request; async:
    ``await conn.load_table(name)`` first); ``cached_table_names()`` and ``cached_columns(table)``
    answer from memory only.
    """

    def __init__(self) -> None:
        self._entries: dict[str, _TableEntry] | None = None  # by logical name
        self._by_set: dict[str, str] = {}
        self._tables: dict[str, TableMeta] = {}
        self._lock = threading.Lock()
        self._runner: Any = None  # set by the sync connection: runs an op generator

    # -- no-request API -----------------------------------------------------------------------

    def cached_table_names(self) -> list[str]:
        """Logical and entity-set names known so far (no request)."""
        if not self._entries:
            return sorted(self._tables)
        return sorted({*self._entries, *self._by_set})

    def cached_columns(self, table: str) -> list[str]:
        """Column names of ``table`` if its metadata is loaded, else [] (no request)."""
        logical = self._resolve_cached(table)
        meta = self._tables.get(logical) if logical else None
        return list(meta.columns) if meta else []

    def cached(self, table: str) -> TableMeta | None:
        """The loaded metadata of ``table`` or None (no request)."""
        logical = self._resolve_cached(table)
        return self._tables.get(logical) if logical else None

    def entity_set_of(self, logical_name: str) -> str | None:
        entry = (self._entries or {}).get(logical_name)
        return entry.entity_set if entry else None

    def _resolve_cached(self, name: str) -> str | None:
        if name in self._tables:
            return name
        if self._entries is None:
            return None
        if name in self._entries:
            return name
        return self._by_set.get(name)

    # -- loading (generators) -----------------------------------------------------------------

    def table(self, name: str) -> TableMeta:
        """Metadata of ``name`` (logical or entity-set name), loading it on first use.

        Raises :class:`UnknownTable` with close names when there is no such table.
        """
        meta = self.cached(name)
        if meta is not None:
            return meta
        if self._runner is None:
            raise RuntimeError("this metadata cache is async: use `await conn.load_table(name)`")
        return self._runner(self.load_op(name))

    def entries_op(self) -> Op:
        """Load the table list (once)."""
        if self._entries is not None:
            return self._entries
        response = yield ApiRequest("GET", "EntityDefinitions", params={"$select": _TABLE_SELECT})
        entries: dict[str, _TableEntry] = {}
        for item in orjson.loads(response.content).get("value", []):
            entries[item["LogicalName"]] = _TableEntry(
                logical_name=item["LogicalName"],
                entity_set=item.get("EntitySetName") or item["LogicalName"],
                primary_id=item.get("PrimaryIdAttribute") or f"{item['LogicalName']}id",
                primary_name=item.get("PrimaryNameAttribute"),
                display_name=_label(item.get("DisplayName")),
                display_collection=_label(item.get("DisplayCollectionName")),
                change_tracking=bool(item.get("ChangeTrackingEnabled")),
            )
        with self._lock:
            self._entries = entries
            self._by_set = {e.entity_set: e.logical_name for e in entries.values()}
        return entries

    def resolve_op(self, name: str) -> Op:
        """The logical name for a logical or entity-set name (raises UnknownTable)."""
        if not isinstance(name, str) or not name:
            raise UnknownTable(f"table name must be a non-empty string, got {name!r}")
        entries = yield from self.entries_op()
        if name in entries:
            return name
        if name in self._by_set:
            return self._by_set[name]
        lowered = name.lower()
        for entry in entries.values():
            if lowered in (entry.logical_name.lower(), entry.entity_set.lower()):
                return entry.logical_name
        hint = closest(name, sorted({*entries, *self._by_set}))
        more = f"; did you mean {', '.join(hint)}?" if hint else "; see tables() for the list"
        raise UnknownTable(f"no table named {name!r}{more}")

    def load_op(self, name: str) -> Op:
        """Load (once) and return the :class:`TableMeta` of ``name``."""
        logical = yield from self.resolve_op(name)
        if logical in self._tables:
            return self._tables[logical]
        entry = self._entries[logical]
        base = f"EntityDefinitions(LogicalName='{logical}')"
        response = yield ApiRequest("GET", f"{base}/Attributes")
        columns: dict[str, ColumnMeta] = {}
        for item in orjson.loads(response.content).get("value", []):
            if item.get("LogicalName"):
                col = _column_from(item)
                columns[col.name] = col
        for cast in _OPTION_CASTS:
            response = yield ApiRequest(
                "GET",
                f"{base}/Attributes/Microsoft.Dynamics.CRM.{cast}",
                params={"$select": "LogicalName", "$expand": "OptionSet,GlobalOptionSet"},
            )
            for item in orjson.loads(response.content).get("value", []):
                col = columns.get(item.get("LogicalName"))
                if col is not None:
                    col.options = _options_from(item)
        navigations: dict[tuple[str, str], str] = {}
        response = yield ApiRequest(
            "GET",
            f"{base}/ManyToOneRelationships",
            params={
                "$select": "ReferencingAttribute,ReferencedEntity,"
                "ReferencingEntityNavigationPropertyName"
            },
        )
        for item in orjson.loads(response.content).get("value", []):
            key = (item.get("ReferencingAttribute"), item.get("ReferencedEntity"))
            if all(key) and item.get("ReferencingEntityNavigationPropertyName"):
                navigations[key] = item["ReferencingEntityNavigationPropertyName"]
        meta = TableMeta(
            logical_name=logical,
            entity_set=entry.entity_set,
            primary_id=entry.primary_id,
            primary_name=entry.primary_name,
            display_name=entry.display_name,
            change_tracking=entry.change_tracking,
            columns=columns,
            navigations=navigations,
        )
        with self._lock:
            self._tables[logical] = meta
        return meta

    def table_list(self) -> list[_TableEntry]:
        return list((self._entries or {}).values())
