"""The one task view: a task as every reader shows it (pages, the API, exports, the CLI and
mails), with its derived facts (overdue, days overdue, late) computed by the domain's one
definition (duban.domain.tasks) as of `now`. Readers add what only they need to it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from duban.domain.due import local_date
from duban.domain.tasks import TaskState, days_overdue, is_late, is_overdue
from duban.domain.workdays import WorkdayCalendar


@dataclass(frozen=True)
class Duty:
    """What a task row shows of its obligation (read once per page, not once per row)."""

    code: str
    title: str
    title_en: str
    clause: str
    document: str
    plan: str = ""  # the plan's id: a duty is its plan and its id (duban.engine.duties)
    ref: str = ""  # its name as shown: the code, or PLAN/CODE when another plan holds the id

    @classmethod
    def of(
        cls, code: str, title: str, spec: dict[str, Any], *, plan: str = "", ref: str = ""
    ) -> Duty:
        source = spec["source"]
        return cls(
            code,
            title,
            spec.get("title_en") or "",
            source["clause"],
            source["document"],
            plan,
            ref or code,
        )


def task_row(
    task: Any,
    duty: Duty,
    org_code: str,
    org_name: str,
    now: datetime,
    tz: ZoneInfo,
    calendar: WorkdayCalendar | None = None,
) -> dict[str, Any]:
    """A task as every reader shows it; `task` is a Task or a row of its columns (id, state,
    period_key, due_date, due_at, submitted_at, reason). `provisional` says the due date lies
    in a year counted on the provisional calendar (no State Council notice imported yet): it
    may move when the notice is imported, and every reader shows it so."""
    state = TaskState(task.state)
    overdue = is_overdue(state, task.due_at, now)
    today = local_date(now, tz)
    submitted = task.submitted_at
    return {
        "id": task.id,
        "obligation": duty.code,
        "plan": duty.plan,
        "duty": duty.ref or duty.code,
        "title": duty.title,
        "title_en": duty.title_en,
        "clause": duty.clause,
        "document": duty.document,
        "org": org_code,
        "org_name": org_name,
        "period": task.period_key,
        "due": task.due_date.isoformat(),
        "provisional": calendar is not None and calendar.is_provisional(task.due_date),
        "state": state.value,
        "overdue": overdue,
        "overdue_days": days_overdue(task.due_date, today) if overdue else 0,
        "late": is_late(task.due_at, task.submitted_at),
        "submitted_at": submitted.isoformat() if submitted else None,
        "submitted_local": submitted.astimezone(tz).strftime("%Y-%m-%d %H:%M") if submitted else "",
        "reason": task.reason,
    }
