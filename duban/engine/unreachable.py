"""Ladder steps that reach nobody: marked once, reported once.

A step tells a contact the organization may lack: its `duty` or `head` contact, its parent's
duty contact (`parent`), or the duty contacts of the organizations tagged `county-office` or
`mch-section`. When a pending task is on such a step and nobody is there to tell, the sweep
writes a `skipped` ladder mark for it (recipient `(no recipient)`) in the same transaction as
the step's other marks. Marks are unique on (task, step, recipient), so the skip is marked,
and reported, once per task and step however often the sweep runs; the report groups a
sweep's new skips per duty, step and organization ("duty X step 'overdue +1 → head': no head
contact for org Z"), so two tasks of one organization make one line. A contact added later is
told at the step's next sweep (its own mark); the skip mark stays as the record.

The outbox never reads skipped marks: no message is made from them.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import exists, false, func, literal, or_, select, true
from sqlalchemy.orm import Session, aliased

from duban.catalog.contacts import step_label
from duban.domain.ladder import Step
from duban.domain.tasks import PENDING
from duban.store.dialect import insert_for
from duban.store.models import LadderMark, ObligationRow, Organization, OrgContact, Task

SKIPPED = "skipped"  # the mark's kind
NO_RECIPIENT = "(no recipient)"  # the mark's recipient
CHUNK = 5_000  # task ids per IN (…) when naming the new skips


@dataclass(frozen=True, kw_only=True, order=True)
class Skipped:
    """One duty's step that one organization's tasks could not receive, newly this sweep."""

    obligation: str
    step: str  # as step_label writes it
    org: str
    reason: str
    tasks: int

    def __str__(self) -> str:
        count = f" ({self.tasks} tasks)" if self.tasks > 1 else ""
        return f"duty {self.obligation} step '{self.step}': {self.reason} for org {self.org}{count}"


def _nobody(notify: str, office: dict[str, list[str]]) -> Any:
    """The condition, over tasks, that a step telling `notify` has nobody to tell."""
    contact = aliased(OrgContact)
    if notify in ("duty", "head"):
        return ~exists().where(contact.org_id == Task.org_id, contact.role == notify)
    if notify == "parent":
        org = aliased(Organization)
        parent_contact = exists().where(contact.org_id == org.parent_id, contact.role == "duty")
        return exists().where(org.id == Task.org_id, or_(org.parent_id.is_(None), ~parent_contact))
    return false() if office.get(notify) else true()


def mark_unreachable(
    session: Session,
    *,
    obligation_ids: list[int],
    step: Step,
    first: date,
    last: date,
    today: date,
    now: datetime,
    office: dict[str, list[str]],
) -> list[Skipped]:
    """Mark `step` skipped for every pending task of these obligations due in [first, last]
    that has nobody to tell; return the new skips, grouped per duty and organization."""
    if step.notify not in ("duty", "head", "parent") and office.get(step.notify):
        return []
    query = select(
        Task.id, literal(step.name), literal(NO_RECIPIENT), literal(SKIPPED), literal(today)
    ).where(
        Task.obligation_id.in_(obligation_ids),
        Task.state.in_([s.value for s in PENDING]),
        Task.due_date.between(first, last),
        Task.opens_at <= now,
        _nobody(step.notify, office),
    )
    stmt = (
        insert_for(session)(LadderMark)
        .from_select(["task_id", "step", "recipient", "kind", "day"], query)
        .on_conflict_do_nothing(index_elements=["task_id", "step", "recipient"])
        .returning(LadderMark.task_id)
    )
    marked = list(session.execute(stmt).scalars())
    counts: dict[tuple[str, str, str | None], int] = {}
    parent = aliased(Organization)
    for i in range(0, len(marked), CHUNK):
        for duty, org, parent_code, n in session.execute(
            select(ObligationRow.code, Organization.code, parent.code, func.count())
            .select_from(Task)
            .join(ObligationRow, ObligationRow.id == Task.obligation_id)
            .join(Organization, Organization.id == Task.org_id)
            .outerjoin(parent, parent.id == Organization.parent_id)
            .where(Task.id.in_(marked[i : i + CHUNK]))
            .group_by(ObligationRow.code, Organization.code, parent.code)
        ):
            key = (duty, org, parent_code)
            counts[key] = counts.get(key, 0) + int(n)
    return sorted(
        Skipped(
            obligation=duty,
            step=step_label(step),
            org=org,
            reason=_reason(step.notify, parent_code),
            tasks=n,
        )
        for (duty, org, parent_code), n in counts.items()
    )


def _reason(notify: str, parent: str | None) -> str:
    if notify in ("duty", "head"):
        return f"no {notify} contact"
    if notify == "parent":
        return (
            "no parent organization"
            if parent is None
            else (f"the parent {parent} has no duty contact")
        )
    return f"no organization tagged {notify} has a duty contact"
