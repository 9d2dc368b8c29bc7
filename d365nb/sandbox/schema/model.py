"""The shape of a table definition.

A table is data: one `Table` per file in `tables/`, and nothing else in the sandbox is specific to
one table. The store, the OData translator, `$metadata`, `EntityDefinitions` and the demo data
are all derived from these objects.

Storage convention (shared by `store` and `odata`): one SQLite table per Dataverse table, named by
the logical name; one SQLite column per attribute, named by the attribute's logical name. Lookups
(Lookup, Customer, Owner) keep the target id (lowercase GUID text) in the column named like the
attribute and the target's logical name in `<attr>__type`. Datetimes are ISO-8601 UTC text
(`YYYY-MM-DDTHH:MM:SSZ`; DateOnly columns `YYYY-MM-DD`) so text order is time order. Booleans are
0/1. String and Memo columns are declared `COLLATE NOCASE`, as Dataverse compares text
case-insensitively.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

# AttributeType names as Dataverse returns them in EntityDefinitions/Attributes.
TEXT_TYPES = frozenset({"String", "Memo"})
NUMBER_TYPES = frozenset({"Integer", "BigInt", "Decimal", "Double", "Money"})
CHOICE_TYPES = frozenset({"Picklist", "State", "Status"})
# A choices (multi-select) column: several option values, read and written as the text "1,2"
# (multi-select-picklist doc); stored as that text, so `eq`/`ne` compare it as Dataverse does.
MULTI_CHOICE = "MultiSelectPicklist"
LOOKUP_TYPES = frozenset({"Lookup", "Customer", "Owner"})
REQUIRED_LEVELS = ("None", "Recommended", "ApplicationRequired", "SystemRequired")
# The Edm type the Web API uses for each column type (CSDL, literals, conversion errors).
EDM_TYPES = {
    "String": "Edm.String",
    "Memo": "Edm.String",
    "Integer": "Edm.Int32",
    "BigInt": "Edm.Int64",
    "Decimal": "Edm.Decimal",
    "Money": "Edm.Decimal",
    "Double": "Edm.Double",
    "Boolean": "Edm.Boolean",
    "DateTime": "Edm.DateTimeOffset",
    "Picklist": "Edm.Int32",
    "State": "Edm.Int32",
    "Status": "Edm.Int32",
    "Uniqueidentifier": "Edm.Guid",
    "Lookup": "Edm.Guid",
    "Customer": "Edm.Guid",
    "Owner": "Edm.Guid",
    MULTI_CHOICE: "Edm.String",
}


@dataclass(frozen=True)
class Option:
    """One choice of a Picklist/State/Status (or one side of a Boolean)."""

    value: int
    label: str
    # Status options: the statecode they belong to. State options: their default statuscode.
    state: int | None = None
    default_status: int | None = None


@dataclass(frozen=True)
class Relationship:
    """A one-to-many relationship, seen from the lookup that implements it.

    `schema_name` is the collection-valued navigation property on the referenced ("one") table,
    e.g. ``Account_Tasks``; `navigation` is the single-valued navigation property on the
    referencing ("many") table, e.g. ``regardingobjectid_account_task`` (equal to the attribute
    name for single-target lookups such as ``parentaccountid``).
    """

    schema_name: str
    target: str  # referenced table, logical name
    navigation: str


@dataclass(frozen=True)
class Column:
    name: str  # logical name
    type: str  # AttributeType: String, Memo, Integer, BigInt, Decimal, Double, Money, Boolean,
    #            DateTime, Picklist, State, Status, Lookup, Customer, Owner, Uniqueidentifier
    display: str
    required: str = "None"  # one of REQUIRED_LEVELS
    description: str = ""
    max_length: int | None = None  # String/Memo
    min_value: float | None = None  # numbers
    max_value: float | None = None
    precision: int | None = None  # Decimal/Money/Double
    date_behavior: str | None = None  # DateTime: "UserLocal" | "DateOnly" | "TimeZoneIndependent"
    date_format: str | None = None  # DateTime: "DateAndTime" | "DateOnly"
    format: str | None = None  # String: "Text" | "Email" | "Url" | "Phone" | "TextArea"
    options: tuple[Option, ...] = ()  # choices; Boolean: (Option(0, "No"), Option(1, "Yes"))
    default: Any = None  # value applied on create when the column is not given
    relationships: tuple[Relationship, ...] = ()  # lookups: one per target table
    read_only: bool = False  # computed or system-set (fullname, createdon, versionnumber, ...)
    valid_for_create: bool = True
    valid_for_update: bool = True
    # Computed text columns (fullname): the non-empty values of these columns joined by a space,
    # recomputed by the store on every write.
    computed_from: tuple[str, ...] = ()
    # What joins the non-empty `computed_from` parts: a space for a full name, a line break
    # for an address composite (one part a line, as Dataverse shows `address1_composite`).
    computed_separator: str = " "
    # The documented SchemaName (`EMailAddress1`); None: derived from the logical name.
    schema_name: str | None = None
    # Made at run time through `EntityDefinitions(...)/Attributes` (IsCustomAttribute).
    custom: bool = False

    @property
    def targets(self) -> tuple[str, ...]:
        return tuple(r.target for r in self.relationships)

    @property
    def is_lookup(self) -> bool:
        return self.type in LOOKUP_TYPES


@dataclass
class Table:
    logical_name: str
    entity_set: str
    primary_id: str
    primary_name: str
    display: str
    display_collection: str
    object_type_code: int
    columns: dict[str, Column] = field(default_factory=dict)
    ownership: str = "UserOwned"  # UserOwned | BusinessOwned | OrganizationOwned
    change_tracking: bool = True
    is_activity: bool = False
    description: str = ""
    # Published duplicate detection rules: each a set of columns whose equal values make two
    # records duplicates (checked only when a request sends MSCRM.SuppressDuplicateDetection:
    # false, as in Dataverse).
    duplicate_rules: tuple[tuple[str, ...], ...] = ()
    # The documented SchemaName (`Account`); None: derived from the logical name.
    schema_name: str | None = None
    # Made at run time through `POST EntityDefinitions` (IsCustomEntity).
    custom: bool = False

    def column(self, name: str) -> Column | None:
        return self.columns.get(name)

    def find(self, name: str) -> Column | None:
        """The column a property name means: its logical name, or `_<lookup>_value` (how a
        lookup's value is read) for a lookup column; None for anything else. The one resolver
        of names in `$select`, `$orderby`, bodies and change tracking."""
        column = self.columns.get(name)
        if column is None and len(name) > 7 and name.startswith("_") and name.endswith("_value"):
            column = self.columns.get(name[1:-6])
            if column is not None and not column.is_lookup:
                column = None
        return column


def edm_type(column: Column) -> str:
    """The Edm type of a column's value on the wire (`Edm.Int32`, `Edm.Date`, ...)."""
    if column.type == "DateTime" and column.date_behavior == "DateOnly":
        return "Edm.Date"
    return EDM_TYPES.get(column.type, "Edm.String")


@dataclass(frozen=True)
class AlternateKey:
    """An alternate key (`EntityKeyMetadata`): a set of columns whose values are unique per
    row, so a record can be addressed by them (`accounts(accountnumber='ABC')`). Made at run
    time through `POST EntityDefinitions(...)/Keys`; the store keeps them per organisation."""

    table: str  # logical name of the table
    schema_name: str
    display: str
    attributes: tuple[str, ...]  # column logical names, in the order given

    @property
    def logical_name(self) -> str:
        return self.schema_name.lower()
