"""The provisional calendar (a year without its State Council notice) against python-holidays.

python-holidays computes China's statutory holidays and their 补假 from its own lunisolar
tables; duban computes them with lunar_python. For years past the last notice either knows,
the two must give the same days off, day by day.
"""

from __future__ import annotations

from datetime import date, timedelta

import holidays
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from duban.catalog.provisional import LAW_IN_FORCE_FROM, StatutoryYears, statutory_days
from duban.domain.workdays import SATURDAY, WorkdayCalendar
from duban.errors import CalendarYearMissing

# years python-holidays 0.60+ holds no notice for: its days are the law's alone
FUTURE_YEARS = range(2027, 2041)


def _days_off_by_holidays(year: int) -> set[date]:
    return set(holidays.China(years=year))


@pytest.mark.parametrize("year", FUTURE_YEARS)
def test_statutory_days_match_python_holidays(year: int) -> None:
    ours = {h.day for h in statutory_days(year)}
    theirs = _days_off_by_holidays(year)
    assert (sorted(ours - theirs), sorted(theirs - ours)) == ([], []), year


def test_2027_by_the_law() -> None:
    days = {h.day: (h.name, h.made_up) for h in statutory_days(2027)}
    # 春节: 除夕 Fri 02-05, 初一..初三 Sat 02-06 .. Mon 02-08; Sat and Sun made up Tue and Wed
    assert days[date(2027, 2, 5)] == ("春节", False)
    assert days[date(2027, 2, 9)] == ("春节", True) and days[date(2027, 2, 10)] == ("春节", True)
    assert days[date(2027, 4, 5)] == ("清明节", False)
    assert days[date(2027, 6, 9)] == ("端午节", False)
    assert days[date(2027, 9, 15)] == ("中秋节", False)
    assert len(days) == 19


def test_provisional_years_have_no_swapped_workdays() -> None:
    cal = WorkdayCalendar(years=frozenset(), provisional=StatutoryYears())
    day = date(2027, 1, 1)
    while day.year == 2027:
        if day.weekday() >= SATURDAY:
            assert not cal.is_workday(day), day
        day += timedelta(days=1)


def test_years_before_the_law_are_not_guessed() -> None:
    cal = WorkdayCalendar(years=frozenset(), provisional=StatutoryYears())
    with pytest.raises(CalendarYearMissing):
        cal.is_workday(date(LAW_IN_FORCE_FROM - 1, 6, 3))


@given(st.integers(min_value=2027, max_value=2100))
def test_every_provisional_year_has_the_laws_thirteen_days(year: int) -> None:
    days = statutory_days(year)
    festivals = [h for h in days if not h.made_up]
    # 13 days by article 2, fewer only where two festivals fall on one day (中秋 in 国庆)
    assert 12 <= len(festivals) <= 13
    assert all(h.day.year == year for h in days)
    made_up = [h for h in days if h.made_up]
    assert all(h.day.weekday() < SATURDAY for h in made_up)
    weekend_days = {h.day for h in festivals if h.day.weekday() >= SATURDAY}
    assert len(made_up) >= len(weekend_days)


@given(
    st.dates(min_value=date(2027, 1, 1), max_value=date(2099, 12, 1)),
    st.integers(min_value=-40, max_value=40),
)
def test_working_day_arithmetic_round_trips_over_provisional_years(day: date, n: int) -> None:
    cal = WorkdayCalendar(years=frozenset(), provisional=StatutoryYears())
    assume(n >= 0 or cal.is_workday(day))  # (start, end] counts from a working day backwards
    moved = cal.add_workdays(day, n)
    assert cal.workdays_between(day, moved) == n
    if n:
        assert cal.is_workday(moved)
