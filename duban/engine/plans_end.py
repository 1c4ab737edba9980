"""What each plan still owes from today, and which plans are about to end.

`ending_plans(session, today=…, within_days=…)` is the one rule for the announcement of a
plan's end: every plan in force (not withdrawn, with an active duty) whose window ends within
`within_days` days of `today` (today included), with what stops then: each active duty, its
rhythm, the last period it owes, and the later plan's duty that continues it (the same id; see
duban.engine.duties), if any. `duban plan show` prints it from `plan_end_warning_days` (60)
before the end; the administrator's home and the weekly summary read the same function.

`standings()` counts what each plan still owes *from today*: the periods of its active duties
due on or after the later of today, adoption, the duty version's `effective_from` and the
organization's joining day. A plan whose window has ended, or that was withdrawn, owes
nothing. `planned()` lists those periods, per due day, for `plan show --year`.
Both compute from `PlanView`s: the plans as the database holds them (`stored_plans`), or as
the configured files say before the database exists (`file_plans`).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from duban.catalog.expand import PlannedTask
from duban.catalog.loader import Catalog
from duban.domain.obligations import Obligation
from duban.domain.workdays import WorkdayCalendar
from duban.engine import duties
from duban.engine.materialize import domain_obligation
from duban.engine.roster import Roster
from duban.store.models import ObligationRow, Plan

RHYTHM = {
    "monthly": "每月 monthly",
    "bimonthly": "每两月 bimonthly",
    "quarterly": "每季度 quarterly",
    "half_yearly": "每半年 half-yearly",
    "yearly": "每年 yearly",
    "rrule": "RRULE",
    "once": "一次 once",
    "event": "事件 on an event",
}


@dataclass(frozen=True, kw_only=True)
class DutyView:
    ref: str  # as shown (duban.engine.duties.refs)
    title: str
    obligation: Obligation
    rhythm: str  # the recurrence kind (RHYTHM's keys)
    effective_from: date | None = None


@dataclass(frozen=True, kw_only=True)
class PlanView:
    code: str
    title: str
    valid_from: date
    valid_until: date
    duties: tuple[DutyView, ...]
    withdrawn_at: datetime | None = None
    withdrawn_reason: str | None = None


@dataclass(frozen=True, kw_only=True)
class StoppingDuty:
    ref: str
    title: str
    rhythm: str
    last_period: str | None  # the last period the plan owes for it (None: event-triggered)
    continued_by: str | None  # `PLAN/CODE` of the later plan's duty of the same id


@dataclass(frozen=True, kw_only=True)
class EndingPlan:
    code: str
    title: str
    document: str
    valid_until: date
    days_left: int  # 0: it ends today
    duties: tuple[StoppingDuty, ...]

    @property
    def stopping(self) -> tuple[StoppingDuty, ...]:
        """The duties no later plan continues: they stop with the plan."""
        return tuple(d for d in self.duties if d.continued_by is None)


@dataclass(frozen=True, kw_only=True)
class Standing:
    plan: PlanView
    state: str  # owes | nothing-due | ended | ended-before-adoption | withdrawn
    owed: int = 0
    first_due: date | None = None
    last_due: date | None = None
    periods: tuple[str, str] | None = None  # the first and last period owed (not one-offs)


def stored_plans(session: Session) -> list[PlanView]:
    """Every plan the database holds, with its active duties, in window order."""
    plans = list(session.scalars(select(Plan).order_by(Plan.valid_from, Plan.code)))
    rows = list(
        session.scalars(
            select(ObligationRow).where(ObligationRow.active).order_by(ObligationRow.code)
        )
    )
    names = duties.refs(session, [r.id for r in rows])
    views = []
    for plan in plans:
        views.append(
            PlanView(
                code=plan.code,
                title=plan.title,
                valid_from=plan.valid_from,
                valid_until=plan.valid_until,
                withdrawn_at=plan.withdrawn_at,
                withdrawn_reason=plan.withdrawn_reason,
                duties=tuple(
                    DutyView(
                        ref=names[r.id],
                        title=r.title,
                        obligation=domain_obligation(r, plan.code),
                        rhythm=str(r.spec["recurrence"]["kind"]),
                        effective_from=r.effective_from,
                    )
                    for r in rows
                    if r.plan_id == plan.id
                ),
            )
        )
    return views


def file_plans(catalog: Catalog) -> tuple[list[PlanView], Roster]:
    """The configured files' plans and organizations, before the database holds them."""
    views = [
        PlanView(
            code=lp.header.id,
            title=lp.header.title,
            valid_from=lp.header.valid.start,
            valid_until=lp.header.valid.until,
            duties=tuple(
                DutyView(
                    ref=lo.domain.code,
                    title=lo.domain.title,
                    obligation=lo.domain,
                    rhythm=lo.spec.recurrence.kind,
                )
                for lo in catalog.obligations
                if lo.plan.id == lp.header.id
            ),
        )
        for lp in catalog.plans
    ]
    roster = Roster(
        tags={o.id: frozenset(o.tags) for o in catalog.organizations},
        joined={o.id: o.joined for o in catalog.organizations},
    )
    return views, roster


