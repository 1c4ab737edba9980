"""Things people do: record an event, submit, accept, reject, waive. Each is one write
transaction that changes the task and appends its audit event, or changes nothing."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session

from duban.domain.due import local_date
from duban.domain.tasks import Action, TaskState, next_state
from duban.domain.text import NOTE_MAX, REASON_MAX, clean_text
from duban.domain.workdays import WorkdayCalendar
from duban.engine.materialize import MaterializeReport, materialize
from duban.engine.reported import Recorded, add_event, record_on_submit
from duban.errors import DubanError, NotFound, StateError
from duban.store import audit
from duban.store.db import Store
from duban.store.models import Evidence, Organization, Plan, Task


@dataclass(frozen=True, kw_only=True)
class EventResult:
    event_id: int
    report: MaterializeReport


def known_event_kinds(session: Session) -> dict[str, str]:
    kinds: dict[str, str] = {}
    for events in session.scalars(select(Plan.events)):
        kinds.update({code: spec.get("title", code) for code, spec in events.items()})
    return kinds


def org_by_code(session: Session, code: str) -> Organization:
    org = session.scalar(select(Organization).where(Organization.code == code))
    if org is None:
        raise NotFound("organization", code)
    return org


def record_event(
    store: Store,
    *,
    kind: str,
    org: str,
    occurred_on: date,
    now: datetime,
    tz: ZoneInfo,
    calendar: WorkdayCalendar,
    actor: str,
    note: str | None = None,
) -> EventResult:
    """Record an event and create its deadline chain (via the same reconcile as periods).

    The chain's deadlines are computed before anything is written, so an event whose deadline
    falls in a year the calendar lacks is refused whole.
    """
    if note is not None:
        note = clean_text(note, field="note", max_length=NOTE_MAX) or None
    if occurred_on > local_date(now, tz):
        raise DubanError(
            f"the event date {occurred_on} is in the future; record events that have happened"
        )
    with store.write() as session:
        kinds = known_event_kinds(session)
        if kind not in kinds:
            raise DubanError(
                f"unknown event kind {kind!r}; known kinds: "
                f"{', '.join(sorted(kinds)) or 'none (load a plan first)'}"
            )
        event = add_event(
            session,
            kind=kind,
            org=org_by_code(session, org),
            occurred_on=occurred_on,
            note=note,
            actor=actor,
            now=now,
            audited={"note": note},
        )
        event_id = event.id
    report = materialize(store, calendar=calendar, now=now, tz=tz, event_kind=kind)
    return EventResult(event_id=event_id, report=report)


def _load_for_update(session: Session, task_id: int) -> Task:
    task = session.scalar(select(Task).where(Task.id == task_id).with_for_update())
    if task is None:
        raise NotFound("task", task_id)
    return task


def add_note(store: Store, *, task_id: int, note: str, actor: str, now: datetime) -> int:
    """Attach a written note as evidence; returns the evidence id."""
    note = clean_text(note, field="note", max_length=NOTE_MAX)
    with store.write() as session:
        ev = attach_evidence(session, task_id, actor=actor, now=now, kind="note", note=note)
        return ev.id


def attach_evidence(
    session: Session,
    task_id: int,
    *,
    actor: str,
    now: datetime,
    kind: str,
    audit_data: dict[str, object] | None = None,
    **fields: object,
) -> Evidence:
    """Add one piece of evidence (a note, or a stored file's fields) to the task, locked for
    update, with its `evidence.added` audit event; `audit_data` adds to what the event says."""
    task = _load_for_update(session, task_id)
    ev = Evidence(task_id=task.id, kind=kind, uploaded_by=actor, uploaded_at=now, **fields)
    session.add(ev)
    session.flush()
    audit.record(
        session,
        now=now,
        actor=actor,
        action="evidence.added",
        entity="task",
        entity_id=task.id,
        data={"evidence": ev.id, "kind": kind, **(audit_data or {})},
    )
    return ev


def transition(
    store: Store,
    *,
    task_id: int,
    action: Action,
    actor: str,
    now: datetime,
    reason: str | None = None,
    occurred_on: date | None = None,
    tz: ZoneInfo | None = None,
    calendar: WorkdayCalendar | None = None,
) -> TaskState:
    """Apply `action` to the task; the state machine in duban.domain.tasks decides.

    Submitting a task whose duty records an event (`records_event`) needs `occurred_on`, the
    date the institution enters, and `tz` and `calendar` to create what is counted from it
    (duban.engine.reported); `submit` returns that event too."""
    return _apply(
        store,
        task_id=task_id,
        action=action,
        actor=actor,
        now=now,
        reason=reason,
        occurred_on=occurred_on,
        tz=tz,
        calendar=calendar,
    )[0]


@dataclass(frozen=True, kw_only=True)
class Submitted:
    state: TaskState
    recorded: Recorded | None  # the event the submission recorded, for a records_event duty


def submit(
    store: Store,
    *,
    task_id: int,
    actor: str,
    now: datetime,
    tz: ZoneInfo,
    calendar: WorkdayCalendar,
    reason: str | None = None,
    occurred_on: date | None = None,
) -> Submitted:
    """Submit the task for review, recording the event its duty asks the date of, if any."""
    state, recorded = _apply(
        store,
        task_id=task_id,
        action=Action.SUBMIT,
        actor=actor,
        now=now,
        reason=reason,
        occurred_on=occurred_on,
        tz=tz,
        calendar=calendar,
    )
    return Submitted(state=state, recorded=recorded)


def _apply(
    store: Store,
    *,
    task_id: int,
    action: Action,
    actor: str,
    now: datetime,
    reason: str | None,
    occurred_on: date | None,
    tz: ZoneInfo | None,
    calendar: WorkdayCalendar | None,
) -> tuple[TaskState, Recorded | None]:
    if reason is not None:
        reason = clean_text(reason, field="reason", max_length=REASON_MAX) or None
    if occurred_on is not None and action is not Action.SUBMIT:
        raise DubanError(f"only a submission enters a date, not {action.value}")
    recorded = None
    with store.write() as session:
        task = _load_for_update(session, task_id)
        before = TaskState(task.state)
        after = next_state(before, action, reason)
        if action is Action.SUBMIT:
            has_evidence = session.scalar(
                select(Evidence.id).where(Evidence.task_id == task.id).limit(1)
            )
            if has_evidence is None:
                raise StateError(
                    f"task {task.id} has no evidence yet; attach a file or a note before submitting"
                )
            recorded = record_on_submit(
                session,
                task,
                occurred_on=occurred_on,
                actor=actor,
                now=now,
                tz=tz,
                calendar=calendar,
            )
            task.submitted_at = now
            task.first_submitted_at = task.first_submitted_at or now
        elif action in (Action.ACCEPT, Action.REJECT):
            task.reviewed_at = now
        task.reason = reason if action in (Action.REJECT, Action.WAIVE) else None
        task.state = after.value
        task.updated_at = now
        data: dict[str, object] = {"from": before.value, "to": after.value, "reason": reason}
        if recorded is not None:
            data.update(event=recorded.event_id, occurred_on=recorded.occurred_on.isoformat())
        audit.record(
            session,
            now=now,
            actor=actor,
            action=f"task.{action.value}",
            entity="task",
            entity_id=task.id,
            data=data,
        )
    return after, recorded
