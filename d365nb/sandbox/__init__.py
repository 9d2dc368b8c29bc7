"""The sandbox: a Dataverse Web API v9.2 emulator on SQLite, served over real HTTP.

    from d365nb import sandbox
    with sandbox.start(data="demo") as h:
        httpx.get(h.api + "WhoAmI", headers={"Authorization": f"Bearer {h.token}"})

See `server.start` for the options; `d365nb sandbox --help` for the command line.
"""

from __future__ import annotations

from typing import Any

__all__ = ["SandboxHandle", "start"]


def start(*args: Any, **kwargs: Any) -> Any:
    """Start a sandbox on a background thread and return its `SandboxHandle` (see
    `d365nb.sandbox.server.start`)."""
    from .server import start as _start

    return _start(*args, **kwargs)


def __getattr__(name: str) -> Any:
    if name == "SandboxHandle":
        from .server import SandboxHandle

        return SandboxHandle
    raise AttributeError(f"module 'd365nb.sandbox' has no attribute {name!r}")
