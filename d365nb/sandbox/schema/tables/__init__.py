"""One module per table; each defines `TABLE`. Adding a table means adding a module here."""
