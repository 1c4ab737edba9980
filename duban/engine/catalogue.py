"""What the filter forms offer and the audit page shows: the catalogue's duties, forms,
organizations and tags, and the state of the audit chain."""

from __future__ import annotations

from datetime import datetime
from typing import Any, NamedTuple
from zoneinfo import ZoneInfo

from sqlalchemy import select

from duban.engine import duties
from duban.engine.users import Principal
from duban.errors import NotFound
from duban.store import audit
from duban.store.db import Store
from duban.store.models import AuditEvent, ObligationRow, Organization, OrgTag, Plan, Task


def obligation_form(store: Store, code: str, plan: str | None = None) -> dict[str, Any]:
    """The blank form the plan gives for the duty (of `plan`; without it the latest plan's
    duty of that id, duban.engine.duties), or NotFound."""
    name = duties.qualified(plan, code) if plan else code
    with store.read() as session:
        ob = duties.one_duty(session, name)
    if ob is None or not ob.spec.get("form"):
        raise NotFound("form of obligation", name)
    form: dict[str, Any] = ob.spec["form"]
    return form


def obligations(store: Store) -> list[ObligationRow]:
    with store.read() as session:
        return list(
            session.scalars(
                select(ObligationRow).where(ObligationRow.active).order_by(ObligationRow.code)
            )
        )


def organizations(store: Store, who: Principal, *, at_most: int | None = None) -> list[Any] | None:
    """(code, name) of the organizations the principal may pick, or None when there are more
    than `at_most` (a province has thousands: the filter then asks for a code instead)."""
    query = (
        select(Organization.code, Organization.name)
        .where(Organization.active)
        .order_by(Organization.code)
    )
    if who.role == "institution":
        query = query.where(Organization.id == who.org_id)
    if at_most is not None:
        query = query.limit(at_most + 1)
    with store.read() as session:
        found = list(session.execute(query))
    return None if at_most is not None and len(found) > at_most else found


def first_duty_with_tasks(store: Store, now: datetime) -> str | None:
    """The matrix's default duty: the first, by code, that anyone owes yet."""
    owed = select(Task.id).where(Task.obligation_id == ObligationRow.id, Task.opens_at <= now)
    with store.read() as session:
        return session.scalar(
            select(ObligationRow.code)
            .where(ObligationRow.active, owed.exists())
            .order_by(ObligationRow.code)
            .limit(1)
        )


class DutyChoice(NamedTuple):
    code: str  # the filter's value: a duty's name (duban.engine.duties)
    title: str


def duty_choices(store: Store) -> list[DutyChoice]:
    """(name, title) of the active duties, for the filters. A duty id several plans hold is
    offered once across the plans (its bare id: follows the duty from year to year), then
    once per plan (PLAN/ID)."""
    with store.read() as session:
        rows = session.execute(
            select(ObligationRow.code, ObligationRow.title, Plan.code)
            .join(Plan, Plan.id == ObligationRow.plan_id)
            .where(ObligationRow.active)
            .order_by(ObligationRow.code, Plan.valid_from, Plan.code)
        ).all()
        shared = duties.shared_codes(session, [code for code, _, _ in rows])
    found: list[DutyChoice] = []
    for code, title, plan in rows:
        if code not in shared:
            found.append(DutyChoice(code, title))
            continue
        if not found or found[-1].code.split("/")[-1] != code:
            found.append(DutyChoice(code, f"{title}（各年度 every plan）"))
        found.append(DutyChoice(duties.qualified(plan, code), f"{title}（{plan}）"))
    return found


def tags(store: Store) -> list[str]:
    with store.read() as session:
        return list(session.scalars(select(OrgTag.tag).distinct().order_by(OrgTag.tag)))


def audit_status(store: Store) -> dict[str, Any]:
    """`duban audit verify` as a status: intact or the first broken link."""
    with store.consistent() as session:
        verdict = audit.verify(session)
    return {
        "ok": verdict.ok,
        "count": verdict.count,
        "head": verdict.head,
        "problem": verdict.problem,
    }


def recent_audit(store: Store, *, tz: ZoneInfo, limit: int = 200) -> list[dict[str, Any]]:
    with store.read() as session:
        events = list(
            session.scalars(select(AuditEvent).order_by(AuditEvent.seq.desc()).limit(limit))
        )
    return [
        {
            "seq": e.seq,
            "at_local": e.at.astimezone(tz).strftime("%Y-%m-%d %H:%M"),
            "actor": e.actor,
            "action": e.action,
            "entity": e.entity,
            "entity_id": e.entity_id,
            "hash": e.hash,
        }
        for e in events
    ]
