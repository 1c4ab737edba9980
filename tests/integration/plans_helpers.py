"""A county on the mini plan, and next year's mini plan (issue 17): shared by the tests of
plans that follow each other, on a real SQLite file and PostgreSQL."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any

from sqlalchemy import select

from duban.bootstrap import App
from duban.catalog.loader import Catalog, load_catalog
from duban.catalog.roll import roll_text
from duban.domain.workdays import WorkdayCalendar
from duban.engine import amend
from duban.settings import Settings
from duban.store.db import Store
from duban.store.models import ObligationRow, Organization, Plan, Task
from tests.conftest import FIXTURES, ROOT
from tests.integration.helpers import TZ, at

MINI_PLAN = FIXTURES / "mini-plan.yaml"
MINI_ORGS = FIXTURES / "mini-orgs.yaml"
OLD_DOC, NEW_DOC = "测试〔2022〕1号", "测试〔2023〕1号"


def county(store: Store, calendar: WorkdayCalendar, tmp_path: Path, *plans: Path) -> App:
    """The app as `duban init` and `duban run` build it, configured with `plans` only."""
    settings = Settings(
        database_url=store.engine.url.render_as_string(hide_password=False),
        plan_files=list(plans),
        org_files=[MINI_ORGS],
        calendar_dir=ROOT / "calendar",
        evidence_dir=tmp_path / "evidence",
        mail_dir=tmp_path / "mail",
    )
    app = App(settings=settings)
    app.__dict__["store"] = store
    app.__dict__["calendar"] = calendar
    return app


def next_year(tmp_path: Path, extra: str = "") -> Path:
    """Next year's mini plan as a county writes it: rolled, its document number confirmed
    (the same duty ids), and `extra` obligations appended."""
    rolled = roll_text(MINI_PLAN.read_text(encoding="utf-8"), file=str(MINI_PLAN), to_year=2023)
    path = tmp_path / "mini-2023.yaml"
    path.write_text(rolled.text.replace(OLD_DOC, NEW_DOC) + extra, encoding="utf-8")
    return path


def catalog_of(calendar: WorkdayCalendar, *plans: Path) -> Catalog:
    return load_catalog(list(plans), [MINI_ORGS], calendar)


def both_plans(store: Store, calendar: WorkdayCalendar, tmp_path: Path) -> App:
    """The mini plan lived from 2022-04-01 to 2023-03-01, next year's applied then, and both
    materialized up to 2023-07-06."""
    from duban.engine.materialize import materialize

    app = county(store, calendar, tmp_path, MINI_PLAN)
    app.init(now=at("2022-04-01"), adopted=date(2022, 4, 1))
    materialize(store, calendar=calendar, now=at("2023-03-01"), tz=TZ)
    amend.apply(
        store,
        catalog_of(calendar, next_year(tmp_path)),
        calendar=calendar,
        now=at("2023-03-01"),
        tz=TZ,
        actor="cli:lead",
    )
    materialize(store, calendar=calendar, now=at("2023-07-06"), tz=TZ)
    return app


def task_facts(store: Store) -> dict[int, tuple[Any, ...]]:
    """Every task with what it is bound to: its duty row, plan, version and rule, key, state."""
    with store.read() as s:
        rows = s.execute(
            select(
                Task.id,
                Task.obligation_id,
                Plan.code,
                Task.plan_version,
                Task.spec_hash,
                Organization.code,
                Task.period_key,
                Task.due_date,
                Task.state,
                Task.reason,
            )
            .join(ObligationRow, ObligationRow.id == Task.obligation_id)
            .join(Plan, Plan.id == ObligationRow.plan_id)
            .join(Organization, Organization.id == Task.org_id)
        ).all()
    return {r[0]: tuple(r[1:]) for r in rows}


def duties_of(store: Store, plan: str, *, active: bool = True) -> set[str]:
    with store.read() as s:
        return set(
            s.scalars(
                select(ObligationRow.code)
                .join(Plan, Plan.id == ObligationRow.plan_id)
                .where(Plan.code == plan, ObligationRow.active.is_(active))
            )
        )
