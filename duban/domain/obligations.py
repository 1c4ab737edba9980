"""An obligation: one duty of one plan, as the engine computes with it."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date

from duban.domain.due import DueRule
from duban.domain.periods import EventRecurrence, Period, Recurrence
from duban.domain.workdays import WorkdayCalendar


@dataclass(frozen=True, kw_only=True)
class Selector:
    """Who is responsible: every active organization carrying *all* of `tags` and none of
    `except_tags`, the one organization `org`, or (for event chains) the organization where
    the event happened."""

    tags: frozenset[str] = field(default_factory=frozenset)
    except_tags: frozenset[str] = field(default_factory=frozenset)
    org: str | None = None
    event_org: bool = False


@dataclass(frozen=True, kw_only=True)
class Obligation:
    code: str
    plan: str
    title: str
    recurrence: Recurrence
    due: DueRule
    responsible: tuple[Selector, ...]
    valid_from: date
    valid_until: date

    @property
    def event(self) -> str | None:
        return self.recurrence.event if isinstance(self.recurrence, EventRecurrence) else None

    def periods(self) -> Iterator[Period]:
        """Every period the plan owes for this duty (see `periods_in_window`)."""
        return self.recurrence.periods(self.valid_from, self.valid_until)

    def opened_periods(self, today: date) -> Iterator[Period]:
        """Periods that have started by `today`: a task exists from its period's first day."""
        for period in self.periods():
            if period.start > today:
                return
            yield period

    def due_date(self, period: Period, calendar: WorkdayCalendar) -> date:
        return self.due.due_date(period, calendar)
