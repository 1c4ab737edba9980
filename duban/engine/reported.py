"""Counted from what the institution reports: a submission that records an event.

A duty with `records_event: {kind, label}` (the 组织生活会) asks the institution, when it
submits a task, for the date the event happened (`label`: 会议召开日期). In the transaction
that submits the task duban records that event for the task's organization (recorded by the
submitter, audited `event.recorded`) and creates the tasks of every duty counted from it
(`recurrence: {kind: event, event: KIND}`, e.g. the report owed 15 days after the meeting),
as `duban event add` does, without an administrator.

Rules:
- The date is required; a task of another duty takes none. It may not lie in the future
  (the plan's time zone, as of `now`) nor before the task's period starts (a meeting for
  2022-H2 is held in 2022-H2 or later, late).
- One event per task: the event's note names the task (`NOTE`). Resubmitting after a
  rejection with the same date changes nothing; with another date the event is corrected
  (`event.corrected`, audited with both dates) and its tasks that are still open or rejected
  are retimed to the new date (`task.retimed`); tasks already submitted or done keep theirs.
- A task keeps the rule it was created under: whether it records an event follows the
  obligation version the task was created with.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session

from duban.domain.due import end_of_day, local_date, start_of_day
from duban.domain.periods import event_period
from duban.domain.tasks import PENDING
from duban.domain.workdays import WorkdayCalendar
from duban.engine.materialize import fill_event, obligation_of
from duban.errors import StateError
from duban.store import audit
from duban.store.models import Event, ObligationRow, ObligationVersion, Organization, Plan, Task

#: the note of an event a submission recorded: it names the task, so a resubmission finds it
NOTE = "任务 {task} 提交时填报 (entered on submitting task {task})"


@dataclass(frozen=True, kw_only=True)
class Recorded:
    """The event a submission recorded (or corrected), and what it did to its tasks."""

    event_id: int
    kind: str
    occurred_on: date
    created: int = 0  # tasks created for the duties counted from it
    corrected_from: date | None = None  # the date a resubmission replaced
    retimed: int = 0  # open tasks moved to the corrected date


def task_spec(session: Session, task: Task) -> dict[str, Any]:
    """The rule the task was created under (its obligation version), else the current one."""
    if task.spec_hash is not None:
        version = session.get(ObligationVersion, (task.obligation_id, task.spec_hash))
        if version is not None:
            return dict(version.spec)
    row = session.get(ObligationRow, task.obligation_id)
    assert row is not None  # a foreign key
    return dict(row.spec)


def recorded_event(session: Session, task: Task, kind: str) -> Event | None:
    """The event a submission of `task` recorded, if any."""
    return session.scalar(
        select(Event).where(
            Event.kind == kind,
            Event.org_id == task.org_id,
            Event.note == NOTE.format(task=task.id),
        )
    )


def date_label(records: dict[str, Any]) -> str:
    """The date field's name, Chinese first: `会议召开日期 / Date of the meeting`."""
    english = records.get("label_en")
    return f"{records['label']} / {english}" if english else str(records["label"])


