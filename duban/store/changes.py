"""The change mark (migration 0010): a count of the commits that changed tasks or the
catalogue, which names what a page kept per snapshot was computed from."""

from __future__ import annotations

from sqlalchemy import update
from sqlalchemy.orm import Session

from duban.store.models import ChangeMark

#: the mark's one row
MARK = 1


def mark_change(session: Session) -> None:
    """Count this transaction's change, for writers no trigger sees (materialize's INSERTs).
    Run it last before the commit: the row stays locked until then."""
    session.execute(update(ChangeMark).where(ChangeMark.id == MARK).values(n=ChangeMark.n + 1))
