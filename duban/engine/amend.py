"""Amending a plan without rewriting history: `duban plan diff` and `duban plan apply`.

`diff` compares a plan file with the version the database holds and says, before anything is
written, which duties are added, changed (rhythm, due rule, responsible parties, ladder,
evidence, or only wording) and withdrawn, and how many *future* tasks each change creates or
withdraws. Future tasks are those not created yet whose due day is on or after the day of the
change (and adoption, and the organization's joining).

`apply` writes the new version in one transaction:
- tasks already created keep the rule they were created under (each names its plan version
  and obligation version; nothing is recomputed);
- new and changed duties owe the periods due from the day of application on;
- open tasks of a withdrawn duty are closed as `withdrawn` with the reason, never deleted;
- the audit trail records who applied which version (the file's SHA-256).
Applying the same file twice changes nothing the second time; a file that does not validate
changes nothing at all (the catalog is validated before the database is touched).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from duban.catalog import schema as s
from duban.catalog.loader import Catalog, LoadedObligation
from duban.domain.due import local_date
from duban.domain.obligations import Obligation
from duban.domain.tasks import PENDING, TaskState
from duban.domain.text import REASON_MAX, clean_text
from duban.domain.workdays import WorkdayCalendar
from duban.engine import duties
from duban.engine.adoption import adopted_on
from duban.engine.materialize import domain_obligation
from duban.engine.roster import Roster, roster_of
from duban.engine.sync import sync_obligation_rows, sync_plan_rows
from duban.errors import DubanError
from duban.store import audit
from duban.store.db import Store
from duban.store.models import ObligationRow, Organization, Plan, Task

# what a change touches, in the order a reader checks them: (label, spec keys)
ASPECTS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("rhythm 周期", ("recurrence", "valid")),
    ("due rule 截止规则", ("due",)),
    ("responsible 责任单位", ("responsible",)),
    ("ladder 提醒与督办", ("reminders", "escalation")),
    ("evidence 佐证材料", ("evidence",)),
    ("receiver 接收单位", ("submit_to",)),
)


@dataclass(frozen=True, kw_only=True)
class DutyChange:
    code: str
    title: str
    change: str  # added | changed | withdrawn
    aspects: tuple[str, ...] = ()  # for changed: which of ASPECTS (or "wording 文字")
    creates: int = 0  # future tasks the new version creates that the old would not
    withdraws: int = 0  # future tasks the old version would create that the new does not
    retimed: int = 0  # future tasks both create, with a different due day
    closes: int = 0  # open tasks closed as withdrawn (a withdrawn duty)
    continues: str | None = None  # a new plan's duty: the earlier plan's duty it continues


@dataclass(frozen=True, kw_only=True)
class PlanDiff:
    plan: str
    file: str
    sha256: str
    stored_sha256: str | None
    new_plan: bool
    as_of: date
    changes: tuple[DutyChange, ...] = ()
    header_changed: bool = False
    reactivates: bool = False  # the plan was withdrawn: applying it puts it in force again

    @property
    def empty(self) -> bool:
        return not self.changes and not self.header_changed and not self.reactivates


@dataclass(frozen=True, kw_only=True)
class ApplyReport:
    diff: PlanDiff
    applied: bool
    closed: int = 0


def normalized(spec: dict[str, Any]) -> dict[str, Any]:
    """A stored or loaded spec as the current schema writes it (older rows lack new keys)."""
    return s.ObligationSpec.model_validate(spec).model_dump(mode="json", by_alias=True)


def _aspects(old: dict[str, Any], new: dict[str, Any]) -> tuple[str, ...]:
    found = [label for label, keys in ASPECTS if any(old.get(k) != new.get(k) for k in keys)]
    covered = {k for _, keys in ASPECTS for k in keys}
    if any(old.get(k) != new.get(k) for k in set(old) | set(new) if k not in covered):
        found.append("wording 文字")
    return tuple(found)


def _future(
    ob: Obligation,
    roster: Roster,
    existing: set[tuple[str, str]],
    *,
    start: date,
    calendar: WorkdayCalendar,
) -> dict[tuple[str, str], date]:
    """(org, period) → due for the periods not created yet that fall due on or after `start`."""
    orgs = roster.select(ob.responsible)
    found: dict[tuple[str, str], date] = {}
    for period in ob.periods():
        due = ob.due_date(period, calendar)
        if due < start:
            continue
        for org in orgs:
            joined = roster.joined.get(org)
            if (joined is None or due >= joined) and (org, period.key) not in existing:
                found[(org, period.key)] = due
    return found


def _existing(session: Session, obligation_ids: list[int]) -> dict[int, set[Any]]:
    """(org, period) of every task already created: those are never created again."""
    found: dict[int, set[tuple[str, str]]] = {i: set() for i in obligation_ids}
    for ob_id, org, key in session.execute(
        select(Task.obligation_id, Organization.code, Task.period_key)
        .join(Organization, Organization.id == Task.org_id)
        .where(Task.obligation_id.in_(obligation_ids))
    ):
        found[ob_id].add((org, key))
    return found


def _plan_of(catalog: Catalog, plan_id: str | None) -> tuple[str, list[LoadedObligation]]:
    plans = [p.header.id for p in catalog.plans]
    if plan_id is None:
        if len(plans) != 1:
            raise DubanError(f"give one plan file; this catalog holds {', '.join(plans)}")
        plan_id = plans[0]
    return plan_id, [o for o in catalog.obligations if o.plan.id == plan_id]


def diff(
    store: Store,
    catalog: Catalog,
    *,
    calendar: WorkdayCalendar,
    now: datetime,
    tz: ZoneInfo,
    plan_id: str | None = None,
) -> PlanDiff:
    """What applying the catalog's plan would change; reads the database, writes nothing."""
    plan_id, loaded = _plan_of(catalog, plan_id)
    lp = next(p for p in catalog.plans if p.header.id == plan_id)
    with store.read() as session:
        plan = session.scalar(select(Plan).where(Plan.code == plan_id))
        adopted = adopted_on(session)
        as_of = max(d for d in (local_date(now, tz), adopted) if d is not None)
        reactivates = plan is not None and plan.withdrawn_at is not None
        codes_in_file = {lo.domain.code for lo in loaded}
        rows = (
            [
                r
                for r in session.scalars(
                    select(ObligationRow).where(ObligationRow.plan_id == plan.id)
                )
                # a withdrawn plan's duties are all inactive: those its file lists come back
                if r.active or (reactivates and r.code in codes_in_file)
            ]
            if plan is not None
            else []
        )
        continues = (
            duties.continued(
                session, plan_id, [lo.domain.code for lo in loaded], start=lp.header.valid.start
            )
            if plan is None
            else {}
        )
        roster = roster_of(session)
        existing = _existing(session, [r.id for r in rows])
        open_counts: dict[int, int] = {
            ob_id: count
            for ob_id, count in session.execute(
                select(Task.obligation_id, func.count())
                .where(
                    Task.obligation_id.in_([r.id for r in rows]),
                    Task.state.in_([x.value for x in PENDING]),
                )
                .group_by(Task.obligation_id)
            )
        }
    # a new plan owes from adoption on, as `duban init` would load it; an amendment from today
    start_new = adopted if plan is None and adopted is not None else as_of
    stored = {r.code: r for r in rows}
    changes: list[DutyChange] = []
    for lo in loaded:
        code = lo.domain.code
        row = stored.get(code)
        new_future = _future(
            lo.domain,
            roster,
            existing.get(row.id, set()) if row else set(),
            start=start_new,
            calendar=calendar,
        )
        if row is None:
            changes.append(
                DutyChange(
                    code=code,
                    title=lo.domain.title,
                    change="added",
                    creates=len(new_future),
                    continues=continues.get(code),
                )
            )
            continue
        aspects = _aspects(normalized(row.spec), normalized(lo.spec_json()))
        if not aspects:
            continue
        old_future = _future(
            domain_obligation(row, plan_id),
            roster,
            existing[row.id],
            start=as_of,
            calendar=calendar,
        )
        both = old_future.keys() & new_future.keys()
        changes.append(
            DutyChange(
                code=code,
                title=lo.domain.title,
                change="changed",
                aspects=aspects,
                creates=len(new_future.keys() - old_future.keys()),
                withdraws=len(old_future.keys() - new_future.keys()),
                retimed=sum(1 for k in both if old_future[k] != new_future[k]),
            )
        )
    codes = {lo.domain.code for lo in loaded}
    for row in rows:
        if row.code in codes:
            continue
        old_future = _future(
            domain_obligation(row, plan_id),
            roster,
            existing[row.id],
            start=as_of,
            calendar=calendar,
        )
        changes.append(
            DutyChange(
                code=row.code,
                title=row.title,
                change="withdrawn",
                withdraws=len(old_future),
                closes=open_counts.get(row.id, 0),
            )
        )
    return PlanDiff(
        plan=plan_id,
        file=lp.file,
        sha256=lp.file_sha256,
        stored_sha256=plan.file_sha256 if plan else None,
        new_plan=plan is None,
        as_of=as_of,
        changes=tuple(changes),
        header_changed=plan is None or plan.content_hash != lp.content_hash,
        reactivates=reactivates,
    )


