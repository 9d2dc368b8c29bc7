"""The one error the query engine raises."""

from __future__ import annotations


class ODataError(ValueError):
    """A query the service cannot run: bad syntax, unknown property, unsupported option.

    `message` is worded as Dataverse words it where known; `position` is the 0-based offset in
    the offending option text (or None when the error is not about one place). HTTP maps this to
    400 with code `0x80060888`.
    """

    code = "0x80060888"

    def __init__(self, message: str, position: int | None = None, *, code: str | None = None):
        super().__init__(message)
        self.message = message
        self.position = position
        if code is not None:  # a more specific Dataverse code than the query-validation one
            self.code = code
