"""The Logic Apps Workflow Definition Language schema, shipped with the package.

Exports are validated against it before they are handed to the user, on any machine and offline
(every `$ref` in the schema is local). See `schemas/README.md` for its source and licence.
"""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any

from d365nb.flows.export_arm import workflow_definition
from d365nb.flows.model import FlowError

SCHEMA_FILE = Path(__file__).resolve().with_name("schemas") / "logicapps-workflowdefinition.schema.json"


@functools.cache
def validator() -> Any:
    """A draft-04 validator for workflow definitions (built once, the schema is 110 KB)."""
    import jsonschema

    schema = json.loads(SCHEMA_FILE.read_text(encoding="utf-8"))
    return jsonschema.Draft4Validator(schema)


def problems(document: dict[str, Any]) -> list[str]:
    """Each way ``document`` (a definition or an ARM template) breaks the schema, as ``path: message`` (empty when valid)."""
    import jsonschema

    errors = list(validator().iter_errors(workflow_definition(document)))
    if not errors:
        return []
    # oneOf over trigger/action types makes the top message vague: lead with the best match.
    best = jsonschema.exceptions.best_match(errors)
    first = f"{'/'.join(map(str, best.absolute_path)) or '(root)'}: {best.message}"
    rest = [f"{'/'.join(map(str, e.absolute_path)) or '(root)'}: {e.message}" for e in errors if e is not best]
    return [first, *rest]


def check(document: dict[str, Any]) -> None:
    """Raise `FlowError` (one line) when ``document`` is not a valid workflow definition."""
    found = problems(document)
    if found:
        raise FlowError(f"the exported workflow definition is not valid Logic Apps: {found[0]}")
