"""The migrations build exactly the schema the models describe, on both databases, and the
database itself keeps the promises the schema relies on."""

from __future__ import annotations

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
from duban.engine.materialize import materialize
from duban.engine.sync import sync_catalog
from duban.store.db import Store
from duban.store.models import Base, Task


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
