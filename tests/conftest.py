"""Shared fixtures: the real calendar, and stores on a real SQLite file and a real PostgreSQL.

PostgreSQL tests need a server (DUBAN_TEST_POSTGRES_URL, default the local one with trust
auth). If it is unreachable the tests fail; set DUBAN_TEST_SKIP_POSTGRES=1 to skip them
visibly instead.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from duban.catalog.calendar import load_calendar
from duban.catalog.loader import Catalog, load_catalog
from duban.domain.workdays import WorkdayCalendar
from duban.engine.adoption import set_adopted
from duban.engine.sync import sync_catalog
from duban.store.db import Store

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = Path(__file__).resolve().parent / "fixtures"
PG_ADMIN_URL = os.environ.get(
    "DUBAN_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)
SKIP_PG = os.environ.get("DUBAN_TEST_SKIP_POSTGRES") == "1"


@pytest.fixture(scope="session")
def calendar() -> WorkdayCalendar:
    return load_calendar(ROOT / "calendar")


def bundled_catalog(calendar: WorkdayCalendar) -> Catalog:
    return load_catalog(
        sorted((ROOT / "obligations").glob("*.yaml")),
        sorted((ROOT / "obligations" / "organizations").glob("*.yaml")),
        calendar,
    )


@pytest.fixture(scope="session")
def catalog(calendar: WorkdayCalendar) -> Catalog:
    return bundled_catalog(calendar)


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'duban.db'}"


@pytest.fixture
def postgres_url() -> Iterator[str]:
    if SKIP_PG:
        pytest.skip("DUBAN_TEST_SKIP_POSTGRES=1")
    name = f"duban_test_{uuid.uuid4().hex[:12]}"
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    try:
        yield url
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest) -> str:
    return str(
        request.getfixturevalue(
            f"{request.param}_url" if request.param == "sqlite" else "postgres_url"
        )
    )


@pytest.fixture
def store(db_url: str) -> Iterator[Store]:
    s = Store.from_url(db_url)
    s.upgrade()
    yield s
    s.dispose()


LOAD_TIME = datetime(2022, 4, 1, tzinfo=UTC)
ADOPTED = date(2022, 1, 1)


@pytest.fixture
def loaded(store: Store, catalog: Catalog) -> Store:
    """A store with the bundled plans and the example county loaded, adopted on 2022-01-01
    (before the county plan began), so every period of the 2022 plan is owed."""
    with store.write() as session:
        sync_catalog(session, catalog, now=LOAD_TIME)
        set_adopted(session, ADOPTED, now=LOAD_TIME, actor="test")
    return store
