"""One module per table; each defines `TABLE` (mostly from `schema/reference/<table>.json`
through `schema/documented.py`). Adding a table means adding a module here."""
