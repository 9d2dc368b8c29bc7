"""Step templates -> Workflow Definition Language (WDL) dynamic content.

A declarative step writes values as ``str.format`` templates over the run (``"Follow up:
{trigger[subject]}"``, ``{steps[create_task]}``). Logic Apps spells the same thing with
expressions: a value that is exactly one field becomes ``"@triggerBody()?['subject']"`` (keeps
its JSON type), a field inside text becomes ``"@{triggerBody()?['subject']}"`` interpolation
(always a string). Anything a Logic App cannot see - a notebook variable, a format spec, a
conversion - is refused with the reason, never guessed.
"""

from __future__ import annotations

import string
from _string import formatter_field_name_split
from collections.abc import Callable
from dataclasses import dataclass

_FORMATTER = string.Formatter()


class NotExpressible(ValueError):
    """A template that has no Logic Apps equivalent; ``str()`` says why, in a few words."""


@dataclass(frozen=True)
class Part:
    """A piece of a template: literal ``text`` or a WDL ``expression`` (without ``@``)."""

    text: str = ""
    expression: str | None = None


def escape_text(text: str) -> str:
    """A literal string as WDL sees it: a leading ``@`` and any ``@{`` are escaped."""
    text = text.replace("@{", "@@{")
    return "@" + text if text.startswith("@") and not text.startswith("@@{") else text


def quote(text: str) -> str:
    """A WDL string literal: single quotes, doubled inside (``'O''Neil'``)."""
    return "'" + text.replace("'", "''") + "'"


def double_encoded(expression: str) -> str:
    """A path segment as every real connector path spells it:
    ``@{encodeURIComponent(encodeURIComponent(<expression>))}``."""
    return "@{encodeURIComponent(encodeURIComponent(" + expression + "))}"


# step name -> (key path after `steps[name]`) -> expression; given by the exporter, which knows
# what each earlier action returns (a created record's id lives in its body, ...).
StepResolver = Callable[[str, list[str]], str]


def parse_template(template: str, steps: StepResolver, loop: str | None = None) -> list[Part]:
    """Split ``template`` into literal text and expressions (raises `NotExpressible`).

    ``loop``: inside a for-each (the ``Foreach`` action's name), ``{item[col]}`` is that
    loop's current item, ``items('<loop>')?['col']``."""
    parts: list[Part] = []
    try:
        pieces = list(_FORMATTER.parse(template))
    except ValueError as err:
        raise NotExpressible(f"bad template {template!r}: {err}") from None
    for literal, field_name, spec, conversion in pieces:
        if literal:  # `{{`/`}}` split the text: keep adjacent text as one piece
            if parts and parts[-1].expression is None:
                parts[-1] = Part(text=parts[-1].text + literal)
            else:
                parts.append(Part(text=literal))
        if field_name is None:
            continue
        if spec or conversion:
            raise NotExpressible(
                f"{{{field_name}{'!' + conversion if conversion else ''}"
                f"{':' + spec if spec else ''}}} uses Python formatting"
            )
        parts.append(Part(expression=_field_expression(field_name, steps, loop)))
    return parts


def _field_expression(field_name: str, steps: StepResolver, loop: str | None = None) -> str:
    if not field_name:
        raise NotExpressible("{} (a positional field) has no value in a Logic App")
    root, rest = formatter_field_name_split(field_name)  # str.format's own field parser
    keys = [str(key) for _, key in rest]
    if root == "trigger" and not keys:
        raise NotExpressible("{trigger} is the whole record; name a column, {trigger[subject]}")
    if root == "steps" and not keys:
        raise NotExpressible("{steps} needs a step name, e.g. {steps[create_task]}")
    expression = field_expression(str(root), keys, steps, loop)
    if expression is None:
        raise NotExpressible(
            f"{{{field_name}}} reads {root!r}, which a Logic App cannot see "
            "(only {trigger[...]} and {steps[...]} export)"
        )
    return expression


def field_expression(
    root: str, keys: list[str], steps: StepResolver, loop: str | None = None
) -> str | None:
    """A field of the run as WDL: ``trigger`` + keys -> ``triggerBody()?['col']``, ``steps`` +
    [name, *keys] -> what `steps` says that step returns, ``item`` + keys (inside a for-each
    ``loop``) -> ``items('<loop>')?['col']``; None for any other root. Templates and ``--if``
    conditions (`export_conditions`) both map their fields here."""
    if root == "trigger":
        return "triggerBody()" + "".join(f"?[{quote(k)}]" for k in keys)
    if root == "steps" and keys:
        return steps(keys[0], keys[1:])
    if root == "item" and loop is not None:
        return f"items({quote(loop)})" + "".join(f"?[{quote(k)}]" for k in keys)
    return None


def as_value(parts: list[Part]) -> str:
    """A JSON string value: ``@expr`` when the template is exactly one field (typed), else
    text with ``@{expr}`` interpolation. A literal leading ``@`` is escaped as ``@@``."""
    if len(parts) == 1 and parts[0].expression is not None:
        return "@" + parts[0].expression
    out = []
    for i, part in enumerate(parts):
        if part.expression is not None:
            out.append("@{" + part.expression + "}")
        elif i == 0 and part.text.startswith("@"):
            out.append("@" + part.text)
        else:
            out.append(part.text)
    return "".join(out)


def as_expression(parts: list[Part]) -> str:
    """One WDL expression for the whole template (for a path segment): the field itself, a
    quoted literal, or ``concat(...)``."""
    if not parts:
        return "''"
    pieces = [p.expression if p.expression is not None else quote(p.text) for p in parts]
    if len(pieces) == 1:
        return pieces[0]
    return "concat(" + ", ".join(pieces) + ")"


def is_literal(parts: list[Part]) -> bool:
    """True when the template has no fields (a fixed value)."""
    return all(p.expression is None for p in parts)


def literal_text(parts: list[Part]) -> str:
    return "".join(p.text for p in parts)
