"""Cross-checks the bundled calendar/*.yaml against maintained references.

`chinese_calendar` knows every working day, holiday and swapped workday; python-holidays
knows the public holidays. The bundled data must agree with both for every covered day.
"""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

import chinese_calendar
import holidays
import pytest
import yaml

from duban.catalog.calendar import load_calendar, load_calendar_file
from duban.domain.workdays import WorkdayCalendar
from duban.errors import CalendarYearMissing

CALENDAR_DIR = Path(__file__).resolve().parents[2] / "calendar"
FIRST_YEAR, LAST_YEAR = 2018, 2026
YEARS = range(FIRST_YEAR, LAST_YEAR + 1)


@pytest.fixture(scope="module")
def cal() -> WorkdayCalendar:
    return load_calendar(CALENDAR_DIR)


def test_every_day_2018_to_2026_matches_chinese_calendar(cal: WorkdayCalendar) -> None:
    day, last = date(FIRST_YEAR, 1, 1), date(LAST_YEAR, 12, 31)
    mismatches: list[str] = []
    while day <= last:
        ours, theirs = cal.is_workday(day), chinese_calendar.is_workday(day)
        if ours != theirs:
            mismatches.append(f"{day} ({day:%a}): ours={ours} chinese_calendar={theirs}")
        day += timedelta(days=1)
    assert not mismatches, f"{len(mismatches)} mismatching days, first: {mismatches[:5]}"


@pytest.fixture(scope="module")
def public_holidays() -> holidays.HolidayBase:
    return holidays.China(years=YEARS)


@pytest.mark.parametrize("year", YEARS)
def test_every_python_holidays_public_holiday_is_a_day_off(
    cal: WorkdayCalendar, public_holidays: holidays.HolidayBase, year: int
) -> None:
    # python-holidays lists single days, not whole ranges: a subset check.
    listed = {d: name for d, name in public_holidays.items() if d.year == year}
    assert listed, f"python-holidays lists nothing for {year}"
    working = sorted(f"{d} {name}" for d, name in listed.items() if cal.is_workday(d))
    assert not working, f"{year}: public holidays our data treats as working days: {working}"


def test_covered_years_are_exactly_2018_to_2026(cal: WorkdayCalendar) -> None:
    assert sorted(cal.years) == list(YEARS)


@pytest.mark.parametrize("year", YEARS)
def test_each_year_file_cites_its_own_notice(year: int) -> None:
    path = CALENDAR_DIR / f"{year}.yaml"
    assert load_calendar_file(path).years == {year}
    notice = str(yaml.safe_load(path.read_text(encoding="utf-8")).get("notice") or "").strip()
    assert notice, f"{path.name} has an empty notice"
    assert f"{year}年" in notice, f"{path.name} notice does not mention {year}: {notice}"


@pytest.mark.parametrize(
    ("day", "working"),
    [
        (date(2022, 10, 8), True),  # swapped Saturday after National Day
        (date(2022, 10, 9), True),  # swapped Sunday after National Day
        (date(2022, 10, 3), False),
        (date(2020, 2, 1), False),  # swapped Saturday, then made a holiday by the extension
        (date(2019, 12, 31), True),
        (date(2024, 2, 4), True),  # swapped Sunday before the Spring Festival
        (date(2024, 2, 18), True),  # swapped Sunday after the Spring Festival
    ],
)
def test_hand_checked_anchor_days(cal: WorkdayCalendar, day: date, working: bool) -> None:
    assert cal.is_workday(day) is working


def test_five_workdays_after_2022_09_28_skip_national_day(cal: WorkdayCalendar) -> None:
    assert cal.add_workdays(date(2022, 9, 28), 5) == date(2022, 10, 10)
    assert cal.workdays_between(date(2022, 9, 28), date(2022, 10, 10)) == 5


def test_a_year_before_the_first_file_is_refused_naming_the_setting(cal: WorkdayCalendar) -> None:
    with pytest.raises(CalendarYearMissing) as excinfo:
        cal.is_workday(date(FIRST_YEAR - 1, 12, 29))
    assert str(excinfo.value) == (
        "the working-day calendar does not cover 2017: add 2017.yaml to a folder named by the "
        "calendar_dir setting (DUBAN_CALENDAR_DIR) with that year's official holidays and "
        "swapped workdays (国务院办公厅 notice; `duban calendar import NOTICE.txt` writes it), "
        "then retry"
    )
    assert "site-packages" not in str(excinfo.value) and "_bundled" not in str(excinfo.value)


def test_the_year_after_the_last_file_is_provisional_not_missing(cal: WorkdayCalendar) -> None:
    assert not cal.is_provisional(date(LAST_YEAR, 12, 31))
    assert cal.is_provisional(date(LAST_YEAR + 1, 1, 4))
    assert cal.is_workday(date(LAST_YEAR + 1, 1, 4))  # a Monday, no holiday
    assert cal.add_workdays(date(2026, 12, 31), 5) == date(2027, 1, 8)  # 01-01 off
