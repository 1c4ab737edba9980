"""Periods, recurrences and due rules."""

from __future__ import annotations

import itertools
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from duban.domain.due import (
    DayOfNextMonth,
    DueRule,
    EndOfPeriod,
    EndOfQuarter,
    MonthsAfter,
    WorkingDaysAfter,
    end_of_day,
)
from duban.domain.periods import (
    Cadence,
    CalendarRecurrence,
    Period,
    RRuleRecurrence,
    calendar_period,
    event_period,
)
from duban.engine.stats import DUE_AT_MARGIN

any_day = st.dates(min_value=date(2000, 1, 1), max_value=date(2099, 12, 31))
cadences = st.sampled_from(list(Cadence))


@given(day=any_day, cadence=cadences)
def test_the_period_of_a_day_contains_it_and_has_the_cadence_length(day, cadence):
    period = calendar_period(cadence, day)
    assert period.contains(day)
    assert period.start.day == 1 and (period.start.month - 1) % cadence.months == 0
    assert (period.end + timedelta(days=1)).day == 1  # ends on a month's last day
    months = (period.end.year - period.start.year) * 12 + period.end.month - period.start.month
    assert months + 1 == cadence.months


@given(start=any_day, length=st.integers(min_value=0, max_value=800), cadence=cadences)
def test_periods_tile_the_window_without_gaps_or_overlaps(start, length, cadence):
    end = start + timedelta(days=length)
    periods = list(CalendarRecurrence(cadence=cadence).periods(start, end))
    for a, b in itertools.pairwise(periods):
        assert b.start == a.end + timedelta(days=1)
    assert all(start <= p.end <= end for p in periods)
    assert len({p.key for p in periods}) == len(periods)


@pytest.mark.parametrize(
    ("cadence", "day", "key", "start", "end"),
    [
        (Cadence.MONTHLY, date(2022, 2, 14), "2022-02", date(2022, 2, 1), date(2022, 2, 28)),
        (Cadence.BIMONTHLY, date(2022, 6, 30), "2022-B3", date(2022, 5, 1), date(2022, 6, 30)),
        (Cadence.QUARTERLY, date(2022, 4, 1), "2022-Q2", date(2022, 4, 1), date(2022, 6, 30)),
        (Cadence.QUARTERLY, date(2022, 3, 31), "2022-Q1", date(2022, 1, 1), date(2022, 3, 31)),
        (Cadence.HALF_YEARLY, date(2022, 7, 1), "2022-H2", date(2022, 7, 1), date(2022, 12, 31)),
        (Cadence.YEARLY, date(2024, 2, 29), "2024", date(2024, 1, 1), date(2024, 12, 31)),
    ],
)
def test_calendar_periods_on_both_sides_of_their_boundaries(cadence, day, key, start, end):
    assert calendar_period(cadence, day) == Period(start=start, end=end, key=key)


def test_window_owes_the_periods_that_end_inside_it():
    window = (date(2022, 4, 1), date(2023, 4, 30))
    keys = [p.key for p in CalendarRecurrence(cadence=Cadence.HALF_YEARLY).periods(*window)]
    assert keys == ["2022-H1", "2022-H2"]
    keys = [p.key for p in CalendarRecurrence(cadence=Cadence.QUARTERLY).periods(*window)]
    assert keys == ["2022-Q2", "2022-Q3", "2022-Q4", "2023-Q1"]


def test_rrule_periods_run_until_the_next_occurrence():
    rule = RRuleRecurrence(rule="FREQ=WEEKLY;INTERVAL=2;BYDAY=MO", dtstart=date(2022, 4, 4))
    periods = list(rule.periods(date(2022, 4, 1), date(2022, 5, 15)))
    assert [(p.key, p.start, p.end) for p in periods] == [
        ("R2022-04-04", date(2022, 4, 4), date(2022, 4, 17)),
        ("R2022-04-18", date(2022, 4, 18), date(2022, 5, 1)),
        ("R2022-05-02", date(2022, 5, 2), date(2022, 5, 15)),
    ]