def planned(
    plans: list[PlanView],
    roster: Roster,
    calendar: WorkdayCalendar,
    *,
    start: date | None,
    year: int | None = None,
    org: str | None = None,
) -> Iterator[tuple[PlanView, PlannedTask]]:
    """Every periodic task the plans in force owe, due on or after `start` (and each duty's
    `effective_from`, each organization's joining day), optionally in one year or of one
    organization. A withdrawn plan owes nothing."""
    for plan in plans:
        if plan.withdrawn_at is not None:
            continue
        for duty in plan.duties:
            orgs = roster.select(duty.obligation.responsible)
            if org is not None:
                orgs &= {org}
            if not orgs:
                continue
            first = max((d for d in (start, duty.effective_from) if d is not None), default=None)
            for period in duty.obligation.periods():
                due = duty.obligation.due_date(period, calendar)
                if (first is not None and due < first) or (year is not None and due.year != year):
                    continue
                for code in sorted(orgs):
                    joined = roster.joined.get(code)
                    if joined is None or due >= joined:
                        yield (
                            plan,
                            PlannedTask(due=due, obligation=duty.ref, org=code, period=period),
                        )


def standings(
    plans: list[PlanView],
    roster: Roster,
    calendar: WorkdayCalendar,
    *,
    today: date,
    adopted: date | None,
    org: str | None = None,
) -> list[Standing]:
    """Each plan's standing as of `today` (see the module docstring)."""
    start = max(d for d in (today, adopted) if d is not None)
    owed: dict[str, list[PlannedTask]] = {}
    for plan, task in planned(plans, roster, calendar, start=start, org=org):
        owed.setdefault(plan.code, []).append(task)
    out = []
    for plan in plans:
        tasks = owed.get(plan.code, [])
        if plan.withdrawn_at is not None:
            out.append(Standing(plan=plan, state="withdrawn"))
        elif adopted is not None and plan.valid_until < adopted:
            out.append(Standing(plan=plan, state="ended-before-adoption"))
        elif plan.valid_until < today and not tasks:
            out.append(Standing(plan=plan, state="ended"))
        elif not tasks:
            out.append(Standing(plan=plan, state="nothing-due"))
        else:
            keys = sorted({t.period.key for t in tasks if t.period.key != "once"})
            out.append(
                Standing(
                    plan=plan,
                    state="owes",
                    owed=len(tasks),
                    first_due=min(t.due for t in tasks),
                    last_due=max(t.due for t in tasks),
                    periods=(keys[0], keys[-1]) if keys else None,
                )
            )
    return out


def ending_plans(session: Session, *, today: date, within_days: int) -> list[EndingPlan]:
    """The plans in force whose window ends between `today` and `today + within_days`, the
    soonest first, each with what stops (see the module docstring)."""
    last = today + timedelta(days=within_days)
    plans = list(
        session.scalars(
            select(Plan)
            .where(Plan.withdrawn_at.is_(None), Plan.valid_until.between(today, last))
            .order_by(Plan.valid_until, Plan.code)
        )
    )
    if not plans:
        return []
    rows = list(
        session.scalars(
            select(ObligationRow)
            .where(ObligationRow.active, ObligationRow.plan_id.in_([p.id for p in plans]))
            .order_by(ObligationRow.code)
        )
    )
    names = duties.refs(session, [r.id for r in rows])
    later = session.execute(
        select(ObligationRow.code, Plan.code, Plan.valid_from)
        .join(Plan, Plan.id == ObligationRow.plan_id)
        .where(ObligationRow.active, Plan.withdrawn_at.is_(None))
        .order_by(Plan.valid_from, Plan.code)
    ).all()
    found = []
    for plan in plans:
        stopping = []
        for r in (r for r in rows if r.plan_id == plan.id):
            ob = domain_obligation(r, plan.code)
            if ob.valid_until < today:
                continue  # this duty's own window ended earlier: nothing stops now
            periods = [p.key for p in ob.periods()] if ob.event is None else []
            successor = next(
                (
                    duties.qualified(other, code)
                    for code, other, start in later
                    if code == r.code and other != plan.code and start > plan.valid_from
                ),
                None,
            )
            stopping.append(
                StoppingDuty(
                    ref=names[r.id],
                    title=r.title,
                    rhythm=str(r.spec["recurrence"]["kind"]),
                    last_period=periods[-1] if periods else None,
                    continued_by=successor,
                )
            )
        if stopping:
            found.append(
                EndingPlan(
                    code=plan.code,
                    title=plan.title,
                    document=plan.document,
                    valid_until=plan.valid_until,
                    days_left=(plan.valid_until - today).days,
                    duties=tuple(stopping),
                )
            )
    return found
