"""The quarterly circular (督办通报): what the county commission tells its institutions.

One read model for the DOCX and the printable page: the quarter's tasks (those due in it) as
of `now`, counted as the home pages count them (duban.engine.stats): the overall rate against
the quarter before, every institution ranked by on-time rate, the overdue tasks per
institution with duty and days overdue, the institutions late more than once, and the plan
clauses behind them.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from zoneinfo import ZoneInfo

from sqlalchemy import select

from duban.domain.due import local_date
from duban.domain.tasks import days_overdue
from duban.engine import outcomes
from duban.engine.stats import OrgRate, Rate, Scope, Window, ranking, select_for, tallies
from duban.engine.sweep import COUNTY_OFFICE
from duban.store.db import Store
from duban.store.models import ObligationRow, Organization, OrgTag, Plan, TallyDutyDay, Task

QUARTER_NAMES = ("第一季度", "第二季度", "第三季度", "第四季度")
REPEATED = 2  # late or overdue this many times in the quarter: "late repeatedly"
MAX_RANKED = 300  # institutions in the ranking table (a province has thousands)
MAX_OVERDUE = 500  # overdue tasks listed; the rest are counted and left to the board


@dataclass(frozen=True, kw_only=True)
class OverdueTask:
    id: int
    org: str
    org_name: str
    title: str
    clause: str
    due: date
    days: int


@dataclass(frozen=True, kw_only=True)
class Clause:
    code: str
    title: str
    document: str
    clause: str
    quote: str


@dataclass(frozen=True, kw_only=True)
class Circular:
    quarter: Window
    title: str
    issuer: str
    issued: date
    overall: Rate
    before: Rate
    orgs_ranked: int
    ranked: list[OrgRate]
    overdue: list[OverdueTask]
    overdue_total: int
    repeated: list[OrgRate]
    clauses: list[Clause]
    plans: list[str]  # the documents the duties come from

    @property
    def period_label(self) -> str:
        q = self.quarter
        return f"{q.first.year}年{QUARTER_NAMES[(q.first.month - 1) // 3]}"


def short_region(region: str) -> str:
    """江西省赣州市信丰县 → 信丰县: the county names itself."""
    for mark in ("市", "省"):
        if mark in region and not region.endswith(mark):
            return region.rsplit(mark, 1)[1]
    return region


def circular(
    store: Store, *, quarter: str, now: datetime, tz: ZoneInfo, region: str = ""
) -> Circular:
    """The circular for `quarter` (YYYY-Qn) as of `now`."""
    w = Window.parse(quarter)
    with store.read() as session:
        sel = select_for(session, plan=None, tag=None)
        span = Window(first=w.previous().first, last=w.last, key="span")
        tally = tallies(session, sel, now=now, tz=tz, within=span)
        every, count = ranking(session, sel, w, now=now, limit=None)
        overdue_rows = session.execute(
            select(
                Task.id,
                Task.due_date,
                Organization.code,
                Organization.name,
                ObligationRow.title,
                ObligationRow.spec,
            )
            .join(Organization, Organization.id == Task.org_id)
            .join(ObligationRow, ObligationRow.id == Task.obligation_id)
            .where(outcomes.overdue(now), Task.due_date.between(w.first, w.last))
            .order_by(Organization.code, Task.due_date, ObligationRow.code)
            .limit(MAX_OVERDUE)
        ).all()
        late_duties = set(
            session.scalars(
                select(TallyDutyDay.obligation_id)
                .where(TallyDutyDay.late, TallyDutyDay.n > 0)
                .where(TallyDutyDay.due_date.between(w.first, w.last))
            )
        )
        behind = sorted(late_duties | {o for (d, o) in tally.overdue if w.first <= d <= w.last})
        duties = session.execute(
            select(ObligationRow.code, ObligationRow.title, ObligationRow.spec)
            .where(ObligationRow.id.in_(behind or [-1]))
            .order_by(ObligationRow.code)
        ).all()
        documents = list(session.scalars(select(Plan.document).order_by(Plan.code)))
        issuer = session.scalar(
            select(Organization.name)
            .join(OrgTag, OrgTag.org_id == Organization.id)
            .where(OrgTag.tag == COUNTY_OFFICE)
            .order_by(Organization.parent_id.is_not(None), Organization.code)
            .limit(1)
        )
        overdue_total = tally.overdue_in(w)
    today = local_date(now, tz)
    county = short_region(region)
    return Circular(
        quarter=w,
        title=f"{county}妇幼健康工作督办通报（{w.first.year}年"
        f"{QUARTER_NAMES[(w.first.month - 1) // 3]}）",
        issuer=issuer or f"{county}卫生健康委员会",
        issued=today,
        overall=tally.rate(w, Scope()),
        before=tally.rate(w.previous(), Scope()),
        orgs_ranked=count,
        ranked=every[:MAX_RANKED],
        overdue=[
            OverdueTask(
                id=r.id,
                org=r.code,
                org_name=r.name,
                title=r.title,
                clause=r.spec["source"]["clause"],
                due=r.due_date,
                days=days_overdue(r.due_date, today),
            )
            for r in overdue_rows
        ],
        overdue_total=overdue_total,
        repeated=sorted(
            (o for o in every if o.rate.late.n + o.rate.overdue.n >= REPEATED),
            key=lambda o: (-(o.rate.late.n + o.rate.overdue.n), o.code),
        ),
        clauses=[
            Clause(
                code=code,
                title=title,
                document=spec["source"]["document"],
                clause=spec["source"]["clause"],
                quote=spec["source"].get("quote", ""),
            )
            for code, title, spec in duties
        ],
        plans=documents,
    )
