"""materialize(now): create every task that should exist by `now`, and nothing twice.

For each active obligation and each of its periods that has started by `now` (in the plan's
time zone) and ends inside the plan's window, one `INSERT … SELECT … ON CONFLICT DO NOTHING`
creates the tasks of every responsible organization in a single statement; the database does
the fan-out, so memory does not grow with the number of organizations. Events are handled the
same way: one statement per (event, obligation of that event kind).

Adoption (duban.engine.adoption): no task is created for a period that fell due before the
deployment adopted duban, before the organization joined, or before the day the obligation's
current version was applied (`effective_from`); an obligation whose window ended before
adoption creates nothing. Each task records the plan version (the file's SHA-256) and the
obligation version it was created under.

Idempotence: tasks are unique on (obligation, organization, period), so a second run inserts
nothing. A run after a week of downtime creates exactly the periods that opened meanwhile.
Each obligation-period is committed in its own transaction together with a marker
(`materializations`) carrying the fingerprint of the obligation's content and the roster of
organizations; a later run skips marked periods without touching the tasks table, and a
changed plan or roster changes the fingerprint, so the period is checked again.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import ColumnElement, and_, exists, false, literal, or_, select
from sqlalchemy.orm import Session

from duban.catalog import schema as s
from duban.catalog.loader import build_obligation
from duban.domain.due import end_of_day, local_date, start_of_day
from duban.domain.obligations import Obligation, Selector
from duban.domain.periods import Period, event_period
from duban.domain.tasks import TaskState
from duban.domain.workdays import WorkdayCalendar
from duban.engine import duties
from duban.engine.adoption import adopted_on, joined_clause
from duban.engine.sync import roster_version
from duban.store import audit
from duban.store.changes import mark_change
from duban.store.db import Store
from duban.store.dialect import insert_for
from duban.store.models import (
    Event,
    Materialization,
    ObligationRow,
    Organization,
    OrgTag,
    Plan,
    TallyDutyDay,
    Task,
)

log = logging.getLogger(__name__)


# After creating this many tasks in one run, refresh the planner's statistics (Store.analyze).
ANALYZE_AFTER = 10_000


@dataclass
class MaterializeReport:
    periods_checked: int = 0
    periods_skipped: int = 0
    tasks_created: int = 0
    by_obligation: dict[str, int] = field(default_factory=dict)

    def add(self, code: str, created: int) -> None:
        self.tasks_created += created
        if created:
            self.by_obligation[code] = self.by_obligation.get(code, 0) + created


def domain_obligation(row: ObligationRow, plan_code: str) -> Obligation:
    """Rebuild the domain object from the spec stored when the plan was loaded."""
    return obligation_of(row.spec, plan_code)


def obligation_of(stored: dict[str, Any], plan_code: str) -> Obligation:
    """The domain object of a stored spec (an obligation row's, or one of its versions)."""
    spec = s.ObligationSpec.model_validate(stored)
    valid = spec.valid
    assert valid is not None  # spec_json always stores the effective window
    header = s.PlanHeader(
        id=plan_code, title="", document="", issuer="", issued=valid.start, valid=valid
    )
    return build_obligation(spec, header)


def selector_clause(selector: Selector, event_org_id: int | None = None) -> ColumnElement[bool]:
    if selector.event_org:
        return Organization.id == event_org_id if event_org_id is not None else false()
    if selector.org is not None:
        return Organization.code == selector.org
    return and_(
        *(
            exists().where(OrgTag.org_id == Organization.id, OrgTag.tag == tag)
            for tag in sorted(selector.tags)
        ),
        *(
            ~exists().where(OrgTag.org_id == Organization.id, OrgTag.tag == tag)
            for tag in sorted(selector.except_tags)
        ),
    )


def _insert_tasks(
    session: Session,
    *,
    obligation_id: int,
    ob: Obligation,
    period: Period,
    due: date,
    tz: ZoneInfo,
    now: datetime,
    event_id: int | None = None,
    event_org_id: int | None = None,
    plan_version: str | None = None,
    spec_hash: str | None = None,
) -> int:
    who = or_(*(selector_clause(sel, event_org_id) for sel in ob.responsible))
    cols: dict[str, Any] = {
        "obligation_id": literal(obligation_id),
        "org_id": Organization.id,
        "period_key": literal(period.key),
        "period_start": literal(period.start),
        "period_end": literal(period.end),
        "due_date": literal(due),
        "due_at": literal(end_of_day(due, tz), Task.due_at.type),
        "opens_at": literal(start_of_day(period.start, tz), Task.opens_at.type),
        "state": literal(TaskState.OPEN.value),
        "event_id": literal(event_id, Task.event_id.type),
        "created_at": literal(now, Task.created_at.type),
        "updated_at": literal(now, Task.updated_at.type),
        "plan_version": literal(plan_version, Task.plan_version.type),
        "spec_hash": literal(spec_hash, Task.spec_hash.type),
    }
    query = select(*(v.label(k) for k, v in cols.items())).where(
        Organization.active, who, joined_clause(due)
    )
    stmt = (
        insert_for(session)(Task)
        .from_select(list(cols), query)
        .on_conflict_do_nothing(index_elements=["obligation_id", "org_id", "period_key"])
    )
    # Core execution (not the ORM bulk path), so the driver's rowcount comes back on both dialects
    result = session.connection().execute(stmt.execution_options(preserve_rowcount=True))
    created = int(result.rowcount)
    if created:
        _tally_born_open(session, due=due, obligation_id=obligation_id, n=created)
    return created


def _tally_born_open(session: Session, *, due: date, obligation_id: int, n: int) -> None:
    """Add the tasks one INSERT created (all open, due on `due`) to the duty tally, in the
    same transaction: one row for the statement, where a per-row trigger would cost the
    insert half its speed on SQLite (migration 0009)."""
    key = {"due_date": due, "obligation_id": obligation_id, "state": TaskState.OPEN.value}
    stmt = insert_for(session)(TallyDutyDay).values(**key, late=False, n=n)
    session.execute(
        stmt.on_conflict_do_update(
            index_elements=["due_date", "obligation_id", "state", "late"],
            set_={"n": TallyDutyDay.n + stmt.excluded.n},
        )
    )


def _fingerprint(row: ObligationRow, roster: str, adopted: date | None) -> str:
    return hashlib.sha256(f"{row.content_hash}:{roster}:{adopted or ''}".encode()).hexdigest()


def _mark(
    session: Session, *, obligation_id: int, key: str, fingerprint: str, created: int, now: datetime
) -> None:
    values = {
        "obligation_id": obligation_id,
        "period_key": key,
        "fingerprint": fingerprint,
        "tasks_created": created,
        "at": now,
    }
    stmt = insert_for(session)(Materialization).values(values)
    session.execute(
        stmt.on_conflict_do_update(
            index_elements=["obligation_id", "period_key"],
            set_={"fingerprint": fingerprint, "tasks_created": created, "at": now},
        )
    )


def _fill(
    session: Session,
    *,
    row: ObligationRow,
    ob: Obligation,
    period: Period,
    due: date,
    event: Event | None,
    fingerprint: str,
    plan_version: str | None,
    tz: ZoneInfo,
    now: datetime,
) -> int:
    """Create one obligation-period's tasks, mark the period, audit what was created."""
    created = _insert_tasks(
        session,
        obligation_id=row.id,
        ob=ob,
        period=period,
        due=due,
        tz=tz,
        now=now,
        event_id=event.id if event else None,
        event_org_id=event.org_id if event else None,
        plan_version=plan_version,
        spec_hash=row.content_hash,
    )
    _mark(
        session,
        obligation_id=row.id,
        key=period.key,
        fingerprint=fingerprint,
        created=created,
        now=now,
    )
    if created:
        audit.record(
            session,
            now=now,
            actor="scheduler",
            action="tasks.created",
            entity="obligation",
            entity_id=row.code,
            data={
                "period": period.key,
                "due": due.isoformat(),
                "created": created,
                "plan": ob.plan,
            },
        )
    return created


def fill_event(
    session: Session, event: Event, *, calendar: WorkdayCalendar, now: datetime, tz: ZoneInfo
) -> int:
    """Create the tasks of every active duty counted from `event`, in the caller's
    transaction (a submission that records an event: duban.engine.reported), under the same
    rules as `materialize` (window, adoption, version); returns how many were created.
    Creating what exists already creates nothing."""
    roster = roster_version(session)
    adopted = adopted_on(session)
    rows = session.scalars(
        select(ObligationRow)
        .where(ObligationRow.active, ObligationRow.event_kind == event.kind)
        .order_by(ObligationRow.code)
    ).all()
    created = 0
    for row in rows:
        plan = session.get(Plan, row.plan_id)
        assert plan is not None  # a foreign key
        ob = domain_obligation(row, plan.code)
        if not ob.valid_from <= event.occurred_on <= ob.valid_until or (
            adopted is not None and ob.valid_until < adopted
        ):
            continue
        period = event_period(event.id, event.occurred_on)
        due = ob.due_date(period, calendar)
        owed_from = max((d for d in (adopted, row.effective_from) if d is not None), default=None)
        if owed_from is not None and due < owed_from:
            continue
        created += _fill(
            session,
            row=row,
            ob=ob,
            period=period,
            due=due,
            event=event,
            fingerprint=_fingerprint(row, roster, adopted),
            plan_version=plan.file_sha256,
            tz=tz,
            now=now,
        )
    if created:
        mark_change(session)
    return created


def materialize(
    store: Store,
    *,
    calendar: WorkdayCalendar,
    now: datetime,
    tz: ZoneInfo,
    only: str | None = None,  # a duty's name (duban.engine.duties): that duty alone
    event_kind: str | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> MaterializeReport:
    """Create every task due to exist by `now`; see the module docstring for the contract."""
    today = local_date(now, tz)
    report = MaterializeReport()
    with store.read() as session:
        roster = roster_version(session)
        query = select(ObligationRow).where(ObligationRow.active)
        if only is not None:  # a duty's name: one plan's (PLAN/CODE), or every plan's of an id
            query = query.where(ObligationRow.id.in_(duties.duty_ids(session, only)))
        if event_kind is not None:
            query = query.where(ObligationRow.event_kind == event_kind)
        rows = list(session.scalars(query.order_by(ObligationRow.code, ObligationRow.id)))
        names = duties.refs(session, [r.id for r in rows])
        plan_codes = {pid: code for pid, code in session.execute(select(Plan.id, Plan.code))}
        versions = {i: v for i, v in session.execute(select(Plan.id, Plan.file_sha256))}
        adopted = adopted_on(session)
        done = {
            (m.obligation_id, m.period_key): m.fingerprint
            for m in session.scalars(select(Materialization))
        }
        events = list(session.scalars(select(Event).where(Event.occurred_on <= today)))
    for n, row in enumerate(rows, 1):
        ob = domain_obligation(row, plan_codes[row.plan_id])
        fp = _fingerprint(row, roster, adopted)
        owed_from = max((d for d in (adopted, row.effective_from) if d is not None), default=None)
        work: list[tuple[Period, Event | None]]
        if adopted is not None and ob.valid_until < adopted:
            work = []  # the plan's window ended before adoption: it creates nothing
        elif ob.event is None:
            work = [(period, None) for period in ob.opened_periods(today)]
        else:
            work = [
                (event_period(e.id, e.occurred_on), e)
                for e in events
                if e.kind == ob.event and ob.valid_from <= e.occurred_on <= ob.valid_until
            ]
        for period, ev in work:
            report.periods_checked += 1
            if done.get((row.id, period.key)) == fp:
                report.periods_skipped += 1
                continue
            due = ob.due_date(period, calendar)
            if owed_from is not None and due < owed_from:
                report.periods_skipped += 1  # fell due before adoption or this version
                continue
            with store.write() as session:
                created = _fill(
                    session,
                    row=row,
                    ob=ob,
                    period=period,
                    due=due,
                    event=ev,
                    fingerprint=fp,
                    plan_version=versions.get(row.plan_id),
                    tz=tz,
                    now=now,
                )
                if created:
                    # last, so the row is held only while this commits (migration 0010)
                    mark_change(session)
            report.add(names[row.id], created)
            if created:
                log.info(
                    "created %d tasks for %s %s (due %s)", created, names[row.id], period.key, due
                )
        if progress:
            progress(n, len(rows))
    if report.tasks_created >= ANALYZE_AFTER:
        store.analyze("tasks", "org_contacts", "organizations", "org_tags")
    return report
