"""The one place duban picks the dialect's INSERT, for `INSERT … ON CONFLICT` (insert-or-skip,
insert-or-update) on SQLite and PostgreSQL alike."""

from __future__ import annotations

from typing import Any

from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session


def insert_for(session: Session) -> Any:
    """The `insert` construct of the session's dialect: it has `on_conflict_do_nothing` and
    `on_conflict_do_update` on both databases duban runs on."""
    return postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert
