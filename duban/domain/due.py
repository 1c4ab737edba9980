"""Due rules: when a duty for a period (or an event) must be done.

A due date is a local calendar day; the task is due by the *end* of that day in the plan's
time zone, so `due_at` is the first instant of the following day. "每月5号前上报" for June 2022
is due 2022-07-05 and becomes overdue at 2022-07-06 00:00 Asia/Shanghai.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from dateutil.relativedelta import relativedelta

from duban.domain.periods import ONE_DAY, Cadence, Period, calendar_period
from duban.domain.workdays import WorkdayCalendar

LAST_SAFE_MONTH_DAY = 28  # every month has a 28th


@dataclass(frozen=True, kw_only=True)
class EndOfPeriod:
    """Due on the last day of the period (a quarterly duty is due on the quarter's last day)."""

    def raw(self, period: Period, calendar: WorkdayCalendar) -> date:
        return period.end


@dataclass(frozen=True, kw_only=True)
class EndOfQuarter:
    """Due on the last day of the last month of the quarter the period ends in
    (Annex 5: "每季度最后一个月月底报送")."""

    def raw(self, period: Period, calendar: WorkdayCalendar) -> date:
        return calendar_period(Cadence.QUARTERLY, period.end).end


@dataclass(frozen=True, kw_only=True)
class EndOfFirstMonth:
    """Due on the last day of the period's first month: a yearly work plan is due by the end
    of January of the year it plans for (not on 31 December, when the year is over)."""

    def raw(self, period: Period, calendar: WorkdayCalendar) -> date:
        return calendar_period(Cadence.MONTHLY, period.start).end


@dataclass(frozen=True, kw_only=True)
class DayOfNextMonth:
    """Due on day `day` of the month after the period ends (Annex 4: "每月5号前上报")."""

    day: int

    def __post_init__(self) -> None:
        if not 1 <= self.day <= LAST_SAFE_MONTH_DAY:
            raise ValueError(
                f"day {self.day} does not exist in every month; use 1–28, "
                "or end_of_period for the month's last day"
            )

    def raw(self, period: Period, calendar: WorkdayCalendar) -> date:
        first_of_next = period.end.replace(day=1) + relativedelta(months=1)
        return first_of_next.replace(day=self.day)


@dataclass(frozen=True, kw_only=True)
class FixedDate:
    """A one-off deadline on a named day (e.g. "2022年5月底前" → 2022-05-31)."""

    on: date

    def raw(self, period: Period, calendar: WorkdayCalendar) -> date:
        return self.on


MONTH_DAYS = (31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)  # 29 February is refused


def month_day_problem(month: int, day: int) -> str | None:
    """Why (month, day) is not a day every year has, or None when it is."""
    if not 1 <= month <= len(MONTH_DAYS):
        return f"month {month} does not exist; use 1–12"
    if (month, day) == (2, 29):
        return (
            "29 February exists only in leap years; use day: 28 (every year on 02-28) "
            "or month: 3, day: 1"
        )
    last = MONTH_DAYS[month - 1]
    if not 1 <= day <= last:
        return f"month {month} has days 1–{last}, not {day}"
    return None


@dataclass(frozen=True, kw_only=True)
class MonthDay:
    """Due on month `month`, day `day` ("每年6月30日前"): the first such day on or after the
    period's first day. For a yearly period (a calendar year) that is M-D of the period's own
    year, so period 2022 with 02-01 is due 2022-02-01 and 2023 is due 2023-02-01; for a
    year-long RRULE period (FREQ=YEARLY, e.g. from 1 July) it is the first M-D of that year,
    never before the period starts. One date a year: the plan loader refuses it with shorter
    periods (monthly … half_yearly), one-off duties and events, and 29 February."""

    month: int
    day: int

    def __post_init__(self) -> None:
        problem = month_day_problem(self.month, self.day)
        if problem is not None:
            raise ValueError(problem)

    def raw(self, period: Period, calendar: WorkdayCalendar) -> date:
        day = date(period.start.year, self.month, self.day)
        return day if day >= period.start else day.replace(year=day.year + 1)


@dataclass(frozen=True, kw_only=True)
class WorkingDaysAfter:
    """Due `days` Chinese working days after the event ("5个工作日内通报")."""

    days: int

    def raw(self, period: Period, calendar: WorkdayCalendar) -> date:
        return calendar.add_workdays(period.start, self.days)


@dataclass(frozen=True, kw_only=True)
class DaysAfter:
    """Due `days` calendar days after the event."""

    days: int

    def raw(self, period: Period, calendar: WorkdayCalendar) -> date:
        return period.start + timedelta(days=self.days)


@dataclass(frozen=True, kw_only=True)
class MonthsAfter:
    """Due `months` calendar months after the event ("2个月内组织县级评审"); a day that does
    not exist in the target month becomes that month's last day (03-31 + 1 month = 04-30)."""

    months: int

    def raw(self, period: Period, calendar: WorkdayCalendar) -> date:
        return period.start + relativedelta(months=self.months)


DueKind = (
    EndOfPeriod
    | EndOfQuarter
    | EndOfFirstMonth
    | DayOfNextMonth
    | FixedDate
    | MonthDay
    | WorkingDaysAfter
    | DaysAfter
    | MonthsAfter
)
EVENT_RULES = (WorkingDaysAfter, DaysAfter, MonthsAfter)


@dataclass(frozen=True, kw_only=True)
class DueRule:
    """A due rule plus holiday shifting: with `shift` a due day that falls on a weekend or
    holiday moves to the next working day."""

    kind: DueKind
    shift: bool = False

    def due_date(self, period: Period, calendar: WorkdayCalendar) -> date:
        day = self.kind.raw(period, calendar)
        return calendar.next_workday(day) if self.shift else day

    @property
    def needs_event(self) -> bool:
        return isinstance(self.kind, EVENT_RULES)


def end_of_day(day: date, tz: ZoneInfo) -> datetime:
    """The first instant after `day` in `tz`, as an aware UTC datetime."""
    return datetime.combine(day + ONE_DAY, time.min, tzinfo=tz).astimezone(ZoneInfo("UTC"))


def start_of_day(day: date, tz: ZoneInfo) -> datetime:
    return datetime.combine(day, time.min, tzinfo=tz).astimezone(ZoneInfo("UTC"))


def local_date(instant: datetime, tz: ZoneInfo) -> date:
    """The calendar day `instant` falls on in `tz`; refuses naive datetimes."""
    if instant.tzinfo is None:
        raise ValueError(f"{instant.isoformat()} has no time zone; duban needs aware datetimes")
    return instant.astimezone(tz).date()
