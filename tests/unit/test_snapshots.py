"""duban.engine.snapshots: a read model computed once per key, however many ask at once."""

from __future__ import annotations

import threading

import pytest

from duban.engine.snapshots import NotThisKey, SnapshotCache


def test_requests_missing_together_compute_once_and_share_the_result() -> None:
    cache: SnapshotCache[object] = SnapshotCache()
    started, release = threading.Event(), threading.Event()
    calls: list[int] = []

    def compute() -> object:
        calls.append(1)
        started.set()
        release.wait(10)
        return object()

    got: list[object] = []
    first = threading.Thread(target=lambda: got.append(cache.get("k", compute)))
    first.start()
    assert started.wait(10)
    ask = lambda: got.append(cache.get("k", compute))  # noqa: E731
    others = [threading.Thread(target=ask) for _ in range(5)]
    for t in others:
        t.start()
    for _ in range(1000):  # until all five have missed: they are waiting, not computing
        if cache.misses == 6:
            break
        threading.Event().wait(0.01)
    assert cache.misses == 6
    release.set()
    for t in [first, *others]:
        t.join(10)
    assert len(calls) == 1 and len(got) == 6 and all(g is got[0] for g in got)
    assert cache.get("k", compute) is got[0] and len(calls) == 1


def test_a_failed_computation_is_not_kept_and_its_waiters_compute_themselves() -> None:
    cache: SnapshotCache[str] = SnapshotCache()
    started, release = threading.Event(), threading.Event()

    def broken() -> str:
        started.set()
        release.wait(10)
        raise RuntimeError("database went away")

    errors: list[BaseException] = []

    def fail() -> None:
        try:
            cache.get("k", broken)
        except RuntimeError as exc:
            errors.append(exc)

    first = threading.Thread(target=fail)
    first.start()
    assert started.wait(10)
    got: list[str] = []
    waiter = threading.Thread(target=lambda: got.append(cache.get("k", lambda: "fresh")))
    waiter.start()
    for _ in range(1000):
        if cache.misses == 2:
            break
        threading.Event().wait(0.01)
    release.set()
    first.join(10)
    waiter.join(10)
    assert len(errors) == 1 and got == ["fresh"]
    assert cache.get("k", lambda: "later") == "later"  # nothing of the failure was kept


def test_a_value_newer_than_its_key_goes_to_its_caller_and_is_kept_for_no_one() -> None:
    """A home computed after a commit landed (its snapshot named anew) is what its caller
    asked for, or fresher, but not what the old key names: the next request computes."""
    cache: SnapshotCache[str] = SnapshotCache()
    assert cache.peek("k") is None

    def moved_on() -> str:
        raise NotThisKey("after the commit")

    assert cache.get("k", moved_on) == "after the commit"
    assert cache.peek("k") is None
    assert cache.get("k", lambda: "kept") == "kept"
    assert cache.peek("k") == "kept" and cache.hits == 1


@pytest.mark.parametrize("size", [0, 2])
def test_at_most_size_models_are_kept_least_recently_used_dropped_first(size: int) -> None:
    cache: SnapshotCache[str] = SnapshotCache(size)
    for key in ("a", "b", "a", "c"):
        cache.get(key, lambda key=key: key)
    counted = cache.hits
    cache.get("a", lambda: "a")
    cache.get("c", lambda: "c")
    assert cache.hits - counted == (2 if size else 0)
    cache.get("b", lambda: "b")  # "b" was dropped when "c" came (a, then c, were used since)
    assert cache.hits - counted == (2 if size else 0)
