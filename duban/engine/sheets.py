"""The county's two sheets: the completion matrix (institutions × periods of one duty, each
cell a task's outcome) and the Annex 5 quarterly self-assessment, scored from the tasks."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any, NamedTuple
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session

from duban.domain.tasks import TaskState, outcome
from duban.engine import outcomes, permissions
from duban.engine.catalogue import obligations
from duban.engine.read import Filters, _filtered, tasks
from duban.engine.users import Principal
from duban.store.db import Store
from duban.store.models import ObligationRow, Organization, OrgTag, Plan, Task

#: what a matrix cell needs of its task: its outcome (duban.domain.tasks.outcome) and a link
CELL_COLUMNS = (
    Task.id,
    Task.obligation_id,
    Task.org_id,
    Task.period_key,
    Task.due_date,
    Task.due_at,
    Task.state,
    Task.submitted_at,
)


class Cell(NamedTuple):
    """A matrix cell: the task, its outcome (an Outcome value) and its due day."""

    id: int
    outcome: str
    due: str


def matrix(
    store: Store,
    who: Principal,
    *,
    now: datetime,
    tz: ZoneInfo,
    filters: Filters,
    limit: int = 50,
    offset: int = 0,
) -> dict[str, Any]:
    """Institutions × periods for one obligation: each cell a task and its status.

    A page holds `limit` institutions (those with a task of the obligation under the filters),
    in code order; the columns are the periods those institutions owe.
    """
    if not filters.obligation:
        return {"periods": [], "orgs": [], "cells": {}, "has_next": False}
    # the institution and tag filters choose the rows (institutions); the others the cells
    own = Filters(**{**filters.__dict__, "org": None, "tag": None})
    with store.read() as session:
        # an institution belongs on the matrix if it owes the duty under the filters: one
        # probe of uq_tasks_key (obligation_id, org_id, …) per institution, in code order
        owed = _filtered(
            session,
            select(Task.id).where(Task.org_id == Organization.id, Task.opens_at <= now),
            own,
        )
        org_query = select(Organization.id, Organization.code, Organization.name).where(
            owed.exists()
        )
        if who.role == "institution":
            org_query = org_query.where(
                Organization.id == (who.org_id if who.org_id is not None else -1)
            )
        if filters.org:
            org_query = org_query.where(Organization.code == filters.org)
        if filters.tag:
            org_query = org_query.where(
                select(OrgTag.org_id)
                .where(OrgTag.org_id == Organization.id, OrgTag.tag == filters.tag)
                .exists()
            )
        found = session.execute(
            org_query.order_by(Organization.code).limit(limit + 1).offset(offset)
        ).all()
        page = found[:limit]
        codes = {o.id: o.code for o in page}
        ids = list(codes)
        found_rows: list[Any] = []
        # an export holds every institution: ask in chunks, within SQLite's parameter limit
        for start in range(0, len(ids), 900):
            query: Any = select(*CELL_COLUMNS).where(
                Task.opens_at <= now, Task.org_id.in_(ids[start : start + 900])
            )
            query = _filtered(session, permissions.scope(session, query, who), own)
            if own.outcome:
                query = query.where(outcomes.outcome_sql(own.outcome, now))
            found_rows.extend(session.execute(query))
        columns = _columns(session, found_rows)
        cells: dict[tuple[str, str], Cell] = {}
        for r in found_rows:
            cells[(codes[r.org_id], columns[(r.obligation_id, r.period_key)])] = Cell(
                r.id,
                outcome(TaskState(r.state), r.due_at, r.submitted_at, now).value,
                r.due_date.isoformat(),
            )
    return {
        # the periods the page's institutions owe: read from their tasks, not the whole table
        "periods": sorted({period for _, period in cells}),
        "orgs": [(o.code, o.name) for o in page],
        "cells": cells,
        "has_next": len(found) > limit,
    }


def _columns(session: Session, rows: list[Any]) -> dict[tuple[int, str], str]:
    """Each (duty, period)'s column: the period, or where a duty id followed across plans has
    the same period under two plans (windows that overlap), the period and each plan."""
    owners: dict[str, set[int]] = {}
    for r in rows:
        owners.setdefault(r.period_key, set()).add(r.obligation_id)
    shared = {i for ids in owners.values() if len(ids) > 1 for i in ids}
    plans = dict(
        session.execute(
            select(ObligationRow.id, Plan.code)
            .join(Plan, Plan.id == ObligationRow.plan_id)
            .where(ObligationRow.id.in_(sorted(shared) or [-1]))
        ).all()
    )
    return {
        (r.obligation_id, r.period_key): f"{r.period_key} {plans[r.obligation_id]}"
        if len(owners[r.period_key]) > 1
        else r.period_key
        for r in rows
    }


def quarter_of(day: date) -> str:
    return f"{day.year}-Q{(day.month - 1) // 3 + 1}"


def _plan_codes(store: Store) -> dict[int, str]:
    with store.read() as session:
        return dict(session.execute(select(Plan.id, Plan.code)).all())


def score_sheet(
    store: Store, who: Principal, *, org: str, quarter: str, now: datetime, tz: ZoneInfo
) -> dict[str, Any]:
    """The Annex 5 quarterly self-assessment for one institution, built from its tasks.

    Each obligation's score entries (the Annex 5 row, the points and the criterion it
    evidences) earn their points in proportion to the obligation's tasks due in the quarter
    that are accepted; a submitted task counts as provisional until reviewed. An entry with no
    task of this institution due in the quarter is shown as not assessed this quarter.
    """
    year, q = int(quarter[:4]), int(quarter[-1])
    first, last = date(year, 3 * q - 2, 1), date(year + (q == 4), (3 * q) % 12 + 1, 1)
    filters = Filters(org=org)
    rows = [
        r
        for r in tasks(store, who, now=now, tz=tz, filters=filters, limit=50_000)
        if first <= date.fromisoformat(r["due"]) < last
    ]
    by_ob: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for r in rows:  # a duty is its plan and its id: plans may share ids
        by_ob.setdefault((r["plan"], r["obligation"]), []).append(r)
    plan_codes = _plan_codes(store)
    items: dict[int, dict[str, Any]] = {}
    for ob in obligations(store):
        for entry in ob.spec.get("score") or []:
            item = items.setdefault(
                entry["item"],
                {
                    "item": entry["item"],
                    "entries": [],
                    "points": 0.0,
                    "earned": 0.0,
                    "provisional": 0.0,
                },
            )
            own = by_ob.get((plan_codes[ob.plan_id], ob.code), [])
            accepted = sum(1 for r in own if r["state"] == "accepted")
            submitted = sum(1 for r in own if r["state"] == "submitted")
            share = accepted / len(own) if own else None
            pending_share = (accepted + submitted) / len(own) if own else None
            item["entries"].append(
                {
                    "obligation": ob.code,
                    "title": ob.title,
                    "criterion": entry["criterion"],
                    "points": entry["points"],
                    "tasks": len(own),
                    "accepted": accepted,
                    "submitted": submitted,
                    "earned": None if share is None else round(entry["points"] * share, 2),
                    "provisional": None
                    if pending_share is None
                    else round(entry["points"] * pending_share, 2),
                    "task_ids": [r["id"] for r in own],
                }
            )
            if own:
                item["points"] += entry["points"]
                item["earned"] += entry["points"] * (share or 0)
                item["provisional"] += entry["points"] * (pending_share or 0)
    sheet = sorted(items.values(), key=lambda i: i["item"])
    return {
        "org": org,
        "quarter": quarter,
        "items": sheet,
        "points": round(sum(i["points"] for i in sheet), 2),
        "earned": round(sum(i["earned"] for i in sheet), 2),
        "provisional": round(sum(i["provisional"] for i in sheet), 2),
    }
