"""Values derived from a schema (metadata catalog, navigation properties, a new store's empty
database), built once per set of table definitions and shared by every sandbox of the process
that has those tables."""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Mapping
from typing import Generic, TypeVar

from .model import Table

T = TypeVar("T")


class PerSchema(Generic[T]):
    """``derive(schema)``, cached by the identity of the schema's `Table` objects.

    Every organisation has its own schema dict, but they hold the same shipped `Table` objects
    (never mutated: a metadata write replaces the table it changes), so organisations with the
    same tables share one value; one with a custom table or column gets its own. Each entry
    keeps its tables alive, so an ``id()`` in a key cannot be reused by another object while
    the entry exists. Sandboxes in one process serve from several threads, hence the lock.
    """

    def __init__(self, derive: Callable[[Mapping[str, Table]], T], size: int = 16) -> None:
        self._derive = derive
        self._size = size  # many short-lived sandboxes in one process (tests) stay bounded
        self._entries: OrderedDict[tuple, tuple[tuple[Table, ...], T]] = OrderedDict()
        self._lock = threading.Lock()

    def __call__(self, schema: Mapping[str, Table]) -> T:
        tables = tuple(schema[name] for name in sorted(schema))
        key = tuple((t.logical_name, id(t)) for t in tables)
        with self._lock:
            hit = self._entries.get(key)
            if hit is not None:
                self._entries.move_to_end(key)
                return hit[1]
        value = self._derive(schema)  # outside the lock: two first callers may both build
        with self._lock:
            self._entries[key] = (tables, value)
            while len(self._entries) > self._size:
                self._entries.popitem(last=False)
        return value
