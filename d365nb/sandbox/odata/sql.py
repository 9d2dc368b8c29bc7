"""Filter trees -> parameterised SQL over the storage convention (see `schema/model.py`).

The compiler binds every property path against the schema (unknown names are errors with the
position), checks operand types the way the OData library does, and emits SQL in which user
values only ever appear as `?` parameters. Nothing is evaluated row by row in Python:

* `name eq 'x'`                 -> `t0."name" = ? COLLATE NOCASE`
* `_parentaccountid_value eq g` -> `t0."parentaccountid" = ?` (indexed)
* `parentaccountid/name eq 'x'` -> a correlated scalar subquery on the target's primary key
* `Account_Tasks/any(t:...)`     -> `EXISTS (SELECT 1 FROM "task" l1 WHERE l1.fk = t0.pk AND ...)`
* `contains(name,'a%b')`        -> `LIKE` (or `GLOB` on lower() when `[...]` classes are used,
                                   since SQLite's LIKE has no character classes)
* query functions               -> ranges / IN lists (`functions`, `function_sql`)
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from typing import Any

from ..collation import COLLATION, FOLD, fold, needs_fold
from ..schema.model import Column, Table, edm_type
from .errors import ODataError
from .navigation import Navigations, navigations
from .nodes import (
    And,
    Call,
    Compare,
    Lambda,
    Literal,
    Node,
    Not,
    Or,
    Property,
    QueryFunction,
)

_SQL_OPS = {"eq": "=", "ne": "<>", "gt": ">", "ge": ">=", "lt": "<", "le": "<="}
_OP_KINDS = {
    "eq": "Equal",
    "ne": "NotEqual",
    "gt": "GreaterThan",
    "ge": "GreaterThanOrEqual",
    "lt": "LessThan",
    "le": "LessThanOrEqual",
}
_LOOKUP_VALUE = re.compile(r"_(\w+)_value")
_NUMBER_TYPES = {"Integer", "BigInt", "Decimal", "Double", "Money", "Picklist", "State", "Status"}
_LITERAL_EDM = {
    "string": "Edm.String",
    "int": "Edm.Int32",
    "decimal": "Edm.Decimal",
    "bool": "Edm.Boolean",
    "guid": "Edm.Guid",
    "datetime": "Edm.DateTimeOffset",
    "date": "Edm.Date",
    "array": "Collection(Edm.String)",
}


def type_name(table: Table) -> str:
    return f"Microsoft.Dynamics.CRM.{table.logical_name}"


def not_found(name: str, table: Table, pos: int | None) -> ODataError:
    return ODataError(
        f"Could not find a property named '{name}' on type '{type_name(table)}'.", pos
    )


def quote(name: str) -> str:
    """Quote a schema-defined identifier (never user text: names are checked first)."""
    return '"' + name.replace('"', '""') + '"'


def kind_of(column: Column) -> str:
    """Comparison family of a column: text, number, bool, datetime, date or guid."""
    t = column.type
    if t in ("String", "Memo", "MultiSelectPicklist"):  # choices: the text "1,9"
        return "text"
    if t in _NUMBER_TYPES:
        return "number"
    if t == "Boolean":
        return "bool"
    if t == "DateTime":
        return "date" if column.date_behavior == "DateOnly" else "datetime"
    return "guid"  # Uniqueidentifier and lookups


def storage_datetime(value: dt.datetime) -> str:
    return value.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(slots=True)
class Operand:
    """A bound expression: SQL text (None for literals, whose value is coerced later)."""

    sql: str | None
    kind: str  # text number bool datetime date guid | literal kinds for literals
    edm: str
    column: Column | None = None
    literal: Literal | None = None


@dataclass(slots=True)
class _Scope:
    table: Table
    alias: str
    var: str | None  # lambda range variable; None for the query's own rows ($it)


NOT_QUERY_FUNCTION = "Not operator along with the Custom Named Condition operators is not allowed"


def _has_query_function(node: Node) -> bool:
    """Whether a Dataverse query function occurs in `node` (outside lambdas, which test other
    rows)."""
    stack = [node]
    while stack:
        item = stack.pop()
        if isinstance(item, QueryFunction):
            return True
        if isinstance(item, And | Or):
            stack += [item.left, item.right]
        elif isinstance(item, Not):
            stack.append(item.operand)
    return False


class FilterCompiler:
    """Compiles one filter tree for one table. `params` collects values in SQL order."""

    def __init__(
        self,
        schema: dict[str, Table],
        table: Table,
        *,
        text: str,
        user_id: str | None,
        now: dt.datetime,
        alias: str = "t0",
        params: list[Any] | None = None,
    ) -> None:
        self.schema = schema
        self.navs: Navigations = navigations(schema)
        self.text = text
        self.user_id = user_id
        self.now = now
        self.params: list[Any] = [] if params is None else params
        self._scopes = [_Scope(table, alias, None)]
        self._counter = 0

    # -- entry --------------------------------------------------------------------------------

    def compile(self, node: Node) -> str:
        """SQL for a boolean expression."""
        if isinstance(node, And | Or):
            # Long `a and b and c ...` chains are flattened without recursion.
            joiner = " AND " if isinstance(node, And) else " OR "
            return "(" + joiner.join(self.compile(p) for p in _chain(node)) + ")"
        if isinstance(node, Not):
            # `not not ... x` is checked and compiled as one run: checking each level's subtree
            # again made a deep chain quadratic.
            depth, inner = 0, node
            while isinstance(inner, Not):
                depth, inner = depth + 1, inner.operand
            if _has_query_function(inner):
                # Dataverse cannot negate its query functions (query-data-web-api doc,
                # "Limitations of query functions"); each has a negated companion instead.
                raise ODataError(NOT_QUERY_FUNCTION)
            return "(NOT " * depth + self.compile(inner) + ")" * depth
        if isinstance(node, Compare):
            return self._compare(node)
        if isinstance(node, Call):
            return self._call(node)
        if isinstance(node, QueryFunction):
            return self._query_function(node)
        if isinstance(node, Lambda):
            return self._lambda(node)
        if isinstance(node, Property):
            operand = self._property(node)
            if operand.kind == "bool":
                return f"({operand.sql} = 1)"
        if isinstance(node, Literal) and node.kind == "bool":
            return "1" if node.value else "0"
        raise ODataError(
            "The $filter expression must evaluate to a single boolean value.", node.pos
        )

    @property
    def table(self) -> Table:
        """The table the filter is on (its outermost scope)."""
        return self._scopes[0].table

    def column_operand(self, name: str, pos: int) -> Operand:
        """A query function's PropertyName: an attribute of the query's own table by logical
        name (lookups included, as in FetchXML), or a property path."""
        scope = self._scopes[0]
        column = scope.table.columns.get(name)
        if column is not None and column.is_lookup:
            return Operand(f"{scope.alias}.{quote(column.name)}", "guid", "Edm.Guid", column)
        return self._property(Property(pos, tuple(name.split("/"))))

    def _new_alias(self, prefix: str) -> str:
        self._counter += 1
        return f"{prefix}{self._counter}"

    # -- operands -----------------------------------------------------------------------------

    def _operand(self, node: Node) -> Operand:
        if isinstance(node, Literal):
            return Operand(
                None, node.kind, _LITERAL_EDM.get(node.kind, node.type_name or ""), None, node
            )
        if isinstance(node, Property):
            return self._property(node)
        if isinstance(node, Call | Lambda | QueryFunction | Compare | And | Or | Not):
            return Operand(self.compile(node), "bool", "Edm.Boolean")
        raise ODataError(f"Syntax error at position {node.pos} in '{self.text}'.", node.pos)

    def _property(self, node: Property) -> Operand:
        segments = list(node.path)
        scope = self._scopes[0]
        if segments[0] == "$it":
            segments.pop(0)
        else:
            for candidate in reversed(self._scopes):
                if candidate.var is not None and candidate.var == segments[0]:
                    scope = candidate
                    segments.pop(0)
                    break
        if not segments:
            raise ODataError(
                f"The range variable '{node.path[0]}' must be followed by a property at position "
                f"{node.pos} in '{self.text}'.",
                node.pos,
            )
        return self._path(scope.table, scope.alias, segments, node.pos)

    def _path(self, table: Table, alias: str, segments: list[str], pos: int) -> Operand:
        name, rest = segments[0], segments[1:]
        column = table.columns.get(name)
        if column is not None and not column.is_lookup:
            if rest:
                raise not_found(rest[0], table, pos)
            return Operand(
                f"{alias}.{quote(column.name)}", kind_of(column), edm_type(column), column
            )
        match = _LOOKUP_VALUE.fullmatch(name)
        if match and (lookup := table.columns.get(match.group(1))) and lookup.is_lookup:
            if rest:
                raise not_found(rest[0], table, pos)
            return Operand(f"{alias}.{quote(lookup.name)}", "guid", "Edm.Guid", lookup)
        single = self.navs.single[table.logical_name].get(name)
        if single is not None:
            if not rest:
                raise ODataError(
                    f"The navigation property '{name}' cannot be compared as a value; use "
                    f"'_{single[0].column.name}_value' or a path such as '{name}/"
                    f"{self.schema[single[0].target].primary_id}' (position {pos}).",
                    pos,
                )
            return self._navigate(single, alias, rest, pos)
        if name in self.navs.collection[table.logical_name]:
            raise ODataError(
                f"The collection-valued navigation property '{name}' can only be used with "
                f"'any' or 'all' (position {pos} in '{self.text}').",
                pos,
            )
        raise not_found(name, table, pos)

    def _navigate(self, navs, alias: str, rest: list[str], pos: int) -> Operand:
        parts = []
        result: Operand | None = None
        for nav in navs:
            target = self.schema[nav.target]
            fk = f"{alias}.{quote(nav.column.name)}"
            type_check = (
                f" AND {alias}.{quote(nav.column.name + '__type')} = '{target.logical_name}'"
                if nav.polymorphic
                else ""
            )
            if rest == [target.primary_id]:
                # The related row's key is the lookup column itself: no subquery, index usable.
                sql = fk if not nav.polymorphic else f"(CASE WHEN 1{type_check} THEN {fk} END)"
                op = Operand(sql, "guid", "Edm.Guid", target.columns[target.primary_id])
            else:
                if len(navs) > 1 and rest[0] not in target.columns:
                    continue  # owner-style nav: only the targets that have the property
                sub = self._new_alias("j")
                inner = self._path(target, sub, rest, pos)
                sql = (
                    f"(SELECT {inner.sql} FROM {quote(target.logical_name)} {sub} "
                    f"WHERE {sub}.{quote(target.primary_id)} = {fk}{type_check})"
                )
                op = Operand(sql, inner.kind, inner.edm, inner.column)
            parts.append(op.sql)
            result = result or op
        if result is None:
            raise not_found(rest[0], self.schema[navs[0].target], pos)
        if len(parts) > 1:
            result = Operand(
                f"COALESCE({', '.join(parts)})", result.kind, result.edm, result.column
            )
        return result

    # -- comparisons --------------------------------------------------------------------------

    def _incompatible(self, left: Operand, right: Operand, op: str, pos: int) -> ODataError:
        return ODataError(
            "A binary operator with incompatible types was detected. Found operand types "
            f"'{left.edm}' and '{right.edm}' for operator kind '{_OP_KINDS[op]}'.",
            pos,
        )

    def _value(self, target: Operand, lit: Literal, op: str, pos: int, other: Operand) -> Any:
        """Coerce a literal to the storage form of the operand it is compared with."""
        kind, value = target.kind, lit.value
        if kind == "text" and lit.kind == "string":
            return value
        if kind == "number" and lit.kind in ("int", "decimal"):
            return value
        if kind == "bool" and lit.kind == "bool":
            return 1 if value else 0
        if kind == "guid" and lit.kind == "guid":
            return value
        if kind == "datetime" and lit.kind in ("datetime", "date"):
            if lit.kind == "date":
                return value.isoformat() + "T00:00:00Z"
            return value  # datetimes keep sub-second precision until the operator is known
        if kind == "date" and lit.kind in ("date", "datetime"):
            return (value.date() if lit.kind == "datetime" else value).isoformat()
        raise self._incompatible(target, other, op, pos)

    def _compare(self, node: Compare) -> str:
        op = node.op
        left, right = self._operand(node.left), self._operand(node.right)
        null_left = left.literal is not None and left.kind == "null"
        null_right = right.literal is not None and right.kind == "null"
        if null_left or null_right:
            other = right if null_left else left
            if other.literal is not None:
                both_null = other.kind == "null"
                return ("1" if both_null == (op == "eq") else "0") if op in ("eq", "ne") else "0"
            if op == "eq":
                return f"({other.sql} IS NULL)"
            if op == "ne":
                return f"({other.sql} IS NOT NULL)"
            return "0"  # ordering comparisons with null are never true
        if left.literal is not None and right.literal is not None:
            raise ODataError(
                f"A comparison needs a property at position {node.pos} in '{self.text}'.", node.pos
            )
        if left.literal is None and right.literal is None:
            if left.kind != right.kind and {left.kind, right.kind} != {"datetime", "date"}:
                raise self._incompatible(left, right, op, node.pos)
            collate = " COLLATE NOCASE" if left.kind == "text" else ""
            return f"({left.sql} {_SQL_OPS[op]} {right.sql}{collate})"
        # One side is a property, the other a literal: put the property on the left.
        if left.literal is not None:
            left, right = right, left
            op = {"gt": "lt", "ge": "le", "lt": "gt", "le": "ge"}.get(op, op)
        value = self._value(left, right.literal, op, node.pos, right)
        if isinstance(value, dt.datetime):
            return self._compare_datetime(left.sql, op, value)
        self.params.append(value)
        collate = ""
        if left.kind == "text":
            # NOCASE (indexed) agrees with Dataverse's collation on ASCII; other text folds.
            collate = f" COLLATE {COLLATION}" if needs_fold(value) else " COLLATE NOCASE"
        return f"({left.sql} {_SQL_OPS[op]} ?{collate})"

    def _compare_datetime(self, sql: str, op: str, value: dt.datetime) -> str:
        # Storage keeps whole seconds; round the literal the way that keeps the comparison exact.
        whole = value.replace(microsecond=0)
        if value.microsecond:
            if op == "eq":
                return "0"
            if op == "ne":
                return f"({sql} IS NOT NULL)"
            if op in ("ge", "lt"):
                whole += dt.timedelta(seconds=1)
        self.params.append(storage_datetime(whole))
        return f"({sql} {_SQL_OPS[op]} ?)"

    # -- functions ----------------------------------------------------------------------------

    def _call(self, node: Call) -> str:
        name = node.name
        if name not in ("contains", "startswith", "endswith"):
            raise ODataError(
                f"The function '{name}' is not supported; use contains, startswith or endswith "
                f"(position {node.pos} in '{self.text}').",
                node.pos,
            )
        if len(node.args) != 2:
            raise ODataError(
                f"The function '{name}' takes 2 arguments (position {node.pos} in '{self.text}').",
                node.pos,
            )
        target = self._operand(node.args[0])
        pattern = node.args[1]
        if target.literal is not None or target.kind != "text":
            raise ODataError(
                f"The first argument of '{name}' must be a text property (position "
                f"{node.args[0].pos} in '{self.text}').",
                node.args[0].pos,
            )
        if isinstance(pattern, Property):
            other = self._operand(pattern)
            if other.kind == "text":  # column against column: the other's text, wildcards kept
                wrapped = {
                    "contains": f"'%' || {other.sql} || '%'",
                    "startswith": f"{other.sql} || '%'",
                    "endswith": f"'%' || {other.sql}",
                }[name]
                return f"({target.sql} LIKE {wrapped})"
        if not isinstance(pattern, Literal) or pattern.kind not in ("string", "null"):
            raise ODataError(
                f"The second argument of '{name}' must be a string literal (position "
                f"{pattern.pos} in '{self.text}').",
                pattern.pos,
            )
        if pattern.kind == "null":
            return "0"
        text = pattern.value
        # SQLite's LIKE and lower() fold ASCII only: other text compares folded (collation.py).
        unicode = needs_fold(text)
        subject = f"{FOLD}({target.sql})" if unicode else target.sql
        if unicode:
            text = fold(text)
        if "[" in text:
            glob = _like_to_glob(text)
            self.params.append(
                {"contains": f"*{glob}*", "startswith": f"{glob}*", "endswith": f"*{glob}"}[name]
            )
            return f"({subject} GLOB ?)" if unicode else f"(lower({subject}) GLOB ?)"
        # Dataverse passes % and _ through as wildcards (SQL Server LIKE semantics).
        self.params.append(
            {"contains": f"%{text}%", "startswith": f"{text}%", "endswith": f"%{text}"}[name]
        )
        return f"({subject} LIKE ?)"

    # The Microsoft.Dynamics.CRM.* functions build on this compiler, so they are plugged in from
    # above (`odata/__init__.py` installs `function_sql.compile_query_function`), not imported.
    query_functions: Any = None

    def _query_function(self, node: QueryFunction) -> str:
        return type(self).query_functions(self, node)

    # -- lambdas ------------------------------------------------------------------------------

    def _lambda(self, node: Lambda) -> str:
        scope = self._scopes[0]
        path = list(node.path)
        for candidate in reversed(self._scopes):
            if candidate.var is not None and candidate.var == path[0]:
                scope = candidate
                path.pop(0)
                break
        if len(path) != 1:
            raise ODataError(
                f"'{node.kind}' must follow a collection-valued navigation property of the "
                f"table (position {node.pos} in '{self.text}').",
                node.pos,
            )
        nav = self.navs.collection[scope.table.logical_name].get(path[0])
        if nav is None:
            if (
                path[0] in scope.table.columns
                or path[0] in self.navs.single[scope.table.logical_name]
            ):
                raise ODataError(
                    f"'{path[0]}' is not a collection-valued navigation property; '{node.kind}' "
                    f"needs one (position {node.pos} in '{self.text}').",
                    node.pos,
                )
            raise not_found(path[0], scope.table, node.pos)
        child = self.schema[nav.child]
        alias = self._new_alias("l")
        fk = f"{alias}.{quote(nav.column.name)}"
        where = f"{fk} = {scope.alias}.{quote(scope.table.primary_id)}"
        if nav.polymorphic:
            where += (
                f" AND {alias}.{quote(nav.column.name + '__type')} = '{scope.table.logical_name}'"
            )
        sub = f"SELECT 1 FROM {quote(child.logical_name)} {alias} WHERE {where}"
        if node.predicate is None:
            return f"EXISTS ({sub})"
        self._scopes.append(_Scope(child, alias, node.var))
        try:
            predicate = self.compile(node.predicate)
        finally:
            self._scopes.pop()
        if node.kind == "any":
            return f"EXISTS ({sub} AND {predicate})"
        # all: no related row for which the predicate is not true (null counts as not true)
        return f"NOT EXISTS ({sub} AND ({predicate}) IS NOT 1)"


# -- helpers ----------------------------------------------------------------------------------


def _chain(node: And | Or) -> list[Node]:
    """The operands of a chain of one boolean operator, left to right (iteratively)."""
    kind, out, stack = type(node), [], [node]
    while stack:
        item = stack.pop()
        if type(item) is kind:
            stack.append(item.right)
            stack.append(item.left)
        else:
            out.append(item)
    return out


def _like_to_glob(pattern: str) -> str:
    """SQL Server LIKE pattern (% _ [abc] [^abc]) -> SQLite GLOB on lower-cased text."""
    out = []
    i = 0
    while i < len(pattern):
        c = pattern[i]
        if c == "%":
            out.append("*")
        elif c == "_":
            out.append("?")
        elif c == "[":
            end = pattern.find("]", i + 2 if pattern[i + 1 : i + 2] == "^" else i + 1)
            if end == -1:
                out.append("[[]")
            else:
                out.append("[" + pattern[i + 1 : end].lower() + "]")
                i = end
        elif c in "*?]":
            out.append(f"[{c}]")
        else:
            out.append(c.lower())
        i += 1
    return "".join(out)
