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
from duban.domain.tasks import PENDING, TaskState, outcome
from duban.domain.workdays import WorkdayCalendar
from duban.engine import outcomes, permissions
from duban.engine.notices import plan_words
from duban.engine.taskview import Duty, task_row
from duban.engine.users import Principal
from duban.errors import CalendarYearMissing, Denied, NotFound
from duban.store import audit
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
    if f.obligation:
        query = query.where(Task.obligation_id == _id_of(session, ObligationRow.code, f.obligation))
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
        duties = select(ObligationRow.id).join(Plan, Plan.id == ObligationRow.plan_id)
        ids = list(session.scalars(duties.where(Plan.code == f.plan)))
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
        query: Any = (
            select(*ROW_COLUMNS)
            .join(Organization, Organization.id == Task.org_id)
            .where(Task.opens_at <= now)
        )
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
        if newest_first:
            query = query.order_by(Task.due_date.desc(), Task.id.desc())
        else:
            query = query.order_by(Task.due_at, Task.id)
        found = session.execute(query.limit(limit).offset(offset)).all()
        ids = {r.obligation_id for r in found}
        duties = {
            i: Duty.of(code, title, spec)
            for i, code, title, spec in session.execute(
                select(
                    ObligationRow.id, ObligationRow.code, ObligationRow.title, ObligationRow.spec
                ).where(ObligationRow.id.in_(ids))
            )
        }
    return [task_row(r, duties[r.obligation_id], r.org_code, r.org_name, now, tz) for r in found]


def overdue_board(
    store: Store,
    who: Principal,
    *,
    now: datetime,
    tz: ZoneInfo,
    filters: Filters,
    limit: int = 5000,
    offset: int = 0,
) -> list[dict[str, Any]]:
    """Overdue tasks, longest overdue first: the oldest due date first."""
    return tasks(
        store, who, now=now, tz=tz, filters=filters, overdue_only=True, limit=limit, offset=offset
    )


