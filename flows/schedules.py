"""When each duty's periods open, written as the RRULE a Prefect deployment schedule runs on.

The openings are the embedded scheduler's (`duban.scheduler.PeriodStartTrigger`): local
midnight on the first day of every period the plan owes. They are computed there once; this
module only writes them as an RFC 5545 rule Prefect understands, and proves the rule says the
same thing before anyone deploys it:

- `DTSTART` is the first opening in local time (naive, no `Z`): Prefect reads a naive DTSTART
  in the schedule's `timezone` (Asia/Shanghai). A rule without DTSTART would iterate from 2020
  on every scheduler pass.
- `UNTIL` is the last opening the plan owes, also local: with the plan's last day instead, a
  half-year that starts before the plan ends but ends after it (and so is not owed) would
  still fire. Prefect rejects `COUNT`, so the rule never uses it.
- Calendar cadences (monthly … yearly) become `FREQ=MONTHLY;INTERVAL=n` or `FREQ=YEARLY`; a
  plan's own RRULE is kept, re-anchored at the first opening. If a rule's occurrences still
  differ from the openings (an unusual RRULE cut by the plan window), `RDATE`/`EXDATE` lines
  make them equal, so the schedule can never disagree with the engine.

Pure: no Prefect import, no database.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from dateutil.rrule import rruleset, rrulestr

from duban.domain.obligations import Obligation
from duban.domain.periods import Cadence, CalendarRecurrence, RRuleRecurrence
from duban.scheduler import PeriodStartTrigger

LOCAL = "%Y%m%dT%H%M%S"
MONTHS_PER_YEAR = 12


@dataclass(frozen=True, kw_only=True)
class DutySchedule:
    """A Prefect RRULE schedule: the rule text and the IANA zone its naive times are in."""

    rrule: str
    timezone: str


def period_openings(ob: Obligation, tz: ZoneInfo) -> list[datetime]:
    """Aware local midnights at which the duty's periods open, as `duban run` fires them."""
    return [t.astimezone(tz) for t in PeriodStartTrigger(ob, tz).starts]


def _local(moment: datetime) -> str:
    return moment.replace(tzinfo=None).strftime(LOCAL)


def _base_rule(ob: Obligation, first: datetime, last: datetime) -> str:
    recurrence = ob.recurrence
    until = f"UNTIL={_local(last)}"
    if isinstance(recurrence, CalendarRecurrence):
        if recurrence.cadence is Cadence.YEARLY:
            return f"FREQ=YEARLY;{until}"
        return f"FREQ=MONTHLY;INTERVAL={recurrence.cadence.months};{until}"
    if isinstance(recurrence, RRuleRecurrence):
        parts = [
            p
            for p in recurrence.rule.removeprefix("RRULE:").split(";")
            if p and p.split("=")[0].upper() not in {"COUNT", "UNTIL", "DTSTART"}
        ]
        return ";".join([*parts, until])
    # once (and anything else with a single period): one occurrence
    return f"FREQ=DAILY;{until}"


def occurrences(schedule: DutySchedule) -> list[datetime]:
    """Every moment the schedule fires, as Prefect reads it (naive times in `timezone`)."""
    zone = ZoneInfo(schedule.timezone)
    parsed = rrulestr(schedule.rrule, forceset=True)
    assert isinstance(parsed, rruleset)
    return [t.replace(tzinfo=zone) for t in parsed]


def duty_schedule(ob: Obligation, tz: ZoneInfo) -> DutySchedule | None:
    """The schedule that fires exactly at `period_openings`; None for event-triggered duties
    and duties that owe no period (nothing to schedule: reconcile handles events)."""
    openings = period_openings(ob, tz)
    if not openings:
        return None
    first, last = openings[0], openings[-1]
    lines = [f"DTSTART:{_local(first)}", f"RRULE:{_base_rule(ob, first, last)}"]
    schedule = DutySchedule(rrule="\n".join(lines), timezone=str(tz))
    fired = set(occurrences(schedule))
    wanted = set(openings)
    if fired != wanted:
        if missing := sorted(wanted - fired):
            lines.append("RDATE:" + ",".join(_local(t) for t in missing))
        if extra := sorted(fired - wanted):
            lines.append("EXDATE:" + ",".join(_local(t) for t in extra))
        schedule = DutySchedule(rrule="\n".join(lines), timezone=str(tz))
    assert sorted(occurrences(schedule)) == openings, f"schedule of {ob.code} != its openings"
    return schedule
