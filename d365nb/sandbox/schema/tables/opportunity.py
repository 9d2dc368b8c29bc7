"""opportunity: a potential sale to an account or contact (Dynamics 365 Sales).

Columns as documented (reference/opportunity.json); see `schema/documented.py`."""

from ..documented import table

TABLE = table("opportunity", object_type_code=3)
