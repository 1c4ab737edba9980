"""A plan's end: withdrawn explicitly (and applied again), announced before its window ends,
counted from today, and rolled into next year's draft (issue 17), on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest
from sqlalchemy import select, update

from duban.catalog.loader import load_catalog
from duban.domain.workdays import WorkdayCalendar
from duban.engine import amend, plans_end
from duban.engine.materialize import materialize
from duban.engine.roll import roll_plan
from duban.engine.roster import roster_of
from duban.engine.withdraw import withdraw_plan
from duban.errors import InvalidText, NotFound, RollRefused
from duban.store.db import Store
from duban.store.models import AuditEvent, ObligationRow, Plan, Task
from tests.integration.helpers import TZ, at
from tests.integration.plans_helpers import (
    MINI_ORGS,
    MINI_PLAN,
    both_plans,
    catalog_of,
    county,
    duties_of,
    task_facts,
)

REASON = "被2023年方案取代 / superseded by the 2023 plan"


def states_of(store: Store, plan: str) -> dict[str, int]:
    found: dict[str, int] = {}
    for facts in task_facts(store).values():
        if facts[1] == plan:
            found[facts[7]] = found.get(facts[7], 0) + 1
    return found


def test_withdraw_closes_a_plan_and_only_apply_brings_it_back(
    store: Store, calendar: WorkdayCalendar, tmp_path: Path
) -> None:
    both_plans(store, calendar, tmp_path)
    owed = states_of(store, "mini").get("open", 0)
    newer = task_facts(store)
    assert owed > 0
    report = withdraw_plan(store, "mini", reason=f"  {REASON}\n", now=at("2023-07-07"), actor="x")
    assert (report.duties, report.closed, report.already) == (4, owed, False)
    assert report.reason == REASON
    assert "open" not in states_of(store, "mini") and duties_of(store, "mini") == set()
    with store.read() as s:
        reasons = set(s.scalars(select(Task.reason).where(Task.state == "withdrawn")))
        actions = s.scalars(select(AuditEvent.action).where(AuditEvent.entity_id == "mini"))
        assert list(actions) == ["plan.withdrawn"]
    assert reasons == {f"方案已撤销 / plan mini was withdrawn: {REASON}"}
    # next year's plan is untouched
    assert {i: f for i, f in task_facts(store).items() if f[1] == "mini-2023"} == {
        i: f for i, f in newer.items() if f[1] == "mini-2023"
    }
    again = withdraw_plan(store, "mini", reason="again", now=at("2023-07-08"), actor="x")
    assert again.already and again.reason == REASON and again.withdrawn_at == at("2023-07-07")
    # init with the plan's file configured does not bring it back, nor does a reconcile
    app = county(store, calendar, tmp_path, MINI_PLAN, tmp_path / "mini-2023.yaml")
    init = app.init(now=at("2023-07-09"))
    assert init is not None and init.withdrawn == ("mini",) and not init.unconfigured
    assert duties_of(store, "mini") == set()
    before = task_facts(store)
    materialize(store, calendar=calendar, now=at("2023-09-01"), tz=TZ)
    assert {i for i, f in task_facts(store).items() if f[1] == "mini"} == {
        i for i, f in before.items() if f[1] == "mini"
    }
    # `plan apply` puts it in force again, explicitly: owed from the day of application
    back = amend.apply(
        store,
        catalog_of(calendar, MINI_PLAN),
        calendar=calendar,
        now=at("2023-07-10"),
        tz=TZ,
        actor="cli:lead",
    )
    assert back.applied and back.diff.reactivates and not back.diff.changes
    assert duties_of(store, "mini") == {"drill", "report", "notify", "county-review"}
    with store.read() as s:
        plan = s.scalars(select(Plan).where(Plan.code == "mini")).one()
        assert plan.withdrawn_at is None and plan.withdrawn_reason is None
        froms = set(
            s.scalars(select(ObligationRow.effective_from).where(ObligationRow.plan_id == plan.id))
        )
    assert froms == {date(2023, 7, 10)}
    assert "open" not in states_of(store, "mini")  # what was closed stays closed


def test_withdraw_refuses_a_blank_or_unprintable_reason_and_an_unknown_plan(
    store: Store, calendar: WorkdayCalendar, tmp_path: Path
) -> None:
    county(store, calendar, tmp_path, MINI_PLAN).init(now=at("2022-04-01"))
    now = at("2022-05-01")
    with pytest.raises(InvalidText, match=r"^reason: is empty; say why the plan is withdrawn"):
        withdraw_plan(store, "mini", reason=" \n", now=now, actor="x")
    with pytest.raises(InvalidText, match="control character U\\+0007"):
        withdraw_plan(store, "mini", reason="a\x07", now=now, actor="x")
    with pytest.raises(InvalidText, match="2001 characters is more than the 2000 allowed"):
        withdraw_plan(store, "mini", reason="x" * 2001, now=now, actor="x")
    with pytest.raises(
        NotFound, match=r"^no plan by the id of 'mni' was found; the database holds: mini$"
    ):
        withdraw_plan(store, "mni", reason="typo", now=now, actor="x")
    assert duties_of(store, "mini") == {"drill", "report", "notify", "county-review"}


def test_a_plans_end_is_announced_and_what_it_owes_is_counted_from_today(
    store: Store, calendar: WorkdayCalendar, tmp_path: Path
) -> None:
    county(store, calendar, tmp_path, MINI_PLAN).init(
        now=at("2022-04-01"), adopted=date(2022, 4, 1)
    )
    with store.read() as s:
        assert plans_end.ending_plans(s, today=date(2023, 3, 1), within_days=59) == []
        ending = plans_end.ending_plans(s, today=date(2023, 3, 1), within_days=60)
        assert plans_end.ending_plans(s, today=date(2023, 5, 1), within_days=60) == []
        views, roster = plans_end.stored_plans(s), roster_of(s)
    assert [(p.code, p.valid_until, p.days_left) for p in ending] == [
        ("mini", date(2023, 4, 30), 60)
    ]
    assert {(d.ref, d.rhythm, d.last_period, d.continued_by) for d in ending[0].stopping} == {
        ("drill", "quarterly", "2023-Q1", None),
        ("report", "monthly", "2023-04", None),
        ("notify", "event", None, None),
        ("county-review", "event", None, None),
    }

    def standing(today: date) -> plans_end.Standing:
        [one] = plans_end.standings(views, roster, calendar, today=today, adopted=date(2022, 4, 1))
        return one

    # h1, h2 drill 2023-Q1 (due 03-31) and h1, h2, office report 2023-02 … 2023-04
    assert (standing(date(2023, 3, 1)).state, standing(date(2023, 3, 1)).owed) == ("owes", 2 + 9)
    assert standing(date(2022, 4, 1)).owed > standing(date(2023, 3, 1)).owed
    assert standing(date(2024, 6, 1)).state == "ended" and standing(date(2024, 6, 1)).owed == 0


def test_next_years_plan_announces_what_continues(
    store: Store, calendar: WorkdayCalendar, tmp_path: Path
) -> None:
    both_plans(store, calendar, tmp_path)
    with store.read() as s:
        [ending] = plans_end.ending_plans(s, today=date(2023, 3, 15), within_days=60)
    assert ending.code == "mini" and ending.stopping == ()
    assert {d.ref: d.continued_by for d in ending.duties}["mini/report"] == "mini-2023/report"


def test_roll_writes_a_draft_that_checks_and_applies_as_a_new_plan(
    store: Store, calendar: WorkdayCalendar, tmp_path: Path
) -> None:
    county(store, calendar, tmp_path, MINI_PLAN).init(now=at("2022-04-01"))
    rolled = roll_plan(store, "mini", to_year=2023, today=date(2022, 11, 20))
    assert (rolled.plan, rolled.valid_from, rolled.valid_until) == (
        "mini-2023",
        date(2023, 4, 1),
        date(2024, 4, 30),
    )
    assert rolled.marked == ("plan.document", "plan.issued", "plan.title")
    assert rolled.text.count("# 待确认 / to confirm") == 3
    assert "  document: 测试〔2022〕1号  # 待确认 / to confirm\n" in rolled.text
    assert "  valid: {from: 2023-04-01, until: 2024-04-30}\n" in rolled.text
    draft = tmp_path / "next.yaml"
    draft.write_text(rolled.text, encoding="utf-8")
    catalog = load_catalog([draft], [MINI_ORGS], calendar)  # what `duban plan check` runs
    applied = amend.apply(
        store, catalog, calendar=calendar, now=at("2023-03-01"), tz=TZ, actor="cli:lead"
    )
    assert applied.diff.new_plan and {c.continues for c in applied.diff.changes} == {
        "mini/drill",
        "mini/report",
        "mini/notify",
        "mini/county-review",
    }
    with pytest.raises(RollRefused, match="plan mini starts in 2022; --to must be a later year"):
        roll_plan(store, "mini", to_year=2022, today=date(2022, 11, 20))


def test_roll_of_a_plan_applied_before_texts_were_kept_reads_its_file_if_unchanged(
    store: Store, calendar: WorkdayCalendar, tmp_path: Path
) -> None:
    plan = tmp_path / "mini-plan.yaml"
    plan.write_bytes(MINI_PLAN.read_bytes())
    county(store, calendar, tmp_path, plan).init(now=at("2022-04-01"))
    with store.write() as s:  # as a plan applied before migration 0011 is stored
        s.execute(update(Plan).values(source_text=None))
    assert roll_plan(store, "mini", to_year=2023, today=date(2022, 11, 20)).plan == "mini-2023"
    plan.write_text(plan.read_text(encoding="utf-8") + "# edited\n", encoding="utf-8")
    with pytest.raises(RollRefused, match="is not the version applied"):
        roll_plan(store, "mini", to_year=2023, today=date(2022, 11, 20))
    # `duban init` meeting the file of the applied version again stores its text
    plan.write_bytes(MINI_PLAN.read_bytes())
    county(store, calendar, tmp_path, plan).init(now=at("2022-04-02"))
    plan.unlink()
    assert roll_plan(store, "mini", to_year=2023, today=date(2022, 11, 20)).plan == "mini-2023"