def my_tasks(store: Store, who: Principal, *, now: datetime, tz: ZoneInfo) -> list[dict[str, Any]]:
    """Open, rejected and overdue work, the most urgent first: rejected, overdue, due soonest."""
    rows = tasks(store, who, now=now, tz=tz, states=("open", "rejected", "submitted"))

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
    today = local_date(now, tz)
    spec = version.spec if version is not None else ob.spec
    row = task_row(task, Duty.of(ob.code, ob.title, spec), org.code, org.name, now, tz)
    uploaded = {e.kind for e in evidence}
    try:
        left = calendar.workdays_between(today, task.due_date) if task.due_date >= today else None
    except CalendarYearMissing:
        left = None
    row.update(
        quote=spec["source"]["quote"],
        required=list(spec["evidence"]),
        form=bool(spec.get("form")),
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
        code = session.scalar(
            select(ObligationRow.code).where(ObligationRow.id == task.obligation_id)
        )
        # the event that created it: one per obligation-period (see duban.engine.materialize)
        created = session.scalars(
            select(AuditEvent)
            .where(AuditEvent.entity == "obligation", AuditEvent.action == "tasks.created")
            .where(AuditEvent.entity_id == code, AuditEvent.at <= task.created_at)
            .order_by(AuditEvent.seq.desc())
            .limit(1)
        ).first()
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


#: what a matrix cell needs of its task: its outcome (duban.domain.tasks.outcome) and a link
CELL_COLUMNS = (
    Task.id,
    Task.org_id,
    Task.period_key,
    Task.due_date,
    Task.due_at,
    Task.state,
    Task.submitted_at,
)


def matrix(
    store: Store,
    who: Principal,
    *,
    now: datetime,
    tz: ZoneInfo,
    filters: Filters,
    limit: int = 50,
    offset: int = 0,
) -> dict[str, Any]:
    """Institutions × periods for one obligation: each cell a task and its status.

    A page holds `limit` institutions (those with a task of the obligation under the filters),
    in code order; the columns are the periods those institutions owe.
    """
    if not filters.obligation:
        return {"periods": [], "orgs": [], "cells": {}, "has_next": False}
    # the institution and tag filters choose the rows (institutions); the others the cells
    own = Filters(**{**filters.__dict__, "org": None, "tag": None})
    with store.read() as session:
        # an institution belongs on the matrix if it owes the duty under the filters: one
        # probe of uq_tasks_key (obligation_id, org_id, …) per institution, in code order
        owed = _filtered(
            session,
            select(Task.id).where(Task.org_id == Organization.id, Task.opens_at <= now),
            own,
        )
        org_query = select(Organization.id, Organization.code, Organization.name).where(
            owed.exists()
        )
        if who.role == "institution":
            org_query = org_query.where(
                Organization.id == (who.org_id if who.org_id is not None else -1)
            )
        if filters.org:
            org_query = org_query.where(Organization.code == filters.org)
        if filters.tag:
            org_query = org_query.where(
                select(OrgTag.org_id)
                .where(OrgTag.org_id == Organization.id, OrgTag.tag == filters.tag)
                .exists()
            )
        found = session.execute(
            org_query.order_by(Organization.code).limit(limit + 1).offset(offset)
        ).all()
        page = found[:limit]
        codes = {o.id: o.code for o in page}
        ids = list(codes)
        cells: dict[tuple[str, str], dict[str, Any]] = {}
        # an export holds every institution: ask in chunks, within SQLite's parameter limit
        for start in range(0, len(ids), 900):
            query: Any = select(*CELL_COLUMNS).where(
                Task.opens_at <= now, Task.org_id.in_(ids[start : start + 900])
            )
            query = _filtered(session, permissions.scope(session, query, who), own)
            if own.outcome:
                query = query.where(outcomes.outcome_sql(own.outcome, now))
            for r in session.execute(query):
                cells[(codes[r.org_id], r.period_key)] = {
                    "id": r.id,
                    "due": r.due_date.isoformat(),
                    "cell": outcome(TaskState(r.state), r.due_at, r.submitted_at, now).value,
                }
    return {
        # the periods the page's institutions owe: read from their tasks, not the whole table
        "periods": sorted({period for _, period in cells}),
        "orgs": [(o.code, o.name) for o in page],
        "cells": cells,
        "has_next": len(found) > limit,
    }


def obligation_form(store: Store, code: str) -> dict[str, Any]:
    """The blank form the plan gives for the obligation, or NotFound."""
    with store.read() as session:
        ob = session.scalar(select(ObligationRow).where(ObligationRow.code == code))
    if ob is None or not ob.spec.get("form"):
        raise NotFound("form of obligation", code)
    form: dict[str, Any] = ob.spec["form"]
    return form


def obligations(store: Store) -> list[ObligationRow]:
    with store.read() as session:
        return list(
            session.scalars(
                select(ObligationRow).where(ObligationRow.active).order_by(ObligationRow.code)
            )
        )


def organizations(store: Store, who: Principal, *, at_most: int | None = None) -> list[Any] | None:
    """(code, name) of the organizations the principal may pick, or None when there are more
    than `at_most` (a province has thousands: the filter then asks for a code instead)."""
    query = (
        select(Organization.code, Organization.name)
        .where(Organization.active)
        .order_by(Organization.code)
    )
    if who.role == "institution":
        query = query.where(Organization.id == who.org_id)
    if at_most is not None:
        query = query.limit(at_most + 1)
    with store.read() as session:
        found = list(session.execute(query))
    return None if at_most is not None and len(found) > at_most else found


def first_duty_with_tasks(store: Store, now: datetime) -> str | None:
    """The matrix's default duty: the first, by code, that anyone owes yet."""
    owed = select(Task.id).where(Task.obligation_id == ObligationRow.id, Task.opens_at <= now)
    with store.read() as session:
        return session.scalar(
            select(ObligationRow.code)
            .where(ObligationRow.active, owed.exists())
            .order_by(ObligationRow.code)
            .limit(1)
        )


def duty_choices(store: Store) -> list[Any]:
    """(code, title) of the active obligations, for the filters."""
    with store.read() as session:
        return list(
            session.execute(
                select(ObligationRow.code, ObligationRow.title)
                .where(ObligationRow.active)
                .order_by(ObligationRow.code)
            )
        )


def tags(store: Store) -> list[str]:
    with store.read() as session:
        return list(session.scalars(select(OrgTag.tag).distinct().order_by(OrgTag.tag)))


def quarter_of(day: date) -> str:
    return f"{day.year}-Q{(day.month - 1) // 3 + 1}"


def score_sheet(
    store: Store, who: Principal, *, org: str, quarter: str, now: datetime, tz: ZoneInfo
) -> dict[str, Any]:
    """The Annex 5 quarterly self-assessment for one institution, built from its tasks.

    Each obligation's score entries (the Annex 5 row, the points and the criterion it
    evidences) earn their points in proportion to the obligation's tasks due in the quarter
    that are accepted; a submitted task counts as provisional until reviewed. An entry with no
    task of this institution due in the quarter is shown as not assessed this quarter.
    """
    year, q = int(quarter[:4]), int(quarter[-1])
    first, last = date(year, 3 * q - 2, 1), date(year + (q == 4), (3 * q) % 12 + 1, 1)
    filters = Filters(org=org)
    rows = [
        r
        for r in tasks(store, who, now=now, tz=tz, filters=filters, limit=50_000)
        if first <= date.fromisoformat(r["due"]) < last
    ]
    by_ob: dict[str, list[dict[str, Any]]] = {}
    for r in rows:
        by_ob.setdefault(r["obligation"], []).append(r)
    items: dict[int, dict[str, Any]] = {}
    for ob in obligations(store):
        for entry in ob.spec.get("score") or []:
            item = items.setdefault(
                entry["item"],
                {
                    "item": entry["item"],
                    "entries": [],
                    "points": 0.0,
                    "earned": 0.0,
                    "provisional": 0.0,
                },
            )
            own = by_ob.get(ob.code, [])
            accepted = sum(1 for r in own if r["state"] == "accepted")
            submitted = sum(1 for r in own if r["state"] == "submitted")
            share = accepted / len(own) if own else None
            pending_share = (accepted + submitted) / len(own) if own else None
            item["entries"].append(
                {
                    "obligation": ob.code,
                    "title": ob.title,
                    "criterion": entry["criterion"],
                    "points": entry["points"],
                    "tasks": len(own),
                    "accepted": accepted,
                    "submitted": submitted,
                    "earned": None if share is None else round(entry["points"] * share, 2),
                    "provisional": None
                    if pending_share is None
                    else round(entry["points"] * pending_share, 2),
                    "task_ids": [r["id"] for r in own],
                }
            )
            if own:
                item["points"] += entry["points"]
                item["earned"] += entry["points"] * (share or 0)
                item["provisional"] += entry["points"] * (pending_share or 0)
    sheet = sorted(items.values(), key=lambda i: i["item"])
    return {
        "org": org,
        "quarter": quarter,
        "items": sheet,
        "points": round(sum(i["points"] for i in sheet), 2),
        "earned": round(sum(i["earned"] for i in sheet), 2),
        "provisional": round(sum(i["provisional"] for i in sheet), 2),
    }


def audit_status(store: Store) -> dict[str, Any]:
    """`duban audit verify` as a status: intact or the first broken link."""
    with store.read() as session:
        verdict = audit.verify(session)
    return {
        "ok": verdict.ok,
        "count": verdict.count,
        "head": verdict.head,
        "problem": verdict.problem,
    }


def recent_audit(store: Store, *, tz: ZoneInfo, limit: int = 200) -> list[dict[str, Any]]:
    with store.read() as session:
        events = list(
            session.scalars(select(AuditEvent).order_by(AuditEvent.seq.desc()).limit(limit))
        )
    return [
        {
            "seq": e.seq,
            "at_local": e.at.astimezone(tz).strftime("%Y-%m-%d %H:%M"),
            "actor": e.actor,
            "action": e.action,
            "entity": e.entity,
            "entity_id": e.entity_id,
            "hash": e.hash,
        }
        for e in events
    ]
