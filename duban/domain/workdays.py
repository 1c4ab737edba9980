"""Chinese working-day arithmetic over official holidays and swapped workdays (调休).

A date is a working day when it is a Monday–Friday that is not an official holiday, or a
Saturday/Sunday that the State Council declared a working day in exchange for a holiday.
A year comes from its official notice (`years`). A year without one may be covered by a
*provisional* rule (`provisional`: the statutory holidays of the law, no swapped workdays),
so counting never stops at a year's end; `is_provisional` tells every caller which dates rest
on it, so each can be shown as such. A year covered by neither raises `CalendarYearMissing`:
a deadline is a legal fact, never a weekday guess.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Protocol

from duban.errors import CalendarError, CalendarYearMissing

SATURDAY = 5
ONE_DAY = timedelta(days=1)


def days_from(start: date, end: date) -> tuple[date, ...]:
    """Every day from `start` to `end`, both included (empty when `end` is before `start`)."""
    return tuple(start + timedelta(days=i) for i in range((end - start).days + 1))


class ProvisionalRule(Protocol):
    """Days off for a year that has no official notice yet (see `catalog.provisional`)."""

    def covers(self, year: int) -> bool: ...

    def holidays(self, year: int) -> frozenset[date]: ...

    def describe(self) -> str: ...


@dataclass(frozen=True, kw_only=True)
class WorkdayCalendar:
    """The official calendar for a set of whole years, and a provisional rule for others.

    `holidays` are days off (including those falling on weekends); `workdays` are the
    weekend days declared working days. `years` are the years official data covers; a year
    outside them that `provisional` covers is counted by that rule and is provisional.
    """

    years: frozenset[int]
    holidays: frozenset[date] = field(default_factory=frozenset)
    workdays: frozenset[date] = field(default_factory=frozenset)
    source: str = ""
    provisional: ProvisionalRule | None = None

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
            provisional=next((p.provisional for p in parts if p.provisional), None),
        )

    def is_provisional(self, day: date) -> bool:
        """True when `day`'s year has no official data and is counted by the provisional rule
        (a date computed there may move when the year's notice is imported)."""
        return day.year not in self.years and self._provisional_covers(day.year)

    def provisional_years(self, first: date, last: date) -> list[int]:
        """The provisional years from `first`'s year to `last`'s, in order."""
        return [y for y in range(first.year, last.year + 1) if self.is_provisional(date(y, 1, 1))]

    def _provisional_covers(self, year: int) -> bool:
        return self.provisional is not None and self.provisional.covers(year)

    def is_workday(self, day: date) -> bool:
        """True when `day` is a working day: under the official schedule for its year, else
        under the provisional rule; a year covered by neither raises `CalendarYearMissing`."""
        if day.year not in self.years:
            if self.provisional is None or not self.provisional.covers(day.year):
                raise CalendarYearMissing(day.year, self.source or None)
            return day.weekday() < SATURDAY and day not in self.provisional.holidays(day.year)
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
