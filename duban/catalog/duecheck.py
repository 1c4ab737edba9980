"""Plan checks of due rules against recurrences, beyond what the schema can say alone.

`date` names one day: only a one-off duty may use it. `month_day` gives one day a year: a duty
with several calendar periods a year may not use it, its day must fall inside each period
(an RRULE's periods must be a year long) and not before the duty's window starts.
"""

from __future__ import annotations

from duban.catalog import schema as s
from duban.catalog.yamlfile import LineIndex
from duban.domain import due as d
from duban.domain import periods as p
from duban.domain.obligations import Obligation
from duban.domain.workdays import WorkdayCalendar
from duban.errors import Problem

#: calendar recurrences with several periods a year, which a once-a-year day cannot serve
_SUB_YEARLY = {"monthly": 12, "bimonthly": 6, "quarterly": 4, "half_yearly": 2}


def due_kind_problems(
    spec: s.ObligationSpec, index: LineIndex, at: list[str | int]
) -> list[Problem]:
    """A `date` names one day, so a recurring duty may not use it (every period would be due
    that day, even periods years later); `month_day` gives one day a year, so a duty with
    several periods a year may not use it."""
    due, kind = spec.due, spec.recurrence.kind
    if isinstance(due, s.DateSpec) and kind != "once":
        return [
            index.problem(
                [*at, "due", "kind"],
                f"due kind: date names one day, but this duty recurs (recurrence kind: {kind}): "
                f"every period would be due on {due.on}; use kind: month_day, month: "
                f"{due.on.month}, day: {due.on.day} (every year on {due.on:%m-%d}) or "
                "recurrence: once",
            )
        ]
    if isinstance(due, s.MonthDaySpec) and kind in _SUB_YEARLY:
        return [
            index.problem(
                [*at, "due", "kind"],
                f"due kind: month_day gives one day a year, but a {kind} duty has "
                f"{_SUB_YEARLY[kind]} periods a year, most of which it would fall outside; use "
                "end_of_period, end_of_quarter or day_of_next_month, or recurrence: yearly",
            )
        ]
    return []


def month_day_problems(
    ob: Obligation, calendar: WorkdayCalendar, index: LineIndex, at: list[str | int]
) -> list[Problem]:
    """A month_day deadline must fall in its period (so an RRULE's periods must be a year
    long; a last period cut short by the window's end excepted) and not before the duty's
    window starts (it would be overdue before it is in force)."""
    rule = ob.due.kind
    if not isinstance(rule, d.MonthDay) or (
        isinstance(ob.recurrence, p.CalendarRecurrence)
        and ob.recurrence.cadence is not p.Cadence.YEARLY
    ):
        return []  # a shorter calendar period is refused by due_kind_problems
    try:
        for period in ob.periods():
            due = rule.raw(period, calendar)  # before any holiday shift, which may cross a year
            if due < ob.valid_from:
                return [
                    index.problem(
                        [*at, "due"],
                        f"period {period.key} would be due {due}, before the duty's window "
                        f"starts ({ob.valid_from}): it would be overdue before it is in force; "
                        "let the window start later (valid: from) or choose a later day",
                    )
                ]
            if due > period.end and period.end != ob.valid_until:
                return [
                    index.problem(
                        [*at, "due"],
                        f"period {period.key} ({period.start}..{period.end}) would be due "
                        f"{due}, after it ends: month_day needs periods a year long "
                        "(recurrence: yearly, or an RRULE with FREQ=YEARLY)",
                    )
                ]
    except ValueError:
        return []  # reported by _compute_all_due_dates
    return []
