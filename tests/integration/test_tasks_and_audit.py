"""The task state machine and the audit chain, through the engine, on both databases."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select, text, update

from duban.domain.tasks import Action, TaskState
from duban.engine import actions
from duban.engine.materialize import materialize
from duban.engine.queries import list_tasks
from duban.errors import DubanError, StateError
from duban.store import audit
from duban.store.models import AuditEvent, Task
from tests.integration.helpers import TZ, at


@pytest.fixture
def task_id(mini, calendar) -> int:
    materialize(mini, calendar=calendar, now=at("2022-05-10"), tz=TZ)
    with mini.read() as session:
        return session.scalars(select(Task.id).order_by(Task.id)).first()


def state_of(store, task_id) -> TaskState:
    with store.read() as session:
        return TaskState(session.get(Task, task_id).state)


def test_submit_reject_resubmit_accept(mini, task_id):
    actions.add_note(mini, task_id=task_id, note="演练照片见附件", actor="h1", now=at("2022-06-01"))
    actions.transition(
        mini, task_id=task_id, action=Action.SUBMIT, actor="h1", now=at("2022-06-01")
    )
    actions.transition(
        mini,
        task_id=task_id,
        action=Action.REJECT,
        actor="admin",
        now=at("2022-06-02"),
        reason="缺少签到表",
    )
    assert state_of(mini, task_id) is TaskState.REJECTED
    actions.transition(
        mini, task_id=task_id, action=Action.SUBMIT, actor="h1", now=at("2022-06-03")
    )
    actions.transition(
        mini, task_id=task_id, action=Action.ACCEPT, actor="admin", now=at("2022-06-04")
    )
    assert state_of(mini, task_id) is TaskState.ACCEPTED
    with mini.read() as session:
        trail = [
            (e.actor, e.action)
            for e in session.scalars(
                select(AuditEvent)
                .where(AuditEvent.entity == "task", AuditEvent.entity_id == str(task_id))
                .order_by(AuditEvent.seq)
            )
        ]
    assert trail == [
        ("h1", "evidence.added"),
        ("h1", "task.submit"),
        ("admin", "task.reject"),
        ("h1", "task.submit"),
        ("admin", "task.accept"),
    ]


def test_submit_without_evidence_is_refused(mini, task_id):
    with pytest.raises(DubanError, match=f"task {task_id} has no evidence yet"):
        actions.transition(
            mini, task_id=task_id, action=Action.SUBMIT, actor="h1", now=at("2022-06-01")
        )
    assert state_of(mini, task_id) is TaskState.OPEN


def test_accepting_an_open_task_is_refused_and_changes_nothing(mini, task_id):
    with mini.read() as session:
        before = audit.head(session)
    with pytest.raises(
        StateError,
        match="cannot accept a task that is open; from open a task can only: submit, waive",
    ):
        actions.transition(
            mini, task_id=task_id, action=Action.ACCEPT, actor="admin", now=at("2022-06-01")
        )
    with mini.read() as session:
        assert audit.head(session) == before


def test_waive_needs_a_reason(mini, task_id):
    with pytest.raises(StateError, match="waive needs a reason"):
        actions.transition(
            mini,
            task_id=task_id,
            action=Action.WAIVE,
            actor="admin",
            now=at("2022-06-01"),
            reason=" ",
        )
    actions.transition(
        mini,
        task_id=task_id,
        action=Action.WAIVE,
        actor="admin",
        now=at("2022-06-01"),
        reason="机构停业整顿",
    )
    assert state_of(mini, task_id) is TaskState.WAIVED


def test_late_submission_is_derived_from_due_and_submission_time(mini, task_id):
    view = next(v for v in list_tasks(mini, now=at("2022-07-02"), tz=TZ) if v["id"] == task_id)
    assert view["overdue"] and view["due"] == "2022-06-30"
    actions.add_note(mini, task_id=task_id, note="补交", actor="h1", now=at("2022-07-02"))
    actions.transition(
        mini, task_id=task_id, action=Action.SUBMIT, actor="h1", now=at("2022-07-02")
    )
    view = next(v for v in list_tasks(mini, now=at("2022-07-03"), tz=TZ) if v["id"] == task_id)
    assert view["late"] and not view["overdue"]


def _chain(mini, task_id):
    for day in ("2022-06-01", "2022-06-02"):
        actions.add_note(mini, task_id=task_id, note=day, actor="h1", now=at(day))


def test_audit_verify_passes_on_an_untouched_chain(mini, task_id):
    _chain(mini, task_id)
    with mini.consistent() as session:
        verdict = audit.verify(session)
        assert verdict.ok and verdict.count == audit.head(session)[1] >= 3
        assert verdict.head == audit.head(session)[0]


def test_audit_verify_names_an_altered_event(mini, task_id):
    _chain(mini, task_id)
    with mini.write() as session:
        session.execute(update(AuditEvent).where(AuditEvent.seq == 2).values(actor="someone-else"))
    with mini.consistent() as session:
        verdict = audit.verify(session)
    assert not verdict.ok
    assert verdict.problem.startswith("event 2 (") and "was altered" in verdict.problem


def test_audit_verify_names_a_removed_event(mini, task_id):
    _chain(mini, task_id)
    with mini.write() as session:
        session.execute(text("DELETE FROM audit_events WHERE seq = 2"))
    with mini.consistent() as session:
        verdict = audit.verify(session)
    assert verdict.problem == "event 2 is missing (the next stored event is 3): rows were removed"


def test_rewritten_chain_is_caught_by_an_old_head(mini, task_id):
    _chain(mini, task_id)
    with mini.read() as session:
        old_head, _ = audit.head(session)
    # an attacker rewrites history consistently: drop everything, re-append altered events
    with mini.write() as session:
        rows = list(session.scalars(select(AuditEvent).order_by(AuditEvent.seq)))
        copies = [(r.actor, r.action, r.entity, r.entity_id) for r in rows]
        session.execute(text("DELETE FROM audit_events"))
    with mini.write() as session:
        for actor, action, entity, entity_id in copies:
            audit.record(
                session,
                now=datetime(2022, 6, 5, tzinfo=UTC),
                actor=actor + "!",
                action=action,
                entity=entity,
                entity_id=entity_id,
            )
    with mini.consistent() as session:
        assert audit.verify(session).ok  # internally consistent…
        verdict = audit.verify(session, expected_head=old_head)
    assert not verdict.ok  # …but it no longer extends the head recorded earlier
    assert verdict.problem.startswith(f"the recorded head {old_head} is not in the recomputed")


def test_old_head_is_still_in_a_chain_that_only_grew(mini, task_id):
    _chain(mini, task_id)
    with mini.read() as session:
        old_head, _ = audit.head(session)
    actions.add_note(
        mini, task_id=task_id, note="later", actor="h1", now=at("2022-06-03") + timedelta(hours=1)
    )
    with mini.consistent() as session:
        assert audit.verify(session, expected_head=old_head).ok
