"""Fixtures for the Logic Apps export tests: a sandbox connection (the exporter reads table
metadata from it) and the Logic Apps workflow-definition schema, validated with Draft 4."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import pytest

from d365nb.flows.export_arm import workflow_definition
from tests.support.export import SCHEMA_PATH
from tests.support.flows import d365, history, sandbox_handle

if TYPE_CHECKING:
    import jsonschema

__all__ = ["d365", "history", "sandbox_handle"]


@pytest.fixture(scope="session")
def validator() -> jsonschema.Draft4Validator:
    # Imported when first needed, not at collection: with the `format` extras Jupyter installs,
    # importing jsonschema builds ~40 grammars (about a second in every test worker).
    import jsonschema

    schema = json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))
    jsonschema.Draft4Validator.check_schema(schema)
    return jsonschema.Draft4Validator(schema)


@pytest.fixture
def assert_valid(validator):
    """Validate a definition (or the one inside an ARM template); fail with the precise error."""

    def check(document: dict[str, Any]) -> dict[str, Any]:
        import jsonschema

        definition = workflow_definition(document)
        errors = list(validator.iter_errors(definition))
        if errors:
            best = jsonschema.exceptions.best_match(errors)
            path = "/".join(map(str, best.absolute_path))
            raise AssertionError(f"invalid workflow definition at {path}: {best.message}")
        return definition

    return check


@pytest.fixture
def new_flow(d365, history):
    """``new_flow(name)`` -> an unstarted Flow on the sandbox connection."""
    from d365nb.flows import Flow

    def make(name: str = "lead_to_task") -> Flow:
        return Flow(name, d365, history=history)

    return make
