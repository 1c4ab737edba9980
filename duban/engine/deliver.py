"""deliver(now): send pending outbox messages; at least once, never lost, never dropped.

1. Claim a batch: pending rows whose next attempt is due, plus rows left `sending` by a
   process that died mid-send (claimed more than CLAIM_TIMEOUT ago). Claiming is its own
   committed transaction.
2. Send each over one connection. Each message's Message-ID is derived from its outbox key,
   so a message re-sent after a crash between sending and recording carries the same
   Message-ID and the recipient's mail system sees one message.
3. Record the outcomes, RECORD_EVERY at a time in one transaction: sent; or, on a transient
   failure (4xx, dropped connection), retried with exponential backoff (by default 15 minutes
   doubling to a 4-hour cap, like Postfix's queue) until the message is 5 days old, then
   failed; or, on a permanent 5xx answer, failed at once with the server's words. A failed
   message tells the county office. A crash before recording only means a re-send on the
   next run, with the same Message-ID.
Nothing is deleted; `duban outbox retry` puts failed messages back in the queue.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from email.message import Message
from typing import Any

from sqlalchemy import and_, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from duban.domain.retry import RetryPolicy
from duban.engine.notices import Context, context_for, task_items
from duban.engine.sweep import COUNTY_OFFICE
from duban.notify.render import message_id, render, to_email
from duban.notify.transport import PermanentError, TransientError, Transport
from duban.store.db import Store
from duban.store.models import OrgContact, OrgTag, Outbox

log = logging.getLogger(__name__)

DEFAULT_RETRY = RetryPolicy()
CLAIM_TIMEOUT = timedelta(minutes=10)
BATCH = 200
HEADER_KIND = {"failure": "escalation"}  # a delivery-failure notice is an escalation


@dataclass
class DeliverReport:
    sent: int = 0
    retried: int = 0
    failed: int = 0
    errors: list[str] = field(default_factory=list)


def _claim(store: Store, now: datetime, batch: int) -> list[int]:
    due = or_(
        and_(Outbox.state == "pending", Outbox.next_attempt_at <= now),
        and_(Outbox.state == "sending", Outbox.claimed_at <= now - CLAIM_TIMEOUT),
    )
    with store.write() as session:
        query = select(Outbox.id).where(due).order_by(Outbox.id).limit(batch)
        if store.dialect == "postgresql":
            query = query.with_for_update(skip_locked=True)
        ids = list(session.scalars(query))
        if ids:
            session.execute(
                update(Outbox).where(Outbox.id.in_(ids)).values(state="sending", claimed_at=now)
            )
    return ids


def _notify_failure(store: Store, row_id: int, now: datetime) -> None:
    with store.write() as session:
        failed = session.get(Outbox, row_id)
        if failed is None or failed.kind == "failure":
            return  # never a notice about a failed notice
        emails = session.scalars(
            select(OrgContact.email)
            .join(OrgTag, and_(OrgTag.org_id == OrgContact.org_id, OrgTag.tag == COUNTY_OFFICE))
            .where(OrgContact.role == "duty")
            .distinct()
        )
        insert = postgresql.insert if store.dialect == "postgresql" else sqlite.insert
        for email in emails:
            session.execute(
                insert(Outbox)
                .values(
                    key=f"failure:{row_id}:{email}",
                    kind="failure",
                    recipient=email,
                    day=failed.day,
                    task_id=failed.task_id,
                    step=f"failed:{row_id}",
                    state="pending",
                    attempts=0,
                    next_attempt_at=now,
                    created_at=now,
                )
                .on_conflict_do_nothing(index_elements=["key"])
            )


RECORD_EVERY = 50  # outcomes committed together; a crash in between only re-sends (same id)


def _flush(
    store: Store, outcomes: list[dict[str, object]], failed: list[int], now: datetime
) -> None:
    if outcomes:
        with store.write() as session:
            session.execute(update(Outbox), outcomes)  # bulk UPDATE by primary key
        outcomes.clear()
    for row_id in failed:
        _notify_failure(store, row_id, now)
    failed.clear()


def deliver(
    store: Store,
    transport: Transport,
    *,
    ctx: Context,
    mail_from: str,
    batch: int = BATCH,
    retry: RetryPolicy = DEFAULT_RETRY,
) -> DeliverReport:
    """Send what is due as of ctx.now; see the module docstring for the guarantees."""
    report = DeliverReport()
    outcomes: list[dict[str, object]] = []
    failed: list[int] = []
    try:
        while ids := _claim(store, ctx.now, batch):
            with store.read() as session:
                rows = list(
                    session.scalars(select(Outbox).where(Outbox.id.in_(ids)).order_by(Outbox.id))
                )
                items = task_items(session, ctx, [r.task_id for r in rows if r.task_id])
                prepared = [(row, _prepare(session, row, ctx, items, mail_from)) for row in rows]
            for row, message in prepared:
                outcome = _send_one(transport, row, message, ctx, mail_from, retry, report)
                outcomes.append(outcome)
                if outcomes[-1]["state"] == "failed":
                    failed.append(row.id)
                if len(outcomes) >= RECORD_EVERY:
                    _flush(store, outcomes, failed, ctx.now)
            _flush(store, outcomes, failed, ctx.now)
            if len(ids) < batch:
                break
    finally:
        transport.close()
    return report


def _prepare(
    session: Session, row: Outbox, ctx: Context, items: dict[int, dict[str, Any]], mail_from: str
) -> tuple[str, Message] | Exception:
    """The rendered message (with its subject), or the error that kept it from rendering."""
    try:
        rendered = render(
            row.kind, context_for(session, row, ctx, items), to=row.recipient, key=row.key
        )
    except Exception as exc:  # a broken template must not lose the message
        log.exception("cannot render outbox %d", row.id)
        return TransientError(f"rendering failed: {type(exc).__name__}: {exc}")
    message = to_email(rendered, mail_from=mail_from)
    message.replace_header("X-Duban-Kind", HEADER_KIND.get(rendered.kind, rendered.kind))
    return rendered.subject, message


def _send_one(
    transport: Transport,
    row: Outbox,
    prepared: tuple[str, Message] | Exception,
    ctx: Context,
    mail_from: str,
    retry: RetryPolicy,
    report: DeliverReport,
) -> dict[str, object]:
    """Send one message; return the outcome to record (written later, with its chunk)."""
    now = ctx.now
    error: Exception | None = prepared if isinstance(prepared, Exception) else None
    if not isinstance(prepared, Exception):
        try:
            transport.send(prepared[1])
        except (TransientError, PermanentError) as exc:
            error = exc
    if error is None and not isinstance(prepared, Exception):
        report.sent += 1
        return {
            "id": row.id,
            "state": "sent",
            "sent_at": now,
            "attempts": row.attempts + 1,
            "subject": prepared[0],
            "message_id": message_id(row.key, mail_from),
            "last_error": None,
        }
    report.errors.append(f"outbox {row.id}: {error}")
    if isinstance(error, PermanentError) or now - row.created_at >= retry.give_up:
        report.failed += 1
        log.warning("outbox %d failed for good: %s", row.id, error)
        return {
            "id": row.id,
            "state": "failed",
            "attempts": row.attempts + 1,
            "last_error": str(error),
        }
    report.retried += 1
    log.info("outbox %d will be retried: %s", row.id, error)
    return {
        "id": row.id,
        "state": "pending",
        "attempts": row.attempts + 1,
        "last_error": str(error),
        "next_attempt_at": now + retry.backoff(row.attempts + 1),
    }
