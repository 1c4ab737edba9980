"""When the working-day calendar changes under stored tasks: re-derive what has not passed.

A task's due date is computed once, when it is created, from the calendar of the day. For a
year without its State Council notice that calendar is provisional (weekends and statutory
holidays); when the notice is imported, or a year file is added or corrected in
`calendar_dir`, the days off of that year change, and so may the due dates computed on it
("5 working days after", `shift: next_working_day`).

`sync_calendar` keeps, in the database, a digest of each year's days off as last used. On
each pass (`duban init`, `tick`, `run`, `calendar import`) it compares the calendar it is given
with them; for every year whose days changed, each open or rejected task whose due date has
not yet passed is re-derived from its own rule (the obligation version it was created under)
and its period, and moved when the date differs, with one audit event per duty and period
giving the old and the new date. What has passed keeps its date: a deadline that was
announced and has gone by is history. Ladder days (reminders and escalations) are not stored:
the sweep counts them from the due date on the calendar of the day, so they follow at once.

Idempotent: a second pass finds every digest equal and does nothing.
"""

from __future__ import annotations

import hashlib
import json
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import and_, func, select, update
from sqlalchemy.orm import Session

from duban.domain.due import end_of_day, local_date
from duban.domain.periods import Period
from duban.domain.tasks import PENDING
from duban.domain.workdays import ONE_DAY, WorkdayCalendar
from duban.engine.materialize import obligation_of
from duban.errors import CalendarYearMissing
from duban.store import audit
from duban.store.changes import mark_change
from duban.store.db import Store
from duban.store.models import Meta, ObligationRow, ObligationVersion, Plan, Task

KEY = "calendar_years"  # {year: digest of its days off, "p" suffix when provisional}


@dataclass(frozen=True, kw_only=True)
class Moved:
    obligation: str
    period: str
    old: date
    new: date
    tasks: int


@dataclass(frozen=True, kw_only=True)
class CalendarSyncReport:
    changed_years: tuple[int, ...] = ()
    moved: tuple[Moved, ...] = field(default_factory=tuple)

    @property
    def tasks_moved(self) -> int:
        return sum(m.tasks for m in self.moved)


def year_digest(calendar: WorkdayCalendar, year: int) -> str | None:
    """A digest of `year`'s days off (None when the calendar does not cover the year)."""
    day, days_off = date(year, 1, 1), []
    try:
        while day.year == year:
            if not calendar.is_workday(day):
                days_off.append(day.toordinal())
            day += ONE_DAY
    except CalendarYearMissing:
        return None
    digest = hashlib.sha256(json.dumps(days_off).encode()).hexdigest()[:32]
    return digest + ("p" if calendar.is_provisional(date(year, 1, 1)) else "")


def _stored(session: Session) -> dict[int, str]:
    meta = session.get(Meta, KEY)
    return {int(y): d for y, d in json.loads(meta.value).items()} if meta else {}


def _years_in_use(session: Session, today: date) -> range:
    # the years any owed task's due date, or its period, lies in, and the coming year
    low, high = session.execute(
        select(func.min(Task.period_start), func.max(Task.due_date)).where(
            Task.state.in_([s.value for s in PENDING])
        )
    ).one()
    first = min(low.year if low else today.year, today.year)
    last = max(high.year if high else today.year, today.year + 1)
    return range(first, last + 1)


def sync_calendar(
    store: Store, *, calendar: WorkdayCalendar, now: datetime, tz: ZoneInfo, actor: str
) -> CalendarSyncReport:
    """Re-derive the not-yet-passed due dates of owed tasks in years whose days off changed
    since the last pass; record the calendar now in use. See the module docstring."""
    today = local_date(now, tz)
    with store.write() as session:
        stored = _stored(session)
        years = _years_in_use(session, today) if stored else range(today.year, today.year + 2)
        current = {y: d for y in years if (d := year_digest(calendar, y)) is not None}
        changed = sorted(y for y, d in current.items() if y in stored and stored[y] != d)
        moved = _rederive(session, changed, calendar=calendar, today=today, tz=tz, now=now)
        for m in moved:
            audit.record(
                session,
                now=now,
                actor=actor,
                action="tasks.retimed",
                entity="obligation",
                entity_id=m.obligation,
                data={
                    "period": m.period,
                    "from": m.old.isoformat(),
                    "to": m.new.isoformat(),
                    "tasks": m.tasks,
                    "reason": f"working-day calendar changed for {', '.join(map(str, changed))}",
                },
            )
        if changed:
            audit.record(
                session,
                now=now,
                actor=actor,
                action="calendar.changed",
                entity="calendar",
                entity_id=",".join(map(str, changed)),
                data={
                    "years": {str(y): {"from": stored[y], "to": current[y]} for y in changed},
                    "tasks_moved": sum(m.tasks for m in moved),
                },
            )
        if moved:
            mark_change(session)
        if current != {y: stored.get(y) for y in current}:
            session.merge(Meta(key=KEY, value=json.dumps({**stored, **current}, sort_keys=True)))
    return CalendarSyncReport(changed_years=tuple(changed), moved=tuple(moved))


