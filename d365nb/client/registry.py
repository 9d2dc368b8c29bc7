"""Open connections by alias; one of them is current (what ``%d365`` uses by default)."""

from __future__ import annotations

import contextlib
import threading
from typing import Any

__all__ = ["Connections", "connections"]


class Connections:
    """A small registry: ``add(conn, alias)``, ``current``, ``use(alias)``, ``items()``."""

    def __init__(self) -> None:
        self._by_alias: dict[str, Any] = {}
        self._current: str | None = None
        self._lock = threading.Lock()

    def add(self, conn: Any, alias: str | None = None, *, make_current: bool = True) -> str:
        """Register ``conn`` under ``alias`` (default: its own ``alias``); returns the alias."""
        alias = alias or getattr(conn, "alias", None) or "default"
        with self._lock:
            base, n = alias, 2
            while alias in self._by_alias and self._by_alias[alias] is not conn:
                alias, n = f"{base}{n}", n + 1
            self._by_alias[alias] = conn
            with contextlib.suppress(AttributeError):
                conn.alias = alias
            if make_current or self._current is None:
                self._current = alias
        return alias

    @property
    def current(self) -> Any:
        """The current connection, or None."""
        with self._lock:
            return self._by_alias.get(self._current) if self._current else None

    def use(self, alias: str) -> Any:
        """Make ``alias`` current and return its connection."""
        with self._lock:
            if alias not in self._by_alias:
                known = ", ".join(self._by_alias) or "none"
                raise KeyError(f"no connection named {alias!r} (open: {known})")
            self._current = alias
            return self._by_alias[alias]

    def get(self, alias: str) -> Any:
        with self._lock:
            return self._by_alias.get(alias)

    def remove(self, conn_or_alias: Any) -> None:
        """Forget a connection (by object or alias); the most recent other one becomes current."""
        with self._lock:
            for alias, conn in list(self._by_alias.items()):
                if alias == conn_or_alias or conn is conn_or_alias:
                    del self._by_alias[alias]
                    if self._current == alias:
                        self._current = next(reversed(self._by_alias), None)

    def items(self) -> list[tuple[str, Any]]:
        with self._lock:
            return list(self._by_alias.items())

    def __len__(self) -> int:
        return len(self._by_alias)

    def __contains__(self, alias: object) -> bool:
        return alias in self._by_alias


connections = Connections()