def close_open_tasks(
    session: Session, ids: list[int], *, reason: str, now: datetime, actor: str, version: str | None
) -> int:
    """Close the open and rejected tasks of the duties `ids` as withdrawn with the reason,
    one audit event per task (its own timeline says why it closed). Returns how many."""
    closing = session.execute(
        select(Task.id, Task.state).where(
            Task.obligation_id.in_(ids), Task.state.in_([x.value for x in PENDING])
        )
    ).all()
    if not closing:
        return 0
    session.execute(
        update(Task)
        .where(Task.id.in_([t for t, _ in closing]))
        .values(state=TaskState.WITHDRAWN.value, reason=reason, updated_at=now)
        .execution_options(synchronize_session=False)
    )
    for task_id, before in closing:  # each task's own timeline says why it closed
        audit.record(
            session,
            now=now,
            actor=actor,
            action="task.withdraw",
            entity="task",
            entity_id=task_id,
            data={"from": before, "to": "withdrawn", "reason": reason, "plan_version": version},
        )
    return len(closing)


def apply(
    store: Store,
    catalog: Catalog,
    *,
    calendar: WorkdayCalendar,
    now: datetime,
    tz: ZoneInfo,
    actor: str,
    reason: str | None = None,
    plan_id: str | None = None,
) -> ApplyReport:
    """Apply the catalog's plan as its new version (see the module docstring)."""
    plan_diff = diff(store, catalog, calendar=calendar, now=now, tz=tz, plan_id=plan_id)
    if plan_diff.empty:
        return ApplyReport(diff=plan_diff, applied=False)
    plan_id = plan_diff.plan
    only = Catalog(
        region=catalog.region,
        tags=catalog.tags,
        organizations=catalog.organizations,
        plans=tuple(p for p in catalog.plans if p.header.id == plan_id),
        obligations=tuple(o for o in catalog.obligations if o.plan.id == plan_id),
    )
    withdrawn = [c.code for c in plan_diff.changes if c.change == "withdrawn"]
    given = clean_text(reason, field="reason", max_length=REASON_MAX) if reason else ""
    why = given or (
        f"职责已随方案修订撤销 / the duty was withdrawn when plan {plan_id} version "
        f"{plan_diff.sha256[:12]} was applied on {plan_diff.as_of.isoformat()}"
    )
    with store.write() as session:
        plan_ids = sync_plan_rows(session, only, now)
        sync_obligation_rows(
            session,
            only,
            plan_ids,
            now=now,
            effective_from=None if plan_diff.new_plan else plan_diff.as_of,
        )
        plan = session.get_one(Plan, plan_ids[plan_id])
        plan.withdrawn_at = plan.withdrawn_reason = None  # applied again: in force
        ids = session.scalars(
            select(ObligationRow.id).where(
                ObligationRow.plan_id == plan.id, ObligationRow.code.in_(withdrawn)
            )
        )
        closed = close_open_tasks(
            session, list(ids), reason=why, now=now, actor=actor, version=plan_diff.sha256
        )
        audit.record(
            session,
            now=now,
            actor=actor,
            action="plan.applied",
            entity="plan",
            entity_id=plan_id,
            data={
                "sha256": plan_diff.sha256,
                "previous_sha256": plan_diff.stored_sha256,
                "file": plan_diff.file,
                "as_of": plan_diff.as_of.isoformat(),
                "added": [c.code for c in plan_diff.changes if c.change == "added"],
                "changed": {
                    c.code: list(c.aspects) for c in plan_diff.changes if c.change == "changed"
                },
                "withdrawn": withdrawn,
                "closed_tasks": closed,
                "continues": {c.code: c.continues for c in plan_diff.changes if c.continues},
                "reactivated": plan_diff.reactivates,
            },
        )
    return ApplyReport(diff=plan_diff, applied=True, closed=closed)
