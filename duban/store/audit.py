"""The append-only audit log, chained by SHA-256.

Each event's hash covers its own fields and the previous event's hash:

    hash_n = sha256(prev_hash | seq | at | actor | action | entity | entity_id | payload)

so changing, removing or reordering any row breaks every link after it. `verify` recomputes
every hash from the rows themselves and never trusts a stored hash. Someone who kept an
earlier `head` can prove today's log still extends it (`verify(head=...)`): a log rewritten
from scratch, however consistent, does not contain the old head.

Appends are serialised: on SQLite by the write transaction's `BEGIN IMMEDIATE`, on PostgreSQL
by a transaction-level advisory lock; `seq` is unique, so a fork cannot be committed.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import func, select, text
from sqlalchemy.orm import Session

from duban.store.models import AuditEvent

GENESIS = "0" * 64
ADVISORY_LOCK_KEY = 0x647562616E  # "duban"
VERIFY_BATCH = 5_000


def canonical_json(data: Any) -> str:
    return json.dumps(data, sort_keys=True, ensure_ascii=False, separators=(",", ":"), default=str)


def _digest(
    prev_hash: str,
    seq: int,
    at: datetime,
    actor: str,
    action: str,
    entity: str,
    entity_id: str,
    payload: str,
) -> str:
    at_text = at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    fields = [prev_hash, str(seq), at_text, actor, action, entity, entity_id, payload]
    return hashlib.sha256("\x1f".join(fields).encode()).hexdigest()


def record(
    session: Session,
    *,
    now: datetime,
    actor: str,
    action: str,
    entity: str,
    entity_id: object,
    data: dict[str, Any] | None = None,
) -> AuditEvent:
    """Append one event in the caller's (write) transaction and return it."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": ADVISORY_LOCK_KEY})
    last = session.execute(
        select(AuditEvent.seq, AuditEvent.hash).order_by(AuditEvent.seq.desc()).limit(1)
    ).first()
    seq, prev = (last[0] + 1, last[1]) if last else (1, GENESIS)
    payload = canonical_json(data or {})
    at = now.astimezone(UTC)
    event = AuditEvent(
        seq=seq,
        at=at,
        actor=actor,
        action=action,
        entity=entity,
        entity_id=str(entity_id),
        payload=payload,
        prev_hash=prev,
        hash=_digest(prev, seq, at, actor, action, entity, str(entity_id), payload),
    )
    session.add(event)
    session.flush()
    return event


@dataclass(frozen=True, kw_only=True)
class Verdict:
    ok: bool
    count: int
    head: str
    problem: str = ""


def head(session: Session) -> tuple[str, int]:
    """The latest stored hash and the number of events."""
    row = session.execute(
        select(AuditEvent.hash, AuditEvent.seq).order_by(AuditEvent.seq.desc()).limit(1)
    ).first()
    count = session.scalar(select(func.count()).select_from(AuditEvent)) or 0
    return (row[0], count) if row else (GENESIS, 0)


def verify(session: Session, *, expected_head: str | None = None) -> Verdict:
    """Recompute the chain from the rows; name the first broken link, if any. The rows are
    streamed (a server-side cursor on PostgreSQL), so `session` is `Store.consistent()`."""
    prev = GENESIS
    count = 0
    head_seen = expected_head is None
    rows = session.execute(
        select(AuditEvent).order_by(AuditEvent.seq).execution_options(yield_per=VERIFY_BATCH)
    ).scalars()
    for ev in rows:
        count += 1
        if ev.seq != count:
            return Verdict(
                ok=False,
                count=count,
                head=prev,
                problem=f"event {count} is missing (the next stored event is "
                f"{ev.seq}): rows were removed",
            )
        if ev.prev_hash != prev:
            return Verdict(
                ok=False,
                count=count,
                head=prev,
                problem=f"event {ev.seq} does not link to event {ev.seq - 1}: its "
                "previous-hash differs from the recomputed one",
            )
        recomputed = _digest(
            prev, ev.seq, ev.at, ev.actor, ev.action, ev.entity, ev.entity_id, ev.payload
        )
        if recomputed != ev.hash:
            return Verdict(
                ok=False,
                count=count,
                head=prev,
                problem=f"event {ev.seq} ({ev.action} {ev.entity} {ev.entity_id}) "
                "was altered: its contents no longer match its hash",
            )
        prev = recomputed
        if not head_seen and recomputed == expected_head:
            head_seen = True
    if not head_seen:
        return Verdict(
            ok=False,
            count=count,
            head=prev,
            problem=f"the recorded head {expected_head} is not in the recomputed "
            "chain: the log was rewritten or truncated since it was recorded",
        )
    return Verdict(ok=True, count=count, head=prev)
