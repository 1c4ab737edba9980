"""What a message says: the template context for each outbox row, read at delivery time."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import and_, func, or_, select
from sqlalchemy.orm import Session

from duban.domain.due import local_date
from duban.domain.tasks import PENDING, TaskState, days_overdue
from duban.domain.workdays import WorkdayCalendar
from duban.engine.announcements import Announcement
from duban.engine.stats import Window
from duban.engine.taskview import Duty, task_row
from duban.errors import CalendarYearMissing
from duban.store.models import (
    Evidence,
    ObligationRow,
    ObligationVersion,
    Organization,
    OrgContact,
    Outbox,
    Task,
)

DIGEST_HORIZON_WORKDAYS = 7
DIGEST_MAX_ITEMS = 100
SUMMARY_MAX_ROWS = 50


@dataclass(frozen=True, kw_only=True)
class Context:
    now: datetime
    tz: ZoneInfo
    calendar: WorkdayCalendar
    base_url: str
    #: said at the top of the weekly summary (engine.announcements)
    announcements: tuple[Announcement, ...] = ()

    @property
    def today(self) -> date:
        return local_date(self.now, self.tz)

    def link(self, task_id: int) -> str:
        return f"{self.base_url.rstrip('/')}/tasks/{task_id}"


def _workdays_left(ctx: Context, due: date) -> int | None:
    try:
        return ctx.calendar.workdays_between(ctx.today, due) if due >= ctx.today else None
    except CalendarYearMissing:
        return None


RHYTHM_WORDS = {
    "text": ("周期或期限为文件原文所定", "the rhythm or deadline is written in the text"),
    "chosen": (
        "原文未定周期，为使持续性工作可以检查而设定",
        "the text sets no rhythm; chosen so that a continuous duty can be checked",
    ),
}


def plan_words(spec: dict[str, Any]) -> dict[str, Any]:
    """The plan's own words about a duty, Chinese first: its explanation for county staff
    (`note`), its target where the text sets one, and where its rhythm comes from."""
    target = spec.get("target") or None
    rhythm = spec.get("rhythm")
    zh, en = RHYTHM_WORDS.get(rhythm or "", ("", ""))
    per = (target or {}).get("per")
    return {
        "note": spec.get("note"),
        "target": (
            f"不少于{target['count']}{target['unit']}" + (f"（{per}）" if per else "")
            if target
            else None
        ),
        "target_en": f"at least {target['count']} ({target['unit']})" if target else None,
        "rhythm": rhythm,
        "rhythm_zh": zh,
        "rhythm_en": en,
    }


def task_item(
    ctx: Context,
    task: Task,
    ob: ObligationRow,
    org: Organization,
    uploaded: set[str],
    spec: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The one task view (duban.engine.taskview) with what a message adds: the link, the
    institution's English name, the quoted clause, working days left, missing evidence and
    the plan's own words, from `spec`: the rule the task was created under (the duty's
    current one when not given)."""
    spec = spec or ob.spec
    return {
        **task_row(
            task,
            Duty.of(ob.code, spec["title"], spec),
            org.code,
            org.name,
            ctx.now,
            ctx.tz,
            ctx.calendar,
        ),
        "link": ctx.link(task.id),
        "org_en": org.name_en or org.code,
        "quote": spec["source"]["quote"],
        "workdays_left": _workdays_left(ctx, task.due_date),
        "missing": [k for k in spec["evidence"] if k not in uploaded],
        **plan_words(spec),
    }


def _uploaded(session: Session, task_ids: list[int]) -> dict[int, set[str]]:
    found: dict[int, set[str]] = {i: set() for i in task_ids}
    for task_id, kind in session.execute(
        select(Evidence.task_id, Evidence.kind).where(Evidence.task_id.in_(task_ids))
    ):
        found[task_id].add(kind)
    return found


def _tasks(
    session: Session, ctx: Context, where: Any, limit: int | None = None
) -> list[dict[str, Any]]:
    query = (
        select(Task, ObligationRow, Organization, ObligationVersion.spec)
        .join(ObligationRow, ObligationRow.id == Task.obligation_id)
        .join(Organization, Organization.id == Task.org_id)
        .outerjoin(  # the rule each task was created under, even if amended since
            ObligationVersion,
            and_(
                ObligationVersion.obligation_id == Task.obligation_id,
                ObligationVersion.content_hash == Task.spec_hash,
            ),
        )
        .where(where)
        .order_by(Task.due_date, Organization.code, ObligationRow.code)
    )
    rows = session.execute(query.limit(limit) if limit else query).all()
    uploaded = _uploaded(session, [t.id for t, *_ in rows])
    return [task_item(ctx, t, ob, org, uploaded[t.id], spec) for t, ob, org, spec in rows]


