"""The meeting-date count (issue 17): submitting a task whose duty records an event (the
组织生活会, tests/fixtures/party-plan.yaml) records that event for the institution and creates
the report owed 15 days after it, in the same transaction, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
from datetime import date

import pytest
from sqlalchemy import select

from duban.domain.tasks import Action
from duban.engine import actions
from duban.engine.materialize import materialize
from duban.errors import DubanError, StateError
from duban.store import audit
from duban.store.db import Store
from duban.store.models import AuditEvent, Event, ObligationRow, Organization, Task
from tests.integration.helpers import TZ, at

MEETING, REPORT = "party-meeting", "party-meeting-report"


def task_of(store: Store, org: str, duty: str, period: str | None = None) -> Task | None:
    with store.read() as s:
        query = (
            select(Task)
            .join(Organization, Organization.id == Task.org_id)
            .join(ObligationRow, ObligationRow.id == Task.obligation_id)
            .where(Organization.code == org, ObligationRow.code == duty)
        )
        if period is not None:
            query = query.where(Task.period_key == period)
        found = list(s.scalars(query))
    assert len(found) <= 1
    return found[0] if found else None


def meeting(store: Store, org: str = "b1", period: str = "2022-H2") -> int:
    task = task_of(store, org, MEETING, period)
    assert task is not None
    actions.add_note(
        store, task_id=task.id, note="会议纪要见附件", actor="inst", now=at("2022-07-06")
    )
    return task.id


def submit(store: Store, calendar, task_id: int, on: date | None, now: str = "2022-07-06"):
    return actions.submit(
        store,
        task_id=task_id,
        actor="user:b1user",
        now=at(now),
        tz=TZ,
        calendar=calendar,
        occurred_on=on,
    )


def chain_ok(store: Store) -> bool:
    with store.consistent() as session:
        return audit.verify(session).ok


def events(store: Store) -> list[Event]:
    with store.read() as s:
        return list(s.scalars(select(Event).order_by(Event.id)))


def test_submitting_the_meeting_creates_the_report_due_15_days_after_it(party, calendar):
    tid = meeting(party)
    assert task_of(party, "b1", REPORT) is None
    done = submit(party, calendar, tid, date(2022, 7, 4))
    assert done.state.value == "submitted"
    assert done.recorded is not None and done.recorded.created == 1
    (event,) = events(party)
    assert (event.kind, event.occurred_on, event.recorded_by) == (
        "party-meeting-held",
        date(2022, 7, 4),
        "user:b1user",
    )
    report = task_of(party, "b1", REPORT)
    assert report is not None
    assert (report.due_date, report.event_id, report.state) == (date(2022, 7, 19), event.id, "open")
    # for that organization only
    assert task_of(party, "b2", REPORT) is None and task_of(party, "b3", REPORT) is None
    with party.read() as s:
        trail = [
            (e.actor, e.action, json.loads(e.payload))
            for e in s.scalars(select(AuditEvent).where(AuditEvent.seq > 0))
        ]
    assert (
        "user:b1user",
        "event.recorded",
        {"kind": "party-meeting-held", "org": "b1", "occurred_on": "2022-07-04", "task": tid},
    ) in trail
    submitted = next(d for _, a, d in trail if a == "task.submit")
    assert submitted["event"] == event.id and submitted["occurred_on"] == "2022-07-04"
    assert chain_ok(party)


def test_the_missing_date_is_refused_and_changes_nothing(party, calendar):
    tid = meeting(party)
    with pytest.raises(DubanError) as caught:
        submit(party, calendar, tid, None)
    assert str(caught.value) == (
        f"task {tid} needs 会议召开日期 / Date of the meeting: enter the day it happened "
        "(CLI --on YYYY-MM-DD, API occurred_on, the task page's date field)"
    )
    with pytest.raises(DubanError) as caught:  # the old path, without the date
        actions.transition(
            party, task_id=tid, action=Action.SUBMIT, actor="x", now=at("2022-07-06")
        )
    assert "needs 会议召开日期" in str(caught.value)
    assert events(party) == [] and task_of(party, "b1", MEETING, "2022-H2").state == "open"


def test_a_future_date_or_one_before_the_period_is_refused(party, calendar):
    tid = meeting(party)
    with pytest.raises(DubanError) as caught:
        submit(party, calendar, tid, date(2022, 7, 7))
    assert str(caught.value) == (
        "会议召开日期 / Date of the meeting 2022-07-07 is in the future (today is 2022-07-06); "
        "enter the day it happened"
    )
    with pytest.raises(DubanError) as caught:
        submit(party, calendar, tid, date(2022, 6, 30))
    assert str(caught.value) == (
        "会议召开日期 / Date of the meeting 2022-06-30 is before the task's period 2022-H2 "
        "starts (2022-07-01); enter the day it was held for this period"
    )
    assert events(party) == []


def test_a_duty_that_records_nothing_takes_no_date(party, calendar):
    materialize(party, calendar=calendar, now=at("2022-07-06"), tz=TZ)
    tid = meeting(party)
    submit(party, calendar, tid, date(2022, 7, 4))
    report = task_of(party, "b1", REPORT)
    actions.add_note(party, task_id=report.id, note="报告", actor="inst", now=at("2022-07-06"))
    with pytest.raises(DubanError, match=f"task {report.id}'s duty records no date"):
        submit(party, calendar, report.id, date(2022, 7, 5))


def test_submitting_twice_records_one_event_and_a_corrected_date_retimes_the_report(
    party, calendar
):
    tid = meeting(party)
    submit(party, calendar, tid, date(2022, 7, 4))
    with pytest.raises(StateError):
        submit(party, calendar, tid, date(2022, 7, 4))
    actions.transition(
        party,
        task_id=tid,
        action=Action.REJECT,
        actor="admin",
        now=at("2022-07-06"),
        reason="缺签名",
    )
    same = submit(party, calendar, tid, date(2022, 7, 4))  # resubmitted, same date
    assert same.recorded is not None and same.recorded.created == 0
    assert len(events(party)) == 1
    actions.transition(
        party,
        task_id=tid,
        action=Action.REJECT,
        actor="admin",
        now=at("2022-07-06"),
        reason="日期错",
    )
    fixed = submit(party, calendar, tid, date(2022, 7, 1))
    assert fixed.recorded is not None
    assert (fixed.recorded.corrected_from, fixed.recorded.retimed) == (date(2022, 7, 4), 1)
    (event,) = events(party)
    assert event.occurred_on == date(2022, 7, 1)
    report = task_of(party, "b1", REPORT)
    assert (report.period_start, report.due_date) == (date(2022, 7, 1), date(2022, 7, 16))
    with party.read() as s:
        actions_seen = [e.action for e in s.scalars(select(AuditEvent))]
    assert actions_seen.count("event.recorded") == 1
    assert "event.corrected" in actions_seen and "task.retimed" in actions_seen
    # a tick creates nothing more: the event's period was filled when it was recorded
    again = materialize(party, calendar=calendar, now=at("2022-07-07"), tz=TZ)
    assert again.tasks_created == 0
    assert chain_ok(party)
