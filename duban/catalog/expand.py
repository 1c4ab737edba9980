"""The catalog's plan, in memory: which organization owes which duty for which period, by when.

The engine materializes the same facts into the database in set-based SQL; this module is the
readable reference (used by `duban plan show` and by the golden-year test).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date

from duban.catalog.loader import Catalog, LoadedObligation
from duban.domain.obligations import Selector
from duban.domain.periods import Period
from duban.domain.workdays import WorkdayCalendar


@dataclass(frozen=True, kw_only=True, order=True)
class PlannedTask:
    due: date
    obligation: str
    org: str
    period: Period


def selected_orgs(catalog: Catalog, selector: Selector) -> set[str]:
    if selector.org is not None:
        return {selector.org}
    if selector.tags:
        return {
            o.id
            for o in catalog.organizations
            if selector.tags <= set(o.tags) and not selector.except_tags & set(o.tags)
        }
    return set()  # event_org: decided by the event


def responsible_orgs(catalog: Catalog, ob: LoadedObligation) -> set[str]:
    found: set[str] = set()
    for selector in ob.domain.responsible:
        found |= selected_orgs(catalog, selector)
    return found


def planned_tasks(
    catalog: Catalog,
    calendar: WorkdayCalendar,
    *,
    org: str | None = None,
    year: int | None = None,
    adopted: date | None = None,
) -> Iterator[PlannedTask]:
    """Every periodic task the catalog's plans call for, optionally for one org or due year.

    With `adopted`, only what is owed: nothing due before adoption, nothing from a plan whose
    window ended before it. An organization's `joined:` day always applies.
    """
    joined = {o.id: o.joined for o in catalog.organizations}
    for ob in catalog.obligations:
        orgs = responsible_orgs(catalog, ob)
        if org is not None:
            orgs &= {org}
        if not orgs or (adopted is not None and ob.domain.valid_until < adopted):
            continue
        for period in ob.domain.periods():
            due = ob.domain.due_date(period, calendar)
            if (year is not None and due.year != year) or (adopted and due < adopted):
                continue
            for code in sorted(orgs):
                day = joined.get(code)
                if day is None or due >= day:
                    yield PlannedTask(due=due, obligation=ob.domain.code, org=code, period=period)
