"""The migrations build exactly the schema the models describe, on both databases, and the
database itself keeps the promises the schema relies on."""

from __future__ import annotations

import threading
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import delete, func, select, text, update
from sqlalchemy.exc import DatabaseError

from duban.catalog.loader import Catalog
from duban.domain.workdays import WorkdayCalendar
from duban.engine import users
from duban.engine.materialize import materialize
from duban.engine.sync import sync_catalog
from duban.store.db import Store
from duban.store.models import Base, Organization, OrgTag, Task

NOW = datetime(2022, 7, 6, 1, tzinfo=UTC)


def differences(store: Store) -> list[object]:
    with store.engine.connect() as conn:
        return list(compare_metadata(MigrationContext.configure(conn), Base.metadata))


def test_migrations_match_the_models_and_go_down_and_up(db_url: str) -> None:
    store = Store.from_url(db_url)
    store.upgrade()
    try:
        assert differences(store) == [], "a migration is missing"
        command.downgrade(store.alembic_config(), "0003")
        assert differences(store) != []
        store.upgrade()
        assert differences(store) == []
    finally:
        store.dispose()


def test_a_task_can_never_be_deleted(
    db_url: str, catalog: Catalog, calendar: WorkdayCalendar
) -> None:
    """Marks, messages, evidence and the audit trail refer to tasks: the database refuses to
    delete one (a task is waived instead), which is what lets ladder marks skip a foreign key."""
    store = Store.from_url(db_url)
    store.upgrade()
    try:
        now = datetime(2022, 7, 6, tzinfo=UTC)
        with store.write() as session:
            sync_catalog(session, catalog, now=now)
        materialize(store, calendar=calendar, now=now, tz=ZoneInfo("Asia/Shanghai"))
        with store.read() as session:
            before = session.scalar(select(func.count()).select_from(Task))
        assert before
        with (
            pytest.raises(DatabaseError, match="tasks are never deleted"),
            store.write() as session,
        ):
            session.execute(delete(Task))
        with store.read() as session:
            assert session.scalar(select(func.count()).select_from(Task)) == before
    finally:
        store.dispose()


@pytest.mark.postgres
def test_a_read_on_postgresql_cannot_write_and_holds_no_transaction(postgres_url: str) -> None:
    """`Store.read()` on PostgreSQL runs each statement on its own (no BEGIN and COMMIT round
    trips per page) on connections the server keeps read-only: a write slipped into a read
    fails at once instead of being committed, and no read leaves a transaction open."""
    store = Store.from_url(postgres_url)
    store.upgrade()
    try:
        with pytest.raises(DatabaseError, match="read-only transaction"), store.read() as session:
            session.execute(update(Task).values(reason="written by a read"))
        with store.read() as session:
            # one statement, one transaction: the second statement's transaction starts with it
            session.scalar(text("SELECT pg_sleep(0.01)"))
            assert session.scalar(text("SELECT now() = statement_timestamp()"))
        with store.consistent() as session:  # what must agree across statements: one snapshot
            a = session.scalar(text("SELECT now()"))
            session.scalar(text("SELECT pg_sleep(0.01)"))
            assert session.scalar(text("SELECT now()")) == a
        with store.snapshot() as (session, name):
            # a computation kept per snapshot is planned for its own parameters: a generic
            # plan made the home page's ranking six times slower once psycopg prepared it
            assert name and session.scalar(text("SHOW plan_cache_mode")) == "force_custom_plan"
        with store.read() as session:  # and only that transaction
            assert session.scalar(text("SHOW plan_cache_mode")) == "auto"
    finally:
        store.dispose()


def test_the_change_mark_counts_commits_that_change_tasks_and_holds_no_writer_up(
    mini: Store, calendar: WorkdayCalendar
) -> None:
    """The name a kept page is filed under (Store.snapshot) moves at the commit of every
    change to tasks or the catalogue and at no other; a writer takes the mark only while it
    commits, so one transaction left open does not hold up another's submission."""
    if mini.dialect != "postgresql":
        pytest.skip("SQLite keeps no pages: its snapshots have no name")
    materialize(mini, calendar=calendar, now=NOW, tz=ZoneInfo("Asia/Shanghai"))

    def name() -> str | None:
        with mini.snapshot() as (_, found):
            return found

    first = name()
    users.add_user(mini, name="clerk", role="auditor", org=None, password=None, now=NOW)
    assert name() == first  # a user, an audit event: no task, no catalogue

    a, b = (mini_task(mini, org) for org in ("h1", "h2"))
    with mini.write() as open_one:
        open_one.execute(update(Task).where(Task.id == a).values(reason="仍在办理"))
        other = threading.Thread(target=lambda: _note_reason(mini, b))
        other.start()
        other.join(timeout=10)
        assert not other.is_alive(), "a writer waited for another transaction to end"
        second = name()
        assert second != first  # the other one's commit counted at once
    third = name()
    assert third != second  # and this one's
    with mini.write() as s:
        s.execute(update(OrgTag).where(OrgTag.org_id == -1).values(tag="none"))  # no row
    assert name() == third


def mini_task(store: Store, org: str) -> int:
    with store.read() as s:
        found = s.scalar(
            select(Task.id)
            .join(Organization, Organization.id == Task.org_id)
            .where(Organization.code == org)
            .limit(1)
        )
    assert found is not None
    return int(found)


def _note_reason(store: Store, task: int) -> None:
    with store.write() as s:
        s.execute(update(Task).where(Task.id == task).values(reason="已提交"))
