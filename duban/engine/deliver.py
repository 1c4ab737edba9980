"""deliver(now): send what is due in the outbox; each message at most once, none lost.

1. Claim a batch (see `duban.engine.claims`): pending rows whose next attempt is due as of
   `now`, plus rows a dead or stalled deliverer left 'sending', judged by the database's clock
   (never by `now`, which is business time and may be replayed with `--now`).
2. Send them one at a time over one connection, and record each outcome as soon as the server
   has answered, in its own short transaction. A process killed at any moment has therefore
   recorded every message but the one in flight; that one is sent again later with the same
   Message-ID (derived from its outbox key). Mail servers keep both copies: that one message is
   the only one that can arrive twice.
3. While a batch is being sent, the claim is renewed (every quarter of the claim timeout, by the
   database's clock); a deliverer that stalled for longer than that finds out before its next
   message, and skips the rows another deliverer has taken over meanwhile.
Outcomes: sent; a transient failure (4xx, dropped connection) is retried with exponential
backoff (by default 15 minutes doubling to a 4-hour cap, like Postfix's queue) until the message
is 5 days old, then failed; a permanent 5xx answer fails that message at once, with the server's
words. When nothing can go (server unreachable, login refused, mail folder full or read-only),
the rest of the batch is retried the same way and delivery stops until the next run. Failures
are told to the county office in one notice a day (`outbox.enqueue_failure_digest`).
Nothing is deleted; `duban outbox retry` puts failed messages back in the queue.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import timedelta
from email.message import Message
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from duban.domain.retry import RetryPolicy
from duban.engine import claims, outbox
from duban.engine.claims import CLAIM_TIMEOUT, Claim, Ledger
from duban.engine.notices import Context, context_for, task_items
from duban.notify.render import message_id, render
from duban.notify.transport import (
    DeliveryError,
    PermanentError,
    TransientError,
    Transport,
    Unavailable,
)
from duban.notify.wire import compose
from duban.store.db import Store
from duban.store.models import Outbox

__all__ = ["BATCH", "CLAIM_TIMEOUT", "DeliverReport", "deliver"]

DEFAULT_RETRY = RetryPolicy()
BATCH = 200
RENEW_FRACTION = 4  # renew a claim every claim_timeout / 4
HEADER_KIND = {"failure": "escalation"}  # a delivery-failure notice is an escalation
MAX_PROBLEMS = 10  # distinct errors kept in a report


@dataclass
class DeliverReport:
    sent: int = 0
    retried: int = 0
    failed: int = 0
    taken_over: int = 0  # claimed rows another deliverer took over after this one stalled
    unavailable: str | None = None  # why nothing could be sent (the run stopped there)
    stopped: bool = False  # asked to stop: the rest of the claim went back to the queue
    problems: Counter[str] = field(default_factory=Counter)  # error text → messages
    waiting: outbox.Waiting | None = None  # what is left in the outbox afterwards

    @property
    def errors(self) -> list[str]:
        """Each distinct error once, with how many messages it hit."""
        return [
            text if n == 1 else f"{text} ({n} messages)"
            for text, n in self.problems.most_common(MAX_PROBLEMS)
        ]

    def summary(self) -> str:
        """One line for a log or a terminal."""
        line = f"{self.sent} sent, {self.retried} to retry, {self.failed} failed"
        if self.taken_over:
            line += f", {self.taken_over} taken over by another deliverer"
        if self.unavailable:
            line += f"; stopped: {self.unavailable}"
        if self.waiting is not None:
            line += f"; still waiting: {self.waiting.describe()}"
        return line


def deliver(
    store: Store,
    transport: Transport,
    *,
    ctx: Context,
    mail_from: str,
    batch: int = BATCH,
    retry: RetryPolicy = DEFAULT_RETRY,
    claim_timeout: timedelta = CLAIM_TIMEOUT,
    stop: threading.Event | None = None,
) -> DeliverReport:
    """Send what is due as of ctx.now; see the module docstring for the guarantees.

    Safe to run in several processes or threads at once (each call claims its own rows); the
    transport is closed on return. `claim_timeout`: how old a claim must be, by the database's
    clock, before another deliverer takes it over (the same value for every deliverer of a
    database). `stop`: when set, the message in flight is finished and recorded, the rest of
    the claim goes back to the queue, and deliver returns.
    """
    report = DeliverReport()
    ledger = Ledger(store)
    try:
        while not (stop is not None and stop.is_set()):
            claim = claims.take(store, now=ctx.now, batch=batch, timeout=claim_timeout)
            if claim is None:
                break
            _Batch(store, ledger, transport, claim, ctx, mail_from, retry, report).run(
                renew_every=claim_timeout / RENEW_FRACTION, stop=stop
            )
            if report.unavailable or report.stopped or len(claim.ids) < batch:
                break
    finally:
        transport.close()
        ledger.close()
    report.waiting = outbox.waiting(store, now=ctx.now)
    return report


Prepared = tuple[str, Message] | DeliveryError  # (subject, message), or why it cannot be


@dataclass
class _Batch:
    store: Store
    ledger: Ledger
    transport: Transport
    claim: Claim
    ctx: Context
    mail_from: str
    retry: RetryPolicy
    report: DeliverReport
    gave_up: int = 0

    def run(self, *, renew_every: timedelta, stop: threading.Event | None) -> None:
        rows, prepared = self._prepare_all()
        renewed = time.monotonic()
        for index, row in enumerate(rows):
            if stop is not None and stop.is_set():
                self.report.stopped = True
                claims.release(self.ledger.conn, self.claim, [r.id for r in rows[index:]])
                break
            if time.monotonic() - renewed >= renew_every.total_seconds():
                claims.renew(self.ledger.conn, self.claim, [r.id for r in rows[index:]])
                renewed = time.monotonic()
            if row.id in self.claim.lost:
                self.report.taken_over += 1
                continue
            error = self._send(row, prepared.get(row.id) or self._prepare_one(row))
            if isinstance(error, Unavailable):
                self._defer(rows[index:], error)
                self.report.unavailable = str(error)
                break
        if self.gave_up:
            with self.store.write() as session:
                outbox.enqueue_failure_digest(session, now=self.ctx.now, tz=self.ctx.tz)

    def _prepare_all(self) -> tuple[list[Outbox], dict[int, Prepared]]:
        """The claimed rows and their messages, rendered in one read. Failure notices are
        rendered just before they go, so that they list every failure up to then."""
        with self.store.read() as session:
            rows = list(
                session.scalars(
                    select(Outbox).where(Outbox.id.in_(self.claim.ids)).order_by(Outbox.id)
                )
            )
            items = task_items(session, self.ctx, [r.task_id for r in rows if r.task_id])
            prepared = {r.id: self._render(session, r, items) for r in rows if r.kind != "failure"}
        return rows, prepared

    def _prepare_one(self, row: Outbox) -> Prepared:
        with self.store.read() as session:
            return self._render(session, row, {})

    def _render(self, session: Session, row: Outbox, items: dict[int, Any]) -> Prepared:
        try:
            rendered = render(
                row.kind, _context(session, row, self.ctx, items), to=row.recipient, key=row.key
            )
            kind = HEADER_KIND.get(rendered.kind, rendered.kind)
            return rendered.subject, compose(rendered, mail_from=self.mail_from, kind=kind)
        except Exception as exc:  # a broken template must not lose the message
            return TransientError(f"rendering failed: {type(exc).__name__}: {exc}")

    def _send(self, row: Outbox, prepared: Prepared) -> DeliveryError | None:
        """Send one message and record the outcome at once; the error, if any."""
        if isinstance(prepared, DeliveryError):
            error = prepared
        else:
            try:
                self.transport.send(prepared[1])
            except DeliveryError as exc:
                error = exc
            else:
                self._record(row, "sent", subject=prepared[0])
                return None
        if isinstance(error, Unavailable):
            return error  # the whole rest of the batch waits (see _defer)
        self.report.problems[str(error)] += 1
        if isinstance(error, PermanentError) or self._too_old(row):
            self._record(row, "failed", error=error)
        else:
            self._record(row, "pending", error=error)
        return error

    def _too_old(self, row: Outbox) -> bool:
        return self.ctx.now - row.created_at >= self.retry.give_up

    def _record(
        self, row: Outbox, state: str, *, subject: str = "", error: Exception | None = None
    ) -> None:
        outcome = self._outcome(row, state, subject=subject, error=error)
        if not self.ledger.record(self.claim, state, [outcome]):
            self.report.taken_over += 1  # taken over while this one was sending it
        self._tally(state, [row])

    def _tally(self, state: str, rows: list[Outbox]) -> None:
        if state == "sent":
            self.report.sent += len(rows)
        elif state == "failed":
            self.report.failed += len(rows)
            # the county office hears of failed messages, not of failed notices about them
            self.gave_up += sum(r.kind != "failure" for r in rows)
        else:
            self.report.retried += len(rows)

    def _defer(self, rows: list[Outbox], error: Unavailable) -> None:
        """Nothing can go now: every row left in the batch is retried later, or failed if it
        is too old, as if each had met the same error (one statement each)."""
        rows = [r for r in rows if r.id not in self.claim.lost]
        for state, chosen in (
            ("failed", [r for r in rows if self._too_old(r)]),
            ("pending", [r for r in rows if not self._too_old(r)]),
        ):
            self.ledger.record(
                self.claim, state, [self._outcome(r, state, error=error) for r in chosen]
            )
            self._tally(state, chosen)
        self.report.problems[str(error)] += len(rows)

    def _outcome(
        self, row: Outbox, state: str, *, subject: str = "", error: Exception | None = None
    ) -> dict[str, Any]:
        if state == "sent":
            return {
                "id": row.id,
                "sent_at": self.ctx.now,
                "attempts": row.attempts + 1,
                "subject": subject,
                "message_id": message_id(row.key, self.mail_from),
                "last_error": None,
            }
        # a failed message keeps the moment it was given up in next_attempt_at
        later = self.retry.backoff(row.attempts + 1) if state == "pending" else timedelta(0)
        return {
            "id": row.id,
            "attempts": row.attempts + 1,
            "last_error": str(error),
            "next_attempt_at": self.ctx.now + later,
        }


def _context(
    session: Session, row: Outbox, ctx: Context, items: dict[int, dict[str, Any]]
) -> dict[str, Any]:
    if row.kind != "failure":
        return context_for(session, row, ctx, items)
    return {
        "kind": row.kind,
        "day": row.day.isoformat(),
        "to": row.recipient,
        "step": row.step or "",
        "base_url": ctx.base_url,
        **outbox.failures_to_report(session, row),
    }