def _rederive(
    session: Session,
    years: list[int],
    *,
    calendar: WorkdayCalendar,
    today: date,
    tz: ZoneInfo,
    now: datetime,
) -> list[Moved]:
    if not years:
        return []
    # a due date can depend on a changed year when the year lies between its period's start
    # and the due date itself (working days counted across it); a month's margin either side
    first, last = date(years[0], 1, 1), date(years[-1], 12, 31)
    margin = timedelta(days=31)
    groups = session.execute(
        select(
            Task.obligation_id,
            Task.spec_hash,
            Task.period_key,
            Task.period_start,
            Task.period_end,
            Task.due_date,
            func.count(),
        )
        .where(
            Task.state.in_([s.value for s in PENDING]),
            Task.due_date >= today,
            Task.due_date >= first - margin,
            Task.period_start <= last + margin,
        )
        .group_by(
            Task.obligation_id,
            Task.spec_hash,
            Task.period_key,
            Task.period_start,
            Task.period_end,
            Task.due_date,
        )
    ).all()
    if not groups:
        return []
    rows = {
        r.id: (r, code)
        for r, code in session.execute(
            select(ObligationRow, Plan.code).join(Plan, Plan.id == ObligationRow.plan_id)
        )
    }
    specs = {
        (v.obligation_id, v.content_hash): v.spec
        for v in session.scalars(select(ObligationVersion))
    }
    moved: dict[tuple[str, str, date, date], int] = defaultdict(int)
    for ob_id, spec_hash, key, start, end, due, _count in groups:
        row, plan_code = rows[ob_id]
        spec = specs.get((ob_id, spec_hash), row.spec) if spec_hash else row.spec
        ob = obligation_of(spec, plan_code)
        new = ob.due_date(Period(start=start, end=end, key=key), calendar)
        if new == due or new < today:
            continue  # unchanged, or would fall in the past: what was announced stands
        same = and_(
            Task.obligation_id == ob_id,
            Task.period_key == key,
            Task.due_date == due,
            Task.state.in_([s.value for s in PENDING]),
            Task.spec_hash.is_(None) if spec_hash is None else Task.spec_hash == spec_hash,
        )
        result = session.connection().execute(
            update(Task)
            .where(same)
            .values(due_date=new, due_at=end_of_day(new, tz), updated_at=now)
            .execution_options(preserve_rowcount=True)
        )
        if result.rowcount:  # 0 when a concurrent pass moved them first
            moved[(row.code, key, due, new)] += int(result.rowcount)
    return [
        Moved(obligation=o, period=p, old=a, new=b, tasks=n)
        for (o, p, a, b), n in sorted(moved.items())
    ]


@dataclass(frozen=True, kw_only=True)
class CalendarWarning:
    """Said by `tick`, `run`, the administrator's home and the weekly summary: a year that
    owed work is counted in has no official calendar yet."""

    years: tuple[int, ...]
    calendar_dir: str

    @property
    def zh(self) -> str:
        years = "、".join(f"{y}年" for y in self.years)
        return (
            f"{years}的国务院节假日安排尚未导入：工作日暂按周末和法定节假日推定（不含调休），"
            f"相关期限标为“暂定”。通知发布后请运行 duban calendar import 通知.txt"
            f"（写入 {self.calendar_dir}）。"
        )

    @property
    def en(self) -> str:
        years = ", ".join(map(str, self.years))
        return (
            f"the official working-day calendar for {years} is missing: working days there "
            "are provisional (weekends and statutory holidays, no swapped workdays), and "
            "dates computed on them are marked provisional. When the State Council publishes "
            f"its notice, run `duban calendar import NOTICE.txt` (it writes to "
            f"{self.calendar_dir})."
        )


def calendar_warning(
    calendar: WorkdayCalendar, *, today: date, warn_from: str, calendar_dir: str
) -> CalendarWarning | None:
    """A warning when this year is provisional, or next year is and `today` is on or after
    `warn_from` ("MM-DD", by default 11-01: the notice usually appears in November)."""
    month, day = (int(x) for x in warn_from.split("-"))
    years = [today.year] if calendar.is_provisional(today) else []
    if (today.month, today.day) >= (month, day) and calendar.is_provisional(
        date(today.year + 1, 1, 1)
    ):
        years.append(today.year + 1)
    return CalendarWarning(years=tuple(years), calendar_dir=calendar_dir) if years else None
