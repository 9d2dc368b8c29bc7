"""A step's Python ``--if`` condition -> the ``expression`` of a Logic Apps ``If`` action.

Why a module of its own: ``--if`` is Python, evaluated against the run (``trigger``, ``steps``,
``item``), and a Logic App cannot run Python. Many conditions are still plain comparisons of the
run's fields with literals, which the Condition action expresses in the designer's own shape
(learn.microsoft.com/azure/logic-apps/logic-apps-workflow-actions-triggers#if-action,
learn.microsoft.com/azure/logic-apps/logic-apps-control-flow-conditional-statement)::

    trigger['statuscode'] == 1 and 'urgent' in trigger['subject']
    -> {"and": [{"equals": ["@triggerBody()?['statuscode']", 1]},
                {"contains": ["@triggerBody()?['subject']", "urgent"]}]}

The condition is parsed with `ast` (never evaluated) and only this subset translates:
``==`` ``!=`` ``<`` ``<=`` ``>`` ``>=`` (chained too), ``and`` / ``or`` / ``not``, ``in`` /
``not in`` (``contains``; a literal list/tuple/set on the right is one ``equals`` per member),
``is None`` / ``is not None``, the bare truthiness of a field, literals (str, int, float, bool,
None) and fields of the run: ``trigger['col']``, ``trigger.col``, ``trigger.get('col')``,
``steps['name']['col']``, ``item['col']`` in a for-each - mapped to WDL by
`export_expressions.field_expression`, the mapper the step templates use. Anything else (a
notebook variable, a call, arithmetic, a subscript of another name, ...) raises `NotExpressible`
naming the part, never guessed. Strings compare case-sensitively on both sides, and ``equals``
never matches a number with a string (``123`` vs ``'123'``), as in Python.
"""

from __future__ import annotations

import ast
import math
from typing import Any

from d365nb.flows.export_expressions import (
    NotExpressible,
    StepResolver,
    escape_text,
    field_expression,
)

_ORDER = {
    ast.Lt: "less",
    ast.LtE: "lessOrEquals",
    ast.Gt: "greater",
    ast.GtE: "greaterOrEquals",
}
_ROOTS = ("trigger", "steps", "item")
NULL = "@null"  # the designer's spelling of null as a condition operand


def translate(condition: str, steps: StepResolver, loop: str | None = None) -> dict[str, Any]:
    """The ``If`` action's ``expression`` object for ``condition`` (raises `NotExpressible`
    saying which part cannot be expressed). ``steps`` resolves ``steps['name']...`` as for
    templates; ``loop``: inside a for-each, ``item`` is that loop's current item."""
    text = condition.strip()
    try:
        tree = ast.parse(text, mode="eval")
        row = _Translator(text, steps, loop).condition(tree.body)
    except SyntaxError as err:
        raise NotExpressible(f"it is not a Python expression ({err.msg})") from None
    except (RecursionError, MemoryError):  # e.g. thousands of `not`: Python's own limit
        raise NotExpressible("it nests too deeply for a condition") from None
    # The designer always writes a group at the top, one row being {"and": [row]}.
    return row if set(row) & {"and", "or"} else {"and": [row]}


