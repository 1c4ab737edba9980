"""Working-day arithmetic: properties over the whole covered range, and its edges."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from duban.domain.workdays import WorkdayCalendar
from duban.errors import CalendarError, CalendarYearMissing

# leave room for a 60-working-day step to stay inside the covered years (2018–2026)
days = st.dates(min_value=date(2018, 1, 1), max_value=date(2026, 9, 30))
steps = st.integers(min_value=0, max_value=60)


@given(day=days, n=st.integers(min_value=1, max_value=60))
def test_adding_working_days_lands_on_a_working_day(calendar, day, n):
    assert calendar.is_workday(calendar.add_workdays(day, n))


@given(day=days, n=steps)
def test_counting_back_recovers_n(calendar, day, n):
    assert calendar.workdays_between(day, calendar.add_workdays(day, n)) == n


@given(day=days.filter(lambda d: d >= date(2018, 4, 1)), n=steps)
def test_subtracting_from_a_working_day_inverts_adding(calendar, day, n):
    start = calendar.next_workday(day)
    assert calendar.add_workdays(calendar.add_workdays(start, -n), n) == start


@given(day=days)
def test_shifting_is_idempotent_and_never_moves_backwards(calendar, day):
    shifted = calendar.next_workday(day)
    assert shifted >= day
    assert calendar.next_workday(shifted) == shifted
    # nothing between day and shifted is a working day
    assert all(
        not calendar.is_workday(day + timedelta(days=i)) for i in range((shifted - day).days)
    )


@given(a=days, b=days)
def test_count_is_antisymmetric(calendar, a, b):
    assert calendar.workdays_between(a, b) == -calendar.workdays_between(b, a)


@pytest.mark.parametrize(
    ("start", "n", "expected"),
    [
        (date(2022, 9, 28), 5, date(2022, 10, 10)),  # National Day; 10-08 and 10-09 swapped in
        (date(2022, 9, 30), 1, date(2022, 10, 8)),  # the swapped Saturday is the first working day
        (date(2023, 1, 20), 1, date(2023, 1, 28)),  # Spring Festival 01-21..27; Saturday 28 works
        (date(2022, 6, 1), 0, date(2022, 6, 1)),
        (date(2022, 10, 10), -5, date(2022, 9, 28)),
    ],
)
def test_add_workdays_across_holidays(calendar, start, n, expected):
    assert calendar.add_workdays(start, n) == expected


def test_uncovered_year_is_an_error_naming_the_year_and_the_file(calendar):
    with pytest.raises(CalendarYearMissing, match=r"does not cover 2017: add 2017\.yaml"):
        calendar.add_workdays(date(2018, 1, 3), -5)


def test_counting_runs_on_into_a_year_without_a_notice(calendar):
    # 2026-12-31 + 5 working days: 2027-01-01 is 元旦 by the law; no swapped days are guessed
    assert calendar.add_workdays(date(2026, 12, 31), 5) == date(2027, 1, 8)
    assert calendar.is_provisional(date(2027, 1, 8)) and not calendar.is_provisional(
        date(2026, 12, 31)
    )


def test_weekday_cannot_be_a_swapped_workday():
    with pytest.raises(CalendarError, match="2022-10-10 is a Monday; only a Saturday or Sunday"):
        WorkdayCalendar(years=frozenset({2022}), workdays=frozenset({date(2022, 10, 10)}))


def test_a_day_cannot_be_both_holiday_and_workday():
    day = date(2022, 10, 8)
    with pytest.raises(CalendarError, match="2022-10-08 is listed both"):
        WorkdayCalendar(
            years=frozenset({2022}), holidays=frozenset({day}), workdays=frozenset({day})
        )
