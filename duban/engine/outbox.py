"""Administering the outbox: list messages, put failed ones back in the queue."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select, update

from duban.store import audit
from duban.store.db import Store
from duban.store.models import Outbox


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
