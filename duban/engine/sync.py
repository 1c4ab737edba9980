"""Writes a validated catalog (organizations, plans, obligations) into the database.

One write transaction: either the whole catalog is stored or nothing is. Organizations and
obligations missing from the new catalog are deactivated, never deleted (their tasks stay).
When the roster of organizations or their tags changes, the roster version moves on, which
tells `materialize` to re-check every period against the new roster.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from duban.catalog.loader import Catalog
from duban.store import audit
from duban.store.models import Meta, ObligationRow, Organization, OrgContact, OrgTag, Plan

ROSTER_KEY = "roster_version"


@dataclass(frozen=True, kw_only=True)
class SyncReport:
    organizations: int
    plans: int
    obligations: int
    roster_changed: bool
    changed_obligations: int


def roster_version(session: Session) -> str:
    meta = session.get(Meta, ROSTER_KEY)
    return meta.value if meta else "0"


def _roster_digest(catalog: Catalog) -> str:
    parts = sorted(f"{o.id}:{','.join(sorted(o.tags))}" for o in catalog.organizations)
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()


def _sync_orgs(session: Session, catalog: Catalog) -> None:
    orgs = {o.code: o for o in session.scalars(select(Organization))}
    for spec in catalog.organizations:
        org = orgs.get(spec.id)
        if org is None:
            org = orgs[spec.id] = Organization(code=spec.id, name=spec.name)
            session.add(org)
        org.name, org.name_en, org.active = spec.name, spec.name_en, True
        org.contacts = {k: c.model_dump() for k, c in spec.contacts.items()}
    session.flush()
    wanted = {o.id for o in catalog.organizations}
    for code, org in orgs.items():
        org.active = code in wanted
    for spec in catalog.organizations:
        orgs[spec.id].parent_id = orgs[spec.parent].id if spec.parent else None
    session.execute(delete(OrgTag))
    session.add_all(
        OrgTag(org_id=orgs[o.id].id, tag=t)
        for o in catalog.organizations
        for t in sorted(set(o.tags))
    )
    session.execute(delete(OrgContact))
    session.add_all(
        OrgContact(org_id=orgs[o.id].id, role=role, email=c.email, label=c.role)
        for o in catalog.organizations
        for role, c in sorted(o.contacts.items())
    )


def _sync_roster_version(session: Session, catalog: Catalog) -> tuple[bool, str]:
    digest = _roster_digest(catalog)
    meta = session.get(Meta, "roster_digest")
    changed = meta is None or meta.value != digest
    if changed:
        session.merge(Meta(key=ROSTER_KEY, value=str(int(roster_version(session)) + 1)))
        session.merge(Meta(key="roster_digest", value=digest))
    return changed, digest


def _sync_plans(session: Session, catalog: Catalog, now: datetime) -> dict[str, int]:
    plans = {p.code: p for p in session.scalars(select(Plan))}
    for lp in catalog.plans:
        h = lp.header
        plan = plans.get(h.id)
        if plan is None:
            plan = plans[h.id] = Plan(code=h.id)
            session.add(plan)
        plan.title, plan.document = h.title, h.document
        plan.valid_from, plan.valid_until = h.valid.start, h.valid.until
        plan.source_file, plan.content_hash, plan.loaded_at = lp.file, lp.content_hash, now
        plan.events = {k: v.model_dump() for k, v in lp.events.items()}
    session.flush()
    return {code: plan.id for code, plan in plans.items()}


def _sync_obligations(session: Session, catalog: Catalog, plan_ids: dict[str, int]) -> int:
    existing = {o.code: o for o in session.scalars(select(ObligationRow))}
    changed = 0
    for lo in catalog.obligations:
        row = existing.get(lo.domain.code)
        if row is None:
            row = ObligationRow(code=lo.domain.code)
            session.add(row)
        if row.content_hash != lo.content_hash or not row.active:
            changed += 1
        row.plan_id = plan_ids[lo.plan.id]
        row.title = lo.domain.title
        row.event_kind = lo.domain.event
        row.spec = lo.spec_json()
        row.content_hash = lo.content_hash
        row.active = True
    codes = {lo.domain.code for lo in catalog.obligations}
    session.execute(
        update(ObligationRow).where(ObligationRow.code.not_in(codes)).values(active=False)
    )
    session.flush()
    return changed


def sync_catalog(
    session: Session, catalog: Catalog, *, now: datetime, actor: str = "system"
) -> SyncReport:
    """Store the catalog in the caller's write transaction; audit it when anything changed."""
    _sync_orgs(session, catalog)
    roster_changed, digest = _sync_roster_version(session, catalog)
    plan_ids = _sync_plans(session, catalog, now)
    changed = _sync_obligations(session, catalog, plan_ids)
    if changed or roster_changed:
        audit.record(
            session,
            now=now,
            actor=actor,
            action="catalog.loaded",
            entity="catalog",
            entity_id=catalog.region or "-",
            data={
                "plans": {p.header.id: p.content_hash for p in catalog.plans},
                "roster": digest,
                "changed_obligations": changed,
            },
        )
    return SyncReport(
        organizations=len(catalog.organizations),
        plans=len(catalog.plans),
        obligations=len(catalog.obligations),
        roster_changed=roster_changed,
        changed_obligations=changed,
    )
