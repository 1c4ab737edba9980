"""The RRULE each duty's Prefect deployment runs on fires exactly at its period openings.

Pure: no Prefect server (flows.schedules imports no Prefect), so these run without the extra.
"""

from __future__ import annotations

import subprocess
import sys
from datetime import date
from zoneinfo import ZoneInfo

import pytest

from duban.catalog.loader import Catalog
from duban.domain.due import DueRule, EndOfPeriod
from duban.domain.obligations import Obligation, Selector
from duban.domain.periods import (
    Cadence,
    CalendarRecurrence,
    EventRecurrence,
    Recurrence,
    RRuleRecurrence,
)
from duban.scheduler import PeriodStartTrigger
from flows.schedules import duty_schedule, occurrences, period_openings

TZ = ZoneInfo("Asia/Shanghai")


def duty(recurrence: Recurrence, start: date, until: date) -> Obligation:
    return Obligation(
        code="d",
        plan="p",
        title="t",
        recurrence=recurrence,
        due=DueRule(kind=EndOfPeriod()),
        responsible=(Selector(org="x"),),
        valid_from=start,
        valid_until=until,
    )


def test_every_bundled_duty_fires_exactly_when_duban_run_would(catalog: Catalog) -> None:
    periodic = [lo.domain for lo in catalog.obligations if lo.domain.event is None]
    assert periodic
    for ob in periodic:
        schedule = duty_schedule(ob, TZ)
        assert schedule is not None
        starts = sorted(PeriodStartTrigger(ob, TZ).starts)
        assert occurrences(schedule) == starts, ob.code
        assert schedule.timezone == "Asia/Shanghai"


def test_the_rule_has_a_local_dtstart_and_until_and_never_count() -> None:
    half = duty(
        CalendarRecurrence(cadence=Cadence.HALF_YEARLY), date(2022, 4, 1), date(2023, 4, 30)
    )
    schedule = duty_schedule(half, TZ)
    assert schedule is not None
    # 2022-H1 opens before the plan; 2023-H1 opens before it ends but is not owed
    assert schedule.rrule == (
        "DTSTART:20220101T000000\nRRULE:FREQ=MONTHLY;INTERVAL=6;UNTIL=20220701T000000"
    )
    assert "COUNT" not in schedule.rrule


@pytest.mark.parametrize(
    ("cadence", "rule"),
    [
        (Cadence.MONTHLY, "FREQ=MONTHLY;INTERVAL=1;UNTIL=20230401T000000"),
        (Cadence.BIMONTHLY, "FREQ=MONTHLY;INTERVAL=2;UNTIL=20230301T000000"),
        (Cadence.QUARTERLY, "FREQ=MONTHLY;INTERVAL=3;UNTIL=20230101T000000"),
        (Cadence.YEARLY, "FREQ=YEARLY;UNTIL=20220101T000000"),
    ],
)
def test_calendar_cadences_are_monthly_or_yearly_rules(cadence: Cadence, rule: str) -> None:
    ob = duty(CalendarRecurrence(cadence=cadence), date(2022, 4, 1), date(2023, 4, 30))
    schedule = duty_schedule(ob, TZ)
    assert schedule is not None and schedule.rrule.split("\n")[1] == f"RRULE:{rule}"


def test_a_plans_own_rrule_keeps_its_rhythm_and_loses_its_count() -> None:
    rule = RRuleRecurrence(
        rule="FREQ=WEEKLY;INTERVAL=2;BYDAY=MO;COUNT=50", dtstart=date(2022, 1, 3)
    )
    ob = duty(rule, date(2022, 4, 1), date(2022, 6, 30))
    schedule = duty_schedule(ob, TZ)
    assert schedule is not None
    assert "COUNT" not in schedule.rrule
    assert occurrences(schedule) == period_openings(ob, TZ)
    assert [t.date() for t in occurrences(schedule)][:2] == [date(2022, 3, 28), date(2022, 4, 11)]


def test_an_event_duty_has_no_schedule() -> None:
    ob = duty(EventRecurrence(event="maternal-death"), date(2022, 4, 1), date(2023, 4, 30))
    assert duty_schedule(ob, TZ) is None


def test_duban_works_without_prefect_installed() -> None:
    """The console script does not import Prefect until `duban prefect …` is run."""
    code = "import sys, duban.cli.main, flows.schedules; assert 'prefect' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)
