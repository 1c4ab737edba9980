"""Chinese working-day arithmetic over official holidays and swapped workdays (调休).

A date is a working day when it is a Monday–Friday that is not an official holiday, or a
Saturday/Sunday that the State Council declared a working day in exchange for a holiday.
Every question about a date in a year the calendar does not cover raises
`CalendarYearMissing`: a deadline is a legal fact, never a weekday guess.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, timedelta

from duban.errors import CalendarError, CalendarYearMissing

SATURDAY = 5
ONE_DAY = timedelta(days=1)


@dataclass(frozen=True, kw_only=True)
class WorkdayCalendar:
    """The official calendar for a set of whole years.

    `holidays` are days off (including those falling on weekends); `workdays` are the
    weekend days declared working days. `years` are the years the data covers.
    """

    years: frozenset[int]
    holidays: frozenset[date] = field(default_factory=frozenset)
    workdays: frozenset[date] = field(default_factory=frozenset)
    source: str = ""

    def __post_init__(self) -> None:
        both = self.holidays & self.workdays
        if both:
            day = min(both)
            raise CalendarError(f"{day} is listed both as a holiday and as a working day")
        for day in self.workdays:
            if day.weekday() < SATURDAY:
                raise CalendarError(
                    f"{day} is a {day:%A}; only a Saturday or Sunday can be a swapped workday"
                )
        outside = {d.year for d in self.holidays | self.workdays} - self.years
        if outside:
            raise CalendarError(f"dates given for years not declared covered: {sorted(outside)}")

    @classmethod
    def merge(cls, parts: Iterable[WorkdayCalendar]) -> WorkdayCalendar:
        parts = list(parts)
        return cls(
            years=frozenset().union(*(p.years for p in parts)),
            holidays=frozenset().union(*(p.holidays for p in parts)),
            workdays=frozenset().union(*(p.workdays for p in parts)),
            source=", ".join(p.source for p in parts if p.source),
        )

    def _check(self, day: date) -> None:
        if day.year not in self.years:
            raise CalendarYearMissing(day.year, self.source or None)

    def is_workday(self, day: date) -> bool:
        """True when `day` is a working day under the official schedule."""
        self._check(day)
        if day in self.workdays:
            return True
        if day in self.holidays:
            return False
        return day.weekday() < SATURDAY

    def next_workday(self, day: date) -> date:
        """`day` itself if it is a working day, else the first working day after it.

        This is the holiday shift for due dates; applying it twice changes nothing.
        """
        while not self.is_workday(day):
            day += ONE_DAY
        return day

    def add_workdays(self, day: date, n: int) -> date:
        """The date `n` working days after `day` (before it when `n` is negative).

        `day` itself is not counted, so "within 5 working days of an event on Wednesday
        2022-09-28" is 2022-10-10: the National Day holiday is skipped and the swapped
        Saturday and Sunday (10-08, 10-09) count. `add_workdays(d, 0)` is `d`.
        """
        step = ONE_DAY if n >= 0 else -ONE_DAY
        remaining = abs(n)
        while remaining:
            day += step
            if self.is_workday(day):
                remaining -= 1
        return day

    def workdays_between(self, start: date, end: date) -> int:
        """Working days in the half-open range (start, end]; negative when end < start.

        The inverse of `add_workdays`: `workdays_between(d, add_workdays(d, n)) == n`.
        """
        if end < start:
            return -self.workdays_between(end, start)
        count = 0
        day = start
        while day < end:
            day += ONE_DAY
            if self.is_workday(day):
                count += 1
        return count
