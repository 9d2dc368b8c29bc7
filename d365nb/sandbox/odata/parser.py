"""Text -> filter/orderby trees with positions (Lark, LALR, one grammar built once).

The grammar follows the OData ABNF as far as Dataverse accepts it: comparisons, and/or/not,
parentheses, contains/startswith/endswith, lambdas, `Microsoft.Dynamics.CRM.*` query functions
with named arguments (values may be `["a","b"]` arrays), parameter aliases, and the literal
forms string ('' escaped), GUID, number, boolean, null, datetime, date and enum
(`Ns.Type'Member'`). Error messages reuse the OData library's (and so Dataverse's) wording.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import math
import re
from collections.abc import Mapping
from functools import lru_cache

from lark import Lark, Token, Transformer
from lark.exceptions import UnexpectedCharacters, UnexpectedEOF, UnexpectedInput, UnexpectedToken

from .errors import ODataError
from .nodes import (
    Alias,
    And,
    Call,
    Compare,
    Lambda,
    Literal,
    Node,
    Not,
    Or,
    OrderItem,
    Property,
    QueryFunction,
)

GRAMMAR = r"""
start: or_expr
value: or_expr | array
orderby: order_item ("," order_item)*

?or_expr: and_expr
        | or_expr OR and_expr                -> or_
?and_expr: not_expr
         | and_expr AND not_expr             -> and_
?not_expr: comparison
         | NOT not_expr                      -> not_
?comparison: operand
           | operand compop operand          -> compare
!compop: "eq" | "ne" | "gt" | "ge" | "lt" | "le"

?operand: literal
        | ALIAS                              -> alias
        | path
        | path "/" ANY "(" ")"               -> any_empty
        | path "/" ANY "(" NAME ":" or_expr ")" -> lambda_any
        | path "/" ALL "(" NAME ":" or_expr ")" -> lambda_all
        | NAME "(" [or_expr ("," or_expr)*] ")" -> call
        | QNAME "(" [named_arg ("," named_arg)*] ")" -> qcall
        | "(" or_expr ")"

path: NAME                         -> path_start
    | path "/" NAME                  -> path_step
named_arg: NAME "=" (literal | ALIAS | array)
array: "[" [array_item ("," array_item)*] "]"
?array_item: literal | DQSTRING -> dqstring

order_item: (path | ALIAS) [ASC | DESC]

literal: STRING   -> string
       | NUMBER   -> number
       | GUID     -> guid
       | DATETIME -> datetime
       | DATE     -> date
       | ENUM     -> enum
       | TRUE     -> true
       | FALSE    -> false
       | NULL     -> null

OR: "or"
AND: "and"
NOT: "not"
ANY: "any"
ALL: "all"
ASC: "asc"
DESC: "desc"
TRUE: "true"
FALSE: "false"
NULL: "null"
STRING: /'(?:[^']|'')*'/
DQSTRING: /"(?:[^"\\]|\\.)*"/
GUID.5: /[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}(?![\w-])/
DATETIME.4: /\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:\d{2})?/
DATE.3: /\d{4}-\d{2}-\d{2}(?![\w-])/
NUMBER.2: /-?\d+(\.\d+)?([eE][+-]?\d+)?[mMdDfFlL]?(?![\w])/
ENUM.3: /[A-Za-z_]\w*(\.[A-Za-z_]\w*)+'(?:[^']|'')*'/
QNAME.2: /[A-Za-z_]\w*(\.[A-Za-z_]\w*)+/
NAME: /\$?[A-Za-z_]\w*/
ALIAS: /@[A-Za-z_]\w*/

