"""materialize() on a real SQLite file and a real PostgreSQL server."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import func, select

from duban.catalog.loader import load_catalog
from duban.engine import actions
from duban.engine.adoption import set_adopted
from duban.engine.materialize import materialize
from duban.engine.queries import list_tasks
from duban.engine.sync import sync_catalog
from duban.errors import DubanError
from duban.store.db import Store
from duban.store.models import Task
from tests.conftest import FIXTURES
from tests.integration.helpers import TZ, at, death


def task_keys(store: Store) -> set[tuple[str, str, str]]:
    return {
        (v["obligation"], v["org"], v["period"])
        for v in list_tasks(store, now=at("2030-01-01"), tz=TZ)
    }


def count(store: Store) -> int:
    with store.read() as session:
        return session.scalar(select(func.count()).select_from(Task)) or 0


def test_materialize_creates_one_task_per_org_and_opened_period(mini, calendar):
    report = materialize(mini, calendar=calendar, now=at("2022-05-10"), tz=TZ)
    # Q2 has opened (drill for h1, h2); months April and May (report for h1, h2, office)
    assert task_keys(mini) == {
        ("drill", "h1", "2022-Q2"),
        ("drill", "h2", "2022-Q2"),
        *{("report", o, m) for o in ("h1", "h2", "office") for m in ("2022-04", "2022-05")},
    }
    assert report.tasks_created == 8


def test_materialize_twice_creates_nothing_the_second_time(mini, calendar):
    materialize(mini, calendar=calendar, now=at("2022-08-01"), tz=TZ)
    before = count(mini)
    again = materialize(mini, calendar=calendar, now=at("2022-08-01"), tz=TZ)
    assert again.tasks_created == 0
    assert again.periods_skipped == again.periods_checked
    assert count(mini) == before


def test_materialize_after_downtime_creates_exactly_the_missed_periods(mini, calendar):
    materialize(mini, calendar=calendar, now=at("2022-06-25"), tz=TZ)
    before = task_keys(mini)
    # down from 06-25 to 08-02: July and August months, and Q3, opened meanwhile
    materialize(mini, calendar=calendar, now=at("2022-08-02"), tz=TZ)
    added = task_keys(mini) - before
    assert added == {
        ("drill", "h1", "2022-Q3"),
        ("drill", "h2", "2022-Q3"),
        *{("report", o, m) for o in ("h1", "h2", "office") for m in ("2022-07", "2022-08")},
    }


def test_period_opens_at_local_midnight(mini, calendar):
    # 2022-07-01 00:00 Shanghai is 2022-06-30 16:00 UTC
    materialize(mini, calendar=calendar, now=datetime(2022, 6, 30, 15, 59, tzinfo=UTC), tz=TZ)
    assert ("drill", "h1", "2022-Q3") not in task_keys(mini)
    materialize(mini, calendar=calendar, now=datetime(2022, 6, 30, 16, 0, tzinfo=UTC), tz=TZ)
    assert ("drill", "h1", "2022-Q3") in task_keys(mini)


def test_plan_window_bounds_the_periods(mini, calendar):
    materialize(mini, calendar=calendar, now=at("2024-01-01"), tz=TZ)
    keys = task_keys(mini)
    drills = sorted(p for o, org, p in keys if o == "drill" and org == "h1")
    assert drills == ["2022-Q2", "2022-Q3", "2022-Q4", "2023-Q1"]
    months = sorted(p for o, org, p in keys if o == "report" and org == "h1")
    assert months[0] == "2022-04" and months[-1] == "2023-04" and len(months) == 13


def test_monthly_report_is_due_on_the_fifth_of_next_month(mini, calendar):
    materialize(mini, calendar=calendar, now=at("2022-07-01"), tz=TZ)
    june = next(
        v
        for v in list_tasks(mini, now=at("2022-07-01"), tz=TZ, org="h1", obligation="report")
        if v["period"] == "2022-06"
    )
    assert june["due"] == "2022-07-05"
    on_the_day = next(
        v
        for v in list_tasks(mini, now=at("2022-07-05", 23), tz=TZ, org="h1", obligation="report")
        if v["period"] == "2022-06"
    )
    assert not on_the_day["overdue"]
    next_day = next(
        v
        for v in list_tasks(mini, now=at("2022-07-06", 0), tz=TZ, org="h1", obligation="report")
        if v["period"] == "2022-06"
    )
    assert next_day["overdue"] and next_day["overdue_days"] == 1


def test_new_organization_gets_tasks_for_open_periods_on_next_run(mini, calendar):
    materialize(mini, calendar=calendar, now=at("2022-05-10"), tz=TZ)
    orgs = (FIXTURES / "mini-orgs.yaml").read_text(encoding="utf-8")
    extra = orgs + "  - {id: h3, name: 三号医院, tags: [midwifery]}\n"
    path = FIXTURES.parent / "_tmp_orgs.yaml"
    path.write_text(extra, encoding="utf-8")
    try:
        catalog = load_catalog([FIXTURES / "mini-plan.yaml"], [path], calendar)
    finally:
        path.unlink()
    with mini.write() as session:
        assert sync_catalog(session, catalog, now=at("2022-05-10")).roster_changed
    report = materialize(mini, calendar=calendar, now=at("2022-05-10"), tz=TZ)
    assert report.tasks_created == 3  # h3: drill Q2, report April and May
    assert {k for k in task_keys(mini) if k[1] == "h3"} == {
        ("drill", "h3", "2022-Q2"),
        ("report", "h3", "2022-04"),
        ("report", "h3", "2022-05"),
    }


def test_event_creates_working_day_and_month_deadline_chain(mini, calendar):
    # a maternal death on Wednesday 2022-09-28: 5 working days skip National Day → 10-10
    result = death(mini, calendar, org="h2", on=date(2022, 9, 28))
    chain = {
        (v["obligation"], v["org"]): v["due"]
        for v in list_tasks(mini, now=at("2022-09-29"), tz=TZ, event=result.event_id)
    }
    assert chain == {
        ("notify", "h2"): "2022-10-10",
        ("county-review", "office"): "2022-11-28",
    }
    # the chain is part of the reconcile: running it again adds nothing
    assert (
        materialize(mini, calendar=calendar, now=at("2022-09-30"), tz=TZ).by_obligation.get(
            "notify"
        )
        is None
    )


def test_event_outside_every_plan_window_creates_nothing(mini, calendar):
    result = death(mini, calendar, org="h1", on=date(2021, 6, 1))
    assert result.report.tasks_created == 0


def test_unknown_event_kind_is_refused_and_records_nothing(mini, calendar):
    with pytest.raises(
        DubanError,
        match=r"unknown event kind 'death'; known kinds: "
        r"maternal-death",
    ):
        actions.record_event(
            mini,
            kind="death",
            org="h1",
            occurred_on=date(2022, 6, 1),
            now=at("2022-09-29"),
            tz=TZ,
            calendar=calendar,
            actor="test",
        )
    assert count(mini) == 0


def test_event_in_the_future_is_refused(mini, calendar):
    with pytest.raises(DubanError, match="is in the future"):
        actions.record_event(
            mini,
            kind="maternal-death",
            org="h1",
            occurred_on=date(2022, 10, 1),
            now=at("2022-09-29"),
            tz=TZ,
            calendar=calendar,
            actor="test",
        )


def test_bundled_plans_materialize_on_both_databases(loaded, calendar, catalog):
    # a deployment adopted in 2018 owes both plans (the national one ended in 2020)
    with loaded.write() as session:
        set_adopted(session, date(2018, 1, 1), now=at("2022-04-01"), actor="test")
    report = materialize(loaded, calendar=calendar, now=at("2023-06-01"), tz=TZ)
    assert report.tasks_created == count(loaded) > 0
    views = list(list_tasks(loaded, now=at("2023-06-01"), tz=TZ, org="xf-rmyy"))
    assert {v["obligation"].split("-")[0] for v in views} == {"xf22", "nhc18"}
    assert all(v["due"] <= "2023-06-05" for v in views)  # nothing past the window's reports
    assert (
        materialize(
            loaded, calendar=calendar, now=at("2023-06-01") + timedelta(hours=1), tz=TZ
        ).tasks_created
        == 0
    )
