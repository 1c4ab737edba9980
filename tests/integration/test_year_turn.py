"""Across the turn of a year whose State Council notice is not loaded: nothing stops.

The bundled calendar ends with 2026. A task due 2026-12-31 and left unsubmitted must get its
overdue notice and its escalations in January 2027, counted on the provisional year, and
when the 2027 notice is imported the deadlines it changes that have not passed move, audited.
"""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import pytest
from sqlalchemy import func, select

from duban.catalog.calendar import load_calendar
from duban.catalog.loader import load_catalog
from duban.engine.adoption import set_adopted
from duban.engine.calendar_sync import calendar_warning, sync_calendar
from duban.engine.materialize import materialize
from duban.engine.sweep import sweep
from duban.engine.sync import sync_catalog
from duban.store import audit
from duban.store.db import Store
from duban.store.models import AuditEvent, LadderMark, ObligationRow, Task
from tests.conftest import FIXTURES, ROOT
from tests.integration.helpers import TZ, at, death

PLAN = (FIXTURES / "mini-plan.yaml").read_text(encoding="utf-8")
YEAR_PLAN = PLAN.replace(
    "valid: {from: 2022-04-01, until: 2023-04-30}", "valid: {from: 2026-07-01, until: 2027-06-30}"
).replace("due: {kind: day_of_next_month, day: 5}", "due: {kind: end_of_period}")


def _load(store: Store, tmp_path: Path, text: str, calendar) -> None:
    path = tmp_path / "plan.yaml"
    path.write_text(text, encoding="utf-8")
    catalog = load_catalog([path], [FIXTURES / "mini-orgs.yaml"], calendar)
    with store.write() as session:
        sync_catalog(session, catalog, now=at("2026-07-01"))
        set_adopted(session, date(2026, 7, 1), now=at("2026-07-01"), actor="test")


def _december_marks(store: Store) -> list[tuple[str, date]]:
    with store.read() as session:
        return sorted(
            (step, day)
            for step, day in session.execute(
                select(LadderMark.step, LadderMark.day)
                .join(Task, Task.id == LadderMark.task_id)
                .where(Task.period_key == "2026-12", Task.due_date == date(2026, 12, 31))
                .distinct()
            )
        )


def test_a_december_task_is_escalated_in_january_on_the_provisional_year(store, tmp_path, calendar):
    _load(store, tmp_path, YEAR_PLAN, calendar)
    for day in ("2026-12-01", "2026-12-22", "2026-12-30", "2026-12-31"):
        materialize(store, calendar=calendar, now=at(day), tz=TZ)
        sweep(store, calendar=calendar, now=at(day), tz=TZ)
    before = _december_marks(store)
    assert before and all(step.startswith("reminder") for step, _ in before)
    for day in ("2027-01-04", "2027-01-08"):
        materialize(store, calendar=calendar, now=at(day), tz=TZ)
        report = sweep(store, calendar=calendar, now=at(day), tz=TZ)
        assert report.marks > 0, day
    after = dict((s, d) for s, d in _december_marks(store) if not s.startswith("reminder"))
    # +1 working day: 2027-01-01 is 元旦 by the law, so the head hears on Monday 01-04;
    # +5: Friday 01-08, the MCH section
    assert {d for d in after.values()} == {date(2027, 1, 4), date(2027, 1, 8)}
    assert any(s.startswith("overdue:+1") for s in after)


def test_the_warning_names_the_missing_year_from_november(calendar):
    assert (
        calendar_warning(calendar, today=date(2026, 10, 31), warn_from="11-01", calendar_dir="c")
        is None
    )
    warning = calendar_warning(
        calendar, today=date(2026, 11, 1), warn_from="11-01", calendar_dir="c"
    )
    assert warning is not None and warning.years == (2027,)
    assert "2027年的国务院节假日安排尚未导入" in warning.zh
    assert "duban calendar import NOTICE.txt" in warning.en and "(it writes to c)" in warning.en
    january = calendar_warning(
        calendar, today=date(2027, 1, 4), warn_from="11-01", calendar_dir="c"
    )
    assert january is not None and january.years == (2027,)


