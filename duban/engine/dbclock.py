"""The database's clock: one clock for every process that shares a database.

Claims on outbox rows and the scheduler lease are judged stale by how long ago they were
written, and two processes (two `duban tick --now …`, Prefect workers on machines whose
clocks differ) must agree on that. So they are dated and compared with the database's own
clock, never with a caller's `now` (which is business time, and may be any moment replayed
with `--now`). On PostgreSQL that is the server's `clock_timestamp()`; SQLite runs inside
each process on the one machine that holds the file, so its clock is that machine's.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import Connection, func, select
from sqlalchemy.orm import Session

SQLITE_NOW = "%Y-%m-%d %H:%M:%f"


def db_now(bind: Session | Connection) -> datetime:
    """The database's current time (aware, UTC)."""
    dialect = bind.get_bind().dialect.name if isinstance(bind, Session) else bind.dialect.name
    if dialect == "postgresql":
        value = bind.scalar(select(func.clock_timestamp()))
        assert isinstance(value, datetime)
        return value.astimezone(UTC)
    text = bind.scalar(select(func.strftime(SQLITE_NOW, "now")))
    return datetime.fromisoformat(str(text)).replace(tzinfo=UTC)