def test_invalid_rrule_fails_at_construction():
    with pytest.raises(ValueError, match="FREQ"):
        RRuleRecurrence(rule="FREQ=SOMETIMES", dtstart=date(2022, 1, 1))


def test_monthly_report_for_june_is_due_on_july_fifth(calendar):
    june = calendar_period(Cadence.MONTHLY, date(2022, 6, 1))
    assert DueRule(kind=DayOfNextMonth(day=5)).due_date(june, calendar) == date(2022, 7, 5)
    december = calendar_period(Cadence.MONTHLY, date(2022, 12, 1))
    assert DueRule(kind=DayOfNextMonth(day=5)).due_date(december, calendar) == date(2023, 1, 5)


def test_day_31_of_next_month_is_refused():
    with pytest.raises(ValueError, match="day 31 does not exist in every month"):
        DayOfNextMonth(day=31)


def test_quarterly_duty_is_due_on_the_last_day_of_its_quarter(calendar):
    q3 = calendar_period(Cadence.QUARTERLY, date(2022, 8, 1))
    assert DueRule(kind=EndOfPeriod()).due_date(q3, calendar) == date(2022, 9, 30)
    # Annex 5: the quarter's last month's end, also for a monthly period inside it
    august = calendar_period(Cadence.MONTHLY, date(2022, 8, 1))
    assert DueRule(kind=EndOfQuarter()).due_date(august, calendar) == date(2022, 9, 30)


def test_shift_moves_a_holiday_due_date_to_the_next_working_day(calendar):
    q3 = calendar_period(Cadence.QUARTERLY, date(2022, 8, 1))
    # 2022-09-30 is a Friday and a working day: no shift
    assert DueRule(kind=EndOfPeriod(), shift=True).due_date(q3, calendar) == date(2022, 9, 30)
    q4 = calendar_period(Cadence.QUARTERLY, date(2022, 12, 1))
    # 2022-12-31 is a Saturday and 2023-01-01..02 New Year: shifted to Tuesday 2023-01-03
    assert DueRule(kind=EndOfPeriod(), shift=True).due_date(q4, calendar) == date(2023, 1, 3)
    assert DueRule(kind=EndOfPeriod()).due_date(q4, calendar) == date(2022, 12, 31)


@pytest.mark.parametrize(
    ("occurred", "months", "due"),
    [
        (date(2022, 3, 31), 2, date(2022, 5, 31)),
        (date(2022, 12, 31), 2, date(2023, 2, 28)),
        (date(2023, 12, 31), 2, date(2024, 2, 29)),
        (date(2022, 1, 31), 1, date(2022, 2, 28)),
    ],
)
def test_calendar_months_after_an_event_clamp_to_month_end(calendar, occurred, months, due):
    period = event_period(1, occurred)
    assert DueRule(kind=MonthsAfter(months=months)).due_date(period, calendar) == due


@given(
    day=st.dates(min_value=date(2018, 1, 1), max_value=date(2026, 9, 30)),
    n=st.integers(min_value=1, max_value=40),
)
def test_working_days_after_an_event_are_exactly_n_working_days(calendar, day, n):
    due = DueRule(kind=WorkingDaysAfter(days=n)).due_date(event_period(1, day), calendar)
    assert calendar.is_workday(due)
    assert calendar.workdays_between(day, due) == n


@given(
    day=any_day,
    zone=st.sampled_from(["Asia/Shanghai", "Pacific/Kiritimati", "Etc/GMT+12", "UTC"]),
)
def test_a_due_instant_lies_within_the_margin_the_ranking_narrows_by(day, zone):
    """stats.ranking bounds overdue tasks by due instant as well as due day, so the index
    scan starts at the window: every due instant materialize sets (the end of the due day in
    the site's zone) must lie within DUE_AT_MARGIN of that day's UTC midnight."""
    midnight = datetime.combine(day, time(), UTC)
    due_at = end_of_day(day, ZoneInfo(zone))
    assert midnight - DUE_AT_MARGIN <= due_at <= midnight + DUE_AT_MARGIN