def _notice_2027(folder: Path) -> None:
    """An imagined 2027 notice: 元旦 01-01 to Monday 01-04 (paid by Sunday 01-10), and a
    Spring Festival of 02-01 to 02-11."""
    folder.mkdir(exist_ok=True)
    (folder / "2027.yaml").write_text(
        "year: 2027\n"
        "notice: 测试用通知\n"
        "holidays:\n"
        "  - {name: 元旦, en: New Year's Day, from: 2027-01-01, to: 2027-01-04,"
        " workdays: [2027-01-10]}\n"
        "  - {name: 春节, en: Spring Festival, from: 2027-02-01, to: 2027-02-11}\n",
        encoding="utf-8",
    )


def _dues(store: Store, period: str, duty: str | None = None) -> set[date]:
    query = select(Task.due_date).where(Task.period_key == period)
    if duty is not None:
        query = query.join(ObligationRow, ObligationRow.id == Task.obligation_id).where(
            ObligationRow.code == duty
        )
    with store.read() as session:
        return set(session.scalars(query))


@pytest.mark.parametrize(
    ("imported_on", "expected"),
    [
        ("2027-01-05", date(2027, 1, 8)),  # not yet due: re-derived (01-04 is now off)
        ("2027-01-08", date(2027, 1, 7)),  # passed on 01-07: what was announced stands
    ],
)
def test_an_imported_year_moves_event_deadlines_that_have_not_passed(
    store, tmp_path, calendar, imported_on, expected
):
    _load(store, tmp_path, YEAR_PLAN, calendar)
    death(store, calendar, org="h1", on=date(2026, 12, 30), now="2026-12-30")
    sync_calendar(store, calendar=calendar, now=at("2026-12-30"), tz=TZ, actor="test")
    (notify,) = {p for p in _periods(store) if p.startswith("E")}
    # 5 working days after 12-30 on the provisional 2027: 12-31, 01-04, 05, 06, 07
    assert _dues(store, notify, "notify") == {date(2027, 1, 7)}
    local = tmp_path / "calendar"
    _notice_2027(local)
    official = load_calendar(ROOT / "calendar", local=local)
    report = sync_calendar(store, calendar=official, now=at(imported_on), tz=TZ, actor="test")
    assert report.changed_years == (2027,)
    assert _dues(store, notify, "notify") == {expected}
    again = sync_calendar(store, calendar=official, now=at(imported_on), tz=TZ, actor="test")
    assert again.changed_years == () and again.moved == ()
    with store.read() as session:
        retimed = [
            json.loads(e.payload)
            for e in session.scalars(select(AuditEvent).where(AuditEvent.action == "tasks.retimed"))
        ]
        changed = session.scalar(
            select(func.count()).where(AuditEvent.action == "calendar.changed")
        )
    assert changed == 1
    if expected == date(2027, 1, 8):
        assert [(r["period"], r["from"], r["to"], r["tasks"]) for r in retimed] == [
            (notify, "2027-01-07", "2027-01-08", 1)
        ]
    else:
        assert retimed == []
    with store.consistent() as session:
        assert audit.verify(session).ok


def test_a_shifted_month_end_moves_with_the_notice(store, tmp_path, calendar):
    text = YEAR_PLAN.replace(
        "due: {kind: end_of_period}\n    evidence: [form]",
        "due: {kind: end_of_period, shift: next_working_day}\n    evidence: [form]",
    )
    assert text != YEAR_PLAN
    _load(store, tmp_path, text, calendar)
    materialize(store, calendar=calendar, now=at("2027-01-01"), tz=TZ)
    sync_calendar(store, calendar=calendar, now=at("2027-01-01"), tz=TZ, actor="test")
    # Sunday 2027-01-31 shifts to Monday 02-01 provisionally
    assert _dues(store, "2027-01") == {date(2027, 2, 1)}
    assert _dues(store, "2026-12") == {date(2026, 12, 31)}
    local = tmp_path / "calendar"
    _notice_2027(local)
    official = load_calendar(ROOT / "calendar", local=local)
    sync_calendar(store, calendar=official, now=at("2027-01-05"), tz=TZ, actor="test")
    assert _dues(store, "2027-01") == {date(2027, 2, 12)}
    assert _dues(store, "2026-12") == {date(2026, 12, 31)}  # an official year: untouched


def _periods(store: Store) -> set[str]:
    with store.read() as session:
        return set(session.scalars(select(Task.period_key)))


