"""A lease that lets exactly one scheduler act on a database at a time.

The holder renews it while alive (`duban run` renews it from its own thread, through the
start-up catch-up too); a crashed holder's lease expires, so nothing needs cleaning up by
hand. Expiry is dated and judged by the database's clock (see `duban.engine.dbclock`), so
machines whose clocks differ agree on it. A holder named like `holder_name()` on this very
host whose process is gone is taken over at once: a restart after `kill -9` need not wait.
Works the same on SQLite and PostgreSQL (one row, conditional writes), and on every schema
revision: the table has not changed since the first (0001), and an earlier release's scheduler
holds the same row, so `duban run` and `duban init` take the lease before they upgrade, and an
old release's running scheduler keeps a new release off the database (see `App.claim`).
"""

from __future__ import annotations

import logging
import os
import re
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from pathlib import Path

from sqlalchemy import select, update

from duban.engine.dbclock import db_now
from duban.store.db import Store
from duban.store.dialect import insert_for
from duban.store.models import SchedulerLease

log = logging.getLogger("duban.lease")

LEASE_NAME = "scheduler"
DEFAULT_TTL = timedelta(seconds=90)
HOLDER = re.compile(r"pid (?P<pid>\d+) on (?P<host>\S+)$")


def here() -> str:
    """This host, and its process-id namespace where there is one: containers that share a
    host name (host networking) do not see each other's processes, so must not judge them."""
    try:
        return f"{socket.gethostname()}/{os.stat('/proc/self/ns/pid').st_ino}"
    except OSError:
        return socket.gethostname()


def holder_name(what: str = "duban run") -> str:
    """`duban run pid 4242 on host/ns`: who holds a lease, and how to tell it has died."""
    return f"{what} pid {os.getpid()} on {here()}"


def acquire(
    store: Store,
    *,
    holder: str,
    now: datetime | None = None,
    ttl: timedelta = DEFAULT_TTL,
    name: str = LEASE_NAME,
) -> str | None:
    """Take or renew the lease until `ttl` from now by the database's clock.

    Succeeds if the lease is free, expired, already ours, or held by a process of this host
    that no longer exists. Returns None on success, else a description of the holder.
    `now` is accepted for callers written before the lease used the database's clock and is
    not used: a caller's clock may differ from the others'.
    """
    del now
    with store.write(any_schema=True) as session:
        stamp = db_now(session)
        insert = insert_for(session)
        session.execute(
            insert(SchedulerLease)
            .values(name=name, holder=holder, expires_at=stamp + ttl)
            .on_conflict_do_nothing(index_elements=["name"])
        )
        row = session.scalar(select(SchedulerLease).where(SchedulerLease.name == name))
        assert row is not None
        takeable = row.holder == holder or row.expires_at <= stamp or _dead_here(row.holder)
        if takeable:
            session.execute(
                update(SchedulerLease)
                .where(SchedulerLease.name == name, SchedulerLease.holder == row.holder)
                .values(holder=holder, expires_at=stamp + ttl)
            )
            return None
        return f"{row.holder} (lease valid until {row.expires_at:%Y-%m-%d %H:%M:%S} UTC)"


def release(
    store: Store, *, holder: str, now: datetime | None = None, name: str = LEASE_NAME
) -> None:
    """Give the lease up at once (if still ours). `now` is not used (see `acquire`)."""
    del now
    with store.write(any_schema=True) as session:
        stamp = db_now(session)
        session.execute(
            update(SchedulerLease)
            .where(SchedulerLease.name == name, SchedulerLease.holder == holder)
            .values(expires_at=stamp)
        )


@contextmanager
def held(store: Store, *, holder: str, ttl: timedelta = DEFAULT_TTL) -> Iterator[None]:
    """Keep `holder`'s lease (taken already) renewed from a thread every third of `ttl`
    while the block runs, and release it at the end: for a `duban init`, whose upgrade of a
    large database may outlast one time to live. A renewal that fails (the database busy
    with the migration, or unreachable) is tried again at the next turn."""
    stop = threading.Event()

    def renew() -> None:
        while not stop.wait(ttl.total_seconds() / 3):
            try:
                other = acquire(store, holder=holder, ttl=ttl)
            except Exception as exc:  # a renewal is retried, never fatal
                log.warning("cannot renew the scheduler lease: %s; retrying", exc)
                continue
            if other is not None:
                log.error("lost the scheduler lease to %s", other)
                return

    keeper = threading.Thread(target=renew, name="duban-lease-held", daemon=True)
    keeper.start()
    try:
        yield
    finally:
        stop.set()
        keeper.join()
        release(store, holder=holder)


def _dead_here(holder: str) -> bool:
    """True if `holder` names a process of this host that has ended (or is a zombie)."""
    match = HOLDER.search(holder)
    if match is None or match["host"] != here():
        return False
    pid = int(match["pid"])
    if pid == os.getpid():
        return False  # another holder in this very process: alive
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False  # alive, another user's
    try:  # a killed process nobody has reaped yet is gone for our purposes
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except (OSError, IndexError):
        return False
