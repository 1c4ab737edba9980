"""Functions run in separate processes by the concurrency tests (importable under spawn)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from duban.catalog.calendar import load_calendar
from duban.engine import actions
from duban.engine.materialize import materialize
from duban.store.db import Store
from tests.conftest import ROOT


def add_notes(url: str, task_id: int, who: str, count: int) -> None:
    """Read-then-write transactions (each reads the audit head, then appends)."""
    store = Store.from_url(url)
    start = datetime(2022, 6, 1, tzinfo=UTC)
    for i in range(count):
        actions.add_note(
            store, task_id=task_id, note=f"{who} {i}", actor=who, now=start + timedelta(seconds=i)
        )
    store.dispose()


def run_materialize(url: str, day: str) -> int:
    store = Store.from_url(url)
    calendar = load_calendar(ROOT / "calendar")
    now = datetime.fromisoformat(f"{day}T12:00:00+08:00")
    report = materialize(store, calendar=calendar, now=now, tz=ZoneInfo("Asia/Shanghai"))
    store.dispose()
    return report.tasks_created
