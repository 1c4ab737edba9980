"""Yearly deadlines on a month and day (issue 17): `due: {kind: month_day, month, day}`, across
plan years, and the plan checks that refuse `date` on a recurring duty and month_day where
one day a year cannot serve."""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from duban.catalog.loader import load_catalog
from duban.domain.due import MONTH_DAYS, DueRule, MonthDay
from duban.domain.periods import Cadence, CalendarRecurrence, RRuleRecurrence
from duban.errors import PlanError
from tests.conftest import FIXTURES

PLAN = (FIXTURES / "mini-plan.yaml").read_text(encoding="utf-8")
ORGS = FIXTURES / "mini-orgs.yaml"
DRILL = "    recurrence: {kind: quarterly}\n    due: {kind: end_of_period}"

month_days = st.integers(min_value=1, max_value=12).flatmap(
    lambda m: st.tuples(st.just(m), st.integers(min_value=1, max_value=MONTH_DAYS[m - 1]))
)


def plan_with(recurrence: str, due: str, window: str | None = None) -> str:
    text = PLAN.replace(DRILL, f"    recurrence: {recurrence}\n    due: {due}")
    if window is not None:
        text = text.replace("valid: {from: 2022-04-01, until: 2023-04-30}", window)
    return text


def load(tmp_path: Path, calendar, text: str):
    path = tmp_path / "plan.yaml"
    path.write_text(text, encoding="utf-8")
    return load_catalog([path], [ORGS], calendar)


def problems(tmp_path: Path, calendar, text: str) -> list[str]:
    with pytest.raises(PlanError) as caught:
        load(tmp_path, calendar, text)
    return [str(p).replace(str(tmp_path / "plan.yaml"), "plan.yaml") for p in caught.value.problems]


def line_of(text: str, needle: str) -> int:
    return next(i for i, line in enumerate(text.splitlines(), 1) if needle in line)


def test_a_yearly_duty_on_1_february_is_due_each_plan_year_on_its_own_1_february(
    tmp_path, calendar
):
    text = plan_with(
        "{kind: yearly}",
        "{kind: month_day, month: 2, day: 1}",
        "valid: {from: 2022-01-01, until: 2025-12-31}",
    )
    ob = load(tmp_path, calendar, text).obligations[0].domain
    assert [(p.key, ob.due_date(p, calendar)) for p in ob.periods()] == [
        ("2022", date(2022, 2, 1)),
        ("2023", date(2023, 2, 1)),
        ("2024", date(2024, 2, 1)),
        ("2025", date(2025, 2, 1)),
    ]


def test_every_30_june_with_a_holiday_shift_across_plan_years(tmp_path, calendar):
    text = plan_with(
        "{kind: yearly}",
        "{kind: month_day, month: 6, day: 30, shift: next_working_day}",
        "valid: {from: 2022-01-01, until: 2024-12-31}",
    )
    ob = load(tmp_path, calendar, text).obligations[0].domain
    # 2023-06-30 is a Friday; 2024-06-30 a Sunday, shifted to Monday 2024-07-01
    assert [ob.due_date(p, calendar) for p in ob.periods()] == [
        date(2022, 6, 30),
        date(2023, 6, 30),
        date(2024, 7, 1),
    ]


def test_a_plan_year_from_1_july_is_due_on_the_first_30_june_of_its_year(tmp_path, calendar):
    text = plan_with(
        "{kind: rrule, rule: 'FREQ=YEARLY', dtstart: 2022-07-01}",
        "{kind: month_day, month: 6, day: 30}",
        "valid: {from: 2022-07-01, until: 2024-06-30}",
    )
    ob = load(tmp_path, calendar, text).obligations[0].domain
    assert [(p.key, ob.due_date(p, calendar)) for p in ob.periods()] == [
        ("R2022-07-01", date(2023, 6, 30)),
        ("R2023-07-01", date(2024, 6, 30)),
    ]


@given(md=month_days, first=st.integers(min_value=2000, max_value=2090))
def test_a_yearly_month_day_lies_in_the_period_s_own_year_and_never_before_it(md, first):
    month, day = md
    rule = DueRule(kind=MonthDay(month=month, day=day))
    years = CalendarRecurrence(cadence=Cadence.YEARLY)
    periods = list(years.periods(date(first, 1, 1), date(first + 5, 12, 31)))
    assert len(periods) == 6
    for period in periods:
        due = rule.due_date(period, None)  # type: ignore[arg-type]  # no shift: no calendar
        assert due == date(int(period.key), month, day)
        assert period.start <= due <= period.end


