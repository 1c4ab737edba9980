"""A lease that lets exactly one scheduler act on a database at a time.

The holder renews it while alive; a crashed holder's lease simply expires, so nothing needs
cleaning up by hand. Works the same on SQLite and PostgreSQL (one row, one conditional write).
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.dialects import postgresql, sqlite

from duban.store.db import Store
from duban.store.models import SchedulerLease

LEASE_NAME = "scheduler"
DEFAULT_TTL = timedelta(seconds=90)


def acquire(
    store: Store,
    *,
    holder: str,
    now: datetime,
    ttl: timedelta = DEFAULT_TTL,
    name: str = LEASE_NAME,
) -> str | None:
    """Take or renew the lease. Returns None on success, else a description of the holder."""
    with store.write() as session:
        insert = postgresql.insert if store.dialect == "postgresql" else sqlite.insert
        session.execute(
            insert(SchedulerLease)
            .values(name=name, holder=holder, expires_at=now + ttl)
            .on_conflict_do_nothing(index_elements=["name"])
        )
        session.execute(
            update(SchedulerLease)
            .where(
                SchedulerLease.name == name,
                (SchedulerLease.holder == holder) | (SchedulerLease.expires_at <= now),
            )
            .values(holder=holder, expires_at=now + ttl)
        )
        row = session.scalar(select(SchedulerLease).where(SchedulerLease.name == name))
        assert row is not None
        if row.holder == holder:
            return None
        return f"{row.holder} (lease valid until {row.expires_at:%Y-%m-%d %H:%M:%S} UTC)"


def release(store: Store, *, holder: str, now: datetime, name: str = LEASE_NAME) -> None:
    with store.write() as session:
        session.execute(
            update(SchedulerLease)
            .where(SchedulerLease.name == name, SchedulerLease.holder == holder)
            .values(expires_at=now)
        )
