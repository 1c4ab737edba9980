"""The migrations build exactly the schema the models describe, on both databases."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from duban.store.db import Store
from duban.store.models import Base


def test_migrations_match_the_models(db_url: str) -> None:
    store = Store.from_url(db_url)
    store.upgrade()
    try:
        with store.engine.connect() as conn:
            diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    finally:
        store.dispose()
    assert diff == [], f"a migration is missing for: {diff}"
