"""Read models kept per database snapshot: computed once for what the database holds, reused
by every request that sees exactly that.

A page such as the administrator's home ranks 13,000 institutions; computing it on every view
of a province costs tens of milliseconds of database time per request. On PostgreSQL a read
transaction can name its snapshot (`Store.snapshot`): the same name means the same committed
rows, so a read model computed from one snapshot is the read model of every other with that
name. Any commit anywhere (an institution's submission, a reminder recorded) gives new
transactions a new name, so nothing is ever served stale: the cache only saves work while
nothing changed. Keys also carry what else the model depends on (the filters, the local day).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Hashable
from typing import Generic, TypeVar

T = TypeVar("T")


class SnapshotCache(Generic[T]):
    """At most `size` read models, least recently used dropped first; safe across threads."""

    def __init__(self, size: int = 64) -> None:
        self.size = size
        self._items: OrderedDict[Hashable, T] = OrderedDict()
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    def get(self, key: Hashable) -> T | None:
        with self._lock:
            found = self._items.get(key)
            if found is None:
                self.misses += 1
                return None
            self._items.move_to_end(key)
            self.hits += 1
            return found

    def put(self, key: Hashable, value: T) -> None:
        with self._lock:
            self._items[key] = value
            self._items.move_to_end(key)
            while len(self._items) > self.size:
                self._items.popitem(last=False)
