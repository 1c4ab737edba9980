"""The SQL form of `duban.domain.tasks.outcome`: which tasks are on time, late, overdue, …

Written once, from the domain's own sets (PENDING, DONE) and comparisons (is_late: the last
submission at or after the due instant; is_overdue: owed and `now` at or after it), so the
home pages, the board's filters and the quarterly circular count exactly what the matrix and
the Annex 5 sheet show. tests/integration/test_stats.py checks it against the domain function
task by task.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, and_, false, or_

from duban.domain.tasks import DONE, PENDING, Outcome, TaskState
from duban.store.models import Task

PENDING_VALUES = sorted(s.value for s in PENDING)
DONE_VALUES = sorted(s.value for s in DONE)
#: the board's outcome filter: one outcome, or `counted` (what a rate is computed over)
FILTERS = (*(o.value for o in Outcome), "counted")


def pending() -> ColumnElement[bool]:
    return Task.state.in_(PENDING_VALUES)


def done() -> ColumnElement[bool]:
    return Task.state.in_(DONE_VALUES)


def late(table: Any = Task) -> ColumnElement[bool]:
    """is_late: submitted, and the last submission at or after the due instant."""
    return and_(table.submitted_at.is_not(None), table.submitted_at >= table.due_at)


def overdue(now: datetime) -> ColumnElement[bool]:
    """is_overdue: still owed and `now` at or after the due instant."""
    return and_(pending(), Task.due_at <= now)


def outcome_sql(name: str, now: datetime) -> ColumnElement[bool]:
    """The tasks whose outcome is `name` (an Outcome value) as of `now`, or, for `counted`,
    on time, late or overdue."""
    if name == "counted":
        return or_(done(), overdue(now))
    which = Outcome(name)
    if which is Outcome.ON_TIME:
        return and_(done(), ~late())
    if which is Outcome.LATE:
        return and_(done(), late())
    if which is Outcome.OVERDUE:
        return overdue(now)
    if which is Outcome.WAITING:
        return and_(pending(), Task.due_at > now)
    if which is Outcome.WAIVED:
        return Task.state == TaskState.WAIVED.value
    if which is Outcome.WITHDRAWN:
        return Task.state == TaskState.WITHDRAWN.value
    return false()  # pragma: no cover - every Outcome is handled above
