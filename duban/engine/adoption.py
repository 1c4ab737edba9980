"""The deployment's start date, `adopted`, and what follows from it.

A county that starts using duban owes nothing for periods that fell due before it started:
no task is created for a period due before `adopted` (or, for one organization, before its
`joined:` day in the organization file), and a plan whose window ended before adoption
creates nothing. The date is the local day of the first `duban init` unless
`duban init --adopted YYYY-MM-DD` says otherwise; the same option moves it later, audited.

Moving the date later closes the open tasks that are no longer owed as `withdrawn`, with the
reason (tasks are never deleted); moving it earlier lets `materialize` create the periods
that became owed, because the adoption date is part of its fingerprint.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy import ColumnElement, func, or_, select, update
from sqlalchemy.orm import Session

from duban.domain.tasks import PENDING, TaskState
from duban.store import audit
from duban.store.models import AuditEvent, Meta, Organization, Task

ADOPTED_KEY = "adopted"


@dataclass(frozen=True, kw_only=True)
class AdoptionReport:
    adopted: date
    previous: date | None
    withdrawn: int  # open tasks closed because they fell due before adoption or joining


def adopted_on(session: Session) -> date | None:
    """The deployment's adoption day, or None before the first `duban init`."""
    meta = session.get(Meta, ADOPTED_KEY)
    return date.fromisoformat(meta.value) if meta else None


def first_load_day(session: Session, tz_today: date) -> date:
    """The day of the first catalog load recorded in the audit trail, else `tz_today`.

    A database that was in use before adoption existed is adopted on the day it was first
    initialised, so upgrading never withdraws work it already tracked.
    """
    first = session.scalar(
        select(func.min(AuditEvent.at)).where(AuditEvent.action == "catalog.loaded")
    )
    return min(first.date(), tz_today) if first is not None else tz_today


def withdraw_unowed(session: Session, *, adopted: date, now: datetime, actor: str) -> int:
    """Close, as withdrawn, the open or rejected tasks due before adoption or before their
    organization joined. Returns how many; audits one event when there were any."""
    before_joined = select(Organization.id).where(
        Organization.id == Task.org_id,
        Organization.joined.is_not(None),
        Task.due_date < Organization.joined,
    )
    reason = (
        f"在启用督办（{adopted.isoformat()}）或本机构加入之前已到期，不再计为应办 / "
        "fell due before duban was adopted or the institution joined"
    )
    result = session.connection().execute(
        update(Task)
        .where(
            Task.state.in_([s.value for s in PENDING]),
            or_(Task.due_date < adopted, before_joined.exists()),
        )
        .values(state=TaskState.WITHDRAWN.value, reason=reason, updated_at=now)
        .execution_options(preserve_rowcount=True)
    )
    count = int(result.rowcount or 0)
    if count:
        audit.record(
            session,
            now=now,
            actor=actor,
            action="tasks.withdrawn",
            entity="deployment",
            entity_id=ADOPTED_KEY,
            data={"adopted": adopted.isoformat(), "withdrawn": count, "reason": reason},
        )
    return count


def set_adopted(session: Session, day: date, *, now: datetime, actor: str) -> AdoptionReport:
    """Set the adoption day (audited when it changes) and withdraw what is no longer owed."""
    previous = adopted_on(session)
    if previous != day:
        session.merge(Meta(key=ADOPTED_KEY, value=day.isoformat()))
        audit.record(
            session,
            now=now,
            actor=actor,
            action="deployment.adopted",
            entity="deployment",
            entity_id=ADOPTED_KEY,
            data={"from": previous.isoformat() if previous else None, "to": day.isoformat()},
        )
    withdrawn = withdraw_unowed(session, adopted=day, now=now, actor=actor)
    return AdoptionReport(adopted=day, previous=previous, withdrawn=withdrawn)


def owed_from(adopted: date | None, joined: date | None) -> date | None:
    """The first due day an organization owes: the later of adoption and its joining."""
    days = [d for d in (adopted, joined) if d is not None]
    return max(days) if days else None


def joined_clause(due: date) -> ColumnElement[bool]:
    """SQL: the organization had joined by `due` (or carries no joining day)."""
    return or_(Organization.joined.is_(None), Organization.joined <= due)
