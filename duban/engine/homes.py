"""The read models of the three home pages: administrator, institution, auditor.

Each is built from duban.engine.stats (tallies and the owed-task index, never a scan of the
task table) as of `now`. An institution's page is scoped in SQL to its own organization; the
only other number it sees is the county's on-time rate.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from duban.domain.due import local_date
from duban.domain.tasks import TaskState, days_overdue
from duban.domain.workdays import WorkdayCalendar
from duban.engine import outcomes
from duban.engine.snapshots import NotThisKey, SnapshotCache
from duban.engine.stats import (
    Count,
    OrgRate,
    Rate,
    Scope,
    Selection,
    Window,
    months_of,
    narrow,
    overdue_by_duty,
    ranking,
    select_for,
    tallies,
)
from duban.engine.users import Principal
from duban.errors import CalendarYearMissing
from duban.store.db import Store
from duban.store.models import ObligationRow, Plan, Task

DUE_SOON_WORKDAYS = 7  # the administrator's "due in the next 7 working days"
CHART_ORGS = 15  # institutions on the administrator's chart (the worst)
STRIP_DAYS = 14  # an institution's strip of deadlines
LATEST_LATE = 10  # late submissions listed on the auditor's page


@dataclass(frozen=True, kw_only=True)
class AdminHome:
    window: Window | None  # the period filter, None for everything
    current: Window  # the rate's period: the filter's, or this quarter
    previous: Window
    overdue: Count
    due_soon: Count
    horizon: date
    review: Count
    rate_now: Rate
    rate_before: Rate
    by_org: list[OrgRate]
    orgs_ranked: int
    by_month: list[tuple[date, Rate]]
    by_duty: list[tuple[str, str, Count]]


def horizon_of(calendar: WorkdayCalendar, today: date, workdays: int) -> date:
    try:
        return calendar.add_workdays(today, workdays)
    except CalendarYearMissing:  # a year without its calendar file: count calendar days
        return today + timedelta(days=workdays)


def admin_home(
    store: Store,
    *,
    now: datetime,
    tz: ZoneInfo,
    calendar: WorkdayCalendar,
    plan: str | None = None,
    tag: str | None = None,
    period: str | None = None,
    cache: SnapshotCache[AdminHome] | None = None,
) -> AdminHome:
    """The county's numbers; `plan`, `tag` and `period` (YYYY or YYYY-Qn: the tasks due in
    it) filter the whole page. The rates compare the period with the one before it (this
    quarter with the last without a period); the months are those of its year.

    Given a `cache`, a page computed for the same snapshot name (the change mark: the same
    tasks and catalogue) on the same local day is reused (duban.engine.snapshots): every
    number here is read from tasks, their tallies and the catalogue, and changes only with
    them or at midnight, as a task due on day d is overdue from d's end."""
    today = local_date(now, tz)

    def home_in(session: Session) -> AdminHome:
        return _admin_home(session, calendar, now=now, tz=tz, plan=plan, tag=tag, period=period)

    with store.snapshot() as (session, name):
        if cache is None or name is None:
            return home_in(session)
        key = (name, today, plan, tag, period)
        kept = cache.peek(key)
    if kept is not None:
        return kept

    def compute() -> AdminHome:
        # in a snapshot of its own, so that the requests waiting for this computation hold no
        # database connection meanwhile (under a stream of submissions they were most of a
        # server's pool, and even pages already kept queued for a connection)
        with store.snapshot() as (session, now_name):
            home = home_in(session)
        if now_name != name:  # a change committed since the key was read
            raise NotThisKey(home)
        return home

    return cache.get(key, compute)


def _admin_home(
    session: Session,
    calendar: WorkdayCalendar,
    *,
    now: datetime,
    tz: ZoneInfo,
    plan: str | None,
    tag: str | None,
    period: str | None,
) -> AdminHome:
    today = local_date(now, tz)
    window = Window.parse(period) if period else None
    current = window or Window.quarter_of(today)
    previous = current.previous()
    year = Window.parse(str(current.first.year))
    horizon = horizon_of(calendar, today, DUE_SOON_WORKDAYS)
    sel = select_for(session, plan=plan, tag=tag)
    scope = sel.scope
    whole = tallies(session, sel, now=now, tz=tz, within=window)
    span = Window(
        first=min(previous.first, year.first), last=max(current.last, year.last), key="span"
    )
    rates = whole if window is None else tallies(session, sel, now=now, tz=tz, within=span)
    by_org, ranked = ranking(session, sel, current, now=now, limit=CHART_ORGS)
    soon = _due_soon(session, sel, now=now, today=today, horizon=horizon, window=window)
    by_duty = overdue_by_duty(session, whole, scope, window)
    bounded = replace(scope, due_from=window.first, due_to=window.last) if window else scope
    return AdminHome(
        window=window,
        current=current,
        previous=previous,
        overdue=Count(n=whole.overdue_in(None), scope=replace(bounded, outcome="overdue")),
        due_soon=Count(
            n=soon, scope=replace(scope, outcome="waiting", **_clip(today, horizon, window))
        ),
        horizon=horizon,
        review=Count(n=whole.submitted(None), scope=replace(bounded, state="submitted")),
        rate_now=rates.rate(current, scope),
        rate_before=rates.rate(previous, scope),
        by_org=by_org,
        orgs_ranked=ranked,
        by_month=months_of(rates, year.first.year, scope),
        by_duty=by_duty,
    )


def _clip(first: date, last: date, window: Window | None) -> dict[str, Any]:
    if window is not None:
        first, last = max(first, window.first), min(last, window.last)
    return {"due_from": first, "due_to": last}


