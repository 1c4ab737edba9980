"""Issue 17 in the engine, on SQLite and PostgreSQL: an old database's adoption day comes from
what it holds; a database at another schema is refused before anything touches it; `duban
init` and `duban run` take the scheduler lease first; moving adoption back reopens what moving
it forward withdrew. (tests/e2e/test_upgrade.py upgrades earlier releases' own databases.)"""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from alembic import command
from sqlalchemy import select, text

from duban import scheduler
from duban.catalog.loader import Catalog, load_catalog
from duban.domain.tasks import Action
from duban.domain.workdays import WorkdayCalendar
from duban.engine import actions, adoption, amend, lease
from duban.engine.materialize import materialize
from duban.engine.sync import sync_catalog
from duban.errors import NotInitialised, SchedulerBusy, SchemaAhead, SchemaBehind
from duban.store.db import Store, head_revision
from duban.store.models import AuditEvent, ObligationRow, Organization, Task
from tests.conftest import FIXTURES
from tests.integration.helpers import TZ, at
from tests.integration.test_plans_lived import amended
from tests.integration.test_scheduler import app_for
from tests.releases import snapshot

HEAD = head_revision()
ELSEWHERE = "duban run pid 4242 on another-host"


def states(store: Store) -> dict[tuple[str, str, str], tuple[str, str | None]]:
    """Every task by organization, duty and period: its state and reason."""
    with store.read() as s:
        rows = s.execute(
            select(Organization.code, ObligationRow.code, Task.period_key, Task.state, Task.reason)
            .join(Organization, Organization.id == Task.org_id)
            .join(ObligationRow, ObligationRow.id == Task.obligation_id)
        ).all()
    return {(org, ob, period): (state, reason) for org, ob, period, state, reason in rows}


def task_id(store: Store, org: str, obligation: str, period: str) -> int:
    with store.read() as s:
        found = s.scalar(
            select(Task.id)
            .join(Organization, Organization.id == Task.org_id)
            .join(ObligationRow, ObligationRow.id == Task.obligation_id)
            .where(
                Organization.code == org,
                ObligationRow.code == obligation,
                Task.period_key == period,
            )
        )
    assert found is not None
    return int(found)


def move(store: Store, day: date, now: datetime) -> adoption.AdoptionReport:
    with store.write() as session:
        return adoption.set_adopted(session, day, now=now, actor="cli:test")


def test_moving_adoption_back_reopens_what_moving_it_forward_withdrew(
    mini: Store, calendar: WorkdayCalendar, tmp_path: Path
) -> None:
    now = at("2022-10-06")
    materialize(mini, calendar=calendar, now=now, tz=TZ)
    rejected = task_id(mini, "h1", "report", "2022-05")
    actions.add_note(mini, task_id=rejected, note="月报", actor="h1", now=now)
    actions.transition(mini, task_id=rejected, action=Action.SUBMIT, actor="h1", now=now)
    actions.transition(
        mini, task_id=rejected, action=Action.REJECT, actor="lead", now=now, reason="表格不全"
    )
    actions.transition(
        mini,
        task_id=task_id(mini, "h2", "report", "2022-05"),
        action=Action.WAIVE,
        actor="lead",
        now=now,
        reason="停业整顿",
    )
    # a duty withdrawn by an amendment: its open tasks are withdrawn for another reason
    amend.apply(
        mini,
        load_catalog([amended(tmp_path)], [FIXTURES / "mini-orgs.yaml"], calendar),
        calendar=calendar,
        now=now,
        tz=TZ,
        actor="cli:lead",
    )
    before = states(mini)
    assert before[("h1", "report", "2022-05")] == ("rejected", "表格不全")
    assert before[("h1", "drill", "2022-Q2")][0] == "withdrawn"

    forward = move(mini, date(2022, 9, 1), now)
    assert forward.withdrawn == sum(
        1
        for (_, ob, period), (state, _) in before.items()
        if ob == "report" and period < "2022-08" and state in ("open", "rejected")
    )
    assert states(mini)[("h1", "report", "2022-05")][0] == "withdrawn"

    back = move(mini, date(2022, 1, 1), at("2022-10-07"))
    assert states(mini) == before  # open and rejected again (the rejection's reason too)
    assert (back.reopened, back.withdrawn) == (forward.withdrawn, 0)
    with mini.read() as s:
        event = s.scalars(select(AuditEvent).where(AuditEvent.action == "tasks.reopened")).one()
    assert '"reopened":' + str(forward.withdrawn) in event.payload
    assert move(mini, date(2022, 1, 1), at("2022-10-08")).reopened == 0  # once


def test_forward_then_back_reopens_the_withdrawn_and_owes_the_periods_skipped_between(
    mini: Store, calendar: WorkdayCalendar
) -> None:
    """Ticked to 10 June; adoption moved to September (the reports of April to June
    withdrawn); ticked to October (July's, due in August, never created); moved back to April:
    the withdrawn are open again and the next tick creates July's."""
    materialize(mini, calendar=calendar, now=at("2022-06-10"), tz=TZ)
    forward = move(mini, date(2022, 9, 1), at("2022-06-10"))
    assert forward.withdrawn > 0
    materialize(mini, calendar=calendar, now=at("2022-10-06"), tz=TZ)
    reports = {period for (org, ob, period) in states(mini) if (org, ob) == ("h1", "report")}
    assert {"2022-04", "2022-06", "2022-08"} <= reports and "2022-07" not in reports
    back = move(mini, date(2022, 4, 1), at("2022-10-06"))
    assert materialize(mini, calendar=calendar, now=at("2022-10-06"), tz=TZ).tasks_created > 0
    now_held = states(mini)
    # April's and June's reopened, July's created
    assert {now_held[("h1", "report", p)][0] for p in ("2022-04", "2022-06", "2022-07")} == {"open"}
    assert not any(state == "withdrawn" for state, _ in now_held.values())
    assert back.reopened == forward.withdrawn


