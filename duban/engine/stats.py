"""The home pages' numbers: where things stand, counted set-based in the database.

Every number is a count of one set of tasks, and carries that set as a `Scope` (the board's
filters), so the page links each number to the board or the history listing exactly those
tasks. Outcomes mean what duban.domain.tasks.outcome says (on time, late, overdue, waiting),
counted through its SQL form (duban.engine.outcomes).

How it stays fast on a province (a million tasks): counts are read from the tallies the
database keeps as tasks change (tally_duty_day: every state per duty and due day;
tally_org_month and tally_org_quarter: delivered tasks per institution; migrations 0008,
0009). Overdue tasks counted per institution (the ranking, a tag's pages) are read from the
partial index on (due_at, due_date, org_id, obligation_id). Tasks never created (before
adoption) are simply not there to count.

A rate is on time / (on time + late + overdue), over the tasks due in a window: delivered
ones whenever they were delivered, owed ones once past due. Waived, withdrawn and not yet due
tasks do not count.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import func, literal, select, union_all
from sqlalchemy.orm import Session

from duban.domain.due import local_date
from duban.domain.tasks import TaskState
from duban.engine import duties, outcomes
from duban.store.models import (
    ObligationRow,
    Organization,
    OrgTag,
    Plan,
    TallyDutyDay,
    TallyOrgMonth,
    TallyOrgQuarter,
    Task,
)

PERIOD = re.compile(r"^(\d{4})(?:-Q([1-4]))?$")
SUBMITTED = TaskState.SUBMITTED.value

#: a task's due instant lies within its due day in the site's time zone (any offset is under a
#: day), so a due day at or after d has a due instant at or after d's UTC midnight less this
DUE_AT_MARGIN = timedelta(days=2)


@dataclass(frozen=True, kw_only=True)
class Scope:
    """A set of tasks, as the board's and the history's filters name it."""

    plan: str | None = None
    tag: str | None = None
    org: str | None = None
    obligation: str | None = None
    state: str | None = None
    outcome: str | None = None
    due_from: date | None = None
    due_to: date | None = None

    def query(self) -> dict[str, str]:
        return {k: str(v) for k, v in self.__dict__.items() if v is not None}


@dataclass(frozen=True, kw_only=True)
class Count:
    n: int
    scope: Scope


@dataclass(frozen=True, kw_only=True)
class Rate:
    """On time, late and overdue counts of one window, and the set they are counted over."""

    on_time: Count
    late: Count
    overdue: Count
    counted: Count

    @property
    def rate(self) -> float | None:
        return self.on_time.n / self.counted.n if self.counted.n else None

    @property
    def percent(self) -> str:
        return "—" if self.rate is None else f"{100 * self.rate:.1f}%"


@dataclass(frozen=True, kw_only=True)
class Window:
    """A span of due days: a quarter or a year."""

    first: date
    last: date
    key: str  # 2022-Q3 or 2022

    @classmethod
    def parse(cls, key: str) -> Window:
        found = PERIOD.match(key)
        if found is None:
            raise ValueError(f"period {key!r} is not YYYY or YYYY-Qn")
        year, q = int(found[1]), found[2]
        if q is None:
            return cls(first=date(year, 1, 1), last=date(year, 12, 31), key=key)
        start = date(year, 3 * int(q) - 2, 1)
        end = date(year + (q == "4"), (3 * int(q)) % 12 + 1, 1) - timedelta(days=1)
        return cls(first=start, last=end, key=key)

    @classmethod
    def quarter_of(cls, day: date) -> Window:
        return cls.parse(f"{day.year}-Q{(day.month - 1) // 3 + 1}")

    def previous(self) -> Window:
        if "-Q" not in self.key:
            return Window.parse(str(self.first.year - 1))
        return Window.quarter_of(self.first - timedelta(days=1))

    @property
    def months(self) -> list[date]:
        return [date(self.first.year, m, 1) for m in range(self.first.month, self.last.month + 1)]


@dataclass(frozen=True, kw_only=True)
class Selection:
    """The page's filters as the database needs them: the plan's duties, the tag's members,
    one institution."""

    scope: Scope  # plan and tag, as the links carry them
    obligation_ids: list[int] | None = None
    plan_id: int | None = None
    org_id: int | None = None


def select_for(session: Session, *, plan: str | None, tag: str | None) -> Selection:
    obligation_ids = plan_id = None
    if plan:
        plan_id = session.scalar(select(Plan.id).where(Plan.code == plan))
        plan_id = -1 if plan_id is None else int(plan_id)
        obligation_ids = list(
            session.scalars(select(ObligationRow.id).where(ObligationRow.plan_id == plan_id))
        )
    return Selection(
        scope=Scope(plan=plan or None, tag=tag or None),
        obligation_ids=obligation_ids,
        plan_id=plan_id,
    )


def narrow(query: Any, sel: Selection, table: Any) -> Any:
    """`query` over tasks or a tally, limited to the selection."""
    if sel.obligation_ids is not None and hasattr(table, "obligation_id"):
        query = query.where(table.obligation_id.in_(sel.obligation_ids or [-1]))
    if sel.plan_id is not None and table in (TallyOrgMonth, TallyOrgQuarter):
        query = query.where(table.plan_id == sel.plan_id)
    if sel.scope.tag and hasattr(table, "org_id"):
        member = select(OrgTag.org_id).where(OrgTag.org_id == table.org_id)
        query = query.where(member.where(OrgTag.tag == sel.scope.tag).exists())
    if sel.org_id is not None and hasattr(table, "org_id"):
        query = query.where(table.org_id == sel.org_id)
    return query


@dataclass
class Tallies:
    """Counts of one selection by due day (or month) and outcome, read once per page."""

    # (day, state, late) and (day, obligation) → count
    done: defaultdict[tuple[date, str, bool], int] = field(default_factory=lambda: defaultdict(int))
    overdue: defaultdict[tuple[date, int], int] = field(default_factory=lambda: defaultdict(int))

    def on_time(self, w: Window | None) -> int:
        return sum(n for (d, _, late), n in self.done.items() if not late and _in(d, w))

    def late(self, w: Window | None) -> int:
        return sum(n for (d, _, late), n in self.done.items() if late and _in(d, w))

    def submitted(self, w: Window | None) -> int:
        return sum(n for (d, s, _), n in self.done.items() if s == SUBMITTED and _in(d, w))

    def overdue_in(self, w: Window | None) -> int:
        return sum(n for (d, _), n in self.overdue.items() if _in(d, w))

    def rate(self, w: Window | None, scope: Scope) -> Rate:
        span = replace(scope, due_from=w.first, due_to=w.last) if w else scope
        return rate_of(self.on_time(w), self.late(w), self.overdue_in(w), span)


def rate_of(on_time: int, late: int, overdue: int, scope: Scope) -> Rate:
    return Rate(
        on_time=Count(n=on_time, scope=replace(scope, outcome="on_time")),
        late=Count(n=late, scope=replace(scope, outcome="late")),
        overdue=Count(n=overdue, scope=replace(scope, outcome="overdue")),
        counted=Count(n=on_time + late + overdue, scope=replace(scope, outcome="counted")),
    )


def _in(day: date, w: Window | None) -> bool:
    return w is None or w.first <= day <= w.last


def tallies(
    session: Session, sel: Selection, *, now: datetime, tz: ZoneInfo, within: Window | None
) -> Tallies:
    """Counts by due day (or month), limited to `within`.

    The whole county (or one plan): everything from `tally_duty_day`, delivered and owed; a
    task due on day d is overdue from d's end in the site's time zone (materialize sets
    due_at = end_of_day(due_date)), so the owed rows due before today are what is overdue.
    An institution tag: delivered tasks by month from `tally_org_month`, owed ones past due
    from the partial index. One institution: its own tasks, which are few."""
    found = Tallies()
    q: Any
    if sel.org_id is None and sel.scope.tag is None:
        q = select(
            TallyDutyDay.due_date,
            TallyDutyDay.obligation_id,
            TallyDutyDay.state,
            TallyDutyDay.late,
            TallyDutyDay.n,
        ).where(TallyDutyDay.state.in_([*outcomes.DONE_VALUES, *outcomes.PENDING_VALUES]))
        if within:
            q = q.where(TallyDutyDay.due_date.between(within.first, within.last))
        today = local_date(now, tz)
        for day, obligation_id, state, late, n in session.execute(narrow(q, sel, TallyDutyDay)):
            if state in outcomes.DONE_VALUES:
                found.done[(day, state, bool(late))] += n
            elif day < today and n:
                found.overdue[(day, obligation_id)] += n
        return found
    if sel.org_id is not None:  # one institution's tasks are few: read them (org_id, due_at)
        late = outcomes.late()
        q = select(Task.due_date, Task.state, late, func.count()).where(
            Task.org_id == sel.org_id, outcomes.done()
        )
        if within:
            q = q.where(Task.due_date.between(within.first, within.last))
        q = narrow(q, sel, Task).group_by(Task.due_date, Task.state, late)
    else:
        # summed in the database: a tag's institutions hold tens of thousands of month rows
        keys = (TallyOrgMonth.month, TallyOrgMonth.state, TallyOrgMonth.late)
        q = select(*keys, func.sum(TallyOrgMonth.n))
        if within:
            q = q.where(TallyOrgMonth.month.between(within.first, within.last))
        q = narrow(q, sel, TallyOrgMonth).group_by(*keys)
    for day, state, late, n in session.execute(q):
        found.done[(day, state, bool(late))] += n
    q = select(Task.due_date, Task.obligation_id, func.count()).where(outcomes.overdue(now))
    if within:
        q = q.where(Task.due_date.between(within.first, within.last))
    q = narrow(q, sel, Task).group_by(Task.due_date, Task.obligation_id)
    for day, obligation_id, n in session.execute(q):
        found.overdue[(day, obligation_id)] = n
    return found


@dataclass(frozen=True, kw_only=True)
class OrgRate:
    code: str
    name: str
    rate: Rate


def ranking(
    session: Session, sel: Selection, w: Window, *, now: datetime, limit: int | None
) -> tuple[list[OrgRate], int]:
    """Institutions by on-time rate over `w`, worst first (then most overdue, then code),
    at most `limit`; and how many institutions had anything counted."""
    tally = narrow(
        select(
            TallyOrgQuarter.org_id.label("org_id"),
            TallyOrgQuarter.on_time.label("on_time"),
            TallyOrgQuarter.late.label("late"),
            literal(0).label("overdue"),
        ).where(TallyOrgQuarter.quarter.between(w.first, w.last)),  # a window is whole quarters
        sel,
        TallyOrgQuarter,
    )
    owed = narrow(
        select(Task.org_id, literal(0), literal(0), literal(1)).where(
            outcomes.overdue(now),
            Task.due_date.between(w.first, w.last),
            # due_at is the end of the due day (materialize): bounding it too lets the scan of
            # ix_tasks_pending_due_org (due_at, …) start at the window, not at the year's start
            Task.due_at >= datetime.combine(w.first, time(), UTC) - DUE_AT_MARGIN,
        ),
        sel,
        Task,
    )
    rows = union_all(tally, owed).subquery()
    on_time, late, overdue = (func.sum(rows.c[k]) for k in ("on_time", "late", "overdue"))
    counted = on_time + late + overdue
    per_org = (
        select(
            rows.c.org_id,
            on_time.label("on_time"),
            late.label("late"),
            overdue.label("overdue"),
            func.count().over().label("ranked"),
        )
        .group_by(rows.c.org_id)
        .having(counted > 0)
        .subquery()
    )
    if limit and session.get_bind().dialect.name == "postgresql":
        # the worst `limit` and every institution tied with the last of them, before joining
        # the names: 13,000 joins would cost more than the ranking itself
        worst = select(per_org).order_by(*_worst_first(per_org)).fetch(limit, with_ties=True)
        per_org = worst.subquery()
    query = (
        select(per_org, Organization.code, Organization.name)
        .join(Organization, Organization.id == per_org.c.org_id)
        .order_by(*_worst_first(per_org), Organization.code)
    )
    found = session.execute(query.limit(limit) if limit else query).all()
    span = replace(sel.scope, due_from=w.first, due_to=w.last)
    return [
        OrgRate(
            code=r.code,
            name=r.name,
            rate=rate_of(int(r.on_time), int(r.late), int(r.overdue), replace(span, org=r.code)),
        )
        for r in found
    ], int(found[0].ranked) if found else 0


def _worst_first(per_org: Any) -> tuple[Any, Any]:
    """The ranking's order over per-institution counts: lowest on-time rate, then most
    overdue."""
    total = per_org.c.on_time + per_org.c.late + per_org.c.overdue
    return per_org.c.on_time * 1.0 / total, per_org.c.overdue.desc()


def duty_titles(session: Session, ids: Iterable[int]) -> dict[int, tuple[str, str]]:
    wanted = sorted(set(ids))
    if not wanted:
        return {}
    names = duties.refs(session, wanted)  # PLAN/CODE where plans share the id: its links
    return {
        i: (names[i], title)
        for i, title in session.execute(
            select(ObligationRow.id, ObligationRow.title).where(ObligationRow.id.in_(wanted))
        )
    }


def months_of(tally: Tallies, year: int, scope: Scope) -> list[tuple[date, Rate]]:
    """The plan year month by month."""
    out = []
    for m in range(1, 13):
        first = date(year, m, 1)
        last = date(year + (m == 12), m % 12 + 1, 1) - timedelta(days=1)
        out.append(
            (first, tally.rate(Window(first=first, last=last, key=first.isoformat()), scope))
        )
    return out


def overdue_by_duty(
    session: Session, tally: Tallies, scope: Scope, w: Window | None
) -> list[tuple[str, str, Count]]:
    """(code, title, overdue count) per duty, most overdue first."""
    counts: dict[int, int] = defaultdict(int)
    for (day, obligation_id), n in tally.overdue.items():
        if _in(day, w):
            counts[obligation_id] += n
    names = duty_titles(session, counts)
    span = replace(scope, outcome="overdue")
    if w:
        span = replace(span, due_from=w.first, due_to=w.last)
    rows = [
        (names[i][0], names[i][1], Count(n=n, scope=replace(span, obligation=names[i][0])))
        for i, n in counts.items()
    ]
    return sorted(rows, key=lambda r: (-r[2].n, r[0]))