def _due_soon(
    session: Any,
    sel: Selection,
    *,
    now: datetime,
    today: date,
    horizon: date,
    window: Window | None,
) -> int:
    """Owed, not yet due, due between today and the horizon (within the period)."""
    span = _clip(today, horizon, window)
    if span["due_from"] > span["due_to"]:
        return 0
    query = select(func.count()).where(
        outcomes.outcome_sql("waiting", now),
        Task.opens_at <= now,
        Task.due_date.between(span["due_from"], span["due_to"]),
    )
    return int(session.scalar(narrow(query, sel, Task)) or 0)


@dataclass(frozen=True, kw_only=True)
class Deadline:
    id: int
    title: str
    due: date
    state: str
    overdue_days: int
    reason: str | None


@dataclass(frozen=True, kw_only=True)
class InstitutionHome:
    overdue: list[Deadline]
    rejected: list[Deadline]
    submitted: int
    strip: list[tuple[date, bool, list[Deadline]]]  # (day, working day, deadlines)
    quarter: Window
    own: Rate
    county: Rate

    @property
    def due_soon(self) -> int:
        return sum(len(items) for _, _, items in self.strip)


def institution_home(
    store: Store, who: Principal, *, now: datetime, tz: ZoneInfo, calendar: WorkdayCalendar
) -> InstitutionHome:
    """The institution's own tasks (its organization only, in SQL): rejected first, then
    overdue, the next STRIP_DAYS days of deadlines, and its on-time rate this quarter next to
    the county's."""
    today = local_date(now, tz)
    quarter = Window.quarter_of(today)
    org_id = who.org_id if who.org_id is not None else -1
    last = today + timedelta(days=STRIP_DAYS - 1)
    with store.read() as session:
        rows = session.execute(
            select(Task, ObligationRow.title)
            .join(ObligationRow, ObligationRow.id == Task.obligation_id)
            .where(Task.org_id == org_id, Task.opens_at <= now, outcomes.pending())
            .where((Task.due_date <= last) | (Task.state == TaskState.REJECTED.value))
            .order_by(Task.due_at, Task.id)
        ).all()
        submitted = session.scalar(
            select(func.count()).where(
                Task.org_id == org_id, Task.state == TaskState.SUBMITTED.value
            )
        )
        base = select_for(session, plan=None, tag=None)
        own = tallies(session, replace(base, org_id=org_id), now=now, tz=tz, within=quarter)
        county = tallies(session, base, now=now, tz=tz, within=quarter)
    items = [
        Deadline(
            id=t.id,
            title=title,
            due=t.due_date,
            state=t.state,
            overdue_days=days_overdue(t.due_date, today) if t.due_at <= now else 0,
            reason=t.reason,
        )
        for t, title in rows
    ]
    strip = []
    for offset in range(STRIP_DAYS):
        day = today + timedelta(days=offset)
        try:
            working = calendar.is_workday(day)
        except CalendarYearMissing:
            working = day.weekday() < 5
        strip.append((day, working, [d for d in items if d.due == day]))
    return InstitutionHome(
        rejected=[d for d in items if d.state == TaskState.REJECTED.value],
        overdue=[d for d in items if d.overdue_days > 0],
        submitted=int(submitted or 0),
        strip=strip,
        quarter=quarter,
        own=own.rate(quarter, Scope()),
        county=county.rate(quarter, Scope()),
    )


@dataclass(frozen=True, kw_only=True)
class AuditorHome:
    year: int
    quarters: list[tuple[Window, Rate, Count]]  # (quarter, rate, waiting for review)
    late: Count
    latest_late: list[dict[str, Any]]


def auditor_home(store: Store, *, now: datetime, tz: ZoneInfo, year: int) -> AuditorHome:
    """Completion by quarter of `year`, its late submissions, the latest of them."""
    whole = Window.parse(str(year))
    with store.read() as session:
        sel = select_for(session, plan=None, tag=None)
        tally = tallies(session, sel, now=now, tz=tz, within=whole)
        latest = session.execute(
            select(Task.id, Task.due_date, Task.submitted_at, ObligationRow.title)
            .join(ObligationRow, ObligationRow.id == Task.obligation_id)
            .where(
                outcomes.outcome_sql("late", now), Task.due_date.between(whole.first, whole.last)
            )
            .order_by(Task.submitted_at.desc(), Task.id.desc())
            .limit(LATEST_LATE)
        ).all()
    quarters = []
    for q in range(1, 5):
        w = Window.parse(f"{year}-Q{q}")
        span = Scope(due_from=w.first, due_to=w.last)
        quarters.append(
            (
                w,
                tally.rate(w, Scope()),
                Count(n=tally.submitted(w), scope=replace(span, state="submitted")),
            )
        )
    return AuditorHome(
        year=year,
        quarters=quarters,
        late=Count(
            n=tally.late(whole),
            scope=Scope(outcome="late", due_from=whole.first, due_to=whole.last),
        ),
        latest_late=[
            {
                "id": r.id,
                "title": r.title,
                "due": r.due_date,
                "submitted_local": r.submitted_at.astimezone(tz).strftime("%Y-%m-%d %H:%M"),
                "days_late": max(0, (local_date(r.submitted_at, tz) - r.due_date).days),
            }
            for r in latest
        ],
    )


def plan_choices(store: Store) -> list[tuple[str, str]]:
    """(code, title) of the plans, for the home page's filter."""
    with store.read() as session:
        return [
            (code, title)
            for code, title in session.execute(select(Plan.code, Plan.title).order_by(Plan.code))
        ]
