"""Claims on outbox rows: which deliverer may send a message, dated by the database's clock.

A claim marks rows 'sending' with `claimed_at` = the database's time when they were taken
(the claim's stamp). A claim older than the claim timeout by that same clock belongs to a
deliverer that died or stalled, and another may take the rows over; so the holder renews its
claim while it works, and every write about a claimed row names the stamp it holds: a row
taken over by another deliverer is never recorded, renewed or released by the first.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Engine, and_, bindparam, or_, select, update
from sqlalchemy.exc import DBAPIError

from duban.engine.dbclock import db_now
from duban.store.db import Store
from duban.store.models import Outbox

CLAIM_TIMEOUT = timedelta(minutes=10)


@dataclass
class Claim:
    """Rows held by one deliverer, and the stamp they carry in `claimed_at`."""

    ids: list[int]
    stamp: datetime
    lost: set[int] = field(default_factory=set)  # taken over by another deliverer


def take(store: Store, *, now: datetime, batch: int, timeout: timedelta) -> Claim | None:
    """Claim up to `batch` rows: pending ones due as of `now` (business time), and rows whose
    claim is older than `timeout` by the database's clock. Commits on its own."""
    with store.write() as session:
        stamp = db_now(session)
        due = or_(
            and_(Outbox.state == "pending", Outbox.next_attempt_at <= now),
            and_(Outbox.state == "sending", Outbox.claimed_at <= stamp - timeout),
        )
        query = select(Outbox.id).where(due).order_by(Outbox.id).limit(batch)
        if store.dialect == "postgresql":
            query = query.with_for_update(skip_locked=True)
        ids = list(session.scalars(query))
        if not ids:
            return None
        session.execute(
            update(Outbox).where(Outbox.id.in_(ids)).values(state="sending", claimed_at=stamp)
        )
    return Claim(ids=ids, stamp=stamp)


def _held(claim: Claim) -> Any:
    return and_(Outbox.state == "sending", Outbox.claimed_at == claim.stamp)


def renew(conn: Connection, claim: Claim, ids: list[int]) -> None:
    """Date the claim on `ids` again with the database's current time. Rows whose stamp
    changed were taken over by another deliverer: they go to `claim.lost`."""
    if not ids:
        return
    with conn.begin():
        stamp = db_now(conn)
        kept = set(
            conn.scalars(
                update(Outbox)
                .where(Outbox.id.in_(ids), _held(claim))
                .values(claimed_at=stamp)
                .returning(Outbox.id)
            )
        )
    claim.lost.update(set(ids) - kept)
    claim.stamp = stamp


def release(conn: Connection, claim: Claim, ids: list[int]) -> None:
    """Put unsent rows back in the queue at once (a deliverer told to stop)."""
    if ids:
        with conn.begin():
            conn.execute(
                update(Outbox)
                .where(Outbox.id.in_(ids), _held(claim))
                .values(state="pending", claimed_at=None)
            )


OUTCOME_COLUMNS = {
    "sent": ("sent_at", "attempts", "subject", "message_id", "last_error"),
    "pending": ("attempts", "last_error", "next_attempt_at"),
    "failed": ("attempts", "last_error", "next_attempt_at"),
}


class Ledger:
    """Records outcomes as they happen, each in its own short transaction on one connection.

    On PostgreSQL each is one autocommitted statement (one round trip), committed with
    `synchronous_commit = off`: the server acknowledges it before its WAL reaches the disk.
    A deliverer killed at any moment loses nothing it recorded (the server has it); only a
    crash of the PostgreSQL server itself can lose the outcomes of its last moments (at most
    3 x wal_writer_delay, 0.6 s by default), and those messages are then sent again with the
    same Message-ID. Waiting for the disk after every message would halve delivery's rate.
    Claims (`take`) keep the server's default and are durable when taken.
    """

    def __init__(self, store: Store) -> None:
        # duban_write: BEGIN IMMEDIATE on SQLite (see duban.store.db)
        engine: Engine = store.engine.execution_options(duban_write=True)
        self.postgresql = store.dialect == "postgresql"
        if self.postgresql:
            engine = engine.execution_options(isolation_level="AUTOCOMMIT")
        self.conn = engine.connect()
        dialect = self.conn.dialect
        mark = "%s" if self.postgresql else "?"
        self._sent_sql = (
            f"UPDATE outbox SET state = 'sent', claimed_at = NULL, sent_at = {mark}, "
            f"attempts = {mark}, subject = {mark}, message_id = {mark}, last_error = NULL "
            f"WHERE id = {mark} AND state = 'sending' AND claimed_at = {mark}"
        )
        convert = Outbox.__table__.c.sent_at.type.dialect_impl(dialect).bind_processor(dialect)
        self._datetime: Callable[[datetime], Any] = convert or (lambda value: value)
        if self.postgresql:
            self.conn.exec_driver_sql("SET synchronous_commit TO off")
            self.conn.commit()
        self._statements = {
            state: update(Outbox)
            .where(
                Outbox.id == bindparam("b_id"),
                Outbox.state == "sending",
                Outbox.claimed_at == bindparam("b_stamp"),
            )
            .values(
                state=state,
                claimed_at=None,
                **{c: bindparam(f"b_{c}", type_=Outbox.__table__.c[c].type) for c in cols},
            )
            for state, cols in OUTCOME_COLUMNS.items()
        }

    def record(self, claim: Claim, state: str, outcomes: list[dict[str, Any]]) -> int:
        """Write outcomes of one kind ('sent', 'pending', 'failed'); returns how many rows
        were still held by `claim` (the others were taken over and are left alone)."""
        if not outcomes:
            return 0
        if state == "sent" and len(outcomes) == 1:
            return self._sent(claim, outcomes[0])
        params = [{"b_stamp": claim.stamp, **{f"b_{k}": v for k, v in o.items()}} for o in outcomes]
        with self.conn.begin():
            result = self.conn.execute(
                self._statements[state].execution_options(preserve_rowcount=True),
                params[0] if len(params) == 1 else params,
            )
        return len(outcomes) if len(params) > 1 else int(result.rowcount)

    def _sent(self, claim: Claim, outcome: dict[str, Any]) -> int:
        """The hot path, once per message: the statement as text, the values through the
        column type's own conversion (SQLAlchemy's per-execution statement caching cost more
        than the round trip to the database)."""
        stamp = self._datetime
        values = (
            stamp(outcome["sent_at"]),
            outcome["attempts"],
            outcome["subject"],
            outcome["message_id"],
            outcome["id"],
            stamp(claim.stamp),
        )
        with self.conn.begin():
            result = self.conn.exec_driver_sql(self._sent_sql, values)
        return int(result.rowcount)

    def close(self) -> None:
        try:
            if self.postgresql and not self.conn.invalidated:
                self.conn.exec_driver_sql("RESET synchronous_commit")  # back to the pool
                self.conn.commit()
        except DBAPIError:
            self.conn.invalidate()  # never back to the pool with the setting
        finally:
            self.conn.close()