def test_an_old_database_is_adopted_on_the_earliest_day_it_holds(
    store: Store, db_url: str, calendar: WorkdayCalendar, tmp_path: Path
) -> None:
    """A database from before adoption dates (no `adopted` in meta): first loaded on
    2022-05-10, its tasks created from the plan's start on 2022-04-01, the first due on
    2022-05-05. Today's first init adopts 2022-04-01 and withdraws nothing."""
    with store.write() as session:
        sync_catalog(session, mini_catalog(calendar), now=at("2022-05-10"))
    materialize(store, calendar=calendar, now=at("2022-08-10"), tz=TZ)  # no adoption: all
    before = states(store)
    assert ("h1", "report", "2022-04") in before
    app = app_for(db_url, tmp_path)
    report = app.init(now=at("2022-09-01"))
    assert states(app.store) == before
    assert report is not None and report.adoption is not None
    assert (report.adoption.adopted, report.adoption.withdrawn) == (date(2022, 4, 1), 0)
    app.store.dispose()


def test_the_evidence_of_a_new_or_only_loaded_database_is_its_local_day(
    store: Store, calendar: WorkdayCalendar
) -> None:
    """No evidence: the init's own day. A first load at local midnight of 2022-05-10 (still
    05-09 in UTC): 2022-05-10."""
    today = date(2022, 9, 1)
    with store.write() as session:
        assert adoption.evidence_day(session, today=today, tz=TZ) == today
        sync_catalog(session, mini_catalog(calendar), now=datetime(2022, 5, 9, 16, tzinfo=UTC))
        assert adoption.evidence_day(session, today=today, tz=TZ) == date(2022, 5, 10)


def mini_catalog(calendar: WorkdayCalendar) -> Catalog:
    return load_catalog([FIXTURES / "mini-plan.yaml"], [FIXTURES / "mini-orgs.yaml"], calendar)


def at_revision(db_url: str, revision: str) -> Store:
    store = Store.from_url(db_url)
    command.upgrade(store.alembic_config(), revision)
    return store


def test_a_database_at_another_schema_is_refused_before_anything_touches_it(
    db_url: str,
) -> None:
    where = db_url
    empty = Store.from_url(db_url)
    with pytest.raises(NotInitialised) as missing, empty.read():
        pass
    assert str(missing.value) == f"the database at {where} is not initialised: run duban init"
    empty.dispose()

    old = at_revision(db_url, "0005")
    for session in (old.read, old.write, old.consistent):
        with pytest.raises(SchemaBehind) as behind, session():
            pass
        assert str(behind.value) == (
            f"the database at {where} is at schema 0005, this duban needs {HEAD}: "
            "run duban init to upgrade"
        )
    assert lease.acquire(old, holder=ELSEWHERE) is None  # the lease: the same in every schema
    old.upgrade()
    with old.read() as s:
        assert s.scalar(text("SELECT version_num FROM alembic_version")) == HEAD
    with old.write() as s:
        s.execute(text("UPDATE alembic_version SET version_num = '9999'"))
    old.dispose()

    newer = Store.from_url(db_url)
    words = (
        f"the database at {where} is at schema 9999, newer than this duban knows (it needs "
        f"{HEAD}): a later release upgraded it; upgrade duban"
    )
    with pytest.raises(SchemaAhead) as ahead, newer.read():
        pass
    assert str(ahead.value) == words
    with pytest.raises(SchemaAhead) as ahead:
        newer.upgrade()  # a later release's schema is left alone
    assert str(ahead.value) == words
    assert snapshot(db_url).revision == "9999"
    newer.dispose()


def test_init_and_run_take_the_lease_before_they_upgrade_or_change_anything(
    db_url: str, tmp_path: Path
) -> None:
    """A scheduler of another host holds the lease of a database at schema 0005: `duban init`
    and `duban run` are refused naming it, and the database is row for row as it was."""
    old = at_revision(db_url, "0005")
    assert lease.acquire(old, holder=ELSEWHERE) is None
    old.dispose()
    before = snapshot(db_url)
    app = app_for(db_url, tmp_path)
    named = f"another scheduler is running on this database: {ELSEWHERE} (lease valid until "
    with pytest.raises(SchedulerBusy) as init_refused:
        app.init(now=at("2022-09-01"), adopted=date(2022, 4, 1))
    assert str(init_refused.value).startswith(named)
    assert str(init_refused.value).endswith("then run duban init again; nothing was changed")
    assert snapshot(db_url) == before
    with pytest.raises(SchedulerBusy) as run_refused:
        scheduler.run(app, lambda: datetime.now(UTC))
    assert str(run_refused.value).startswith(named)
    assert snapshot(db_url) == before
    app.store.dispose()


def test_init_is_refused_while_todays_scheduler_holds_the_lease(
    mini: Store, db_url: str, tmp_path: Path
) -> None:
    """It would move adoption (and withdraw) under a running scheduler: refused, unchanged."""
    assert lease.acquire(mini, holder=ELSEWHERE) is None
    before = snapshot(db_url)
    app = app_for(db_url, tmp_path)
    with pytest.raises(SchedulerBusy, match=f"running on this database: {ELSEWHERE}"):
        app.init(now=at("2022-09-01"), adopted=date(2022, 9, 1))
    assert snapshot(db_url) == before
    lease.release(mini, holder=ELSEWHERE)
    app.init(now=at("2022-09-01"), adopted=date(2022, 9, 1))  # free again: it runs
    with mini.read() as s:
        assert adoption.adopted_on(s) == date(2022, 9, 1)
    app.store.dispose()
