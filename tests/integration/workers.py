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


def deliver_now(url: str, smtp_url: str, now_iso: str) -> int:
    """One `deliver` run in its own process (killed with SIGKILL by the fault tests)."""
    from duban.engine.deliver import deliver
    from duban.engine.notices import Context
    from duban.notify.transport import SmtpConfig, SmtpTransport

    store = Store.from_url(url)
    calendar = load_calendar(ROOT / "calendar")
    ctx = Context(
        now=datetime.fromisoformat(now_iso),
        tz=ZoneInfo("Asia/Shanghai"),
        calendar=calendar,
        base_url="https://duban.example.org",
    )
    transport = SmtpTransport(SmtpConfig.parse(smtp_url), "duban@xinfeng.example.org")
    report = deliver(store, transport, ctx=ctx, mail_from="duban@xinfeng.example.org")
    store.dispose()
    return report.sent


def hold_lease(url: str, ready: str) -> None:
    """Take the scheduler lease as `duban run` names itself, say so, then wait to be killed."""
    import time
    from pathlib import Path

    from duban.engine import lease

    store = Store.from_url(url)
    assert lease.acquire(store, holder=lease.holder_name()) is None
    Path(ready).write_text(lease.holder_name())
    time.sleep(600)
