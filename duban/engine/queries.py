"""Read-side queries: tasks with their derived facts (overdue, late, days overdue)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime
from zoneinfo import ZoneInfo

from sqlalchemy import select

from duban.domain.due import local_date
from duban.domain.tasks import PENDING, TaskState, days_overdue, is_late, is_overdue
from duban.store.db import Store
from duban.store.models import ObligationRow, Organization, Task

PAGE = 1_000


@dataclass(frozen=True, kw_only=True)
class TaskView:
    id: int
    obligation: str
    title: str
    org: str
    org_name: str
    period: str
    due: date
    state: TaskState
    overdue: bool
    overdue_days: int
    late: bool
    submitted_at: datetime | None

    def as_json(self) -> dict[str, object]:
        return {
            "id": self.id,
            "obligation": self.obligation,
            "title": self.title,
            "org": self.org,
            "org_name": self.org_name,
            "period": self.period,
            "due": self.due.isoformat(),
            "state": self.state.value,
            "overdue": self.overdue,
            "overdue_days": self.overdue_days,
            "late": self.late,
            "submitted_at": self.submitted_at.isoformat() if self.submitted_at else None,
        }


def list_tasks(
    store: Store,
    *,
    now: datetime,
    tz: ZoneInfo,
    org: str | None = None,
    obligation: str | None = None,
    state: TaskState | None = None,
    overdue: bool = False,
    event: int | None = None,
    limit: int | None = None,
) -> Iterator[TaskView]:
    """Tasks visible at `now` (their period has opened), most urgent first."""
    query = (
        select(Task, ObligationRow.code, ObligationRow.title, Organization.code, Organization.name)
        .join(ObligationRow, ObligationRow.id == Task.obligation_id)
        .join(Organization, Organization.id == Task.org_id)
        .where(Task.opens_at <= now)
        .order_by(Task.due_at, ObligationRow.code, Organization.code)
    )
    if org:
        query = query.where(Organization.code == org)
    if obligation:
        query = query.where(ObligationRow.code == obligation)
    if state:
        query = query.where(Task.state == state.value)
    if event is not None:
        query = query.where(Task.event_id == event)
    if overdue:
        query = query.where(Task.state.in_([s.value for s in PENDING]), Task.due_at <= now)
    if limit:
        query = query.limit(limit)
    today = local_date(now, tz)
    with store.read() as session:
        for task, ob_code, title, org_code, org_name in session.execute(
            query.execution_options(yield_per=PAGE)
        ):
            st = TaskState(task.state)
            late_now = is_overdue(st, task.due_at, now)
            yield TaskView(
                id=task.id,
                obligation=ob_code,
                title=title,
                org=org_code,
                org_name=org_name,
                period=task.period_key,
                due=task.due_date,
                state=st,
                overdue=late_now,
                overdue_days=days_overdue(task.due_date, today) if late_now else 0,
                late=is_late(task.due_at, task.submitted_at),
                submitted_at=task.submitted_at,
            )
