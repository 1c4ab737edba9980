"""Migration 0011 (a duty is its plan and its id) changes no task, mail, audit event or duty:
a database at 0010 holding a county's year is upgraded and compared row by row, on SQLite
(where `obligations` is rebuilt under the tasks that refer to it) and PostgreSQL."""

from __future__ import annotations

from typing import Any

import pytest
from alembic import command
from sqlalchemy import delete, inspect, select, text
from sqlalchemy.exc import DatabaseError, IntegrityError

from duban.catalog.loader import Catalog
from duban.domain.tasks import Action
from duban.domain.workdays import WorkdayCalendar
from duban.engine import actions
from duban.engine.materialize import materialize
from duban.engine.sweep import sweep
from duban.engine.sync import sync_catalog
from duban.store import audit
from duban.store.db import Store
from duban.store.models import ObligationRow, Plan, Task
from tests.integration.helpers import TZ, at

KEYS = {
    "tasks": "id",
    "outbox": "id",
    "audit_events": "seq",
    "obligations": "id",
    "obligation_versions": "obligation_id, content_hash",
    "materializations": "obligation_id, period_key",
    "ladder_marks": "task_id, step, recipient",
    "tally_duty_day": "due_date, obligation_id, state, late",
    "plans": "id",
}


def rows(store: Store) -> dict[str, list[Any]]:
    """Every row of the tables the migration must not change (plans and obligations in the
    columns 0010 has)."""
    found = {}
    with store.engine.connect() as conn:
        columns = {t: [c["name"] for c in inspect(conn).get_columns(t)] for t in KEYS}
        for table, key in KEYS.items():
            names = [
                c
                for c in columns[table]
                if c not in ("source_text", "withdrawn_at", "withdrawn_reason")
            ]
            found[table] = [
                tuple(r)
                for r in conn.execute(
                    text(f"SELECT {', '.join(names)} FROM {table} ORDER BY {key}")
                )
            ]
    return found


def test_upgrading_through_0011_changes_no_task_mail_or_audit_event(
    store: Store, catalog: Catalog, calendar: WorkdayCalendar
) -> None:
    with store.write() as session:
        sync_catalog(session, catalog, now=at("2022-04-01"))
    materialize(store, calendar=calendar, now=at("2022-10-06"), tz=TZ)
    sweep(store, calendar=calendar, now=at("2022-10-06"), tz=TZ)
    with store.read() as s:
        some = list(s.scalars(Task.__table__.select().with_only_columns(Task.id).limit(2)))
    actions.add_note(store, task_id=some[0], note="记录", actor="user:x", now=at("2022-10-06"))
    actions.transition(
        store, task_id=some[0], action=Action.SUBMIT, actor="user:x", now=at("2022-10-06")
    )
    actions.transition(
        store,
        task_id=some[0],
        action=Action.REJECT,
        actor="admin",
        now=at("2022-10-07"),
        reason="缺签字",
    )
    command.downgrade(store.alembic_config(), "0010")
    before = rows(store)
    assert before["tasks"] and before["outbox"] and len(before["audit_events"]) > 10
    store.upgrade()
    assert rows(store) == before
    with store.consistent() as s:
        assert audit.verify(s).ok
    with store.engine.connect() as conn:
        if store.dialect == "sqlite":
            assert conn.execute(text("PRAGMA foreign_key_check")).all() == []
            assert conn.execute(text("PRAGMA integrity_check")).scalar() == "ok"
    # a duty id may now repeat in another plan, never within one
    with store.write() as session:
        row = session.scalars(select(ObligationRow).limit(1)).one()
        plan = session.get_one(Plan, row.plan_id)
        other = Plan(
            code="next-year",
            title="t",
            document="d",
            valid_from=plan.valid_from,
            valid_until=plan.valid_until,
            source_file="f",
            content_hash="h",
            loaded_at=at("2023-01-01"),
        )
        session.add(other)
        session.flush()
        session.add(_copy(row, other.id))
    with pytest.raises(IntegrityError), store.write() as session:
        session.add(_copy(row, row.plan_id))
    # tasks are still never deleted (the trigger on `tasks` survived the rebuild under it)
    with pytest.raises(DatabaseError, match="tasks are never deleted"), store.write() as session:
        session.execute(delete(Task))


def _copy(row: ObligationRow, plan_id: int) -> ObligationRow:
    return ObligationRow(
        code=row.code,
        plan_id=plan_id,
        title=row.title,
        spec=row.spec,
        content_hash=row.content_hash,
        active=True,
    )
