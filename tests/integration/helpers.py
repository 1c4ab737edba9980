"""Helpers shared by the integration tests."""

from __future__ import annotations

from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

from duban.domain.workdays import WorkdayCalendar
from duban.engine import actions
from duban.engine.actions import EventResult
from duban.store.db import Store

TZ = ZoneInfo("Asia/Shanghai")


def at(day: str, hour: int = 9) -> datetime:
    return datetime.fromisoformat(f"{day}T{hour:02d}:00:00").replace(tzinfo=TZ).astimezone(UTC)


def death(
    store: Store, calendar: WorkdayCalendar, *, org: str, on: date, now: str = "2022-09-29"
) -> EventResult:
    """Record a maternal death at `org` on `on`, as of `now` (local)."""
    return actions.record_event(
        store,
        kind="maternal-death",
        org=org,
        occurred_on=on,
        now=at(now),
        tz=TZ,
        calendar=calendar,
        actor="test",
    )
