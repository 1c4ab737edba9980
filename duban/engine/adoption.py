"""The deployment's start date, `adopted`, and what follows from it.

A county that starts using duban owes nothing for periods that fell due before it started:
no task is created for a period due before `adopted` (or, for one organization, before its
`joined:` day in the organization file), and a plan whose window ended before adoption
creates nothing. The date is set by the first `duban init` (see `evidence_day`: the init's
own day for a new database, what it holds for one an earlier release wrote) unless
`duban init --adopted YYYY-MM-DD` says otherwise; the same option moves it, audited.

Moving the date later closes the open tasks that are no longer owed as `withdrawn`, with the
reason (tasks are never deleted); moving it earlier reopens the tasks an adoption move had
withdrawn that are owed again (`reopen_owed`), and lets `materialize` create the periods that
became owed, because the adoption date is part of its fingerprint.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date, datetime
from zoneinfo import ZoneInfo

from sqlalchemy import ColumnElement, and_, case, func, or_, select, update
from sqlalchemy.orm import Session

from duban.domain.tasks import PENDING, TaskState
from duban.store import audit
from duban.store.models import AuditEvent, Meta, ObligationRow, Organization, Task

ADOPTED_KEY = "adopted"
#: how the reason of a task withdrawn for adoption (or joining) ends: what tells it apart
#: from a duty withdrawn by a plan amendment, whose tasks carry the amendment's reason
WITHDRAWN_UNOWED = "fell due before duban was adopted or the institution joined"


@dataclass(frozen=True, kw_only=True)
class AdoptionReport:
    adopted: date
    previous: date | None
    withdrawn: int  # open tasks closed because they fell due before adoption or joining
    reopened: int = 0  # tasks an earlier adoption day had withdrawn, owed again


def adopted_on(session: Session) -> date | None:
    """The deployment's adoption day, or None before the first `duban init`."""
    meta = session.get(Meta, ADOPTED_KEY)
    return date.fromisoformat(meta.value) if meta else None


def evidence_day(session: Session, *, today: date, tz: ZoneInfo) -> date:
    """The adoption day for a database that has none: the earliest of what it holds, else
    `today` (the local day of the init that asks).

    The evidence is the local day of its first catalog load (the `catalog.loaded` audit event,
    which every release records), and the earliest period start, due day and local creation
    day of its tasks. A new database holds none of these and is adopted on its first init's
    day. A database that an earlier release wrote before adoption dates existed (schemas
    before 0007) created every period from each plan's start, whatever the day of its first
    init; adopting it on the day of the upgrade, or even of its first load, would withdraw
    tasks it tracked. On the earliest evidence no task it holds falls due before adoption,
    so an upgrade withdraws nothing, and `materialize` owes what the old release owed.
    """
    loaded = session.scalar(
        select(func.min(AuditEvent.at)).where(AuditEvent.action == "catalog.loaded")
    )
    start, due, created = session.execute(
        select(func.min(Task.period_start), func.min(Task.due_date), func.min(Task.created_at))
    ).one()
    days = [today, start, due]
    days += [moment.astimezone(tz).date() for moment in (loaded, created) if moment is not None]
    return min(d for d in days if d is not None)


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
        f"{WITHDRAWN_UNOWED}"
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


def reopen_owed(session: Session, *, adopted: date, now: datetime, actor: str) -> int:
    """Reopen the tasks withdrawn for adoption or joining that are owed again: withdrawn with
    the reason `withdraw_unowed` gives (WITHDRAWN_UNOWED; a duty withdrawn by an amendment, or
    a task withdrawn otherwise, keeps its state), due on or after `adopted`, of an
    organization that had joined by then, of a duty still active. A task that had been
    rejected (it was reviewed: an open task never is) goes back to rejected with the reason
    of its last rejection, from the audit trail; the others to open. Returns how many;
    audits one event when there were any."""
    before_joined = select(Organization.id).where(
        Organization.id == Task.org_id,
        Organization.joined.is_not(None),
        Task.due_date < Organization.joined,
    )
    active = select(ObligationRow.id).where(
        ObligationRow.id == Task.obligation_id, ObligationRow.active
    )
    owed = and_(
        Task.state == TaskState.WITHDRAWN.value,
        Task.reason.endswith(WITHDRAWN_UNOWED, autoescape=True),
        Task.due_date >= adopted,
        ~before_joined.exists(),
        active.exists(),
    )
    rejected = list(session.scalars(select(Task.id).where(owed, Task.reviewed_at.is_not(None))))
    result = session.connection().execute(
        update(Task)
        .where(owed)
        .values(
            state=case(
                (Task.reviewed_at.is_(None), TaskState.OPEN.value), else_=TaskState.REJECTED.value
            ),
            reason=None,
            updated_at=now,
        )
        .execution_options(preserve_rowcount=True)
    )
    for task_id, reason in _rejection_reasons(session, rejected).items():
        session.execute(update(Task).where(Task.id == task_id).values(reason=reason))
    count = int(result.rowcount or 0)
    if count:
        audit.record(
            session,
            now=now,
            actor=actor,
            action="tasks.reopened",
            entity="deployment",
            entity_id=ADOPTED_KEY,
            data={"adopted": adopted.isoformat(), "reopened": count, "rejected": len(rejected)},
        )
    return count


def _rejection_reasons(session: Session, task_ids: list[int]) -> dict[int, str | None]:
    """Each task's reason at its last `task.reject` event (tasks with none are left out)."""
    found: dict[int, str | None] = {}
    for i in range(0, len(task_ids), 500):
        chunk = [str(t) for t in task_ids[i : i + 500]]
        events = session.execute(
            select(AuditEvent.entity_id, AuditEvent.payload)
            .where(
                AuditEvent.action == "task.reject",
                AuditEvent.entity == "task",
                AuditEvent.entity_id.in_(chunk),
            )
            .order_by(AuditEvent.seq)
        )
        for entity_id, payload in events:
            found[int(entity_id)] = json.loads(payload).get("reason")
    return found


def set_adopted(session: Session, day: date, *, now: datetime, actor: str) -> AdoptionReport:
    """Set the adoption day (audited when it changes), reopen what an earlier day withdrew
    that is owed again, and withdraw what is no longer owed (each audited with its count)."""
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
    reopened = reopen_owed(session, adopted=day, now=now, actor=actor)
    withdrawn = withdraw_unowed(session, adopted=day, now=now, actor=actor)
    return AdoptionReport(adopted=day, previous=previous, withdrawn=withdrawn, reopened=reopened)


def owed_from(adopted: date | None, joined: date | None) -> date | None:
    """The first due day an organization owes: the later of adoption and its joining."""
    days = [d for d in (adopted, joined) if d is not None]
    return max(days) if days else None


def joined_clause(due: date) -> ColumnElement[bool]:
    """SQL: the organization had joined by `due` (or carries no joining day)."""
    return or_(Organization.joined.is_(None), Organization.joined <= due)
