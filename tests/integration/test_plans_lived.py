"""Plans as a county lives them (issue 11), on a real SQLite file and PostgreSQL: adoption,
amendments that keep history, submissions reviewed by the body the text names, the plan's
own words in reminders, and one notice per person."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest
from sqlalchemy import func, select

from duban.catalog.loader import Catalog, load_catalog
from duban.domain.tasks import Action
from duban.domain.workdays import WorkdayCalendar
from duban.engine import actions, amend, permissions, read
from duban.engine.adoption import adopted_on, set_adopted
from duban.engine.materialize import materialize
from duban.engine.notices import Context, context_for, task_items
from duban.engine.sweep import sweep
from duban.engine.sync import sync_catalog
from duban.engine.users import Principal
from duban.errors import PlanError
from duban.notify.render import render
from duban.store.db import Store
from duban.store.models import AuditEvent, ObligationRow, Organization, Outbox, Plan, Task
from tests.conftest import FIXTURES, ROOT
from tests.integration.helpers import TZ, at

MINI_PLAN = FIXTURES / "mini-plan.yaml"
MINI_ORGS = FIXTURES / "mini-orgs.yaml"


def load(calendar: WorkdayCalendar, plan: Path = MINI_PLAN, orgs: Path = MINI_ORGS) -> Catalog:
    return load_catalog([plan], [orgs], calendar)


def fresh(store: Store, catalog: Catalog, adopted: date) -> None:
    with store.write() as session:
        sync_catalog(session, catalog, now=at("2022-04-01"))
        set_adopted(session, adopted, now=at("2022-04-01"), actor="test")


def tasks_of(store: Store, code: str) -> list[tuple[str, str, date, str]]:
    with store.read() as s:
        return sorted(
            (org, t.period_key, t.due_date, t.state)
            for t, org in s.execute(
                select(Task, Organization.code)
                .join(Organization, Organization.id == Task.org_id)
                .join(ObligationRow, ObligationRow.id == Task.obligation_id)
                .where(ObligationRow.code == code)
            ).all()
        )


def audit_count(store: Store) -> int:
    with store.read() as s:
        return int(s.scalar(select(func.count()).select_from(AuditEvent)) or 0)


# --- adoption ------------------------------------------------------------------------------


def test_nothing_is_owed_for_periods_due_before_adoption(
    store: Store, calendar: WorkdayCalendar
) -> None:
    fresh(store, load(calendar), date(2022, 7, 6))
    materialize(store, calendar=calendar, now=at("2022-10-06"), tz=TZ)
    reports = tasks_of(store, "report")
    assert reports and min(due for _, _, due, _ in reports) >= date(2022, 7, 6)
    # June's report is due 2022-07-05, the day before adoption: not owed
    assert not [r for r in reports if r[1] == "2022-06"]
    assert {r[1] for r in reports if r[0] == "h1"} == {"2022-07", "2022-08", "2022-09", "2022-10"}


def test_an_organization_that_joins_late_owes_only_from_its_joining(
    store: Store, calendar: WorkdayCalendar, tmp_path: Path
) -> None:
    orgs = tmp_path / "orgs.yaml"
    text = MINI_ORGS.read_text(encoding="utf-8")
    orgs.write_text(
        text.replace("    name: 二号医院\n", "    name: 二号医院\n    joined: 2022-09-01\n"),
        encoding="utf-8",
    )
    fresh(store, load(calendar, orgs=orgs), date(2022, 4, 1))
    materialize(store, calendar=calendar, now=at("2022-10-06"), tz=TZ)
    h1 = [k for org, k, _, _ in tasks_of(store, "report") if org == "h1"]
    h2 = [k for org, k, _, _ in tasks_of(store, "report") if org == "h2"]
    assert h1[0] == "2022-04" and len(h1) == 7
    # the August report is due 2022-09-05, after h2 joined; July's (due 08-05) is not owed
    assert h2 == ["2022-08", "2022-09", "2022-10"]


def test_a_plan_whose_window_ended_before_adoption_creates_nothing(
    store: Store, calendar: WorkdayCalendar
) -> None:
    fresh(store, load(calendar), date(2023, 6, 1))  # the mini plan ends 2023-04-30
    report = materialize(store, calendar=calendar, now=at("2023-06-02"), tz=TZ)
    assert report.tasks_created == 0
    with store.read() as s:
        assert s.scalar(select(func.count()).select_from(Task)) == 0


def test_moving_adoption_later_withdraws_what_is_no_longer_owed_and_the_board_forgets_it(
    mini: Store, calendar: WorkdayCalendar
) -> None:
    now = at("2022-10-06")
    materialize(mini, calendar=calendar, now=now, tz=TZ)
    admin = Principal(0, "a", "admin", None, None)
    before = read.overdue_board(mini, admin, now=now, tz=TZ, filters=read.Filters())
    assert any(r["due"] < "2022-09-01" for r in before)
    with mini.write() as session:
        moved = set_adopted(session, date(2022, 9, 1), now=now, actor="cli:test")
    assert moved.previous == date(2022, 1, 1) and moved.withdrawn > 0
    after = read.overdue_board(mini, admin, now=now, tz=TZ, filters=read.Filters())
    assert after and all(r["due"] >= "2022-09-01" for r in after)
    with mini.read() as s:
        assert adopted_on(s) == date(2022, 9, 1)
        events = s.scalars(select(AuditEvent.action).where(AuditEvent.entity == "deployment")).all()
    assert "deployment.adopted" in events and "tasks.withdrawn" in events
    # a second reconcile does not recreate what adoption withdrew
    assert materialize(mini, calendar=calendar, now=now, tz=TZ).tasks_created == 0


# --- amendments ----------------------------------------------------------------------------


def amended(tmp_path: Path) -> Path:
    """The mini plan with the report due on the 10th, the drill withdrawn and a duty added."""
    text = MINI_PLAN.read_text(encoding="utf-8")
    text = text.replace(
        "due: {kind: day_of_next_month, day: 5}", "due: {kind: day_of_next_month, day: 10}"
    )
    start = text.index("  - id: drill")
    end = text.index("  - id: report")
    added = (
        "  - id: self-check\n"
        "    title: 月度自查\n"
        "    source: {clause: 二（五）9, quote: 每月开展自我评估与分析}\n"
        "    responsible: [{tags: [midwifery]}]\n"
        "    recurrence: {kind: monthly}\n"
        "    due: {kind: end_of_period}\n"
        "    evidence: [report]\n"
    )
    path = tmp_path / "mini-plan-v2.yaml"
    path.write_text(text[:start] + added + text[end:], encoding="utf-8")
    return path


def test_diff_says_what_changes_before_anything_is_written(
    mini: Store, calendar: WorkdayCalendar, tmp_path: Path
) -> None:
    now = at("2022-10-06")
    materialize(mini, calendar=calendar, now=now, tz=TZ)
    written = audit_count(mini)
    found = amend.diff(mini, load(calendar, amended(tmp_path)), calendar=calendar, now=now, tz=TZ)
    by = {c.code: c for c in found.changes}
    assert by["self-check"].change == "added"
    # months 2022-10 … 2023-04, due from 2022-10-31 on, for h1 and h2
    assert by["self-check"].creates == 2 * 7
    assert by["report"].change == "changed" and by["report"].aspects == ("due rule 截止规则",)
    # October's report already exists and keeps its rule; Nov … Apr × h1, h2, office move
    assert by["report"].retimed == 3 * 6 and by["report"].creates == 0
    assert by["drill"].change == "withdrawn"
    # 2023-Q1 for h1 and h2 will not be created; 2022-Q4 has opened: its tasks are closed
    assert by["drill"].withdraws == 2
    assert by["drill"].closes == len([t for t in tasks_of(mini, "drill") if t[3] == "open"])
    assert audit_count(mini) == written  # a diff writes nothing


def test_apply_keeps_history_and_versions_and_twice_is_a_no_op(
    mini: Store, calendar: WorkdayCalendar, tmp_path: Path
) -> None:
    now = at("2022-10-06")
    materialize(mini, calendar=calendar, now=now, tz=TZ)
    with mini.read() as s:
        old_version = s.scalar(select(Plan.file_sha256).where(Plan.code == "mini"))
    old_reports = tasks_of(mini, "report")
    catalog = load(calendar, amended(tmp_path))
    report = amend.apply(mini, catalog, calendar=calendar, now=now, tz=TZ, actor="cli:lead")
    assert report.applied and report.closed > 0
    # history untouched: every report task created before keeps its due day
    assert set(old_reports) <= set(tasks_of(mini, "report"))
    # the withdrawn duty's open tasks are closed as withdrawn with the reason, not deleted
    drills = tasks_of(mini, "drill")
    assert drills and {state for *_, state in drills} <= {"withdrawn", "accepted", "submitted"}
    with mini.read() as s:
        reason = s.scalar(select(Task.reason).where(Task.state == "withdrawn").limit(1))
        applied = s.scalars(select(AuditEvent).where(AuditEvent.action == "plan.applied")).all()
    assert reason and "撤销" in reason
    assert len(applied) == 1 and applied[0].actor == "cli:lead"
    assert catalog.plans[0].file_sha256 in applied[0].payload
    # future periods follow the new rule; each task names the version it was created under
    materialize(mini, calendar=calendar, now=at("2022-11-02"), tz=TZ)
    with mini.read() as s:
        rows = s.execute(
            select(Task.period_key, Task.due_date, Task.plan_version)
            .join(ObligationRow, ObligationRow.id == Task.obligation_id)
            .where(ObligationRow.code == "report")
        ).all()
    versions = {key: (due, version) for key, due, version in rows}
    assert versions["2022-09"] == (date(2022, 10, 5), old_version)
    assert versions["2022-11"] == (date(2022, 12, 10), catalog.plans[0].file_sha256)
    assert tasks_of(mini, "self-check")
    # applying the same file again changes nothing, audits nothing
    written = audit_count(mini)
    again = amend.apply(mini, catalog, calendar=calendar, now=now, tz=TZ, actor="cli:lead")
    assert not again.applied and again.diff.empty and audit_count(mini) == written


def test_a_bad_file_changes_nothing(mini: Store, calendar: WorkdayCalendar, tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        amended(tmp_path).read_text(encoding="utf-8").replace("{org: office}", "{org: nobody}"),
        encoding="utf-8",
    )
    written = audit_count(mini)
    with pytest.raises(PlanError, match="unknown organization 'nobody'"):
        amend.apply(
            mini, load(calendar, bad), calendar=calendar, now=at("2022-10-06"), tz=TZ, actor="x"
        )
    assert audit_count(mini) == written


def test_init_holds_a_changed_plan_until_it_is_applied(
    mini: Store, calendar: WorkdayCalendar, tmp_path: Path
) -> None:
    changed = load(calendar, amended(tmp_path))
    with mini.write() as session:
        report = sync_catalog(session, changed, now=at("2022-10-06"), amend=False)
    assert report.held == ("mini",)
    with mini.read() as s:
        assert s.scalar(select(ObligationRow.active).where(ObligationRow.code == "drill"))
        assert s.scalar(select(ObligationRow.id).where(ObligationRow.code == "self-check")) is None


# --- receivers -----------------------------------------------------------------------------


def principal(store: Store, org: str, name: str) -> Principal:
    with store.read() as s:
        org_id = s.scalar(select(Organization.id).where(Organization.code == org))
    return Principal(1, name, "institution", org_id, org)


def annex4(store: Store, org: str, period: str = "2022-06") -> int:
    with store.read() as s:
        return int(
            s.scalar(
                select(Task.id)
                .join(ObligationRow, ObligationRow.id == Task.obligation_id)
                .join(Organization, Organization.id == Task.org_id)
                .where(
                    ObligationRow.code == "xf22-special-population-monthly",
                    Organization.code == org,
                    Task.period_key == period,
                )
            )
        )


def test_the_receiver_sees_and_reviews_only_the_submissions_sent_to_it(
    loaded: Store, calendar: WorkdayCalendar
) -> None:
    now = at("2022-07-06")
    materialize(loaded, calendar=calendar, now=now, tz=TZ)
    sent, draft = annex4(loaded, "xf-rmyy"), annex4(loaded, "xf-zyy")
    actions.add_note(loaded, task_id=sent, note="本月无新增", actor="user:rmyy", now=now)
    actions.add_note(loaded, task_id=draft, note="草稿", actor="user:zyy", now=now)
    actions.transition(loaded, task_id=sent, action=Action.SUBMIT, actor="user:rmyy", now=now)
    centre = principal(loaded, "xf-ygzx", "ygzx")
    section = principal(loaded, "xf-wjw-fy", "fy")

    queue = read.tasks(loaded, centre, now=now, tz=TZ, states=("submitted",), review=True)
    assert [r["id"] for r in queue] == [sent]
    # another receiver's queue does not hold it, nor may it open the task
    assert sent not in [
        r["id"]
        for r in read.tasks(loaded, section, now=now, tz=TZ, states=("submitted",), review=True)
    ]
    with pytest.raises(read.Forbidden):
        read.task_detail(loaded, section, sent, now=now, tz=TZ, calendar=calendar)
    # an unsent draft stays private to its institution
    with pytest.raises(read.Forbidden):
        read.task_detail(loaded, centre, draft, now=now, tz=TZ, calendar=calendar)
    page = read.task_detail(loaded, centre, sent, now=now, tz=TZ, calendar=calendar)
    assert page["may_review"] and not page["may_submit"] and not page["may_waive"]
    assert page["receiver"] == "信丰县孕管中心"
    assert not permissions.may_review(section, receiver_org_id=centre.org_id)


def test_receiver_accepts_and_rejects_over_http(loaded: Store, calendar, tmp_path) -> None:  # type: ignore[no-untyped-def]
    from fastapi.testclient import TestClient

    from duban.bootstrap import App
    from duban.engine import users
    from duban.settings import Settings
    from duban.web.app import create_app
    from tests.integration.test_web import PASSWORD, Clock, login

    clock = Clock("2022-07-06")
    materialize(loaded, calendar=calendar, now=clock.now, tz=TZ)
    app = App(settings=Settings(evidence_dir=tmp_path / "ev", base_url="http://testserver"))
    app.__dict__["store"] = loaded
    for name, org in [("ygzx", "xf-ygzx"), ("fy", "xf-wjw-fy"), ("rmyy", "xf-rmyy")]:
        users.add_user(
            loaded, name=name, role="institution", org=org, password=PASSWORD, now=clock.now
        )
    web = create_app(app, clock=clock)
    sent, other = annex4(loaded, "xf-rmyy"), annex4(loaded, "xf-rmyy", "2022-05")
    for task in (sent, other):
        actions.add_note(loaded, task_id=task, note="本月无新增", actor="user:rmyy", now=clock.now)
        actions.transition(
            loaded, task_id=task, action=Action.SUBMIT, actor="user:rmyy", now=clock.now
        )

    def signed_in(name: str) -> tuple[TestClient, str]:
        c = TestClient(web, follow_redirects=False)
        login(c, name)
        page = c.get(f"/tasks/{sent}").text if name == "ygzx" else c.get("/review").text
        csrf = (
            page.split('name="csrf" value="', 1)[1].split('"', 1)[0]
            if 'name="csrf"' in page
            else ""
        )
        return c, csrf

    fy, _ = signed_in("fy")
    assert fy.get(f"/tasks/{sent}").status_code == 403
    assert f"/tasks/{sent}" not in fy.get("/review").text
    centre, csrf = signed_in("ygzx")
    assert f"/tasks/{sent}" in centre.get("/review").text
    page = centre.get(f"/tasks/{sent}").text
    # the plan's own words, Chinese first: the explanation, where the rhythm comes from
    assert 'id="explanation"' in page and "县妇幼保健院不报" in page
    assert 'data-rhythm="text"' in page and "周期或期限为文件原文所定" in page
    assert 'id="receiver">信丰县孕管中心' in page and 'id="accept"' in page
    assert centre.post(f"/tasks/{sent}/accept", data={"csrf": csrf}).status_code == 303
    r = centre.post(f"/tasks/{other}/reject", data={"csrf": csrf, "reason": "缺填报人签字"})
    assert r.status_code == 303
    assert (
        centre.post(f"/tasks/{other}/waive", data={"csrf": csrf, "reason": "x"}).status_code == 403
    )
    with loaded.read() as s:
        states = dict(
            s.execute(select(Task.id, Task.state).where(Task.id.in_([sent, other]))).all()
        )
    assert states == {sent: "accepted", other: "rejected"}


# --- the plan's words in reminders; one notice per person ------------------------------------


def test_reminders_carry_the_explanation_target_and_rhythm_in_chinese(
    loaded: Store, calendar: WorkdayCalendar
) -> None:
    now = at("2023-03-30")
    materialize(loaded, calendar=calendar, now=now, tz=TZ)
    ctx = Context(now=now, tz=TZ, calendar=calendar, base_url="http://duban.test")
    with loaded.read() as s:
        task_id = s.scalar(
            select(Task.id)
            .join(ObligationRow, ObligationRow.id == Task.obligation_id)
            .where(ObligationRow.code == "xf22-science-articles")
            .limit(1)
        )
        row = Outbox(
            key="reminder:test",
            kind="reminder",
            recipient="duty@xf-zyy.example.org",
            day=now.date(),
            task_id=task_id,
            step="reminder:-1:duty",
        )
        message = render(row.kind, context_for(s, row, ctx), to=row.recipient, key=row.key)
    text = message.text
    assert "目标 Target: 不少于30篇（方案年度每家医院）" in text
    assert "原文" in text and "周期" in text
    assert "说明 What this duty asks:" in text and "附件5" in text
    assert "不少于30篇" in message.html


def test_a_person_reached_through_two_roles_gets_one_notice(
    store: Store, calendar: WorkdayCalendar, tmp_path: Path
) -> None:
    """h1's head is also the county office's duty contact: after downtime both the overdue
    step (head) and the escalation (county office) fall on one day for the same task."""
    orgs = tmp_path / "orgs.yaml"
    orgs.write_text(
        MINI_ORGS.read_text(encoding="utf-8").replace(
            "head: {role: 院长, email: head@h1.example.org}",
            "head: {role: 院长, email: duty@office.example.org}",
        ),
        encoding="utf-8",
    )
    fresh(store, load(calendar, orgs=orgs), date(2022, 4, 1))
    now = at("2022-07-13")  # 2022-Q2 drill due 06-30: +1 and +5 working days both past
    materialize(store, calendar=calendar, now=now, tz=TZ)
    sweep(store, calendar=calendar, now=now, tz=TZ)
    sweep(store, calendar=calendar, now=now, tz=TZ)
    with store.read() as s:
        drill = s.scalar(
            select(Task.id)
            .join(ObligationRow, ObligationRow.id == Task.obligation_id)
            .join(Organization, Organization.id == Task.org_id)
            .where(
                ObligationRow.code == "drill",
                Organization.code == "h1",
                Task.period_key == "2022-Q2",
            )
        )
        sent = s.execute(
            select(Outbox.kind, Outbox.step).where(
                Outbox.task_id == drill, Outbox.recipient == "duty@office.example.org"
            )
        ).all()
    assert len(sent) == 1 and sent[0][0] == "escalation"


def test_bundled_plans_all_load_with_their_receivers(store: Store, catalog: Catalog) -> None:
    with store.write() as session:
        sync_catalog(session, catalog, now=at("2022-04-01"))
    with store.read() as s:
        received = s.execute(
            select(ObligationRow.code, Organization.code)
            .join(Organization, Organization.id == ObligationRow.receiver_org_id)
            .order_by(ObligationRow.code)
        ).all()
    assert ("xf22-special-population-monthly", "xf-ygzx") in received
    assert ("xf22-quarterly-report", "xf-wjw-fy") in received
    assert ("xf22-death-notify", "xf-fby") in received
    assert ROOT.exists()


def test_messages_quote_the_rule_a_task_was_created_under(
    mini: Store, calendar: WorkdayCalendar, tmp_path: Path
) -> None:
    """After an amendment rewrites a clause, a reminder about an older task quotes the words it
    was created under; a task of a later period quotes the new ones."""
    materialize(mini, calendar=calendar, now=at("2022-10-06"), tz=TZ)
    path = amended(tmp_path)
    path.write_text(
        path.read_text(encoding="utf-8").replace("每月5号前上报", "每月10号前上报"),
        encoding="utf-8",
    )
    now = at("2022-10-06")
    amend.apply(mini, load(calendar, path), calendar=calendar, now=now, tz=TZ, actor="cli")
    materialize(mini, calendar=calendar, now=at("2022-11-02"), tz=TZ)
    with mini.read() as s:
        ids = dict(
            s.execute(
                select(Task.period_key, Task.id)
                .join(ObligationRow, ObligationRow.id == Task.obligation_id)
                .join(Organization, Organization.id == Task.org_id)
                .where(ObligationRow.code == "report", Organization.code == "h1")
            ).all()
        )
        ctx = Context(now=at("2022-11-02"), tz=TZ, calendar=calendar, base_url="http://duban.test")
        items = task_items(s, ctx, [ids["2022-09"], ids["2022-11"]])
    assert items[ids["2022-09"]]["quote"] == "每月5号前上报"
    assert items[ids["2022-11"]]["quote"] == "每月10号前上报"
