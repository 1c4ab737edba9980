"""`duban plan withdraw CODE --reason TEXT`: the one way a plan leaves the database's force.

The database holds the plans, so nothing is ever deactivated because a file is missing from
`plan_files`. Withdrawing a plan, in one transaction:
- sets the plan's `withdrawn_at` and reason (`plan show` and `duban init` say so);
- makes every duty of the plan inactive: no task is created under it again;
- closes its open and rejected tasks as `withdrawn` with the reason (never deleted), each
  with an audit event of its own, and audits `plan.withdrawn`.
It is idempotent: a withdrawn plan is left as it is. `duban init` does not load a withdrawn
plan's file again; `duban plan apply FILE` puts it in force again, explicitly and audited.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select, update

from duban.domain.text import REASON_MAX, clean_text
from duban.engine.amend import close_open_tasks
from duban.errors import InvalidText, NotFound
from duban.store import audit
from duban.store.db import Store
from duban.store.models import ObligationRow, Plan


@dataclass(frozen=True, kw_only=True)
class WithdrawReport:
    plan: str
    withdrawn_at: datetime
    reason: str
    duties: int  # duties made inactive now
    closed: int  # open and rejected tasks closed as withdrawn now
    already: bool = False  # it was withdrawn before: nothing changed


def withdraw_plan(
    store: Store, code: str, *, reason: str, now: datetime, actor: str
) -> WithdrawReport:
    """Withdraw the plan `code` (see the module docstring); NotFound for an unknown plan,
    InvalidText for a blank, overlong or unprintable reason, before anything is written."""
    why = clean_text(reason, field="reason", max_length=REASON_MAX)
    if not why:
        raise InvalidText("reason", "is empty; say why the plan is withdrawn (--reason)")
    with store.write() as session:
        plan = session.scalar(select(Plan).where(Plan.code == code))
        if plan is None:
            known = ", ".join(session.scalars(select(Plan.code).order_by(Plan.code)))
            raise NotFound("plan", code, f"the database holds: {known or 'no plan'}")
        if plan.withdrawn_at is not None:
            return WithdrawReport(
                plan=code,
                withdrawn_at=plan.withdrawn_at,
                reason=plan.withdrawn_reason or "",
                duties=0,
                closed=0,
                already=True,
            )
        active = list(
            session.scalars(
                select(ObligationRow.id).where(
                    ObligationRow.plan_id == plan.id, ObligationRow.active
                )
            )
        )
        plan.withdrawn_at, plan.withdrawn_reason = now, why
        session.execute(
            update(ObligationRow).where(ObligationRow.id.in_(active)).values(active=False)
        )
        every = list(
            session.scalars(select(ObligationRow.id).where(ObligationRow.plan_id == plan.id))
        )
        text = f"方案已撤销 / plan {code} was withdrawn: {why}"
        closed = close_open_tasks(
            session, every, reason=text, now=now, actor=actor, version=plan.file_sha256
        )
        audit.record(
            session,
            now=now,
            actor=actor,
            action="plan.withdrawn",
            entity="plan",
            entity_id=code,
            data={
                "reason": why,
                "version": plan.file_sha256,
                "duties": len(active),
                "closed_tasks": closed,
            },
        )
    return WithdrawReport(
        plan=code, withdrawn_at=now, reason=why, duties=len(active), closed=closed
    )
