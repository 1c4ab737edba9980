"""Writes a validated catalog (organizations, plans, obligations) into the database.

One write transaction: either the whole catalog is stored or nothing is. Organizations missing
from the organization files are deactivated, never deleted (their tasks stay). The database
holds the plans: a plan is never deactivated because its file is missing from a list; only a
duty its own plan's file no longer lists is (and `duban plan withdraw` ends a whole plan).
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

from sqlalchemy import delete, select
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
    withdrawn: tuple[str, ...] = ()  # configured plans withdrawn (`duban plan withdraw`)
    unconfigured: tuple[str, ...] = ()  # plans in force whose file is not configured: kept
    adoption: AdoptionReport | None = None  # set by `duban init`
    first_init: bool = False
    # set by `duban init`: ladder steps that some organizations cannot receive (warnings)
    unreachable: tuple[Unreachable, ...] = ()

    def plan_lines(self) -> list[str]:
        """What `duban init` (and `duban run` at start) says about the configured plan files
        it did not load: changed since applied (held), withdrawn, and plans it holds without
        a file."""
        lines = [
            f"plan {plan} changed since it was applied (方案文件已修改，未自动生效); see what "
            f"would change with `duban plan diff FILE` and apply it with `duban plan apply FILE`"
            for plan in self.held
        ]
        lines += [
            f"plan {plan} was withdrawn 已撤销; its configured file is not loaded again "
            "(`duban plan apply FILE` puts it in force again)"
            for plan in self.withdrawn
        ]
        lines += [f"applied plan {plan} is not in plan_files; kept" for plan in self.unconfigured]
        return lines


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


def plan_states(session: Session, catalog: Catalog) -> dict[str, str]:
    """Each catalog plan against the database: `new` (not stored), `unchanged` (stored with
    the same parsed content), `changed` (stored, its file changed since) or `withdrawn`."""
    stored = {
        code: (content, withdrawn)
        for code, content, withdrawn in session.execute(
            select(Plan.code, Plan.content_hash, Plan.withdrawn_at)
        )
    }
    states: dict[str, str] = {}
    for lp in catalog.plans:
        found = stored.get(lp.header.id)
        if found is None:
            states[lp.header.id] = "new"
        elif found[1] is not None:
            states[lp.header.id] = "withdrawn"
        else:
            states[lp.header.id] = "unchanged" if found[0] == lp.content_hash else "changed"
    return states


def held_plans(session: Session, catalog: Catalog) -> tuple[str, ...]:
    """Plans stored before whose file has changed since (compared by their parsed content)."""
    states = plan_states(session, catalog)
    return tuple(code for code, state in states.items() if state == "changed")


def sync_plan_rows(
    session: Session, catalog: Catalog, now: datetime, skip: tuple[str, ...] = ()
) -> dict[str, int]:
    """Store the catalog's plan headers (except `skip`); returns every plan's row id.

    A skipped plan's row is left as it is, but for its file's text: stored when it was not
    yet and the file is the very version applied (the same SHA-256), for `duban plan roll`.
    """
    plans = {p.code: p for p in session.scalars(select(Plan))}
    for lp in catalog.plans:
        h = lp.header
        plan = plans.get(h.id)
        if h.id in skip:
            if (
                plan is not None
                and plan.source_text is None
                and lp.text is not None
                and plan.file_sha256 == lp.file_sha256
            ):
                plan.source_text = lp.text
            continue
        if plan is None:
            plan = plans[h.id] = Plan(code=h.id)
            session.add(plan)
        plan.title, plan.document = h.title, h.document
        plan.valid_from, plan.valid_until = h.valid.start, h.valid.until
        plan.source_file, plan.content_hash, plan.loaded_at = lp.file, lp.content_hash, now
        plan.file_sha256 = lp.file_sha256 or plan.file_sha256
        plan.source_text = lp.text if lp.text is not None else plan.source_text
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
) -> int:
    """Store the catalog's obligations (except those of plans in `skip`).

    A duty is its plan and its id: each is matched with the stored duty of the same plan and
    id, never with another plan's. A stored duty of a plan the catalog holds (and does not
    skip) that its file no longer lists is deactivated; the duties of plans the catalog does
    not hold are left alone. A new or changed obligation gets `effective_from` (None: owed
    from adoption on). Returns how many obligations were new or changed (or active again).
    """
    synced = {plan_ids[lp.header.id] for lp in catalog.plans if lp.header.id not in skip}
    existing = {
        (o.plan_id, o.code): o
        for o in session.scalars(select(ObligationRow).where(ObligationRow.plan_id.in_(synced)))
    }
    receivers = {c: i for c, i in session.execute(select(Organization.code, Organization.id))}
    sha = {lp.header.id: lp.file_sha256 for lp in catalog.plans}
    changed = 0
    listed: list[ObligationRow] = []
    for lo in catalog.obligations:
        if lo.plan.id in skip:
            continue
        key = (plan_ids[lo.plan.id], lo.domain.code)
        row = existing.get(key)
        if row is None:
            row = existing[key] = ObligationRow(code=lo.domain.code, plan_id=key[0])
            session.add(row)
        if row.content_hash != lo.content_hash or not row.active:
            changed += 1
            row.effective_from = effective_from
        row.title = lo.domain.title
        row.event_kind = lo.domain.event
        row.spec = lo.spec_json()
        row.content_hash = lo.content_hash
        row.active = True
        row.receiver_org_id = receivers.get(lo.spec.submit_to) if lo.spec.submit_to else None
        listed.append(row)
    session.flush()
    stored = {
        (o, h)
        for o, h in session.execute(
            select(ObligationVersion.obligation_id, ObligationVersion.content_hash).where(
                ObligationVersion.obligation_id.in_([r.id for r in listed])
            )
        )
    }
    plan_code = {pid: code for code, pid in plan_ids.items()}
    for row in listed:
        if (row.id, row.content_hash) in stored:
            continue
        session.add(
            ObligationVersion(
                obligation_id=row.id,
                content_hash=row.content_hash,
                spec=row.spec,
                plan_version=sha.get(plan_code[row.plan_id]) or None,
                stored_at=now,
            )
        )
    kept = {r.id for r in listed}
    for row in existing.values():
        if row.id not in kept and row.active:
            row.active = False
    session.flush()
    return changed


def unconfigured_plans(session: Session, catalog: Catalog) -> tuple[str, ...]:
    """Plans the database holds and has not withdrawn whose file the catalog lacks (applied
    with `duban plan apply`, or dropped from `plan_files`): they stay in force."""
    configured = {lp.header.id for lp in catalog.plans}
    return tuple(
        code
        for code in session.scalars(
            select(Plan.code).where(Plan.withdrawn_at.is_(None)).order_by(Plan.code)
        )
        if code not in configured
    )


def sync_catalog(
    session: Session, catalog: Catalog, *, now: datetime, actor: str = "system", amend: bool = True
) -> SyncReport:
    """Store the catalog in the caller's write transaction; audit it when anything changed.

    The database holds the plans: a plan it holds whose file the catalog lacks stays as it is
    (`unconfigured`), a withdrawn plan is not loaded again (`duban plan apply` does that),
    and a plan whose file is unchanged is not written again. With `amend=False` a stored plan
    whose file changed is held (see the module docstring).
    """
    states = plan_states(session, catalog)
    held = () if amend else tuple(c for c, s in states.items() if s == "changed")
    withdrawn = tuple(c for c, s in states.items() if s == "withdrawn")
    unchanged = tuple(c for c, s in states.items() if s == "unchanged")
    _sync_orgs(session, catalog)
    roster_changed, digest = _sync_roster_version(session, catalog)
    plan_ids = sync_plan_rows(session, catalog, now, skip=held + withdrawn + unchanged)
    changed = sync_obligation_rows(session, catalog, plan_ids, now=now, skip=held + withdrawn)
    if changed or roster_changed:
        audit.record(
            session,
            now=now,
            actor=actor,
            action="catalog.loaded",
            entity="catalog",
            entity_id=catalog.region or "-",
            data={
                "plans": {
                    p.header.id: p.content_hash
                    for p in catalog.plans
                    if p.header.id not in held + withdrawn
                },
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
        withdrawn=withdrawn,
        unconfigured=unconfigured_plans(session, catalog),
    )
