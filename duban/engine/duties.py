"""How a duty is named once plans follow each other and duty ids repeat.

A duty is its plan and its id: next year's plan may keep this year's ids, and each plan keeps
its own duties, tasks and history. A duty of a new plan *continues* the duty of the same id in
the latest earlier plan that holds that id (`continued`): keeping an id is how a plan says a
duty goes on; a renamed duty is a new one.

Wherever a duty is named (`duban tasks --obligation`, the pages' and the API's
`obligation=` filter, `materialize(only=…)`), two forms are accepted:
- `PLAN/CODE` (or `PLAN:CODE`, where a slash cannot go: a Prefect deployment's name, a URL's
  path) names that plan's duty alone;
- a bare `CODE` names the duty across the plans that hold that id: the board, the history,
  the matrix and the task lists follow it from year to year. Where one duty is needed (a
  blank form), a bare code is the latest plan's duty (the plan whose window starts last).
`ref()` gives the name a reader is shown: the bare code while only one plan holds it, else
`PLAN/CODE`.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from duban.store.models import ObligationRow, Plan

SEPARATORS = ("/", ":")


def qualified(plan: str, code: str) -> str:
    """The name of one plan's duty: `PLAN/CODE`."""
    return f"{plan}/{code}"


def split(name: str) -> tuple[str | None, str]:
    """(plan, code) of `PLAN/CODE` or `PLAN:CODE`; (None, code) of a bare code."""
    for sep in SEPARATORS:
        if sep in name:
            plan, code = name.split(sep, 1)
            return plan, code
    return None, name


def _latest_first() -> tuple[Any, ...]:
    return (Plan.valid_from.desc(), Plan.id.desc())


def duty_ids(session: Session, name: str, *, active_only: bool = False) -> list[int]:
    """The row ids a duty name stands for: one plan's duty, or every plan's duty of that id
    (see the module docstring); empty when it names nothing."""
    plan, code = split(name)
    query = (
        select(ObligationRow.id)
        .join(Plan, Plan.id == ObligationRow.plan_id)
        .where(ObligationRow.code == code)
    )
    if plan is not None:
        query = query.where(Plan.code == plan)
    if active_only:
        query = query.where(ObligationRow.active)
    return list(session.scalars(query.order_by(*_latest_first())))


def one_duty(session: Session, name: str) -> ObligationRow | None:
    """The one duty a name stands for: `PLAN/CODE`'s, or a bare code's latest plan's."""
    ids = duty_ids(session, name)
    return session.get(ObligationRow, ids[0]) if ids else None


def refs(session: Session, ids: Iterable[int]) -> dict[int, str]:
    """Each duty's name as shown: its bare code while no other plan holds that id, else
    `PLAN/CODE` (a link with it names that plan's duty alone)."""
    wanted = sorted(set(ids))
    if not wanted:
        return {}
    rows = session.execute(
        select(ObligationRow.id, ObligationRow.code, Plan.code)
        .join(Plan, Plan.id == ObligationRow.plan_id)
        .where(ObligationRow.id.in_(wanted))
    ).all()
    shared = shared_codes(session, {code for _, code, _ in rows})
    return {i: qualified(plan, code) if code in shared else code for i, code, plan in rows}


def shared_codes(session: Session, codes: Iterable[str] | None = None) -> set[str]:
    """The duty ids that more than one plan holds (of `codes`, or of all)."""
    query = select(ObligationRow.code).group_by(ObligationRow.code)
    wanted = None if codes is None else sorted(set(codes))
    if wanted is not None:
        if not wanted:
            return set()
        query = query.where(ObligationRow.code.in_(wanted))
    return set(session.scalars(query.having(func.count() > 1)))


def continued(
    session: Session, plan_code: str, codes: Iterable[str], *, start: date
) -> dict[str, str]:
    """code → `PLAN/CODE` of the duty each of `plan_code`'s duties continues: the duty of the
    same id in the latest other plan whose window starts no later than `start`, this plan's."""
    wanted = sorted(set(codes))
    if not wanted:
        return {}
    query = (
        select(ObligationRow.code, Plan.code)
        .join(Plan, Plan.id == ObligationRow.plan_id)
        .where(ObligationRow.code.in_(wanted), Plan.code != plan_code, Plan.valid_from <= start)
        .order_by(*_latest_first())
    )
    found: dict[str, str] = {}
    for code, plan in session.execute(query):
        found.setdefault(code, qualified(plan, code))
    return found
