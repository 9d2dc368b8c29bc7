"""``%load_ext d365nb`` / ``%unload_ext d365nb``.

Loading registers the ``D365Magic`` class, the display formatters (footer) and the completer,
and applies options from pyproject.toml and the environment. It imports neither pandas nor
httpx nor the sandbox: those load on the first command that needs them.
"""

from __future__ import annotations

from typing import Any

from d365nb.notebook import completion, display, flow_views
from d365nb.notebook.config import apply_options
from d365nb.notebook.magics import D365Magic

__all__ = ["load", "unload"]

_LOADED: dict[int, D365Magic] = {}


def load(ip: Any) -> D365Magic:
    """Register ``%d365``/``%%d365`` on the shell ``ip``; returns the magics instance."""
    if id(ip) in _LOADED:
        return _LOADED[id(ip)]
    magic = D365Magic(shell=ip)
    # Options given in IPython config (c.D365Magic.x) win over pyproject.toml and environment.
    explicit = set(ip.config.get("D365Magic", {})) if hasattr(ip, "config") else set()
    apply_options(magic, explicit)
    ip.register_magics(magic)
    if magic not in ip.configurables:  # so %config D365Magic finds it
        ip.configurables.append(magic)
    display.register_formatters(ip, magic.display_limit)
    completion.install(ip, magic)
    flow_views.register()  # flows show as rich HTML / live widgets from now on
    _LOADED[id(ip)] = magic
    return magic


def unload(ip: Any) -> None:
    """Remove everything :func:`load` registered (open connections stay open)."""
    magic = _LOADED.pop(id(ip), None)
    if magic is None:
        return
    for kind in ("line", "cell"):
        ip.magics_manager.magics[kind].pop("d365", None)
    registry = ip.magics_manager.registry
    registry.pop(type(magic).__name__, None)
    if magic in ip.configurables:
        ip.configurables.remove(magic)
    display.unregister_formatters(ip)
    completion.uninstall(ip)
