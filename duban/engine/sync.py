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
from duban.store.models import Meta, ObligationRow, Organization, OrgTag, Plan

ROSTER_KEY = "roster_version"


@dataclass(frozen=True, kw_only=True)
class SyncReport:
    organizations: int
    plans: int
    obligations: int
    roster_changed: bool
    changed_obligations: int


def roster_version(session: Session) -> str:
    return session.get(Meta, ROSTER_KEY).value if session.get(Meta, ROSTER_KEY) else "0"


def _roster_digest(catalog: Catalog) -> str:
    parts = sorted(f"{o.id}:{','.join(sorted(o.tags))}" for o in catalog.organizations)
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()


def sync_catalog(session: Session, catalog: Catalog, *, now: datetime,
                 actor: str = "system") -> SyncReport:
    orgs = {o.code: o for o in session.scalars(select(Organization))}
    for spec in catalog.organizations:
        row = orgs.get(spec.id)
        if row is None:
            row = Organization(code=spec.id, name=spec.name)
            session.add(row)
            orgs[spec.id] = row
        row.name, row.name_en, row.active = spec.name, spec.name_en, True
        row.contacts = {k: c.model_dump() for k, c in spec.contacts.items()}
    session.flush()
    wanted = {o.id for o in catalog.organizations}
    for code, row in orgs.items():
        if code not in wanted:
            row.active = False
    for spec in catalog.organizations:
        parent = orgs[spec.parent].id if spec.parent else None
        orgs[spec.id].parent_id = parent
    session.execute(delete(OrgTag))
    session.add_all(OrgTag(org_id=orgs[o.id].id, tag=t) for o in catalog.organizations
                    for t in sorted(set(o.tags)))

    digest = _roster_digest(catalog)
    meta = session.get(Meta, "roster_digest")
    roster_changed = meta is None or meta.value != digest
    if roster_changed:
        version = str(int(roster_version(session)) + 1)
        session.merge(Meta(key=ROSTER_KEY, value=version))
        session.merge(Meta(key="roster_digest", value=digest))

    plans = {p.code: p for p in session.scalars(select(Plan))}
    for lp in catalog.plans:
        h = lp.header
        row = plans.get(h.id)
        if row is None:
            row = Plan(code=h.id)
            session.add(row)
            plans[h.id] = row
        row.title, row.document = h.title, h.document
        row.valid_from, row.valid_until = h.valid.start, h.valid.until
        row.source_file, row.content_hash, row.loaded_at = lp.file, lp.content_hash, now
        row.events = {k: v.model_dump() for k, v in lp.events.items()}
    session.flush()

    existing = {o.code: o for o in session.scalars(select(ObligationRow))}
    changed = 0
    for lo in catalog.obligations:
        row = existing.get(lo.domain.code)
        if row is None:
            row = ObligationRow(code=lo.domain.code)
            session.add(row)
        if row.content_hash != lo.content_hash or not row.active:
            changed += 1
        row.plan_id = plans[lo.plan.id].id
        row.title = lo.domain.title
        row.event_kind = lo.domain.event
        row.spec = lo.spec_json()
        row.content_hash = lo.content_hash
        row.active = True
    codes = {lo.domain.code for lo in catalog.obligations}
    session.execute(update(ObligationRow).where(ObligationRow.code.not_in(codes))
                    .values(active=False))
    session.flush()
    if changed or roster_changed:
        audit.record(session, now=now, actor=actor, action="catalog.loaded", entity="catalog",
                     entity_id=catalog.region or "-",
                     data={"plans": {p.header.id: p.content_hash for p in catalog.plans},
                           "roster": digest, "changed_obligations": changed})
    return SyncReport(organizations=len(catalog.organizations), plans=len(catalog.plans),
                      obligations=len(catalog.obligations), roster_changed=roster_changed,
                      changed_obligations=changed)