def task_items(session: Session, ctx: Context, task_ids: list[int]) -> dict[int, dict[str, Any]]:
    """The template items of many tasks in one query (a delivery batch shares it)."""
    if not task_ids:
        return {}
    return {i["id"]: i for i in _tasks(session, ctx, Task.id.in_(task_ids))}


def context_for(
    session: Session, row: Outbox, ctx: Context, items: dict[int, dict[str, Any]] | None = None
) -> dict[str, Any]:
    base: dict[str, Any] = {
        "kind": row.kind,
        "day": row.day.isoformat(),
        "to": row.recipient,
        "step": row.step or "",
        "base_url": ctx.base_url,
    }
    if row.task_id is not None:
        if items is None or row.task_id not in items:
            items = task_items(session, ctx, [row.task_id])
        base["task"] = items[row.task_id]
        base["rejected"] = (row.step or "").startswith("rejected:")
    if row.kind == "digest":
        base.update(_digest(session, row, ctx))
    if row.kind == "summary":
        base.update(_summary(session, ctx, row.day))
    if row.kind == "failure":
        base["failed"] = session.get(Outbox, int((row.step or "0").split(":")[-1]))
    return base


def _digest(session: Session, row: Outbox, ctx: Context) -> dict[str, Any]:
    """Everything due soon, overdue or rejected for the organizations this person serves."""
    orgs = select(OrgContact.org_id).where(OrgContact.email == row.recipient)
    try:
        horizon = ctx.calendar.add_workdays(ctx.today, DIGEST_HORIZON_WORKDAYS)
    except CalendarYearMissing:
        horizon = ctx.today + timedelta(days=DIGEST_HORIZON_WORKDAYS)
    where = and_(
        Task.org_id.in_(orgs),
        Task.opens_at <= ctx.now,
        Task.state.in_([s.value for s in PENDING]),
        or_(Task.due_date <= horizon, Task.state == TaskState.REJECTED.value),
    )
    total = session.scalar(select(func.count()).select_from(Task).where(where)) or 0
    items = _tasks(session, ctx, where, DIGEST_MAX_ITEMS)
    groups: dict[str, list[dict[str, Any]]] = {}
    for item in items:
        groups.setdefault(item["org_name"], []).append(item)
    return {
        "groups": groups,
        "total": total,
        "shown": len(items),
        "overdue_count": sum(1 for i in items if i["overdue"]),
    }


def _summary(session: Session, ctx: Context, day: date) -> dict[str, Any]:
    """Overdue counts per institution and per duty, the longest overdue first."""
    overdue = and_(Task.state.in_([s.value for s in PENDING]), Task.due_at <= ctx.now)
    by_org = session.execute(
        select(Organization.name, func.count(), func.min(Task.due_date))
        .join(Task, Task.org_id == Organization.id)
        .where(overdue)
        .group_by(Organization.name)
        .order_by(func.min(Task.due_date), Organization.name)
        .limit(SUMMARY_MAX_ROWS)
    ).all()
    by_duty = session.execute(
        select(ObligationRow.title, ObligationRow.code, func.count(), func.min(Task.due_date))
        .join(Task, Task.obligation_id == ObligationRow.id)
        .where(overdue)
        .group_by(ObligationRow.title, ObligationRow.code)
        .order_by(func.min(Task.due_date), ObligationRow.code)
        .limit(SUMMARY_MAX_ROWS)
    ).all()
    total = session.scalar(select(func.count()).select_from(Task).where(overdue)) or 0
    year, week, _ = day.isocalendar()  # the week it was enqueued for; counts are current
    quarter = Window.quarter_of(ctx.today)
    return {
        "announcements": ctx.announcements,
        "week": f"{year}-W{week:02d}",
        # the quarterly circulars (/report): this quarter so far, and the last whole one
        "report_quarter": quarter.key,
        "report_previous": quarter.previous().key,
        "total": total,
        "by_org": [
            {"name": n, "count": c, "oldest": d.isoformat(), "days": days_overdue(d, ctx.today)}
            for n, c, d in by_org
        ],
        "by_duty": [
            {
                "title": t,
                "code": code,
                "count": c,
                "oldest": d.isoformat(),
                "days": days_overdue(d, ctx.today),
            }
            for t, code, c, d in by_duty
        ],
    }
