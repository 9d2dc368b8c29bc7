"""The filter tree: what `parse_filter` returns.

Every node keeps `pos`, the 0-based offset of its first character in the filter text, so a
later (semantic) error can point at the place. Nodes are plain frozen dataclasses; walk them with
`isinstance`. Aliases (`@p1`) are already replaced by their values when `parse_filter` returns.

Examples::

    lastname eq 'O''Bryan'      Compare('eq', Property(('lastname',)), Literal('string', "O'Bryan"))
    not contains(name,'x')      Not(Call('contains', (Property(('name',)), Literal('string','x'))))
    Account_Tasks/any(t:t/statecode eq 1)
                                Lambda(('Account_Tasks',), 'any', 't', Compare(...))
    Microsoft.Dynamics.CRM.In(PropertyName='lastname',PropertyValues=["a","b"])
                                QueryFunction('Microsoft.Dynamics.CRM.In', {'PropertyName': Literal, 'PropertyValues': Literal('array', [...])})
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

# Literal kinds and their Python values:
#   string -> str, int -> int, decimal -> float, bool -> bool, null -> None,
#   guid -> lowercase str, datetime -> datetime (aware, UTC), date -> datetime.date,
#   enum -> str (the member name; `type_name` holds the qualified enum type),
#   array -> list of Python values (from ["a","b"] in query-function arguments)
LITERAL_KINDS = (
    "string",
    "int",
    "decimal",
    "bool",
    "null",
    "guid",
    "datetime",
    "date",
    "enum",
    "array",
)


@dataclass(frozen=True, slots=True)
class Node:
    """Base of all filter nodes."""

    pos: int


@dataclass(frozen=True, slots=True)
class Literal(Node):
    """A constant; see LITERAL_KINDS for `kind` and the Python type of `value`."""

    kind: str
    value: Any
    type_name: str | None = None  # enum literals only


@dataclass(frozen=True, slots=True)
class Property(Node):
    """A property path: ``('name',)``, ``('parentaccountid', 'name')``, ``('t', 'statecode')``."""

    path: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Compare(Node):
    """`left op right`, op one of eq ne gt ge lt le."""

    op: str
    left: Node
    right: Node


@dataclass(frozen=True, slots=True)
class And(Node):
    left: Node
    right: Node


@dataclass(frozen=True, slots=True)
class Or(Node):
    left: Node
    right: Node


@dataclass(frozen=True, slots=True)
class Not(Node):
    operand: Node


@dataclass(frozen=True, slots=True)
class Call(Node):
    """A built-in OData function call: contains, startswith, endswith (others are refused)."""

    name: str
    args: tuple[Node, ...]


@dataclass(frozen=True, slots=True)
class QueryFunction(Node):
    """A qualified call such as `Microsoft.Dynamics.CRM.In(PropertyName=...,PropertyValues=[...])`.

    `name` is the qualified name as written; `args` maps argument names to (resolved) literals.
    """

    name: str
    args: dict[str, Node] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Lambda(Node):
    """`path/any(var: predicate)`, `path/all(var: predicate)` or `path/any()` (var, predicate None)."""

    path: tuple[str, ...]
    kind: str  # "any" | "all"
    var: str | None
    predicate: Node | None


@dataclass(frozen=True, slots=True)
class Alias(Node):
    """A parameter alias reference (`@p1`); only seen before aliases are resolved."""

    name: str


@dataclass(frozen=True, slots=True)
class OrderItem:
    """One `$orderby` key: a property path (after alias resolution) and its direction."""

    pos: int
    path: tuple[str, ...]
    descending: bool
