"""Read models kept per database snapshot: computed once for what the database holds, reused
by every request that sees exactly that.

A page such as the administrator's home ranks 13,000 institutions; computing it on every view
of a province costs tens of milliseconds of database time per request. On PostgreSQL a read
transaction can name what its snapshot holds of the tasks and the catalogue (`Store.snapshot`,
the change mark of migration 0010): the same name means the same tasks, institutions, tags,
plans and duties, so a read model computed from those alone in one snapshot is the read model
of every other with that name. Every commit that changes them (a submission, a review, new
periods, a synced catalogue, a bulk UPDATE behind duban's back) gives new transactions a new
name, so nothing is ever served stale; commits that change none of them (a note, an upload, a
mail delivered, a sign-in) keep the model. Keys also carry what else the model depends on (the
filters, the local day).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar, cast

T = TypeVar("T")


class SnapshotCache(Generic[T]):
    """At most `size` read models, least recently used dropped first; safe across threads.
    Requests that miss on the same key at once compute it once: the first computes, the
    others wait for its result (a commit makes every page of a busy county miss together)."""

    def __init__(self, size: int = 64, wait: float = 30.0) -> None:
        self.size = size
        self.wait = wait  # the longest a request waits for another's computation
        self._items: OrderedDict[Hashable, T] = OrderedDict()
        self._computing: dict[Hashable, threading.Event] = {}
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    def peek(self, key: Hashable) -> T | None:
        """The model kept for `key`, if any (a hit), without computing anything."""
        with self._lock:
            return self._kept(key)

    def get(self, key: Hashable, compute: Callable[[], T]) -> T:
        """The model kept for `key`, or `compute()`'s, kept. A computation that raises
        NotThisKey gives its caller the value it carries and keeps nothing."""
        with self._lock:
            kept = self._kept(key)
            if kept is not None:
                return kept
            self.misses += 1
            running = self._computing.get(key)
            if running is None:
                self._computing[key] = threading.Event()
        if running is not None:
            running.wait(self.wait)
            with self._lock:
                if key in self._items:
                    return self._items[key]
            # the other computation failed, moved on, or took too long
            return _computed(compute)[0]
        try:
            value, keep = _computed(compute)
            if keep:
                with self._lock:
                    self._items[key] = value
                    self._items.move_to_end(key)
                    while len(self._items) > self.size:
                        self._items.popitem(last=False)
            return value
        finally:
            with self._lock:
                self._computing.pop(key).set()

    def _kept(self, key: Hashable) -> T | None:
        """The model kept for `key`, counted as a hit, or None; the lock is held."""
        if key not in self._items:
            return None
        self._items.move_to_end(key)
        self.hits += 1
        return self._items[key]


class NotThisKey(Exception):
    """Raised by a computation that found the database moved on since its key was read: the
    value it carries is newer than the key names, fine for the request that computed it and
    kept for no one."""

    def __init__(self, value: object) -> None:
        super().__init__("the database changed since the key was read")
        self.value = value


def _computed(compute: Callable[[], T]) -> tuple[T, bool]:
    """`compute()`'s value, and whether it may be kept for the key it was asked for."""
    try:
        return compute(), True
    except NotThisKey as moved:
        return cast(T, moved.value), False
