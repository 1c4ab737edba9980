"""`duban calendar …`: working-day arithmetic, where each year comes from, and the import of
the State Council's yearly notice."""

from __future__ import annotations

import sys
from dataclasses import replace
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Annotated, NoReturn

import typer
from rich.console import Console
from rich.markup import escape

from duban.bootstrap import App
from duban.catalog.calendar import calendar_sources, load_calendar, load_calendar_file
from duban.catalog.notice import describe_notice, notice_yaml, parse_notice
from duban.catalog.provisional import StatutoryYears, statutory_days
from duban.domain.due import local_date, start_of_day
from duban.domain.workdays import ONE_DAY, WorkdayCalendar
from duban.engine.calendar_sync import CalendarSyncReport, sync_calendar
from duban.errors import DubanError, PlanError
from duban.resources import bundled

cal_app = typer.Typer(
    help="Chinese working days: arithmetic, the years and their files, notice import.",
    no_args_is_help=True,
)
out = Console(markup=False, highlight=False)
err = Console(stderr=True)


def _fail(message: str, code: int = 1) -> NoReturn:
    err.print(f"[bold red]error:[/] {escape(message)}", highlight=False)
    raise typer.Exit(code)


def _day(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        _fail(f"{text!r} is not a date; use YYYY-MM-DD", 2)


def _calendar() -> WorkdayCalendar:
    try:
        return App().calendar
    except PlanError as exc:
        _fail(str(exc), 2)


def _answer(calendar: WorkdayCalendar, text: str, *days: date) -> None:
    """Print the answer; say on stderr when it rests on a provisional year."""
    out.print(text)
    years = sorted({d.year for d in days if calendar.is_provisional(d)})
    for year in years:
        err.print(
            f"note: {year} is provisional (no notice imported; weekends and statutory holidays, "
            f"no swapped workdays): the answer may change when `duban calendar import` loads "
            f"{year}'s notice",
            markup=False,
            highlight=False,
        )


def _arith(fn_name: str, *args: object) -> object:
    try:
        return getattr(_calendar(), fn_name)(*args)
    except DubanError as exc:
        _fail(str(exc))


@cal_app.command("add-workdays")
def cal_add(day: str, n: int) -> None:
    """The date N Chinese working days after DAY (before it if N < 0)."""
    start = _day(day)
    result = _arith("add_workdays", start, n)
    assert isinstance(result, date)
    _answer(_calendar(), result.isoformat(), start, result)


@cal_app.command("is-workday")
def cal_is(day: str) -> None:
    """Whether DAY is a working day (exit 0) or not (exit 1)."""
    d = _day(day)
    working = _arith("is_workday", d)
    _answer(_calendar(), f"{day}: {'working day 工作日' if working else 'day off 休息日'}", d)
    raise typer.Exit(0 if working else 1)


@cal_app.command("next-workday")
def cal_next(day: str) -> None:
    """DAY itself if it is a working day, else the next one."""
    d = _day(day)
    result = _arith("next_workday", d)
    assert isinstance(result, date)
    _answer(_calendar(), result.isoformat(), d, result)


@cal_app.command("count")
def cal_count(start: str, end: str) -> None:
    """Working days after START up to and including END."""
    a, b = _day(start), _day(end)
    _answer(_calendar(), str(_arith("workdays_between", a, b)), a, b)


@cal_app.command("list")
def cal_list(
    to: Annotated[int | None, typer.Option("--to", help="List up to this year.")] = None,
) -> None:
    """Each year duban can count, and where its days come from: a bundled file, a file in
    calendar_dir (which overrides a bundled one), or the provisional rule."""
    settings = App().settings
    sources = calendar_sources(bundled("calendar"), settings.calendar_dir)
    last = to or max(max(sources, default=0), datetime.now(UTC).year) + 1
    rule = StatutoryYears()
    for year in range(min(sources), last + 1):
        source = sources.get(year)
        if source is not None and source.path is not None:
            where = "bundled" if source.origin == "bundled" else str(source.path)
            out.print(f"{year}  {source.origin:<11}  {where}")
        elif rule.covers(year):
            out.print(f"{year}  provisional  {rule.describe()}")
        else:
            out.print(f"{year}  missing      add {year}.yaml to calendar_dir")
    out.print(f"calendar_dir: {settings.calendar_dir or '(none: bundled years only)'}")


def _differences(year: int, official: WorkdayCalendar) -> list[str]:
    """What the official year changes against the provisional one: days off and worked."""
    provisional = {h.day: h for h in statutory_days(year)}
    lines = []
    day = date(year, 1, 1)
    while day.year == year:
        was = day.weekday() < 5 and day not in provisional
        now = official.is_workday(day)
        if was != now:
            what = "now worked (调休上班)" if now else "now a day off"
            was_text = "a day off" if not was else "a working day"
            lines.append(f"{day} {day:%a}: was {was_text} provisionally, {what}")
        day += ONE_DAY
    return lines


@cal_app.command("import")
def cal_import(
    file: Annotated[str, typer.Argument(help="The notice's text, as pasted; - for stdin.")],
    url: Annotated[str, typer.Option("--url", help="The notice's address, to cite.")] = "",
    force: Annotated[
        bool, typer.Option("--force", help="Replace a YYYY.yaml already in calendar_dir.")
    ] = False,
    now: Annotated[
        str | None, typer.Option("--now", help="Act as of this day (re-derivation, audit).")
    ] = None,
) -> None:
    """Read 《国务院办公厅关于YYYY年部分节假日安排的通知》 and write YYYY.yaml into calendar_dir.

    The text may use the older (星期日) or newer (周日) wording, full- or half-width
    punctuation. A text that cannot be read completely is refused with the line, and nothing
    is written. Then the deadlines of owed tasks that the new days change, and that have not
    passed, are re-derived (audited with the old and the new date).
    """
    ctx = App()
    folder = ctx.settings.calendar_dir
    if folder is None:
        _fail("calendar_dir is not set: name the folder that holds local calendar years")
    try:
        if file == "-":
            text, source = sys.stdin.read(), "<stdin>"
        else:
            text, source = Path(file).read_text(encoding="utf-8-sig"), file
    except (OSError, UnicodeDecodeError) as exc:
        _fail(f"cannot read {file}: {exc}")
    try:
        year = parse_notice(text, source=source)
    except PlanError as exc:
        _fail(str(exc), 2)
    if url:
        year = replace(year, url=url)
    target = folder / f"{year.year}.yaml"
    if target.exists() and not force:
        _fail(f"{target} exists; compare it with the notice, then use --force to replace it")
    before = ctx.calendar
    was_provisional = before.is_provisional(date(year.year, 1, 1))
    folder.mkdir(parents=True, exist_ok=True)
    partial = target.with_suffix(".yaml.part")
    partial.write_text(notice_yaml(year), encoding="utf-8")
    try:
        load_calendar_file(partial)  # what was written reads back, before it counts
    except PlanError as exc:
        partial.unlink()
        _fail(str(exc), 2)
    partial.replace(target)
    out.print(f"wrote {target}")
    for line in describe_notice(year):
        out.print(f"  {line}")
    after = load_calendar(bundled("calendar"), local=folder)
    if was_provisional:
        changes = _differences(year.year, after)
        out.print(f"against the provisional {year.year}: {len(changes)} days differ")
        for line in changes:
            out.print(f"  {line}")
    if not ctx.store.is_initialised():
        out.print("no database yet: nothing to re-derive")
        return
    moment = start_of_day(_day(now), ctx.tz) if now else datetime.now(UTC)
    report = sync_calendar(
        ctx.store, calendar=after, now=moment, tz=ctx.tz, actor="cli:calendar-import"
    )
    print_sync(out, report, today=local_date(moment, ctx.tz))


def print_sync(console: Console, report: CalendarSyncReport, *, today: date) -> None:
    """What a calendar change moved, for tick, init and import."""
    if not report.changed_years:
        return
    years = ", ".join(map(str, report.changed_years))
    console.print(
        f"calendar changed for {years}: {report.tasks_moved} owed tasks re-dated "
        f"(deadlines from {today} on; earlier ones keep their date)"
    )
    for m in report.moved:
        console.print(f"  {m.obligation} {m.period}: {m.old} -> {m.new} ({m.tasks} tasks)")
