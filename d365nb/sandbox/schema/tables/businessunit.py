"""businessunit: the organisation's business unit (the sandbox has one, the root).

Columns as documented (reference/businessunit.json); see `schema/documented.py`."""

from ..documented import table

TABLE = table("businessunit", object_type_code=10)
