"""The embedded scheduler fires each obligation at local midnight of each period start."""

from __future__ import annotations

from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

from duban.domain.due import DueRule, EndOfPeriod
from duban.domain.obligations import Obligation, Selector
from duban.domain.periods import Cadence, CalendarRecurrence
from duban.scheduler import PeriodStartTrigger

TZ = ZoneInfo("Asia/Shanghai")


def quarterly() -> Obligation:
    return Obligation(
        code="q",
        plan="p",
        title="t",
        recurrence=CalendarRecurrence(cadence=Cadence.QUARTERLY),
        due=DueRule(kind=EndOfPeriod()),
        responsible=(Selector(org="x"),),
        valid_from=date(2022, 4, 1),
        valid_until=date(2023, 4, 30),
    )


def fires(trigger: PeriodStartTrigger, now: datetime) -> list[datetime]:
    out, previous = [], None
    while (nxt := trigger.get_next_fire_time(previous, now)) is not None:
        out.append(nxt.astimezone(TZ))
        previous = nxt
    return out


def test_fires_at_each_quarter_start_in_local_time():
    got = fires(PeriodStartTrigger(quarterly(), TZ), datetime(2022, 1, 1, tzinfo=UTC))
    assert [f.date() for f in got] == [
        date(2022, 4, 1),
        date(2022, 7, 1),
        date(2022, 10, 1),
        date(2023, 1, 1),
    ]
    assert all((f.hour, f.minute) == (0, 0) for f in got)


def test_after_the_window_there_is_nothing_left_to_fire():
    trigger = PeriodStartTrigger(quarterly(), TZ)
    assert trigger.get_next_fire_time(None, datetime(2023, 2, 1, tzinfo=UTC)) is None


def test_starting_mid_period_fires_next_at_the_following_period():
    trigger = PeriodStartTrigger(quarterly(), TZ)
    nxt = trigger.get_next_fire_time(None, datetime(2022, 5, 1, tzinfo=UTC))
    assert nxt is not None and nxt.astimezone(TZ).date() == date(2022, 7, 1)
