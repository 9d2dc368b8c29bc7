"""Constants shared by the export tests (a module of its own: `conftest` names collide)."""

from __future__ import annotations

from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
# CI clones the repo beside a copy of shared/: resolve from the repo root, never /work/shared.
SCHEMA_PATH = REPO.parent / "shared" / "schemas" / "logicapps-workflowdefinition.schema.json"
ORG = "https://contoso.crm4.dynamics.com"
