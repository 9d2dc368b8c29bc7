"""The fake Entra ID for the magics' device-code tests: the shared one (``tests/support/entra.py``)
with this suite's authority and user code. The person "signs in" as soon as the code is shown;
any client secret is accepted (the magics only prove it is never shown)."""

from __future__ import annotations

from tests.support.entra import FakeEntra as _SharedFakeEntra

AUTHORITY = "https://login.nbtest.example"
USER_CODE = "NBMAGIC-42"


def FakeEntra(access_token: str) -> _SharedFakeEntra:  # noqa: N802 - kept as the class name tests use
    """A fake Entra ID issuing ``access_token``; use as a context manager."""
    return _SharedFakeEntra(
        access_token, authority=AUTHORITY, user_code=USER_CODE, client_secret=None
    )
