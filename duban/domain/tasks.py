"""The task state machine, and the derived facts *overdue* and *late*.

    open ──submit──▶ submitted ──accept──▶ accepted
     │  ▲               │
     │  └──submit── rejected ◀──reject──┘
     └──waive (reason)──▶ waived      (a rejected task may be waived too)
     └──withdraw (reason)──▶ withdrawn  (the plan was amended and the duty withdrawn, or the
                                          task fell due before the deployment adopted duban)

Overdue and late are never stored: they follow from the due instant, the last submission
and `now`, so they cannot drift from the facts.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from enum import StrEnum

from duban.errors import StateError


class TaskState(StrEnum):
    OPEN = "open"
    SUBMITTED = "submitted"
    ACCEPTED = "accepted"
    REJECTED = "rejected"
    WAIVED = "waived"
    WITHDRAWN = "withdrawn"


class Action(StrEnum):
    SUBMIT = "submit"
    ACCEPT = "accept"
    REJECT = "reject"
    WAIVE = "waive"
    WITHDRAW = "withdraw"


@dataclass(frozen=True, kw_only=True)
class Transition:
    allowed_from: frozenset[TaskState]
    to: TaskState
    needs_reason: bool = False


TRANSITIONS: dict[Action, Transition] = {
    Action.SUBMIT: Transition(
        allowed_from=frozenset({TaskState.OPEN, TaskState.REJECTED}), to=TaskState.SUBMITTED
    ),
    Action.ACCEPT: Transition(allowed_from=frozenset({TaskState.SUBMITTED}), to=TaskState.ACCEPTED),
    Action.REJECT: Transition(
        allowed_from=frozenset({TaskState.SUBMITTED}), to=TaskState.REJECTED, needs_reason=True
    ),
    Action.WAIVE: Transition(
        allowed_from=frozenset({TaskState.OPEN, TaskState.REJECTED}),
        to=TaskState.WAIVED,
        needs_reason=True,
    ),
    Action.WITHDRAW: Transition(
        allowed_from=frozenset({TaskState.OPEN, TaskState.REJECTED}),
        to=TaskState.WITHDRAWN,
        needs_reason=True,
    ),
}

#: States in which the responsible institution still owes something.
PENDING = frozenset({TaskState.OPEN, TaskState.REJECTED})
#: States in which the institution has delivered (reviewed or waiting for review).
DONE = frozenset({TaskState.SUBMITTED, TaskState.ACCEPTED})


class Outcome(StrEnum):
    """Where a task stands as of `now`: the matrix's cells, the home pages' and the quarterly
    circular's counts. A rate counts ON_TIME, LATE and OVERDUE (see COUNTED)."""

    ON_TIME = "on_time"
    LATE = "late"
    OVERDUE = "overdue"
    WAITING = "waiting"  # owed, not yet due
    WAIVED = "waived"
    WITHDRAWN = "withdrawn"


#: The outcomes an on-time rate is computed over: on time / (on time + late + overdue).
COUNTED = frozenset({Outcome.ON_TIME, Outcome.LATE, Outcome.OVERDUE})


def next_state(current: TaskState, action: Action, reason: str | None = None) -> TaskState:
    """The state after `action`, or StateError naming what is allowed instead."""
    rule = TRANSITIONS[action]
    if current not in rule.allowed_from:
        allowed = (
            ", ".join(sorted(a.value for a, r in TRANSITIONS.items() if current in r.allowed_from))
            or "nothing"
        )
        raise StateError(
            f"cannot {action.value} a task that is {current.value}; "
            f"from {current.value} a task can only: {allowed}"
        )
    if rule.needs_reason and not (reason and reason.strip()):
        raise StateError(f"{action.value} needs a reason")
    return rule.to


def is_overdue(state: TaskState, due_at: datetime, now: datetime) -> bool:
    """Still owed and past the end of its due day."""
    return state in PENDING and now >= due_at


def is_late(due_at: datetime, submitted_at: datetime | None) -> bool:
    """The last submission came after the end of the due day."""
    return submitted_at is not None and submitted_at >= due_at


def days_overdue(due_date: date, today: date) -> int:
    """Whole calendar days past the due day (0 on the due day itself)."""
    return max(0, (today - due_date).days)


def outcome(
    state: TaskState, due_at: datetime, submitted_at: datetime | None, now: datetime
) -> Outcome:
    """A task's outcome: delivered (DONE) on time or late by its last submission (is_late),
    owed and past due (is_overdue), owed and not yet due, or waived / withdrawn.

    The one definition. Its SQL form, for counting a million tasks in the database, is
    `duban.engine.outcomes.outcome_sql`, built from the same sets (PENDING, DONE) and the same
    comparisons; tests/integration/test_stats.py checks the two agree on every task.
    """
    if state is TaskState.WAIVED:
        return Outcome.WAIVED
    if state is TaskState.WITHDRAWN:
        return Outcome.WITHDRAWN
    if state in DONE:
        return Outcome.LATE if is_late(due_at, submitted_at) else Outcome.ON_TIME
    return Outcome.OVERDUE if is_overdue(state, due_at, now) else Outcome.WAITING
