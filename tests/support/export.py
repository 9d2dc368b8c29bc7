"""Constants shared by the export tests."""

from __future__ import annotations

from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
# The schema ships inside the package: nothing outside the repository is read.
SCHEMA_PATH = REPO / "d365nb" / "flows" / "schemas" / "logicapps-workflowdefinition.schema.json"
ORG = "https://contoso.crm4.dynamics.com"
