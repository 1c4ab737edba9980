"""sweep(now): decide which ladder steps and digests are due, and put them in the outbox.

Set-based and idempotent, like materialize:
1. For each obligation and each step of its ladder, one `INSERT … SELECT` marks the step for
   every pending task whose due date lies in the step's current range (see
   duban.domain.ladder) and for every recipient the step names. Marks are unique on
   (task, step, recipient): a step is reached once, however often the sweep runs.
2. Today's marks become messages, again in SQL: an escalation is one message per task and
   recipient (a person reached through several steps of the same day gets one); a person
   with a single reminder today gets that reminder; a person with several, or who chose
   digest-only, gets one digest for the day instead. Outbox keys are unique, so a
   second sweep enqueues nothing.
3. Once per ISO week each county-office contact gets a summary of what is overdue.

4. A step with nobody to tell (a missing head, parent or office contact) is marked skipped
   once per task and reported once per duty, step and organization (duban.engine.unreachable).

Marks and messages are written in one transaction, so a crash leaves neither half.
A task that is submitted, accepted or waived is never selected: no reminder for work done.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import (
    ColumnElement,
    Select,
    String,
    and_,
    case,
    cast,
    exists,
    func,
    literal,
    select,
)
from sqlalchemy.orm import Session, aliased

from duban.domain.due import local_date
from duban.domain.ladder import ESCALATION, OVERDUE, REMINDER, Ladder, Step, current_ranges
from duban.domain.tasks import PENDING, TaskState
from duban.domain.workdays import WorkdayCalendar
from duban.engine.unreachable import SKIPPED, Skipped, mark_unreachable
from duban.store.db import Store
from duban.store.dialect import insert_for
from duban.store.models import (
    LadderMark,
    ObligationRow,
    Organization,
    OrgContact,
    OrgTag,
    Outbox,
    RecipientPref,
    Task,
)

log = logging.getLogger(__name__)
COUNTY_OFFICE = "county-office"
MCH_SECTION = "mch-section"


@dataclass
class SweepReport:
    marks: int = 0
    messages: int = 0
    # steps newly skipped for want of a recipient (duban.engine.unreachable), one per
    # duty, step and organization
    skipped: list[Skipped] = field(default_factory=list)


def ladder_of(spec: dict[str, Any]) -> Ladder:
    reminders = spec.get("reminders") or {}
    return Ladder.build(
        before=reminders.get("before_working_days", []),
        to=reminders.get("to", "duty"),
        escalation=[(e["after_working_days"], e["notify"]) for e in spec.get("escalation", [])],
    )


def _execute(session: Session, stmt: Any) -> int:
    result = session.connection().execute(stmt.execution_options(preserve_rowcount=True))
    return int(result.rowcount)


def county_office(session: Session, tag: str = COUNTY_OFFICE) -> list[str]:
    """The duty contacts of the organizations tagged county-office (a handful of people), or
    tagged `tag` (mch-section: the commission's MCH section alone)."""
    office = aliased(OrgTag)
    return list(
        session.scalars(
            select(OrgContact.email)
            .join(office, and_(office.org_id == OrgContact.org_id, office.tag == tag))
            .where(OrgContact.role == "duty")
            .distinct()
            .order_by(OrgContact.email)
        )
    )


def recipients_of(
    query: Select[Any], notify: str, office: dict[str, list[str]]
) -> list[tuple[Any, Any]]:
    """The people a step tells, joined onto a query over tasks: [(query, email column)].

    The county office is a few fixed people, so it is one statement per person with the
    address as a literal; joining it would make the planner pair every task with every contact.
    """
    contact = aliased(OrgContact)
    if notify in ("duty", "head"):
        joined = query.join(contact, and_(contact.org_id == Task.org_id, contact.role == notify))
        return [(joined, contact.email)]
    if notify == "parent":
        org = aliased(Organization)
        joined = query.join(org, org.id == Task.org_id).join(
            contact, and_(contact.org_id == org.parent_id, contact.role == "duty")
        )
        return [(joined, contact.email)]
    # county-office or mch-section: a few fixed people
    return [(query, literal(email, String())) for email in office.get(notify, [])]


def _mark_step(
    session: Session,
    *,
    obligation_ids: list[int],
    step: Step,
    first: date,
    last: date,
    today: date,
    now: datetime,
    office: dict[str, list[str]],
) -> int:
    """Mark `step` for every pending task of these obligations due in [first, last]."""
    tasks = select(Task.id).where(
        Task.obligation_id.in_(obligation_ids),
        Task.state.in_([s.value for s in PENDING]),
        Task.due_date.between(first, last),
        Task.opens_at <= now,
    )
    marked = 0
    for joined, email in recipients_of(tasks, step.notify, office):
        query = joined.with_only_columns(
            Task.id, literal(step.name), email, literal(step.kind), literal(today)
        )
        stmt = (
            insert_for(session)(LadderMark)
            .from_select(["task_id", "step", "recipient", "kind", "day"], query)
            .on_conflict_do_nothing(index_elements=["task_id", "step", "recipient"])
        )
        marked += _execute(session, stmt)
    return marked


def _mark_rejections(session: Session, *, today: date, now: datetime, catchup: timedelta) -> int:
    """A rejection is news for the duty contact: a reminder-kind mark, once per rejection."""
    # Two steps, so the planner starts from the few rejected tasks (index on state), never
    # from every contact's every task.
    rejected = session.execute(
        select(Task.id, Task.org_id, Task.reviewed_at).where(
            Task.state == TaskState.REJECTED.value, Task.reviewed_at >= now - catchup
        )
    ).all()
    if not rejected:
        return 0
    duty = dict(
        session.execute(
            select(OrgContact.org_id, OrgContact.email).where(
                OrgContact.role == "duty", OrgContact.org_id.in_({o for _, o, _ in rejected})
            )
        ).all()
    )
    rows = [(t, reviewed, duty[o]) for t, o, reviewed in rejected if o in duty]
    if not rows:
        return 0
    values = [
        {
            "task_id": task_id,
            "step": f"rejected:{reviewed:%Y%m%dT%H%M%S}",
            "recipient": email,
            "kind": REMINDER,
            "day": today,
        }
        for task_id, reviewed, email in rows
    ]
    stmt = (
        insert_for(session)(LadderMark)
        .values(values)
        .on_conflict_do_nothing(index_elements=["task_id", "step", "recipient"])
    )
    return _execute(session, stmt)


def _digest_only(recipient: Any) -> ColumnElement[bool]:
    return exists().where(RecipientPref.email == recipient, RecipientPref.digest_only)


def _enqueue(session: Session, query: Any, now: datetime) -> int:
    cols = [
        "key",
        "kind",
        "recipient",
        "day",
        "task_id",
        "step",
        "state",
        "attempts",
        "next_attempt_at",
        "created_at",
    ]
    stmt = (
        insert_for(session)(Outbox)
        .from_select(cols, query)
        .on_conflict_do_nothing(index_elements=["key"])
    )
    return _execute(session, stmt)


def _messages_for_day(session: Session, *, today: date, now: datetime) -> int:
    m = LadderMark
    task_text = cast(m.task_id, String)
    fixed = (
        literal("pending"),
        literal(0),
        literal(now, Outbox.next_attempt_at.type),
        literal(now, Outbox.created_at.type),
    )
    # One person, one message: a person reached through two roles or organizations (the head
    # of one and the county office of another, say) on the same day about the same task gets
    # one notice. "escalation…" sorts before "overdue…", so min() prefers the escalation and
    # its step together; the key names the step sent, so a second sweep enqueues nothing.
    kind, step = func.min(m.kind), func.min(m.step)
    escalations = (
        select(
            kind + ":" + task_text + ":" + step + ":" + m.recipient,
            kind,
            m.recipient,
            m.day,
            m.task_id,
            step,
            *fixed,
        )
        .where(m.day == today, m.kind.in_([OVERDUE, ESCALATION]), ~_digest_only(m.recipient))
        .group_by(m.task_id, m.recipient, m.day)
    )
    digest_key = literal("digest:") + m.recipient + literal(f":{today.isoformat()}")
    alone = func.count() == 1
    # a person with one reminder today gets it; with several, one digest (one pass, grouped)
    reminders = (
        select(
            case(
                (
                    alone,
                    literal("reminder:")
                    + cast(func.min(m.task_id), String)
                    + ":"
                    + func.min(m.step)
                    + ":"
                    + m.recipient,
                ),
                else_=digest_key,
            ),
            case((alone, literal(REMINDER)), else_=literal("digest")),
            m.recipient,
            literal(today),
            case((alone, func.min(m.task_id)), else_=literal(None, Outbox.task_id.type)),
            case((alone, func.min(m.step)), else_=literal(None, Outbox.step.type)),
            *fixed,
        )
        .where(m.day == today, m.kind == REMINDER, ~_digest_only(m.recipient))
        .group_by(m.recipient)
    )
    chosen = (
        select(
            digest_key,
            literal("digest"),
            m.recipient,
            literal(today),
            literal(None, Outbox.task_id.type),
            literal(None, Outbox.step.type),
            *fixed,
        )
        .where(m.day == today, m.kind != SKIPPED, _digest_only(m.recipient))
        .group_by(m.recipient)
    )
    queries: list[Any] = [escalations, reminders, chosen]
    return sum(_enqueue(session, q, now) for q in queries)


def _weekly_summaries(session: Session, *, today: date, now: datetime) -> int:
    year, week, _ = today.isocalendar()
    office = aliased(OrgTag)
    query = (
        select(
            literal("summary:") + OrgContact.email + literal(f":{year}-W{week:02d}"),
            literal("summary"),
            OrgContact.email,
            literal(today),
            literal(None, Outbox.task_id.type),
            literal(None, Outbox.step.type),
            literal("pending"),
            literal(0),
            literal(now, Outbox.next_attempt_at.type),
            literal(now, Outbox.created_at.type),
        )
        .join(office, and_(office.org_id == OrgContact.org_id, office.tag == COUNTY_OFFICE))
        .where(OrgContact.role == "duty")
        .distinct()
    )
    return _enqueue(session, query, now)


def sweep(
    store: Store,
    *,
    calendar: WorkdayCalendar,
    now: datetime,
    tz: ZoneInfo,
    catchup: timedelta = timedelta(days=14),
) -> SweepReport:
    """Mark due ladder steps and enqueue today's messages; see the module docstring."""
    today = local_date(now, tz)
    report = SweepReport()
    with store.write() as session:
        # Obligations that share a ladder share its ranges: one statement per ladder step.
        by_ladder: dict[Ladder, list[int]] = {}
        for obligation_id, spec in session.execute(
            select(ObligationRow.id, ObligationRow.spec).where(ObligationRow.active)
        ):
            by_ladder.setdefault(ladder_of(spec), []).append(obligation_id)
        office = {tag: county_office(session, tag) for tag in (COUNTY_OFFICE, MCH_SECTION)}
        for ladder, ids in by_ladder.items():
            for step, first, last in current_ranges(ladder, today, calendar, catchup):
                # the same tasks: those a step reaches are marked, those it cannot are skipped
                where: dict[str, Any] = dict(
                    obligation_ids=ids, step=step, first=first, last=last, today=today, now=now
                )
                report.marks += _mark_step(session, office=office, **where)
                report.skipped += mark_unreachable(session, office=office, **where)
        report.marks += _mark_rejections(session, today=today, now=now, catchup=catchup)
        report.messages += _messages_for_day(session, today=today, now=now)
        report.messages += _weekly_summaries(session, today=today, now=now)
    log.info(
        "sweep %s: %d steps reached, %d messages enqueued", today, report.marks, report.messages
    )
    for skipped in report.skipped:
        log.warning("sweep %s: %s; nobody was told", today, skipped)
    return report
