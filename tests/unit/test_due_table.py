"""The README's table of due kinds × recurrences is computed by the code, never written by
hand: this test builds every combination through the plan loader and finds the table in the
README as it prints it (`python -m tests.unit.test_due_table` prints it after a change)."""

from __future__ import annotations

import tempfile
from datetime import date
from pathlib import Path

from duban.catalog.calendar import load_calendar
from duban.catalog.loader import load_catalog
from duban.domain.periods import event_period
from duban.domain.workdays import WorkdayCalendar
from duban.errors import PlanError
from tests.conftest import FIXTURES, ROOT

PLAN = (FIXTURES / "mini-plan.yaml").read_text(encoding="utf-8")
DRILL = "    recurrence: {kind: quarterly}\n    due: {kind: end_of_period}"
WINDOW = "valid: {from: 2022-04-01, until: 2023-04-30}"
EVENT_DAY = date(2022, 9, 28)

#: recurrence → (its YAML, the window, the periods shown)
RECURRENCES: dict[str, tuple[str, str, tuple[str, ...]]] = {
    "monthly": ("{kind: monthly}", "2022-01-01..2023-12-31", ("2022-06",)),
    "bimonthly": ("{kind: bimonthly}", "2022-01-01..2023-12-31", ("2022-B3",)),
    "quarterly": ("{kind: quarterly}", "2022-01-01..2023-12-31", ("2022-Q2",)),
    "half_yearly": ("{kind: half_yearly}", "2022-01-01..2023-12-31", ("2022-H1",)),
    "yearly": ("{kind: yearly}", "2022-01-01..2023-12-31", ("2022", "2023")),
    "rrule FREQ=YEARLY from 07-01": (
        "{kind: rrule, rule: 'FREQ=YEARLY', dtstart: 2022-07-01}",
        "2022-07-01..2024-06-30",
        ("R2022-07-01",),
    ),
    "once": ("{kind: once}", "2022-04-01..2023-04-30", ("once",)),
    "event (on 2022-09-28)": ("{kind: event, event: maternal-death}", "2022-01-01..2023-12-31", ()),
}
DUE_KINDS = (
    "{kind: end_of_period}",
    "{kind: end_of_quarter}",
    "{kind: end_of_first_month}",
    "{kind: day_of_next_month, day: 5}",
    "{kind: date, on: 2022-05-31}",
    "{kind: month_day, month: 6, day: 30}",
    "{kind: working_days_after, days: 5}",
    "{kind: days_after, days: 15}",
    "{kind: months_after, months: 2}",
)
#: how a refusal reads in a cell (the plan check prints the whole rule)
REFUSALS = (
    ("counts from an event", "✗ counts from an event"),
    ("needs a due rule counted from the event", "✗ needs `*_after`"),
    ("needs due kind: date", "✗ needs `date`"),
    ("due kind: date names one day", "✗ use `month_day` or `once`"),
    ("month_day gives one day a year", "✗ one day a year"),
)


def cell(calendar: WorkdayCalendar, folder: Path, recurrence: str, due: str) -> str:
    yaml, window, shown = RECURRENCES[recurrence]
    start, until = window.split("..")
    text = PLAN.replace(DRILL, f"    recurrence: {yaml}\n    due: {due}").replace(
        WINDOW, f"valid: {{from: {start}, until: {until}}}"
    )
    path = folder / "plan.yaml"
    path.write_text(text, encoding="utf-8")
    try:
        catalog = load_catalog([path], [FIXTURES / "mini-orgs.yaml"], calendar)
    except PlanError as exc:
        message = str(exc.problems[0])
        return next(short for needle, short in REFUSALS if needle in message)
    ob = catalog.obligations[0].domain
    if ob.event is not None:
        return f"{ob.due_date(event_period(1, EVENT_DAY), calendar)}"
    periods = {p.key: p for p in ob.periods()}
    return "; ".join(f"{key} → {ob.due_date(periods[key], calendar)}" for key in shown)


def due_table(calendar: WorkdayCalendar) -> str:
    lines = [
        "| due ↓ recurrence → | " + " | ".join(RECURRENCES) + " |",
        "|---" * (len(RECURRENCES) + 1) + "|",
    ]
    with tempfile.TemporaryDirectory() as tmp:
        for due in DUE_KINDS:
            cells = [cell(calendar, Path(tmp), r, due) for r in RECURRENCES]
            lines.append(f"| `{due}` | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def test_the_readme_holds_the_table_the_code_computes(calendar):
    assert due_table(calendar) in (ROOT / "README.md").read_text(encoding="utf-8")


if __name__ == "__main__":
    print(due_table(load_calendar(ROOT / "calendar")))
