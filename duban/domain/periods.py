"""Periods and recurrences, as the plans mean them.

A calendar-aligned recurrence cuts the year into equal blocks that start in January:
monthly (2022-06), every two months (2022-B3 = May–June), quarterly (2022-Q2 = April–June),
half-yearly (2022-H1 = January–June, H2 = July–December) and yearly (2022). Anything else is an
RFC 5545 RRULE: each occurrence opens a period that lasts until the day before the next one.
A one-off duty has a single period; an event-triggered duty has one period per event.

Which periods a plan owes is `periods_in_window`: a period is owed when it *ends* inside the
plan's validity window. So a plan in force from April 2022 to April 2023 owes the quarters
2022-Q2 … 2023-Q1, the half-years 2022-H1 and 2022-H2, and the months 2022-04 … 2023-04.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from enum import Enum

from dateutil.rrule import rrule, rrulestr

MONTHS_PER_YEAR = 12
ONE_DAY = timedelta(days=1)


@dataclass(frozen=True, kw_only=True, order=True)
class Period:
    """A span of whole days, `start` and `end` inclusive, named by a sortable `key`."""

    start: date
    end: date
    key: str

    def __post_init__(self) -> None:
        if self.end < self.start:
            raise ValueError(f"period {self.key} ends ({self.end}) before it starts ({self.start})")

    def contains(self, day: date) -> bool:
        return self.start <= day <= self.end


class Cadence(Enum):
    """Calendar-aligned recurrences; the value is the length in months."""

    MONTHLY = 1
    BIMONTHLY = 2
    QUARTERLY = 3
    HALF_YEARLY = 6
    YEARLY = 12

    @property
    def months(self) -> int:
        return int(self.value)


_KEY_LETTER = {Cadence.BIMONTHLY: "B", Cadence.QUARTERLY: "Q", Cadence.HALF_YEARLY: "H"}


def _month_end(year: int, month: int) -> date:
    if month == MONTHS_PER_YEAR:
        return date(year, 12, 31)
    return date(year, month + 1, 1) - ONE_DAY


def calendar_period(cadence: Cadence, day: date) -> Period:
    """The period of `cadence` that contains `day`."""
    size = cadence.months
    index = (day.month - 1) // size  # 0-based block within the year
    first_month = index * size + 1
    last_month = first_month + size - 1
    if cadence is Cadence.MONTHLY:
        key = f"{day.year}-{first_month:02d}"
    elif cadence is Cadence.YEARLY:
        key = f"{day.year}"
    else:
        key = f"{day.year}-{_KEY_LETTER[cadence]}{index + 1}"
    return Period(
        start=date(day.year, first_month, 1), end=_month_end(day.year, last_month), key=key
    )


@dataclass(frozen=True, kw_only=True)
class CalendarRecurrence:
    cadence: Cadence

    def periods(self, start: date, end: date) -> Iterator[Period]:
        """Every period that ends within [start, end], in order."""
        period = calendar_period(self.cadence, start)
        while period.start <= end:
            if start <= period.end <= end:
                yield period
            period = calendar_period(self.cadence, period.end + ONE_DAY)


@dataclass(frozen=True, kw_only=True)
class RRuleRecurrence:
    """An RFC 5545 RRULE anchored at `dtstart`; occurrence k opens a period ending the day
    before occurrence k+1. The last occurrence's period ends with the plan window."""

    rule: str
    dtstart: date

    def __post_init__(self) -> None:
        self._rrule()  # an invalid rule fails at construction, with dateutil's reason

    def _rrule(self) -> rrule:
        parsed = rrulestr(self.rule, dtstart=datetime.combine(self.dtstart, datetime.min.time()))
        if not isinstance(parsed, rrule):
            raise ValueError("give a single RRULE, not a set of rules")
        return parsed

    def periods(self, start: date, end: date) -> Iterator[Period]:
        occurrences = iter(self._rrule())
        current = next(occurrences, None)
        while current is not None and current.date() <= end:
            following = next(occurrences, None)
            first = current.date()
            last = following.date() - ONE_DAY if following is not None else end
            last = max(first, last)
            if start <= last <= end:
                yield Period(start=first, end=last, key=f"R{first.isoformat()}")
            current = following


@dataclass(frozen=True, kw_only=True)
class OnceRecurrence:
    """A one-off duty: a single period from the window start to its deadline."""

    def periods(self, start: date, end: date) -> Iterator[Period]:
        yield Period(start=start, end=end, key="once")


@dataclass(frozen=True, kw_only=True)
class EventRecurrence:
    """A chain started by an event (e.g. a maternal death); no periods of its own."""

    event: str

    def periods(self, start: date, end: date) -> Iterator[Period]:
        return iter(())


Recurrence = CalendarRecurrence | RRuleRecurrence | OnceRecurrence | EventRecurrence


def event_period(event_id: int, occurred_on: date) -> Period:
    """The period of a task created by an event: the day of the event, keyed by its id."""
    return Period(start=occurred_on, end=occurred_on, key=f"E{event_id}")