class _Translator:
    def __init__(self, source: str, steps: StepResolver, loop: str | None) -> None:
        self.source = source
        self.steps = steps
        self.loop = loop

    def part(self, node: ast.AST) -> str:
        return ast.get_source_segment(self.source, node) or ast.unparse(node)

    def refuse(self, node: ast.AST, why: str) -> NotExpressible:
        return NotExpressible(f"{self.part(node)} {why}")

    # -- true / false -------------------------------------------------------------------
    def condition(self, node: ast.AST) -> dict[str, Any]:
        if isinstance(node, ast.BoolOp):
            op = "and" if isinstance(node.op, ast.And) else "or"
            rows: list[dict[str, Any]] = []
            for value in node.values:
                row = self.condition(value)
                rows.extend(row[op] if set(row) == {op} else [row])  # a and (b and c): one group
            return {op: rows}
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not):
            return {"not": self.condition(node.operand)}
        if isinstance(node, ast.Compare):
            return self.compare(node)
        if isinstance(node, ast.Constant):
            raise self.refuse(node, "is a constant (the step always or never runs): drop the --if")
        # Anything else must be a field: Python's truthiness, spelled as the designer can.
        return truthy(self.operand(node))

    def compare(self, node: ast.Compare) -> dict[str, Any]:
        rows = []
        left = node.left
        for op, right in zip(node.ops, node.comparators, strict=True):
            rows.append(self.pair(node, left, op, right))
            left = right
        if not any(self.reads_the_run(n) for n in [node.left, *node.comparators]):
            raise self.refuse(node, "compares literals only: drop the --if")
        return rows[0] if len(rows) == 1 else {"and": rows}  # a < b < c: a < b and b < c

    def pair(self, node: ast.AST, left: ast.AST, op: ast.cmpop, right: ast.AST) -> dict[str, Any]:
        if isinstance(op, ast.Is | ast.IsNot):
            if _is_none(right) or _is_none(left):
                row = {"equals": [self.operand(left), self.operand(right)]}
                return row if isinstance(op, ast.Is) else {"not": row}
            raise self.refuse(node, "compares identity with 'is': use == (or is None)")
        if isinstance(op, ast.In | ast.NotIn):
            row = self.membership(left, right)
            return row if isinstance(op, ast.In) else {"not": row}
        a, b = self.operand(left), self.operand(right)
        if isinstance(op, ast.Eq):
            return {"equals": [a, b]}
        if isinstance(op, ast.NotEq):
            return {"not": {"equals": [a, b]}}
        return {_ORDER[type(op)]: [a, b]}

    def membership(self, item: ast.AST, collection: ast.AST) -> dict[str, Any]:
        if isinstance(collection, ast.List | ast.Tuple | ast.Set):  # x in (1, 2): one row each
            if not collection.elts:
                raise self.refuse(collection, "is empty: the condition is always false")
            value = self.operand(item)
            rows = [{"equals": [value, self.operand(e)]} for e in collection.elts]
            return rows[0] if len(rows) == 1 else {"or": rows}
        if isinstance(collection, ast.Dict):
            raise self.refuse(collection, "is a dict literal, which a condition cannot hold")
        # contains(collection, value): a substring of a string, an item of an array.
        return {"contains": [self.operand(collection), self.operand(item)]}

    # -- values ---------------------------------------------------------------------------
    def operand(self, node: ast.AST) -> Any:
        """A condition operand: a JSON literal or ``"@<expression>"``."""
        if isinstance(node, ast.Constant):
            return self.literal(node)
        if (
            isinstance(node, ast.UnaryOp)
            and isinstance(node.op, ast.USub | ast.UAdd)
            and isinstance(node.operand, ast.Constant)
            and _is_number(node.operand.value)
        ):
            value = node.operand.value
            return self.number(node, -value if isinstance(node.op, ast.USub) else value)
        if isinstance(node, ast.BoolOp | ast.Compare) or (
            isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not)
        ):
            raise self.refuse(node, "is a condition used as a value: compare fields with literals")
        return "@" + self.field(node)

    def literal(self, node: ast.Constant) -> Any:
        value = node.value
        if value is None:
            return NULL
        if isinstance(value, bool):
            return value
        if isinstance(value, str):
            return escape_text(value)
        if _is_number(value):
            return self.number(node, value)
        raise self.refuse(node, f"is a {type(value).__name__} literal, which a Logic App lacks")

    def number(self, node: ast.AST, value: float) -> float:
        if isinstance(value, float) and not math.isfinite(value):
            raise self.refuse(node, "is not a finite number")
        return value

    def field(self, node: ast.AST) -> str:
        """``trigger['a']``, ``trigger.a``, ``trigger.get('a')``, ``steps['s']['a']``,
        ``item['a']`` -> the WDL expression (without ``@``), via the template mapper."""
        keys: list[str] = []
        at = node
        while True:
            if isinstance(at, ast.Subscript):
                keys.append(self.key(at.slice, at))
                at = at.value
            elif isinstance(at, ast.Call):
                at = self.get_call(at, keys)
            elif isinstance(at, ast.Attribute) and isinstance(at.value, ast.Name):
                if at.value.id != "trigger" or at.attr.startswith("_") or hasattr(dict, at.attr):
                    raise self.refuse(at, "is an attribute: read a column as trigger['col']")
                keys.append(at.attr)  # the trigger record reads columns as attributes too
                at = at.value
            elif isinstance(at, ast.Name):
                break
            else:
                raise self.refuse(node, self.why_not(at))
        root, keys = at.id, keys[::-1]
        if root not in _ROOTS:
            raise self.refuse(at, self.why_not(at))
        if root == "trigger" and not keys:
            raise self.refuse(node, "is the whole record: compare a column, trigger['col']")
        if root == "steps" and not keys:
            raise self.refuse(node, "needs a step name, e.g. steps['create_task']")
        expression = field_expression(root, keys, self.steps, self.loop)
        if expression is None:  # item outside a for-each
            raise self.refuse(node, "reads item, which only a --foreach step has")
        return expression

    def get_call(self, call: ast.Call, keys: list[str]) -> ast.AST:
        """``x.get('col')`` (default None) is ``x['col']``: WDL's ``?[...]`` is null-safe."""
        func = call.func
        if not (isinstance(func, ast.Attribute) and func.attr == "get"):
            raise self.refuse(call, "is a call, which a Logic App condition cannot make")
        if call.keywords or not 1 <= len(call.args) <= 2:
            raise self.refuse(call, "is a call, which a Logic App condition cannot make")
        if len(call.args) == 2 and not _is_none(call.args[1]):
            raise self.refuse(call, "has a default other than None, which a condition lacks")
        keys.append(self.key(call.args[0], call))
        return func.value

    def key(self, node: ast.AST, where: ast.AST) -> str:
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            return node.value
        raise self.refuse(where, "reads a key that is not a literal column name")

    def why_not(self, node: ast.AST) -> str:
        if isinstance(node, ast.Name):
            return (
                "is a notebook variable, which a Logic App cannot see (conditions read "
                "trigger[...], steps[...], item[...] and literals)"
            )
        if isinstance(node, ast.BinOp):
            return "is arithmetic, which a Logic App condition row cannot do"
        if isinstance(node, ast.Call):
            return "is a call, which a Logic App condition cannot make"
        return "is not a field of the run or a literal"

    def reads_the_run(self, node: ast.AST) -> bool:
        return any(isinstance(n, ast.Name) for n in ast.walk(node))


def truthy(value: str) -> dict[str, Any]:
    """Python's truthiness of a field: not None, '', False or 0 (the designer's rows)."""
    return {"and": [{"not": {"equals": [value, falsy]}} for falsy in (NULL, "", False, 0)]}


def _is_none(node: ast.AST) -> bool:
    return isinstance(node, ast.Constant) and node.value is None


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)
