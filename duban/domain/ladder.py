"""The reminder and escalation ladder: which step a task is on, on a given day.

A step is an offset in working days from the due date (negative: before it) and whom it tells.
Steps that tell the same people form a sequence; on day T a task is on the *latest* step of a
sequence whose moment has passed. So after downtime a task gets only the step that still makes
sense (the 1-day reminder, not the 7-day one as well), and a reminder never outlives the due
date. A step whose moment is more than `catchup` days old is stale and is not sent at all:
the weekly summary and the digests report such tasks instead.

Because every moment is monotone in the due date, the due dates for which a step is current on
day T form one contiguous range: `current_ranges` computes it once per ladder, and the sweep
selects tasks by that range with an index, never one task at a time.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import date, timedelta

from duban.domain.workdays import ONE_DAY, WorkdayCalendar
from duban.errors import CalendarYearMissing

REMINDER = "reminder"
OVERDUE = "overdue"  # the first escalation, to the institution's head
ESCALATION = "escalation"
SCAN_MARGIN_DAYS = 30


@dataclass(frozen=True, kw_only=True, order=True)
class Step:
    offset: int  # working days from the due date; negative before it
    notify: str  # duty | head | parent | county-office
    kind: str  # reminder | overdue | escalation

    @property
    def name(self) -> str:
        return f"{self.kind}:{self.offset:+d}:{self.notify}"

    def moment(self, due: date, calendar: WorkdayCalendar) -> date:
        """The day this step is sent: `offset` working days from `due`. A reminder never goes
        out on a day off: the due-day reminder of a task due on a Saturday or a holiday goes
        out on the working day before (a negative offset already lands on a working day)."""
        day = calendar.add_workdays(due, self.offset)
        if self.kind == REMINDER:
            while not calendar.is_workday(day):
                day -= ONE_DAY
        return day


@dataclass(frozen=True, kw_only=True)
class Ladder:
    steps: tuple[Step, ...]

    @classmethod
    def build(
        cls, *, before: Sequence[int], to: str, escalation: Sequence[tuple[int, str]]
    ) -> Ladder:
        steps = [Step(offset=-n, notify=to, kind=REMINDER) for n in set(before)]
        first_after = min((n for n, _ in escalation), default=None)
        for after, notify in escalation:
            kind = OVERDUE if after == first_after and notify == "head" else ESCALATION
            steps.append(Step(offset=after, notify=notify, kind=kind))
        return cls(steps=tuple(sorted(steps)))

    def sequences(self) -> Iterator[list[Step]]:
        """Reminders form one sequence; escalations one per recipient group."""
        reminders = [s for s in self.steps if s.kind == REMINDER]
        if reminders:
            yield reminders
        groups: dict[str, list[Step]] = {}
        for s in self.steps:
            if s.kind != REMINDER:
                groups.setdefault(s.notify, []).append(s)
        yield from groups.values()


def is_current(
    step: Step,
    following: Step | None,
    due: date,
    today: date,
    calendar: WorkdayCalendar,
    catchup: timedelta,
) -> bool:
    """Is `step` the step to send for a task due `due`, on `today`?"""
    moment = step.moment(due, calendar)
    if moment > today or today - moment > catchup:
        return False
    if step.kind == REMINDER and today > due:
        return False  # past due, reminders no longer make sense
    return following is None or following.moment(due, calendar) > today


def current_ranges(
    ladder: Ladder, today: date, calendar: WorkdayCalendar, catchup: timedelta
) -> list[tuple[Step, date, date]]:
    """For each step, the (first, last) due dates for which it is current on `today`."""
    out: list[tuple[Step, date, date]] = []
    for sequence in ladder.sequences():
        for i, step in enumerate(sequence):
            following = sequence[i + 1] if i + 1 < len(sequence) else None
            span = timedelta(days=2 * abs(step.offset) + SCAN_MARGIN_DAYS) + catchup
            hits = [
                d
                for d in _days(today - span, today + span)
                if _safely_current(step, following, d, today, calendar, catchup)
            ]
            if hits:
                out.append((step, hits[0], hits[-1]))
    return out


def _safely_current(
    step: Step,
    following: Step | None,
    due: date,
    today: date,
    calendar: WorkdayCalendar,
    catchup: timedelta,
) -> bool:
    # Only a year before the calendar's first official file is uncovered (later years without
    # a notice are provisional, never missing); the plan loader refuses due dates there, so
    # no task can be due on such a day: not current.
    try:
        return is_current(step, following, due, today, calendar, catchup)
    except CalendarYearMissing:
        return False


def _days(first: date, last: date) -> Iterator[date]:
    day = first
    while day <= last:
        yield day
        day += ONE_DAY
