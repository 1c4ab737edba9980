"""Writes a validated catalog (organizations, plans, obligations) into the database.

One write transaction: either the whole catalog is stored or nothing is. Organizations and
obligations missing from the new catalog are deactivated, never deleted (their tasks stay).
When the roster of organizations, their tags or their `joined` days change, the roster
version moves on, which tells `materialize` to re-check every period against the new roster.

A plan already in the database whose file changed is *held* when `amend=False` (what
`duban init` does): its stored version stays in force and the report names it, so a changed
plan is applied only through `duban plan apply`, which shows what changes first.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from duban.catalog.contacts import Unreachable
from duban.catalog.loader import Catalog
from duban.engine.adoption import AdoptionReport
from duban.store import audit
from duban.store.models import (
    Meta,
    ObligationRow,
    ObligationVersion,
    Organization,
    OrgContact,
    OrgTag,
    Plan,
)

ROSTER_KEY = "roster_version"


@dataclass(frozen=True, kw_only=True)
class SyncReport:
    organizations: int
    plans: int
    obligations: int
    roster_changed: bool
    changed_obligations: int
    held: tuple[str, ...] = ()  # plans whose file changed and were not applied
    adoption: AdoptionReport | None = None  # set by `duban init`
    first_init: bool = False
    # set by `duban init`: ladder steps that some organizations cannot receive (warnings)
    unreachable: tuple[Unreachable, ...] = ()


def roster_version(session: Session) -> str:
    meta = session.get(Meta, ROSTER_KEY)
    return meta.value if meta else "0"


def _roster_digest(catalog: Catalog) -> str:
    parts = sorted(
        f"{o.id}:{','.join(sorted(o.tags))}:{o.joined or ''}" for o in catalog.organizations
    )
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()


def _sync_orgs(session: Session, catalog: Catalog) -> None:
    orgs = {o.code: o for o in session.scalars(select(Organization))}
    for spec in catalog.organizations:
        org = orgs.get(spec.id)
        if org is None:
            org = orgs[spec.id] = Organization(code=spec.id, name=spec.name)
            session.add(org)
        org.name, org.name_en, org.active = spec.name, spec.name_en, True
        org.joined = spec.joined
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


def held_plans(session: Session, catalog: Catalog) -> tuple[str, ...]:
    """Plans stored before whose file has changed since (compared by their parsed content)."""
    stored = {c: h for c, h in session.execute(select(Plan.code, Plan.content_hash))}
    return tuple(
        lp.header.id
        for lp in catalog.plans
        if lp.header.id in stored and stored[lp.header.id] != lp.content_hash
    )


def sync_plan_rows(
    session: Session, catalog: Catalog, now: datetime, skip: tuple[str, ...] = ()
) -> dict[str, int]:
    """Store the catalog's plan headers (except `skip`); returns every plan's row id."""
    plans = {p.code: p for p in session.scalars(select(Plan))}
    for lp in catalog.plans:
        h = lp.header
        if h.id in skip:
            continue
        plan = plans.get(h.id)
        if plan is None:
            plan = plans[h.id] = Plan(code=h.id)
            session.add(plan)
        plan.title, plan.document = h.title, h.document
        plan.valid_from, plan.valid_until = h.valid.start, h.valid.until
        plan.source_file, plan.content_hash, plan.loaded_at = lp.file, lp.content_hash, now
        plan.file_sha256 = lp.file_sha256 or plan.file_sha256
        plan.events = {k: v.model_dump() for k, v in lp.events.items()}
    session.flush()
    return {code: plan.id for code, plan in plans.items()}


def sync_obligation_rows(
    session: Session,
    catalog: Catalog,
    plan_ids: dict[str, int],
    *,
    now: datetime,
    skip: tuple[str, ...] = (),
    effective_from: date | None = None,
    withdraw_missing_of: str | None = None,
) -> int:
    """Store the catalog's obligations (except those of plans in `skip`).

    Obligations missing from the catalog are deactivated: every one when
    `withdraw_missing_of` is None, or only that plan's (what `plan apply` does). A new or
    changed obligation gets `effective_from` (None: owed from adoption on). Returns how many
    obligations were new or changed.
    """
    existing = {o.code: o for o in session.scalars(select(ObligationRow))}
    receivers = {c: i for c, i in session.execute(select(Organization.code, Organization.id))}
    sha = {lp.header.id: lp.file_sha256 for lp in catalog.plans}
    changed = 0
    for lo in catalog.obligations:
        if lo.plan.id in skip:
            continue
        row = existing.get(lo.domain.code)
        if row is None:
            row = ObligationRow(code=lo.domain.code)
            session.add(row)
        if row.content_hash != lo.content_hash or not row.active:
            changed += 1
            row.effective_from = effective_from
        row.plan_id = plan_ids[lo.plan.id]
        row.title = lo.domain.title
        row.event_kind = lo.domain.event
        row.spec = lo.spec_json()
        row.content_hash = lo.content_hash
        row.active = True
        row.receiver_org_id = receivers.get(lo.spec.submit_to) if lo.spec.submit_to else None
    session.flush()
    stored = {
        (o, h)
        for o, h in session.execute(
            select(ObligationVersion.obligation_id, ObligationVersion.content_hash)
        )
    }
    for lo in catalog.obligations:
        row = existing.get(lo.domain.code) or session.scalar(
            select(ObligationRow).where(ObligationRow.code == lo.domain.code)
        )
        if lo.plan.id in skip or row is None or (row.id, row.content_hash) in stored:
            continue
        session.add(
            ObligationVersion(
                obligation_id=row.id,
                content_hash=row.content_hash,
                spec=row.spec,
                plan_version=sha.get(lo.plan.id) or None,
                stored_at=now,
            )
        )
    kept = {lo.domain.code for lo in catalog.obligations} | {
        code for code, o in existing.items() if plan_code_of(o, plan_ids) in skip
    }
    missing = update(ObligationRow).where(ObligationRow.code.not_in(kept))
    if withdraw_missing_of is not None:
        missing = missing.where(ObligationRow.plan_id == plan_ids[withdraw_missing_of])
    session.execute(missing.values(active=False))
    session.flush()
    return changed


def plan_code_of(row: ObligationRow, plan_ids: dict[str, int]) -> str | None:
    return next((code for code, pid in plan_ids.items() if pid == row.plan_id), None)


def sync_catalog(
    session: Session, catalog: Catalog, *, now: datetime, actor: str = "system", amend: bool = True
) -> SyncReport:
    """Store the catalog in the caller's write transaction; audit it when anything changed.

    With `amend=False` a stored plan whose file changed is held (see the module docstring).
    """
    held = () if amend else held_plans(session, catalog)
    _sync_orgs(session, catalog)
    roster_changed, digest = _sync_roster_version(session, catalog)
    plan_ids = sync_plan_rows(session, catalog, now, skip=held)
    changed = sync_obligation_rows(session, catalog, plan_ids, now=now, skip=held)
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
        held=held,
    )
