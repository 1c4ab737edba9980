"""The ladder's days: which step a task is on, on a given day."""

from __future__ import annotations

from datetime import date, timedelta

from hypothesis import given
from hypothesis import strategies as st

from duban.domain.ladder import REMINDER, Ladder, current_ranges, is_current

CATCHUP = timedelta(days=14)
LADDER = Ladder.build(before=[7, 1, 0], to="duty", escalation=[(1, "head"), (5, "mch-section")])


def _reminders():  # type: ignore[no-untyped-def]
    return [s for s in LADDER.steps if s.kind == REMINDER]


def test_the_due_day_reminder_of_a_saturday_deadline_goes_out_on_friday(calendar):
    due_day = next(s for s in LADDER.steps if s.kind == REMINDER and s.offset == 0)
    # Saturday 2022-07-09 (no swap): the reminder goes out on Friday 07-08
    assert due_day.moment(date(2022, 7, 9), calendar) == date(2022, 7, 8)
    # 2022-10-03, a National Day holiday: the last working day before is Friday 09-30
    assert due_day.moment(date(2022, 10, 3), calendar) == date(2022, 9, 30)
    # a swapped Saturday (2022-10-08) is a working day: on the day itself
    assert due_day.moment(date(2022, 10, 8), calendar) == date(2022, 10, 8)


def test_on_a_saturday_deadline_the_due_day_reminder_is_the_one_current_on_friday(calendar):
    saturday, friday = date(2022, 7, 9), date(2022, 7, 8)
    seq = next(s for s in LADDER.sequences() if s[0].kind == REMINDER)
    current = [
        step.offset
        for i, step in enumerate(seq)
        if is_current(
            step, seq[i + 1] if i + 1 < len(seq) else None, saturday, friday, calendar, CATCHUP
        )
    ]
    assert current == [0]  # not the 1-day reminder: Friday is the due day's working eve


@given(st.dates(min_value=date(2018, 2, 1), max_value=date(2030, 11, 30)))
def test_every_reminder_moment_is_a_working_day_on_or_before_the_due_date(calendar, due):
    for step in _reminders():
        moment = step.moment(due, calendar)
        assert calendar.is_workday(moment) and moment <= due


@given(st.dates(min_value=date(2018, 3, 1), max_value=date(2030, 10, 31)))
def test_the_ranges_agree_with_the_step_by_step_rule(calendar, today):
    sequences = list(LADDER.sequences())
    for step, first, last in current_ranges(LADDER, today, calendar, CATCHUP):
        seq = next(s for s in sequences if step in s)
        i = seq.index(step)
        following = seq[i + 1] if i + 1 < len(seq) else None
        assert is_current(step, following, first, today, calendar, CATCHUP)
        assert is_current(step, following, last, today, calendar, CATCHUP)
        assert not is_current(step, following, first - timedelta(days=1), today, calendar, CATCHUP)
        assert not is_current(step, following, last + timedelta(days=1), today, calendar, CATCHUP)
