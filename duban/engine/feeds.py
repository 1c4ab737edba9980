"""iCalendar (RFC 5545) feeds of an organization's deadlines, built with `icalendar`.

One feed per organization, addressed by an unguessable token (`secrets.token_urlsafe`), so a
calendar app can subscribe without a password. Each pending or submitted task is an all-day
event on its due date with a reminder the working morning before; accepted and waived tasks
drop out of the feed.
"""

from __future__ import annotations

import secrets
from datetime import datetime, timedelta

from icalendar import Alarm, Calendar, Event
from sqlalchemy import select

from duban.domain.tasks import TaskState
from duban.domain.workdays import WorkdayCalendar
from duban.engine.actions import org_by_code
from duban.store.db import Store
from duban.store.models import FeedToken, ObligationRow, Organization, Task

TOKEN_BYTES = 32
LIVE_STATES = [TaskState.OPEN.value, TaskState.REJECTED.value, TaskState.SUBMITTED.value]


def feed_token(store: Store, org: str, *, now: datetime, renew: bool = False) -> str:
    """The organization's feed token, created on first use; `renew` revokes the old one."""
    with store.write() as session:
        where = org_by_code(session, org)
        row = session.get(FeedToken, where.id)
        if row is None or renew:
            token = secrets.token_urlsafe(TOKEN_BYTES)
            if row is None:
                session.add(FeedToken(org_id=where.id, token=token, created_at=now))
            else:
                row.token, row.created_at = token, now
            return token
        return row.token


def org_for_token(store: Store, token: str) -> str | None:
    with store.read() as session:
        return session.scalar(
            select(Organization.code)
            .join(FeedToken, FeedToken.org_id == Organization.id)
            .where(FeedToken.token == token)
        )


PROVISIONAL_NOTE = (
    "暂定 provisional: 该年度国务院节假日安排尚未导入，日期按法定节假日推定 / the year's "
    "holiday notice is not imported yet; the date may move"
)


def ics_feed(
    store: Store,
    org: str,
    *,
    now: datetime,
    base_url: str,
    calendar: WorkdayCalendar | None = None,
) -> bytes:
    """The organization's deadlines as an RFC 5545 calendar; a deadline in a year counted on
    the provisional calendar says so in its summary and description."""
    cal = Calendar()
    cal.add("prodid", "-//duban//督办//ZH")
    cal.add("version", "2.0")
    cal.add("x-wr-timezone", "Asia/Shanghai")
    with store.read() as session:
        where = org_by_code(session, org)
        cal.add("x-wr-calname", f"{where.name} 督办截止日期")
        rows = session.execute(
            select(Task, ObligationRow)
            .join(ObligationRow, ObligationRow.id == Task.obligation_id)
            .where(Task.org_id == where.id, Task.state.in_(LIVE_STATES), Task.opens_at <= now)
            .order_by(Task.due_date, Task.id)
        ).all()
    for task, ob in rows:
        source = ob.spec["source"]
        event = Event()
        event.add("uid", f"task-{task.id}@duban")
        event.add("dtstamp", now)
        event.add("dtstart", task.due_date)
        event.add("dtend", task.due_date + timedelta(days=1))
        provisional = calendar is not None and calendar.is_provisional(task.due_date)
        mark = "·暂定" if provisional else ""
        event.add("summary", f"【截止{mark}】{ob.title}（{task.period_key}）")
        link = f"{base_url.rstrip('/')}/tasks/{task.id}"
        note = f"{PROVISIONAL_NOTE}\n" if provisional else ""
        event.add(
            "description",
            f"{source['document']} {source['clause']}：{source['quote']}\n"
            f"{note}状态 state: {task.state}\n{link}",
        )
        event.add("url", link)
        alarm = Alarm()
        alarm.add("action", "DISPLAY")
        alarm.add("description", f"明天截止：{ob.title}")
        alarm.add("trigger", timedelta(hours=-15))  # 09:00 the day before
        event.add_component(alarm)
        cal.add_component(event)
    return bytes(cal.to_ical())