def _site(store: Store, tmp_path: Path, day: str):
    from duban.bootstrap import App
    from duban.engine import users
    from duban.settings import Settings
    from duban.web.app import create_app
    from tests.integration.test_web import PASSWORD, Clock

    settings = Settings(
        database_url=str(store.engine.url.render_as_string(hide_password=False)),
        plan_files=[tmp_path / "plan.yaml"],
        org_files=[FIXTURES / "mini-orgs.yaml"],
        evidence_dir=tmp_path / "evidence",
        calendar_dir=tmp_path / "calendar",
        base_url="http://testserver",
    )
    app = App(settings=settings)
    app.__dict__["store"] = store
    clock = Clock(day)
    users.add_user(store, name="admin", role="admin", org=None, password=PASSWORD, now=clock.now)
    web = create_app(app, clock=clock)
    return web, clock


def test_pages_mark_provisional_dates_and_the_home_warns_from_november(store, tmp_path, calendar):
    from tests.integration.test_web import client, login

    _load(store, tmp_path, YEAR_PLAN, calendar)
    materialize(store, calendar=calendar, now=at("2027-01-02"), tz=TZ)
    web, clock = _site(store, tmp_path, "2026-10-30")

    def on(day: str):  # type: ignore[no-untyped-def]
        clock.now = at(day)
        c = client(web)  # a session of that day (sessions expire)
        assert login(c, "admin").status_code == 303
        return c

    assert 'class="announcement"' not in on("2026-10-30").get("/").text
    home = on("2026-11-02").get("/").text
    assert 'class="announcement" data-kind="calendar"' in home
    assert "2027年的国务院节假日安排尚未导入" in home
    with store.read() as session:
        january, december = (
            session.scalar(select(Task.id).where(Task.period_key == key).limit(1))
            for key in ("2027-01", "2026-12")
        )
    c = on("2027-01-04")
    assert '<abbr class="provisional"' in c.get(f"/tasks/{january}").text
    assert '<abbr class="provisional"' not in c.get(f"/tasks/{december}").text
    board = c.get("/history?format=csv").text
    assert "暂定 provisional" in board.splitlines()[0]
    (api,) = [t for t in c.get("/api/tasks?period=2027-01&limit=1").json()]
    assert api["provisional"] is True
    # 60 days before its window ends (2027-06-30) the plan's end is announced too
    assert 'data-kind="plan-end"' not in on("2027-04-30").get("/").text
    ending = on("2027-05-01").get("/").text
    assert 'class="announcement" data-kind="plan-end"' in ending
    assert "将于 2027-06-30 期满（还有 60 天）" in ending
    # once the year's file is in calendar_dir, the running app reads it and the mark goes
    _notice_2027(tmp_path / "calendar")
    web.state.app._calendar_checked = float("-inf")  # its next look at calendar_dir is due
    c = on("2027-01-04")
    assert '<abbr class="provisional"' not in c.get(f"/tasks/{january}").text


def test_the_weekly_summary_opens_with_the_missing_calendar(store, tmp_path, calendar):
    from duban.bootstrap import App
    from duban.settings import Settings

    _load(store, tmp_path, YEAR_PLAN, calendar)
    app = App(
        settings=Settings(
            database_url=str(store.engine.url.render_as_string(hide_password=False)),
            plan_files=[tmp_path / "plan.yaml"],
            org_files=[FIXTURES / "mini-orgs.yaml"],
            mail_dir=tmp_path / "mail",
            calendar_dir=tmp_path / "calendar",
        )
    )
    app.__dict__["store"] = store
    for day in ("2026-10-26", "2026-11-02"):  # two Mondays: the summary of each ISO week
        materialize(store, calendar=calendar, now=at(day), tz=TZ)
        app.sweep(at(day))
        app.deliver(at(day))
    summaries = {
        p.read_text(encoding="utf-8")
        for p in (tmp_path / "mail").glob("*.eml")
        if "X-Duban-Kind: summary" in p.read_text(encoding="utf-8")
    }
    assert len(summaries) >= 2
    import email
    from email import policy

    texts = {
        str(email.message_from_string(s, policy=policy.default).get_body(("plain",)).get_content())
        for s in summaries
    }
    warned = [t for t in texts if "2027年的国务院节假日安排尚未导入" in t]
    assert len(warned) == len(texts) - 1 >= 1  # October's says nothing, November's does