%import common.WS
%ignore WS
"""


TOO_COMPLEX = "The query is too complex: simplify the $filter expression."
INVALID_JSON_ARRAY = (
    "Invalid JSON. A comma character ',' was expected in scope 'Array'. Every two elements in "
    "an array and properties of an object must be separated by commas."
)


def _pos(token: Token) -> int:
    return token.start_pos or 0


class _Build(Transformer):
    """Builds `nodes` objects straight from the parse (inline, no intermediate tree)."""

    def start(self, items):
        return items[0]

    def value(self, items):
        return items[0]

    def orderby(self, items):
        return items

    def or_(self, items):
        return Or(items[0].pos, items[0], items[2])

    def and_(self, items):
        return And(items[0].pos, items[0], items[2])

    def not_(self, items):
        return Not(_pos(items[0]), items[1])

    def compop(self, items):
        return items[0]

    def compare(self, items):
        left, op, right = items
        return Compare(left.pos, str(op), left, right)

    def alias(self, items):
        return Alias(_pos(items[0]), str(items[0]))

    def path_start(self, items):
        return Property(_pos(items[0]), (str(items[0]),))

    def path_step(self, items):
        return Property(items[0].pos, (*items[0].path, str(items[1])))

    def any_empty(self, items):
        return Lambda(items[0].pos, items[0].path, "any", None, None)

    def lambda_any(self, items):
        return Lambda(items[0].pos, items[0].path, "any", str(items[2]), items[3])

    def lambda_all(self, items):
        return Lambda(items[0].pos, items[0].path, "all", str(items[2]), items[3])

    def call(self, items):
        name = items[0]
        args = tuple(a for a in items[1:] if a is not None)
        return Call(_pos(name), str(name), args)

    def qcall(self, items):
        name = items[0]
        args: dict[str, Node] = {}
        for arg_name, arg_value in (a for a in items[1:] if a is not None):
            args[arg_name] = arg_value
        return QueryFunction(_pos(name), str(name), args)

    def named_arg(self, items):
        name, value = items
        if isinstance(value, Token):  # ALIAS
            value = Alias(_pos(value), str(value))
        return (str(name), value)

    def array(self, items):
        values = [i for i in items if i is not None]
        pos = values[0].pos - 1 if values else 0
        return Literal(pos, "array", [v.value for v in values])

    def dqstring(self, items):
        token = items[0]
        return Literal(_pos(token), "string", json.loads(str(token)))

    def order_item(self, items):
        target, direction = items
        if isinstance(target, Token):  # ALIAS
            target = Alias(_pos(target), str(target))
        return (target, direction is not None and str(direction) == "desc")

    # literals -----------------------------------------------------------------------------
    def literal(self, items):
        return items[0]

    def string(self, items):
        t = items[0]
        return Literal(_pos(t), "string", str(t)[1:-1].replace("''", "'"))

    def number(self, items):
        t = items[0]
        text = str(t)
        if text[-1] in "mMdDfFlL":
            text = text[:-1]
        if re.fullmatch(r"-?\d+", text) and -(2**63) <= (number := int(text)) < 2**63:
            return Literal(_pos(t), "int", number)
        value = float(text)
        if not math.isfinite(value):  # 1e999: no column holds it, and SQLite would see inf
            raise ODataError(f"The number '{text}' is out of range.", _pos(t))
        return Literal(_pos(t), "decimal", value)

    def guid(self, items):
        t = items[0]
        return Literal(_pos(t), "guid", str(t).lower())

    def datetime(self, items):
        t = items[0]
        value = dt.datetime.fromisoformat(str(t))
        if value.tzinfo is None:  # Dataverse stores a value without offset as UTC
            value = value.replace(tzinfo=dt.UTC)
        return Literal(_pos(t), "datetime", value.astimezone(dt.UTC))

    def date(self, items):
        t = items[0]
        try:
            value = dt.date.fromisoformat(str(t))
        except ValueError:
            raise ODataError(f"Unrecognized date literal '{t}'.", _pos(t)) from None
        return Literal(_pos(t), "date", value)

    def enum(self, items):
        t = items[0]
        type_name, _, rest = str(t).partition("'")
        return Literal(_pos(t), "enum", rest[:-1].replace("''", "'"), type_name)

    def true(self, items):
        return Literal(_pos(items[0]), "bool", True)

    def false(self, items):
        return Literal(_pos(items[0]), "bool", False)

    def null(self, items):
        return Literal(_pos(items[0]), "null", None)


@lru_cache(maxsize=1)
def _lark() -> Lark:
    return Lark(
        GRAMMAR,
        parser="lalr",
        start=["start", "value", "orderby"],
        transformer=_Build(),
        propagate_positions=False,  # nodes take positions from their tokens
        maybe_placeholders=True,
    )


def _unterminated_literal(text: str) -> bool:
    """True when a quoted literal runs to the end of the text (Dataverse reports that first)."""
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if c in "'\"":
            i += 1
            while i < n:
                if text[i] == c:
                    if c == "'" and i + 1 < n and text[i + 1] == "'":
                        i += 2
                        continue
                    break
                if c == '"' and text[i] == "\\":
                    i += 1
                i += 1
            else:
                return True
        i += 1
    return False


def _syntax_error(text: str, exc: UnexpectedInput) -> ODataError:
    if _unterminated_literal(text):
        return ODataError(
            f"There is an unterminated literal at position {len(text)} in '{text}'.", len(text)
        )
    if isinstance(exc, UnexpectedCharacters):
        pos = exc.pos_in_stream
        return ODataError(
            f"Syntax error: character '{text[pos]}' is not valid at position {pos} in '{text}'.",
            pos,
        )
    if isinstance(exc, UnexpectedEOF) or (
        isinstance(exc, UnexpectedToken) and exc.token.type == "$END"
    ):
        pos = len(text)
        expected = getattr(exc, "expected", None) or getattr(exc, "accepts", set()) or set()
        if "RPAR" in expected and not ({"NAME", "STRING"} & set(expected)):
            return ODataError(f"')' or operator expected at position {pos} in '{text}'.", pos)
        return ODataError(f"Expression expected at position {pos} in '{text}'.", pos)
    if isinstance(exc, UnexpectedToken):
        pos = exc.token.start_pos or 0
        expected = exc.expected or set()
        if "RPAR" in expected and "COMMA" not in expected and "NAME" not in expected:
            return ODataError(f"')' or operator expected at position {pos} in '{text}'.", pos)
        return ODataError(f"Syntax error at position {pos} in '{text}'.", pos)
    return ODataError(f"Syntax error in '{text}'.", 0)


def _parse(text: str, start: str):
    if not text or not text.strip():
        raise ODataError(f"Expression expected at position 0 in '{text}'.", 0)
    try:
        return _lark().parse(text, start=start)
    except ODataError:
        raise
    except UnexpectedInput as exc:
        raise _syntax_error(text, exc) from None
    except ValueError as exc:  # a literal Lark accepted but Python cannot read (e.g. 25:99)
        raise ODataError(f"Syntax error in '{text}': {exc}.", 0) from None


@lru_cache(maxsize=512)
def _parse_cached(text: str, start: str):
    # Trees are immutable, so parsed texts can be shared between requests.
    return _parse(text, start)


def _resolve(node, aliases: Mapping[str, str] | None, seen: tuple[str, ...] = ()):
    """Replace Alias nodes by their parsed values (unassigned alias = null, as Dataverse)."""
    if isinstance(node, Alias):
        raw = (aliases or {}).get(node.name)
        if raw is None:
            return Literal(node.pos, "null", None)
        if node.name in seen:
            raise ODataError(f"The parameter alias '{node.name}' refers to itself.", node.pos)
        try:
            parsed = _parse_cached(raw, "value")
        except ODataError:
            if raw.lstrip().startswith("["):  # Dataverse reads array aliases as JSON
                raise ODataError(INVALID_JSON_ARRAY, node.pos) from None
            raise
        value = _resolve(parsed, aliases, (*seen, node.name))
        # Point later (semantic) errors at the alias in the expression, not into its value.
        return dataclasses.replace(value, pos=node.pos)
    if isinstance(node, Compare):
        return Compare(
            node.pos,
            node.op,
            _resolve(node.left, aliases, seen),
            _resolve(node.right, aliases, seen),
        )
    if isinstance(node, And | Or):
        return type(node)(
            node.pos, _resolve(node.left, aliases, seen), _resolve(node.right, aliases, seen)
        )
    if isinstance(node, Not):
        return Not(node.pos, _resolve(node.operand, aliases, seen))
    if isinstance(node, Call):
        return Call(node.pos, node.name, tuple(_resolve(a, aliases, seen) for a in node.args))
    if isinstance(node, QueryFunction):
        return QueryFunction(
            node.pos, node.name, {k: _resolve(v, aliases, seen) for k, v in node.args.items()}
        )
    if isinstance(node, Lambda) and node.predicate is not None:
        return Lambda(
            node.pos, node.path, node.kind, node.var, _resolve(node.predicate, aliases, seen)
        )
    return node


def parse_filter(text: str, aliases: Mapping[str, str] | None = None) -> Node:
    """Parse a `$filter` expression into a tree of `nodes` (aliases resolved).

    `aliases` maps `@p1` to its raw value text (`'name'`, `42`, `["a","b"]`); an alias that is
    used but not given is null. Raises `ODataError` with the position of the problem.

    >>> parse_filter("statuscode eq @s", {"@s": "1"})
    Compare(pos=0, op='eq', left=Property(pos=0, path=('statuscode',)), right=Literal(pos=0, kind='int', value=1, type_name=None))
    """
    tree = _parse_cached(text, "start")
    if "@" in text:
        try:
            tree = _resolve(tree, aliases)
        except RecursionError:
            raise ODataError(TOO_COMPLEX) from None
    _check_conditions(tree)
    return tree


# "You can include no more than 500 total conditions in a query." (TooManyConditionsInQuery,
# https://learn.microsoft.com/power-apps/developer/data-platform/webapi/query/filter-rows
# #condition-limits)
MAX_CONDITIONS = 500
TOO_MANY_CONDITIONS_CODE = "0x8004430C"


def _check_conditions(tree: Node) -> None:
    """Refuse a filter with more than MAX_CONDITIONS conditions (comparisons, string and query
    functions, lambda operators); counted iteratively, as the tree may be deep."""
    count = 0
    stack = [tree]
    while stack:
        node = stack.pop()
        if isinstance(node, And | Or):
            stack.extend((node.left, node.right))
        elif isinstance(node, Not):
            stack.append(node.operand)
        elif isinstance(node, Lambda):
            count += 1
            if node.predicate is not None:
                stack.append(node.predicate)
        elif isinstance(node, Compare | Call | QueryFunction):
            count += 1
        if count > MAX_CONDITIONS:
            raise ODataError(
                "Number of conditions in query exceeded maximum limit.",
                code=TOO_MANY_CONDITIONS_CODE,
            )


def parse_orderby(text: str, aliases: Mapping[str, str] | None = None) -> list[OrderItem]:
    """Parse `$orderby` (`revenue desc,name`) into `OrderItem`s; an alias must name a property."""
    items = []
    for target, descending in _parse_cached(text, "orderby"):
        node = _resolve(target, aliases)
        if not isinstance(node, Property):
            raise ODataError(
                f"The $orderby expression at position {target.pos} in '{text}' must be a property path.",
                target.pos,
            )
        items.append(OrderItem(target.pos, node.path, descending))
    return items
