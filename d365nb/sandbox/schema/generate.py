"""Make a `reference/<table>.json` file from a table/column reference page (Markdown).

    python -m d365nb.sandbox.schema.generate path/to/account.md > account.json

Reads each column's properties in the three forms Microsoft's pages have used (`|Property|Value|`
tables with plain or **bold**/`code` values, and `**Property**: value` lines) and its choices
(option tables, `Label: ...<br />DefaultStatus: n` details, `- **Value**: n **Label**: ...`
bullets), keeps the column kinds the sandbox can hold (see reference/README.md) and writes the
format `documented.py` loads. A lookup's relationships (`rel`) come from the page's many-to-one
section where it names the referencing attribute and navigation property (2024 pages); older
pages list only the relationship names, so theirs are added by hand.
"""

from __future__ import annotations

import json
import re
import sys
from typing import Any

from .documented import TYPES

_HEADING = re.compile(r"^### <a name=\"BKMK_([^\"]+)\"></a>", re.M)
_ROW = re.compile(r"^\|([^|]+)\|(.*)\|\s*$")  # |Property|Value| (2023 and 2024 pages)
_FIELD = re.compile(r"^\*\*([A-Za-z ]+)\*\*:\s*(.*?)(?:<br />)?\s*$")  # **Type**: Money<br />
_OPTION = re.compile(r"^\|(-?\d+)\|(.*)\|\s*$")  # |1|Label|... or |0|Label: **Open**<br />...
_BULLET = re.compile(  # - **Value**: 1 **Label**: Hot  /  - **TrueOption Value**: 1 **Label**: Yes
    r"^- \*\*(?:TrueOption |FalseOption )?Value\*\*: (-?\d+) \*\*Label\*\*: (.*?)"
    r"(?: \*\*(?:DefaultStatus|State)\*\*: (\d+))?(?: \*\*InvariantName\*\*.*)?\s*$"
)
_DETAIL = re.compile(r"(?:DefaultStatus|State): ?(\d+)")


def _clean(text: str) -> str:
    return text.replace("**", "").replace("`", "").strip()


def parse(markdown: str) -> dict[str, Any]:
    """Columns of a page, by logical name, in page order."""
    read_only_at = re.search(r"^## Read-only (columns|attributes)", markdown, re.M)
    limit = read_only_at.start() if read_only_at else len(markdown)
    out: dict[str, Any] = {}
    for match in _HEADING.finditer(markdown):
        body_end = markdown.find("\n### ", match.end())
        body = markdown[match.end() : body_end if body_end != -1 else len(markdown)]
        body = body.split("\n## ", 1)[0]  # the section after the last column
        props, options = _properties(body)
        column = _column(match.group(1), props, options, match.start() > limit)
        if column is not None:
            out[props["LogicalName"]] = column
    for attribute, rels in _many_to_one(markdown).items():
        if attribute in out and "targets" in out[attribute]:
            out[attribute]["rel"] = rels
    return out


def _many_to_one(markdown: str) -> dict[str, dict[str, Any]]:
    """Referencing attribute -> {target: schema name, or [schema name, navigation property]}."""
    section = re.search(r"^## Many-to-One relationships\s*$(.*?)(?=^## |\Z)", markdown, re.M | re.S)
    out: dict[str, dict[str, Any]] = {}
    if section is None:
        return out
    for match in _HEADING.finditer(section.group(1)):
        body = section.group(1)[match.end() :].split("\n### ", 1)[0]
        props, _ = _properties(body)
        attribute, target = props.get("ReferencingAttribute"), props.get("ReferencedEntity")
        nav = props.get("ReferencingEntityNavigationPropertyName")
        if not (attribute and target and nav):
            continue
        name = body.split("\n", 1)[0].strip() or match.group(1)
        out.setdefault(attribute, {})[target] = name if nav == attribute else [name, nav]
    return out


def _properties(body: str) -> tuple[dict[str, str], list[list[Any]]]:
    """A column's properties and its options (`[value, label]` or `[value, label, n]`)."""
    props: dict[str, str] = {}
    options: list[list[Any]] = []
    for line in body.splitlines():
        option, bullet = _OPTION.match(line), _BULLET.match(line)
        field, row = _FIELD.match(line), _ROW.match(line)
        if option:
            cells = option.group(2).split("|")
            label, extra = cells[0], cells[1] if len(cells) > 1 else ""
            detail = _DETAIL.search(label)  # 2024 pages: "Label: **Open**<br />DefaultStatus: 2"
            if label.startswith("Label:"):
                label = label.split("<br />")[0][len("Label:") :]
            number = detail.group(1) if detail else _clean(extra)
            entry = [int(option.group(1)), _clean(label)]
            options.append(entry + [int(number)] if number.isdigit() else entry)
        elif bullet:
            entry = [int(bullet.group(1)), _clean(bullet.group(2))]
            options.append(entry + [int(bullet.group(3))] if bullet.group(3) else entry)
        elif field:
            props[field.group(1)] = _clean(field.group(2))
        elif row:
            props[_clean(row.group(1))] = _clean(row.group(2))
    if "True Label" in props:  # 2024 pages give a Boolean's labels as properties
        options = [[1, props["True Label"]], [0, props["False Label"]]]
    return props, options


def _column(schema: str, p: dict[str, str], options: list, read_only: bool) -> dict | None:
    kind = p.get("Type")
    if "LogicalName" not in p or kind not in TYPES or p.get("IsValidForRead") == "False":
        return None
    if read_only and not p.get("DisplayName"):
        return None  # name shadows of lookups (owneridname, ...)
    if p["LogicalName"].endswith("_composite"):
        return None  # address composites: locale formatting the sandbox does not emulate
    col: dict[str, Any] = {"schema": schema, "type": kind, "display": p.get("DisplayName", "")}
    if p.get("RequiredLevel", "None") != "None":
        col["required"] = p["RequiredLevel"]
    for key, name, cast in (
        ("MaxLength", "max_length", int),
        ("MinValue", "min", float),
        ("MaxValue", "max", float),
        ("Precision", "precision", int),
    ):
        if key in p and p[key]:
            value = cast(p[key])
            col[name] = int(value) if isinstance(value, float) and value.is_integer() else value
    if kind in ("String", "Memo"):
        col["format"] = p.get("FormatName") or p.get("Format") or "Text"
    if kind == "DateTime":
        col["behavior"], col["format"] = p.get("DateTimeBehavior"), p.get("Format")
    if options:
        col["options"] = options if kind in ("State", "Status") else [o[:2] for o in options]
    if kind == "Boolean":
        col["default"] = 1 if p.get("DefaultValue", "").split()[:1] in (["1"], ["True"]) else 0
    if "Targets" in p:
        col["targets"] = [t.strip() for t in p["Targets"].split(",")]
    if p.get("IsValidForCreate") == "False":
        col["create"] = False
    if p.get("IsValidForUpdate") == "False":
        col["update"] = False
    if read_only:
        col["read_only"] = True
    return col


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: python -m d365nb.sandbox.schema.generate <table>.md", file=sys.stderr)
        return 2
    with open(argv[0], encoding="utf-8") as fh:
        columns = parse(fh.read())
    json.dump({"columns": columns}, sys.stdout, indent=0, ensure_ascii=False)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
