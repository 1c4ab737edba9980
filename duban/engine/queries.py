"""Read-side queries for the CLI: tasks as the one task view (duban.engine.taskview)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select

from duban.domain.tasks import PENDING, TaskState
from duban.domain.workdays import WorkdayCalendar
from duban.engine import duties
from duban.engine.taskview import Duty, task_row
from duban.store.db import Store
from duban.store.models import ObligationRow, Organization, Plan, Task

PAGE = 1_000


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
    calendar: WorkdayCalendar | None = None,
) -> Iterator[dict[str, Any]]:
    """Tasks visible at `now` (their period has opened), most urgent first."""
    query = (
        select(
            Task,
            ObligationRow.code,
            ObligationRow.title,
            ObligationRow.spec,
            Organization.code,
            Organization.name,
            Plan.code,
        )
        .join(ObligationRow, ObligationRow.id == Task.obligation_id)
        .join(Plan, Plan.id == ObligationRow.plan_id)
        .join(Organization, Organization.id == Task.org_id)
        .where(Task.opens_at <= now)
        .order_by(Task.due_at, ObligationRow.code, Organization.code)
    )
    if org:
        query = query.where(Organization.code == org)
    if obligation:  # a duty's name: PLAN/CODE, or a bare id across plans (engine.duties)
        plan, code = duties.split(obligation)
        query = query.where(ObligationRow.code == code)
        if plan is not None:
            query = query.where(Plan.code == plan)
    if state:
        query = query.where(Task.state == state.value)
    if event is not None:
        query = query.where(Task.event_id == event)
    if overdue:
        query = query.where(Task.state.in_([s.value for s in PENDING]), Task.due_at <= now)
    if limit:
        query = query.limit(limit)
    with store.consistent() as session:  # streamed: a server-side cursor
        shared = duties.shared_codes(session)
        for task, ob_code, title, spec, org_code, org_name, plan in session.execute(
            query.execution_options(yield_per=PAGE)
        ):
            ref = duties.qualified(plan, ob_code) if ob_code in shared else ob_code
            duty = Duty.of(ob_code, title, spec, plan=plan, ref=ref)
            yield task_row(task, duty, org_code, org_name, now, tz, calendar)
