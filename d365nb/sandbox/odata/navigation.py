"""Navigation properties derived from the schema's lookups.

Single-valued: on the referencing table, one per lookup target (`parentaccountid`,
`customerid_account`, `regardingobjectid_lead_task`; owner lookups share `ownerid` for both
targets). Collection-valued: on the referenced table, named by the relationship's schema name
(`Account_Tasks`, `contact_customer_accounts`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from ..schema.cache import PerSchema
from ..schema.model import Column, Table


@dataclass(frozen=True, slots=True)
class SingleNav:
    """`table.<name>` -> the `target` row whose primary key is in `column`."""

    name: str
    column: Column
    target: str
    polymorphic: bool  # the lookup has several targets: check `<column>__type` too


@dataclass(frozen=True, slots=True)
class CollectionNav:
    """`parent.<name>` -> the `child` rows whose `column` holds the parent's primary key."""

    name: str
    parent: str
    child: str
    column: Column
    polymorphic: bool


@dataclass(frozen=True, slots=True)
class Navigations:
    single: dict[str, dict[str, list[SingleNav]]]  # table -> nav name -> one per target
    collection: dict[str, dict[str, CollectionNav]]  # table -> nav name


def _navigations(schema: Mapping[str, Table]) -> Navigations:
    """The navigation properties of every table."""
    single: dict[str, dict[str, list[SingleNav]]] = {name: {} for name in schema}
    collection: dict[str, dict[str, CollectionNav]] = {name: {} for name in schema}
    for table in schema.values():
        for col in table.columns.values():
            if not col.is_lookup:
                continue
            polymorphic = len(col.relationships) > 1
            for rel in col.relationships:
                nav = SingleNav(rel.navigation, col, rel.target, polymorphic)
                single[table.logical_name].setdefault(rel.navigation, []).append(nav)
                if rel.schema_name and rel.target in collection:
                    collection[rel.target][rel.schema_name] = CollectionNav(
                        rel.schema_name, rel.target, table.logical_name, col, polymorphic
                    )
    return Navigations(single, collection)


navigations: PerSchema[Navigations] = PerSchema(_navigations)
