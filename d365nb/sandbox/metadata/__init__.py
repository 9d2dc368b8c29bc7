"""The sandbox's metadata endpoints, derived from the schema objects (nothing table-specific).

`routes()` gives the Starlette routes: the service document (`GET /api/data/v9.2/`), `$metadata`
(CSDL XML, `?annotations=true` for the change-tracking capability and read-only annotations),
`EntityDefinitions` (by key, `$filter`, `$select`, `$expand`), their `Attributes` (with the
`Microsoft.Dynamics.CRM.<Type>AttributeMetadata` casts and `$expand=OptionSet`), one-to-many and
many-to-one relationships, `RelationshipDefinitions` and (empty) `GlobalOptionSetDefinitions`.
"""

from .catalog import Catalog, catalog_for
from .csdl import build_csdl
from .routes import API, routes

__all__ = ["API", "Catalog", "build_csdl", "catalog_for", "routes"]
