"""Plans held by the database, and next year's plan following this one without rewriting
history (issue 17), on a real SQLite file and PostgreSQL."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

from fastapi.testclient import TestClient
from sqlalchemy import select

from duban import scheduler
from duban.domain.workdays import WorkdayCalendar
from duban.engine import amend, catalogue, lease, read, sheets, users
from duban.engine.materialize import materialize
from duban.engine.queries import list_tasks
from duban.engine.users import Principal
from duban.store.db import Store
from duban.store.models import AuditEvent, ObligationRow, Plan, Task
from duban.web.app import create_app
from tests.integration.helpers import TZ, at
from tests.integration.plans_helpers import (
    MINI_PLAN,
    NEW_DOC,
    OLD_DOC,
    both_plans,
    catalog_of,
    county,
    duties_of,
    next_year,
    task_facts,
)

ADMIN = Principal(0, "a", "admin", None, None)
SELF_CHECK = (
    "  - id: self-check\n"
    "    title: 月度自查\n"
    "    source: {clause: 二（五）9, quote: 每月开展自我评估与分析}\n"
    "    responsible: [{tags: [midwifery]}]\n"
    "    recurrence: {kind: monthly}\n"
    "    due: {kind: end_of_period}\n"
    "    evidence: [report]\n"
)


def test_apply_init_and_restart_keep_an_applied_plan(
    store: Store, calendar: WorkdayCalendar, tmp_path: Path
) -> None:
    """Before issue 17, the next `duban init` (or a restart of `duban run`) deactivated every
    duty of a plan applied with `plan apply` but not listed in `plan_files`."""
    app = county(store, calendar, tmp_path, MINI_PLAN)
    app.init(now=at("2022-04-01"), adopted=date(2022, 4, 1))
    applied = amend.apply(
        store,
        catalog_of(calendar, next_year(tmp_path)),
        calendar=calendar,
        now=at("2023-03-01"),
        tz=TZ,
        actor="cli:lead",
    )
    assert applied.applied and applied.diff.new_plan
    first = app.init(now=at("2023-03-02"))  # `duban init`
    # `duban run` starts: it takes the lease, then upgrades and loads under it
    holder = lease.holder_name()
    assert app.claim(holder) is None
    with lease.held(store, holder=holder):
        again = scheduler.start_database(app, clock=lambda: at("2023-03-03"), holder=holder)
    for report in (first, again):
        assert report is not None
        assert report.unconfigured == ("mini-2023",) and not report.held and not report.withdrawn
    assert duties_of(store, "mini-2023") == {"drill", "report", "notify", "county-review"}
    assert duties_of(store, "mini") == {"drill", "report", "notify", "county-review"}
    materialize(store, calendar=calendar, now=at("2023-07-06"), tz=TZ)
    plans = {facts[1] for facts in task_facts(store).values()}
    assert plans == {"mini", "mini-2023"}
    # with both files configured, init finds both stored and unchanged: nothing to say or do
    both = county(store, calendar, tmp_path, MINI_PLAN, tmp_path / "mini-2023.yaml")
    written = _audit_count(store)
    report = both.init(now=at("2023-07-07"))
    assert report is not None and report.changed_obligations == 0
    assert not report.unconfigured and not report.held and _audit_count(store) == written


def test_next_years_plan_reusing_ids_leaves_every_earlier_task_as_it_was(
    store: Store, calendar: WorkdayCalendar, tmp_path: Path
) -> None:
    """Before issue 17, applying next year's plan moved last year's duties, and their tasks,
    to it (a 2022 task's document read 〔2023〕), and the next init moved them back."""
    app = county(store, calendar, tmp_path, MINI_PLAN)
    app.init(now=at("2022-04-01"), adopted=date(2022, 4, 1))
    materialize(store, calendar=calendar, now=at("2023-03-01"), tz=TZ)
    before = task_facts(store)
    shown = {r["id"]: r for r in read.tasks(store, ADMIN, now=at("2023-03-01"), tz=TZ)}
    assert before and {r["document"] for r in shown.values()} == {OLD_DOC}
    amend.apply(
        store,
        catalog_of(calendar, next_year(tmp_path)),
        calendar=calendar,
        now=at("2023-03-01"),
        tz=TZ,
        actor="cli:lead",
    )
    app.init(now=at("2023-03-02"))
    materialize(store, calendar=calendar, now=at("2023-07-06"), tz=TZ)
    after = task_facts(store)
    assert {i: after[i] for i in before} == before  # duty row, plan, version, rule, state
    now = at("2023-07-06")
    rows = {r["id"]: r for r in read.tasks(store, ADMIN, now=now, tz=TZ)}
    for i, old in shown.items():
        assert (rows[i]["plan"], rows[i]["document"], rows[i]["clause"]) == (
            "mini",
            OLD_DOC,
            old["clause"],
        )
    new = [r for r in rows.values() if r["plan"] == "mini-2023"]
    assert new and {r["document"] for r in new} == {NEW_DOC}
    assert {r["duty"] for r in new} >= {"mini-2023/drill", "mini-2023/report"}
    detail = read.task_detail(store, ADMIN, min(before), now=now, tz=TZ, calendar=calendar)
    assert (detail["plan"], detail["document"]) == ("mini", OLD_DOC)


def test_diff_of_a_new_plan_says_which_duties_continue(
    store: Store, calendar: WorkdayCalendar, tmp_path: Path
) -> None:
    county(store, calendar, tmp_path, MINI_PLAN).init(
        now=at("2022-04-01"), adopted=date(2022, 4, 1)
    )
    found = amend.diff(
        store,
        catalog_of(calendar, next_year(tmp_path, extra=SELF_CHECK)),
        calendar=calendar,
        now=at("2023-03-01"),
        tz=TZ,
    )
    assert found.new_plan and found.plan == "mini-2023"
    assert {c.code: (c.change, c.continues) for c in found.changes} == {
        "drill": ("added", "mini/drill"),
        "report": ("added", "mini/report"),
        "notify": ("added", "mini/notify"),
        "county-review": ("added", "mini/county-review"),
        "self-check": ("added", None),
    }
    # an amendment of the stored plan is still an amendment: nothing "continues"
    same = amend.diff(
        store, catalog_of(calendar, MINI_PLAN), calendar=calendar, now=at("2023-03-01"), tz=TZ
    )
    assert same.empty and not same.new_plan


def test_a_duty_is_followed_across_plans_or_named_in_one(
    store: Store, calendar: WorkdayCalendar, tmp_path: Path
) -> None:
    both_plans(store, calendar, tmp_path)
    now = at("2023-07-06")

    def plans_of(name: str) -> set[str]:
        found = read.tasks(store, ADMIN, now=now, tz=TZ, filters=read.Filters(obligation=name))
        return {r["plan"] for r in found}

    assert plans_of("report") == {"mini", "mini-2023"}  # the duty across the years
    assert plans_of("mini-2023/report") == {"mini-2023"}
    assert plans_of("mini:report") == {"mini"}
    assert plans_of("nobody/report") == set()
    listed = list(list_tasks(store, now=now, tz=TZ, obligation="mini-2023/report"))
    assert listed and {t["duty"] for t in listed} == {"mini-2023/report"}
    assert {t["plan"] for t in list_tasks(store, now=now, tz=TZ, obligation="report")} == {
        "mini",
        "mini-2023",
    }
    choices = [c.code for c in catalogue.duty_choices(store) if c.code.endswith("report")]
    assert choices == ["report", "mini/report", "mini-2023/report"]
    # the matrix follows the duty: both plans' periods, the overlapping month once per plan
    grid = sheets.matrix(
        store, ADMIN, now=now, tz=TZ, filters=read.Filters(obligation="report"), limit=50
    )
    assert {"2022-04", "2023-04 mini", "2023-04 mini-2023", "2023-06"} <= set(grid["periods"])
    one = sheets.matrix(
        store, ADMIN, now=now, tz=TZ, filters=read.Filters(obligation="mini-2023/report")
    )
    assert one["periods"][0] == "2023-04" and "2022-04" not in one["periods"]


def test_a_task_timeline_names_its_own_plans_creation(
    store: Store, calendar: WorkdayCalendar, tmp_path: Path
) -> None:
    """Both plans create `report` tasks for 2023-04 in the same run: each task's timeline
    starts with the event of its own plan."""
    both_plans(store, calendar, tmp_path)
    with store.read() as s:
        ids = dict(
            s.execute(
                select(Plan.code, Task.id)
                .join(ObligationRow, ObligationRow.id == Task.obligation_id)
                .join(Plan, Plan.id == ObligationRow.plan_id)
                .where(ObligationRow.code == "report", Task.period_key == "2023-04")
            ).all()
        )
        events = {
            e.seq: json.loads(e.payload)
            for e in s.scalars(select(AuditEvent).where(AuditEvent.action == "tasks.created"))
        }
    for plan, task_id in ids.items():
        first = read.timeline(store, ADMIN, task_id, tz=TZ)[0]
        assert events[first["seq"]]["plan"] == plan
        assert events[first["seq"]]["period"] == "2023-04"


def test_the_api_the_forms_and_the_task_page_name_one_plans_duty(
    store: Store, calendar: WorkdayCalendar, tmp_path: Path
) -> None:
    app = both_plans(store, calendar, tmp_path)
    now = at("2023-07-06")
    users.add_user(store, name="admin", role="admin", org=None, password="x" * 12, now=now)
    token = users.create_token(store, name="admin", label="t", now=now)
    web = TestClient(create_app(app, clock=lambda: now), follow_redirects=False)
    auth = {"Authorization": f"Bearer {token}"}
    got = web.get("/api/tasks", params={"obligation": "mini-2023/report"}, headers=auth)
    assert got.status_code == 200 and {t["plan"] for t in got.json()} == {"mini-2023"}
    assert {t["duty"] for t in got.json()} == {"mini-2023/report"}
    across = web.get("/api/tasks", params={"obligation": "report", "limit": 5000}, headers=auth)
    assert {t["plan"] for t in across.json()} == {"mini", "mini-2023"}
    assert web.get("/api/tasks", params={"obligation": "a/b/c"}, headers=auth).status_code == 422
    old = min(t["id"] for t in across.json() if t["plan"] == "mini")
    page = web.get(f"/tasks/{old}", headers=auth).text
    assert 'href="/obligations/report/form.xlsx?plan=mini"' in page
    for url in ("/obligations/report/form.xlsx", "/obligations/report/form.xlsx?plan=mini"):
        assert web.get(url, headers=auth).status_code == 200
    assert web.get("/obligations/report/form.xlsx?plan=x", headers=auth).status_code == 404
    assert web.get(f"/tasks/{old}/form.xlsx", headers=auth).status_code == 200


def _audit_count(store: Store) -> int:
    with store.read() as s:
        return len(s.scalars(select(AuditEvent.seq)).all())
