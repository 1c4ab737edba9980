"""The read models: what the pages, the API and the exports show, each scoped to the principal.

Every function takes `now` and the principal. An institution user's queries are restricted to
its own organization in SQL, so no page or endpoint can forget the check.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Select, select
from sqlalchemy.orm import Session

from duban.domain.due import local_date
from duban.domain.tasks import PENDING
from duban.domain.workdays import WorkdayCalendar
from duban.engine import duties, outcomes, permissions
from duban.engine.notices import plan_words
from duban.engine.reported import date_label, recorded_event
from duban.engine.taskview import Duty, task_row
from duban.engine.users import Principal
from duban.errors import CalendarYearMissing, Denied, NotFound
from duban.store.db import Store
from duban.store.models import (
    AuditEvent,
    Evidence,
    ObligationRow,
    ObligationVersion,
    Organization,
    OrgTag,
    Plan,
    Task,
)


@dataclass(frozen=True, kw_only=True)
class Filters:
    org: str | None = None
    obligation: str | None = None
    period: str | None = None
    tag: str | None = None
    state: str | None = None
    year: int | None = None
    # the home pages' links: a plan, a span of due days, an outcome (duban.engine.outcomes)
    plan: str | None = None
    due_from: date | None = None
    due_to: date | None = None
    outcome: str | None = None

    def as_query(self) -> dict[str, str]:
        return {k: str(v) for k, v in self.__dict__.items() if v not in (None, "")}


Forbidden = Denied  # the principal may not see or do this (one class, duban.errors.Denied)


def _id_of(session: Session, column: Any, code: str) -> int:
    """A code's row id (-1 if unknown): filters compare ids, so the planner can use the
    (obligation_id, …) and (org_id, …) indexes instead of joining to find them."""
    found = session.scalar(select(column.table.c.id).where(column == code))
    return int(found) if found is not None else -1


def _filtered(session: Session, query: Select[Any], f: Filters) -> Select[Any]:
    if f.org:
        query = query.where(Task.org_id == _id_of(session, Organization.code, f.org))
    if f.obligation:  # a duty's name: one plan's, or the duty across plans (engine.duties)
        ids = duties.duty_ids(session, f.obligation) or [-1]
        # one id compared with =, as before plans shared ids: the same index plans
        one = Task.obligation_id == ids[0]
        query = query.where(one if len(ids) == 1 else Task.obligation_id.in_(ids))
    if f.period:
        query = query.where(Task.period_key == f.period)
    if f.tag:
        query = query.where(
            select(OrgTag.org_id).where(OrgTag.org_id == Task.org_id, OrgTag.tag == f.tag).exists()
        )
    if f.state:
        query = query.where(Task.state == f.state)
    if f.year:
        query = query.where(
            Task.due_date >= date(f.year, 1, 1), Task.due_date <= date(f.year, 12, 31)
        )
    if f.plan:
        of_plan = select(ObligationRow.id).join(Plan, Plan.id == ObligationRow.plan_id)
        ids = list(session.scalars(of_plan.where(Plan.code == f.plan)))
        query = query.where(Task.obligation_id.in_(ids or [-1]))
    if f.due_from:
        query = query.where(Task.due_date >= f.due_from)
    if f.due_to:
        query = query.where(Task.due_date <= f.due_to)
    return query


ROW_COLUMNS = (
    Task.id,
    Task.obligation_id,
    Task.period_key,
    Task.due_date,
    Task.due_at,
    Task.state,
    Task.submitted_at,
    Task.reason,
    Organization.code.label("org_code"),
    Organization.name.label("org_name"),
)


def tasks(
    store: Store,
    who: Principal,
    *,
    now: datetime,
    tz: ZoneInfo,
    filters: Filters = Filters(),
    overdue_only: bool = False,
    states: tuple[str, ...] | None = None,
    org_ids: Sequence[int] | None = None,
    limit: int = 5000,
    offset: int = 0,
    newest_first: bool = False,
    review: bool = False,
    calendar: WorkdayCalendar | None = None,
) -> list[dict[str, Any]]:
    """Tasks whose period has opened, scoped and filtered, ordered by due date.

    Ordered by (due_at, id), or newest first by (due_date, id) descending: both are index
    orders (ix_tasks_pending_due, ix_tasks_due), so a page of a million tasks stops reading
    after its rows instead of sorting them all. Oldest due first is also longest overdue first.
    Rows are plain columns; each obligation's clause and titles are read once per call.
    Visibility is duban.engine.permissions' rule; `review` narrows it to the submissions the
    principal reviews (all for an administrator, those sent to an institution's organization).
    """
    with store.read() as session:
        # the page's task ids first, from the tasks alone, then their rows with names: a deep
        # page (OFFSET thousands) no longer joins every skipped task to its institution
        query: Any = select(Task.id).where(Task.opens_at <= now)
        scoped = (permissions.review_scope if review else permissions.scope)(session, query, who)
        query = _filtered(session, scoped, filters)
        if filters.outcome:
            query = query.where(outcomes.outcome_sql(filters.outcome, now))
        if overdue_only:
            query = query.where(Task.state.in_([s.value for s in PENDING]), Task.due_at <= now)
        if states:
            query = query.where(Task.state.in_(states))
        if org_ids is not None:
            query = query.where(Task.org_id.in_(org_ids))
        order = (Task.due_date.desc(), Task.id.desc()) if newest_first else (Task.due_at, Task.id)
        page = query.order_by(*order).limit(limit).offset(offset).subquery()
        found = session.execute(
            select(*ROW_COLUMNS)
            .join(page, page.c.id == Task.id)
            .join(Organization, Organization.id == Task.org_id)
            .order_by(*order)
        ).all()
        ids = {r.obligation_id for r in found}
        names = duties.refs(session, ids)
        shown = {
            i: Duty.of(code, title, spec, plan=plan, ref=names[i])
            for i, code, title, spec, plan in session.execute(
                select(
                    ObligationRow.id,
                    ObligationRow.code,
                    ObligationRow.title,
                    ObligationRow.spec,
                    Plan.code,
                )
                .join(Plan, Plan.id == ObligationRow.plan_id)
                .where(ObligationRow.id.in_(ids))
            )
        }
    return [
        task_row(r, shown[r.obligation_id], r.org_code, r.org_name, now, tz, calendar)
        for r in found
    ]


def overdue_board(
    store: Store,
    who: Principal,
    *,
    now: datetime,
    tz: ZoneInfo,
    filters: Filters,
    limit: int = 5000,
    offset: int = 0,
    calendar: WorkdayCalendar | None = None,
) -> list[dict[str, Any]]:
    """Overdue tasks, longest overdue first: the oldest due date first."""
    return tasks(
        store,
        who,
        now=now,
        tz=tz,
        filters=filters,
        overdue_only=True,
        limit=limit,
        offset=offset,
        calendar=calendar,
    )


def my_tasks(
    store: Store,
    who: Principal,
    *,
    now: datetime,
    tz: ZoneInfo,
    calendar: WorkdayCalendar | None = None,
) -> list[dict[str, Any]]:
    """Open, rejected and overdue work, the most urgent first: rejected, overdue, due soonest."""
    rows = tasks(
        store, who, now=now, tz=tz, states=("open", "rejected", "submitted"), calendar=calendar
    )

    def urgency(r: dict[str, Any]) -> tuple[int, int, str]:
        rank = (
            0
            if r["state"] == "rejected"
            else 1
            if r["overdue"]
            else 2
            if r["state"] == "open"
            else 3
        )
        return (rank, -r["overdue_days"], r["due"])

    return sorted(rows, key=urgency)


def task_detail(
    store: Store,
    who: Principal,
    task_id: int,
    *,
    now: datetime,
    tz: ZoneInfo,
    calendar: WorkdayCalendar,
) -> dict[str, Any]:
    with store.read() as session:
        found = session.execute(
            select(Task, ObligationRow, Organization)
            .join(ObligationRow, ObligationRow.id == Task.obligation_id)
            .join(Organization, Organization.id == Task.org_id)
            .where(Task.id == task_id)
        ).first()
        if found is None:
            raise NotFound("task", task_id)
        task, ob, org = found
        if not permissions.may_see(
            who,
            org_id=task.org_id,
            receiver_org_id=ob.receiver_org_id,
            submitted_once=task.first_submitted_at is not None,
        ):
            raise Forbidden(f"task {task_id} belongs to another organization")
        # the rule the task was created under, even if the plan was amended since
        version = (
            session.get(ObligationVersion, (ob.id, task.spec_hash)) if task.spec_hash else None
        )
        receiver = session.get(Organization, ob.receiver_org_id) if ob.receiver_org_id else None
        evidence = list(
            session.scalars(
                select(Evidence).where(Evidence.task_id == task.id).order_by(Evidence.id)
            )
        )
        spec = version.spec if version is not None else ob.spec
        records = spec.get("records_event")
        event = recorded_event(session, task, records["kind"]) if records else None
        plan_code = session.scalar(select(Plan.code).where(Plan.id == ob.plan_id)) or ""
        ref = duties.refs(session, [ob.id])[ob.id]
    today = local_date(now, tz)
    duty = Duty.of(ob.code, ob.title, spec, plan=plan_code, ref=ref)
    row = task_row(task, duty, org.code, org.name, now, tz, calendar)
    uploaded = {e.kind for e in evidence}
    try:
        left = calendar.workdays_between(today, task.due_date) if task.due_date >= today else None
    except CalendarYearMissing:
        left = None
    row.update(
        quote=spec["source"]["quote"],
        required=list(spec["evidence"]),
        form=bool(spec.get("form")),
        # the plan's blank form of this task's own duty (a bare code: the latest plan's)
        blank_form=f"/obligations/{ob.code}/form.xlsx"
        + (f"?plan={plan_code}" if ref != ob.code else ""),
        missing=[k for k in spec["evidence"] if k not in uploaded],
        workdays_left=left,
        period_start=task.period_start.isoformat(),
        period_end=task.period_end.isoformat(),
        org_id=task.org_id,
        receiver_org_id=ob.receiver_org_id,
        receiver=receiver.name if receiver else None,
        plan_version=task.plan_version,
        may_review=permissions.may_review(who, receiver_org_id=ob.receiver_org_id),
        may_submit=permissions.may_submit(who, org_id=task.org_id),
        may_waive=permissions.may_waive(who),
        # the date a submission enters (duban.engine.reported), and the one it entered
        records_event=None
        if records is None
        else {
            "kind": records["kind"],
            "label": date_label(records),
            "event_id": event.id if event else None,
            "occurred_on": event.occurred_on.isoformat() if event else None,
        },
        **plan_words(spec),
        evidence=[
            {
                "id": e.id,
                "kind": e.kind,
                "filename": e.filename,
                "media_type": e.media_type,
                "size": e.size,
                "sha256": e.sha256,
                "note": e.note,
                "uploaded_by": e.uploaded_by,
                "uploaded_at": e.uploaded_at.isoformat(),
                "uploaded_local": e.uploaded_at.astimezone(tz).strftime("%Y-%m-%d %H:%M"),
            }
            for e in evidence
        ],
    )
    return row


def _created(event: AuditEvent, task: Task, plan_code: str) -> bool:
    """Whether a `tasks.created` event is the one that created `task`."""
    data = json.loads(event.payload)
    return bool(
        data.get("plan", plan_code) == plan_code
        and data.get("period", task.period_key) == task.period_key
    )


def timeline(store: Store, who: Principal, task_id: int, *, tz: ZoneInfo) -> list[dict[str, Any]]:
    """Who did what to the task, and when: its audit events, oldest first."""
    with store.read() as session:
        task = session.get(Task, task_id)
        if task is None:
            raise NotFound("task", task_id)
        receiver_id = session.scalar(
            select(ObligationRow.receiver_org_id).where(ObligationRow.id == task.obligation_id)
        )
        if not permissions.may_see(
            who,
            org_id=task.org_id,
            receiver_org_id=receiver_id,
            submitted_once=task.first_submitted_at is not None,
        ):
            raise Forbidden(f"task {task_id} belongs to another organization")
        events = list(
            session.scalars(
                select(AuditEvent)
                .where(AuditEvent.entity == "task", AuditEvent.entity_id == str(task_id))
                .order_by(AuditEvent.seq)
            )
        )
        code, plan_code = session.execute(
            select(ObligationRow.code, Plan.code)
            .join(Plan, Plan.id == ObligationRow.plan_id)
            .where(ObligationRow.id == task.obligation_id)
        ).one()
        # the event that created it: one per obligation-period (see duban.engine.materialize),
        # in the task's own transaction; named by the duty's id, and by its plan since plans
        # may share ids (older events, from before, name no plan)
        candidates = session.scalars(
            select(AuditEvent)
            .where(AuditEvent.entity == "obligation", AuditEvent.action == "tasks.created")
            .where(AuditEvent.entity_id == code, AuditEvent.at <= task.created_at)
            .order_by(AuditEvent.seq.desc())
            .limit(20)
        ).all()
        created = next((e for e in candidates if _created(e, task, plan_code)), None)
    out = [
        {
            "seq": e.seq,
            "at": e.at.isoformat(),
            "at_local": e.at.astimezone(tz).strftime("%Y-%m-%d %H:%M"),
            "actor": e.actor,
            "action": e.action,
            "data": json.loads(e.payload),
            "hash": e.hash,
        }
        for e in events
    ]
    first = {
        "seq": created.seq if created else None,
        "at": task.created_at.isoformat(),
        "at_local": task.created_at.astimezone(tz).strftime("%Y-%m-%d %H:%M"),
        "actor": "scheduler",
        "action": "task.created",
        "data": {"period": task.period_key, "due": task.due_date.isoformat()},
        "hash": created.hash if created else None,
    }
    return [first, *out]