def record_on_submit(
    session: Session,
    task: Task,
    *,
    occurred_on: date | None,
    actor: str,
    now: datetime,
    tz: ZoneInfo | None,
    calendar: WorkdayCalendar | None,
) -> Recorded | None:
    """Check the date a submission of `task` carries and record its event; see the module
    docstring. Runs in the submission's transaction, before the task changes state."""
    records = task_spec(session, task).get("records_event")
    if records is None:
        if occurred_on is not None:
            raise StateError(
                f"task {task.id}'s duty records no date; submit it without one (--on, occurred_on)"
            )
        return None
    label = date_label(records)
    if occurred_on is None:
        raise StateError(
            f"task {task.id} needs {label}: enter the day it happened (CLI --on YYYY-MM-DD, "
            "API occurred_on, the task page's date field)"
        )
    if tz is None or calendar is None:
        raise ValueError("recording an event on submission needs the time zone and calendar")
    today = local_date(now, tz)
    if occurred_on > today:
        raise StateError(
            f"{label} {occurred_on} is in the future (today is {today}); enter the day it happened"
        )
    if occurred_on < task.period_start:
        raise StateError(
            f"{label} {occurred_on} is before the task's period {task.period_key} starts "
            f"({task.period_start}); enter the day it was held for this period"
        )
    kind = str(records["kind"])
    org = session.get(Organization, task.org_id)
    assert org is not None  # a foreign key
    event = recorded_event(session, task, kind)
    if event is not None and event.occurred_on == occurred_on:
        return Recorded(event_id=event.id, kind=kind, occurred_on=occurred_on)
    if event is None:
        event = add_event(
            session,
            kind=kind,
            org=org,
            occurred_on=occurred_on,
            note=NOTE.format(task=task.id),
            actor=actor,
            now=now,
            audited={"task": task.id},
        )
        created = fill_event(session, event, calendar=calendar, now=now, tz=tz)
        return Recorded(event_id=event.id, kind=kind, occurred_on=occurred_on, created=created)
    before = event.occurred_on
    event.occurred_on = occurred_on
    audit.record(
        session,
        now=now,
        actor=actor,
        action="event.corrected",
        entity="event",
        entity_id=event.id,
        data={
            "kind": kind,
            "org": org.code,
            "from": before.isoformat(),
            "to": occurred_on.isoformat(),
            "task": task.id,
        },
    )
    retimed = _retime(session, event, actor=actor, now=now, tz=tz, calendar=calendar)
    created = fill_event(session, event, calendar=calendar, now=now, tz=tz)
    return Recorded(
        event_id=event.id,
        kind=kind,
        occurred_on=occurred_on,
        created=created,
        corrected_from=before,
        retimed=retimed,
    )


def _retime(
    session: Session,
    event: Event,
    *,
    actor: str,
    now: datetime,
    tz: ZoneInfo,
    calendar: WorkdayCalendar,
) -> int:
    """Move the event's still-owed tasks to its corrected date, each audited."""
    tasks = session.scalars(
        select(Task)
        .where(Task.event_id == event.id, Task.state.in_([s.value for s in PENDING]))
        .order_by(Task.id)
        .with_for_update()
    ).all()
    period = event_period(event.id, event.occurred_on)
    for task in tasks:
        row = session.get(ObligationRow, task.obligation_id)
        assert row is not None
        plan = session.get(Plan, row.plan_id)
        assert plan is not None
        due = obligation_of(task_spec(session, task), plan.code).due_date(period, calendar)
        before = task.due_date
        task.period_start, task.period_end = period.start, period.end
        task.due_date, task.due_at = due, end_of_day(due, tz)
        task.opens_at, task.updated_at = start_of_day(period.start, tz), now
        audit.record(
            session,
            now=now,
            actor=actor,
            action="task.retimed",
            entity="task",
            entity_id=task.id,
            data={"event": event.id, "from": before.isoformat(), "to": due.isoformat()},
        )
    return len(tasks)


def add_event(
    session: Session,
    *,
    kind: str,
    org: Organization,
    occurred_on: date,
    note: str | None,
    actor: str,
    now: datetime,
    audited: dict[str, Any],
) -> Event:
    """Store an event of `org` and audit it (`event.recorded`, with `audited` added): the one
    way an event is written, by an administrator (`duban event add`) or by a submission."""
    event = Event(
        kind=kind,
        org_id=org.id,
        occurred_on=occurred_on,
        note=note,
        recorded_by=actor,
        recorded_at=now,
    )
    session.add(event)
    session.flush()
    audit.record(
        session,
        now=now,
        actor=actor,
        action="event.recorded",
        entity="event",
        entity_id=event.id,
        data={"kind": kind, "org": org.code, "occurred_on": occurred_on.isoformat(), **audited},
    )
    return event