@given(
    md=month_days,
    start=st.dates(min_value=date(2000, 1, 1), max_value=date(2090, 12, 31)),
)
def test_a_year_long_rrule_period_is_due_within_its_first_year(md, start):
    month, day = md
    if (start.month, start.day) == (2, 29):
        start -= timedelta(days=1)
    rule = DueRule(kind=MonthDay(month=month, day=day))
    recurrence = RRuleRecurrence(rule="FREQ=YEARLY", dtstart=start)
    for period in recurrence.periods(start, start.replace(year=start.year + 4)):
        due = rule.due_date(period, None)  # type: ignore[arg-type]
        assert (due.month, due.day) == (month, day)
        assert period.start <= due <= period.end


def test_29_february_and_days_a_month_lacks_are_refused(tmp_path, calendar):
    leap = plan_with("{kind: yearly}", "{kind: month_day, month: 2, day: 29}")
    assert problems(tmp_path, calendar, leap) == [
        f"plan.yaml:{line_of(leap, 'month_day')} [obligations.0.due]: Value error, 29 February "
        "exists only in leap years; use day: 28 (every year on 02-28) or month: 3, day: 1"
    ]
    april = plan_with("{kind: yearly}", "{kind: month_day, month: 4, day: 31}")
    assert problems(tmp_path, calendar, april) == [
        f"plan.yaml:{line_of(april, 'month_day')} [obligations.0.due]: Value error, month 4 "
        "has days 1–30, not 31"
    ]
    with pytest.raises(ValueError, match="29 February exists only in leap years"):
        MonthDay(month=2, day=29)


def test_date_on_a_recurring_duty_is_refused_with_the_rule_to_use(tmp_path, calendar):
    bad = plan_with("{kind: yearly}", "{kind: date, on: 2022-06-30}")
    assert problems(tmp_path, calendar, bad) == [
        f"plan.yaml:{line_of(bad, 'kind: date')} [obligations.0.due.kind]: due kind: date "
        "names one day, but this duty recurs (recurrence kind: yearly): every period would be "
        "due on 2022-06-30; use kind: month_day, month: 6, day: 30 (every year on 06-30) or "
        "recurrence: once"
    ]


def test_month_day_on_a_quarterly_duty_is_refused_with_the_rules_to_use(tmp_path, calendar):
    bad = plan_with("{kind: quarterly}", "{kind: month_day, month: 6, day: 30}")
    assert problems(tmp_path, calendar, bad) == [
        f"plan.yaml:{line_of(bad, 'month_day')} [obligations.0.due.kind]: due kind: month_day "
        "gives one day a year, but a quarterly duty has 4 periods a year, most of which it "
        "would fall outside; use end_of_period, end_of_quarter or day_of_next_month, or "
        "recurrence: yearly"
    ]


def test_month_day_with_half_year_rrule_periods_is_refused(tmp_path, calendar):
    bad = plan_with(
        "{kind: rrule, rule: 'FREQ=YEARLY;BYMONTH=1,7;BYMONTHDAY=1', dtstart: 2022-01-01}",
        "{kind: month_day, month: 6, day: 30}",
    )
    assert problems(tmp_path, calendar, bad) == [
        f"plan.yaml:{line_of(bad, 'month_day')} [obligations.0.due]: period R2022-07-01 "
        "(2022-07-01..2022-12-31) would be due 2023-06-30, after it ends: month_day needs "
        "periods a year long (recurrence: yearly, or an RRULE with FREQ=YEARLY)"
    ]


def test_a_month_day_before_the_window_starts_is_refused(tmp_path, calendar):
    bad = plan_with("{kind: yearly}", "{kind: month_day, month: 2, day: 1}")
    assert problems(tmp_path, calendar, bad) == [
        f"plan.yaml:{line_of(bad, 'month_day')} [obligations.0.due]: period 2022 would be due "
        "2022-02-01, before the duty's window starts (2022-04-01): it would be overdue before "
        "it is in force; let the window start later (valid: from) or choose a later day"
    ]
