"""Administering the outbox: list messages, put failed ones back in the queue, say what is
still waiting, and tell the county office, once a day at most, what could not be delivered."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import case, func, select, update
from sqlalchemy.orm import Session

from duban.domain.due import local_date, start_of_day
from duban.engine.claims import CLAIM_TIMEOUT
from duban.engine.sweep import county_office
from duban.store import audit
from duban.store.db import Store
from duban.store.dialect import insert_for
from duban.store.models import Outbox

FAILURE_DIGEST_MAX_ITEMS = 100


def list_messages(
    store: Store, *, state: str | None = None, limit: int = 100
) -> list[dict[str, Any]]:
    query = select(Outbox).order_by(Outbox.id.desc()).limit(limit)
    if state:
        query = query.where(Outbox.state == state)
    with store.read() as session:
        return [
            {
                "id": r.id,
                "key": r.key,
                "kind": r.kind,
                "recipient": r.recipient,
                "day": r.day.isoformat(),
                "state": r.state,
                "attempts": r.attempts,
                "next_attempt_at": r.next_attempt_at.isoformat(),
                "subject": r.subject,
                "last_error": r.last_error,
                "message_id": r.message_id,
                "sent_at": r.sent_at.isoformat() if r.sent_at else None,
            }
            for r in session.scalars(query)
        ]


def retry(store: Store, *, ids: list[int] | None, now: datetime, actor: str) -> int:
    """Failed messages (all, or those named) become pending, due now, and get a fresh 5-day
    delivery window; the retry is audited. Returns how many were queued again."""
    where = [Outbox.state == "failed"]
    if ids:
        where.append(Outbox.id.in_(ids))
    with store.write() as session:
        chosen = list(session.scalars(select(Outbox.id).where(*where)))
        if chosen:
            session.execute(
                update(Outbox)
                .where(Outbox.id.in_(chosen))
                .values(state="pending", next_attempt_at=now, created_at=now)
            )
            audit.record(
                session,
                now=now,
                actor=actor,
                action="outbox.retry",
                entity="outbox",
                entity_id=",".join(map(str, chosen[:20])),
                data={"ids": chosen},
            )
        return len(chosen)


@dataclass(frozen=True, kw_only=True)
class Waiting:
    """What a delivery left in the outbox."""

    due: int  # pending and due: the next delivery takes them
    later: int  # pending, to be retried later (after a 4xx, a dropped or unreachable server)
    next_at: datetime | None  # the earliest of those retries
    sending: int  # claimed by a deliverer that is sending them, or that died doing so

    def describe(self) -> str:
        """One line, e.g. '3 due, 12 to retry from 2022-06-21 09:15 UTC, 800 being sent'."""
        parts = []
        if self.due:
            parts.append(f"{self.due} due")
        if self.later:
            when = f" from {self.next_at:%Y-%m-%d %H:%M} UTC" if self.next_at else ""
            parts.append(f"{self.later} to retry{when}")
        if self.sending:
            minutes = int(CLAIM_TIMEOUT.total_seconds() // 60)
            parts.append(
                f"{self.sending} claimed by another deliverer ('sending'; taken over if it "
                f"stops renewing its claim for {minutes} minutes)"
            )
        return ", ".join(parts) or "nothing"


def waiting(store: Store, *, now: datetime) -> Waiting:
    """Messages still to send as of `now`: due, to retry later, claimed ('sending')."""
    due = case((Outbox.next_attempt_at <= now, True), else_=False)
    with store.read() as session:
        rows = session.execute(
            select(Outbox.state, due, func.count(), func.min(Outbox.next_attempt_at))
            .where(Outbox.state.in_(["pending", "sending"]))
            .group_by(Outbox.state, due)
        ).all()
    counts = {(state, bool(is_due)): (n, first) for state, is_due, n, first in rows}
    later, next_at = counts.get(("pending", False), (0, None))
    return Waiting(
        due=counts.get(("pending", True), (0, None))[0],
        later=later,
        next_at=next_at,
        sending=sum(n for (state, _), (n, _) in counts.items() if state == "sending"),
    )


def enqueue_failure_digest(session: Session, *, now: datetime, tz: ZoneInfo) -> None:
    """Queue one delivery-failure notice per county-office contact for today (local day).

    The notice lists, when it is sent, every message that failed since the previous notice,
    so a thousand failures make one message. If today's notice is already on its way or sent,
    tomorrow's is queued for the first delivery of tomorrow. Safe to call any number of times.
    """
    today = local_date(now, tz)
    tomorrow = today + timedelta(days=1)
    insert = insert_for(session)
    for email in county_office(session):
        for day, due in ((today, now), (tomorrow, start_of_day(tomorrow, tz))):
            key = f"failure:{day.isoformat()}:{email}"
            session.execute(
                insert(Outbox)
                .values(
                    key=key,
                    kind="failure",
                    recipient=email,
                    day=day,
                    task_id=None,
                    step=f"failed:{day.isoformat()}",
                    state="pending",
                    attempts=0,
                    next_attempt_at=due,
                    created_at=now,
                )
                .on_conflict_do_nothing(index_elements=["key"])
            )
            if session.scalar(select(Outbox.state).where(Outbox.key == key)) == "pending":
                break  # this one is still to be sent, and will list the new failures


def failures_to_report(session: Session, notice: Outbox) -> dict[str, Any]:
    """The template context of a delivery-failure notice: the messages that failed since the
    previous notice to the same person (all, for the first), oldest first, and their count.

    A failed message keeps the moment it was given up in `next_attempt_at` (no attempt follows).
    Notices written by older versions name one failed message in their step (`failed:<id>`).
    """
    step = (notice.step or "").removeprefix("failed:")
    if step.isdigit():
        one = session.get(Outbox, int(step))
        return {"failures": [one] if one else [], "total": 1 if one else 0, "failed": one}
    previous = session.scalar(
        select(func.max(Outbox.sent_at)).where(
            Outbox.kind == "failure",
            Outbox.recipient == notice.recipient,
            Outbox.state == "sent",
            Outbox.id != notice.id,
        )
    )
    where = [Outbox.kind != "failure", Outbox.state == "failed"]
    if previous is not None:
        where.append(Outbox.next_attempt_at > previous)
    total = session.scalar(select(func.count()).select_from(Outbox).where(*where)) or 0
    failures = list(
        session.scalars(
            select(Outbox)
            .where(*where)
            .order_by(Outbox.next_attempt_at, Outbox.id)
            .limit(FAILURE_DIGEST_MAX_ITEMS)
        )
    )
    return {"failures": failures, "total": total, "failed": failures[0] if failures else None}
