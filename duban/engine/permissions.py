"""Who may see and do what with a task: the rules, in one place, for pages, API and CLI.

- Administrators (the county commission) see everything and do everything.
- Auditors see everything and change nothing.
- An institution's users see their own organization's tasks and act on them (evidence,
  submit). They also see the *submissions* sent to their organization: tasks of duties whose
  plan names it as the receiver (`submit_to`) that have been submitted at least once. They
  accept or reject those; another receiver's submissions stay invisible to them.
- Only an administrator waives.

`scope` applies the visibility rule to a query over tasks in SQL, so no page can forget it.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Select, and_, or_, select
from sqlalchemy.orm import Session

from duban.engine.users import Principal
from duban.store.models import ObligationRow, Task

ADMIN = "admin"
AUDITOR = "auditor"
INSTITUTION = "institution"


def received_obligations(session: Session, who: Principal) -> list[int]:
    """The obligations whose submissions go to the principal's organization (few)."""
    if who.role != INSTITUTION or who.org_id is None:
        return []
    return list(
        session.scalars(select(ObligationRow.id).where(ObligationRow.receiver_org_id == who.org_id))
    )


def _received(ids: list[int]) -> Any:
    return and_(Task.obligation_id.in_(ids), Task.first_submitted_at.is_not(None))


def scope(session: Session, query: Select[Any], who: Principal) -> Select[Any]:
    """Restrict a query over tasks to what `who` may see (see the module docstring)."""
    if who.role in (ADMIN, AUDITOR):
        return query
    own = Task.org_id == (who.org_id if who.org_id is not None else -1)
    ids = received_obligations(session, who)
    # an institution that receives nothing keeps the plain org filter (and its index)
    return query.where(or_(own, _received(ids)) if ids else own)


def review_scope(session: Session, query: Select[Any], who: Principal) -> Select[Any]:
    """The submissions `who` reviews: all for an administrator, those sent to an institution's
    organization for its users, none for anyone else."""
    if who.role == ADMIN:
        return query
    ids = received_obligations(session, who)
    if who.role != INSTITUTION or not ids:
        return query.where(Task.id == -1)
    return query.where(_received(ids))


def may_see(
    who: Principal, *, org_id: int, receiver_org_id: int | None, submitted_once: bool
) -> bool:
    if who.role in (ADMIN, AUDITOR) or who.org_id == org_id:
        return True
    return may_review(who, receiver_org_id=receiver_org_id) and submitted_once


def may_submit(who: Principal, *, org_id: int) -> bool:
    """The responsible institution, or an administrator on its behalf."""
    return who.role == ADMIN or (who.role == INSTITUTION and who.org_id == org_id)


def may_add_evidence(who: Principal, *, org_id: int) -> bool:
    return may_submit(who, org_id=org_id)


def may_review(who: Principal, *, receiver_org_id: int | None) -> bool:
    """Accept or reject: an administrator, or the users of the organization the plan names
    as the receiver of this duty's submissions."""
    if who.role == ADMIN:
        return True
    return who.role == INSTITUTION and receiver_org_id is not None and who.org_id == receiver_org_id


def may_waive(who: Principal) -> bool:
    return who.role == ADMIN


def is_receiver(session: Session, who: Principal) -> bool:
    """Whether `who` has a review queue of its own (the navigation shows it)."""
    return bool(received_obligations(session, who))
