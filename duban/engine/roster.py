"""The roster of active organizations in memory: which of them a duty's selectors pick, and
from which day each owes (its `joined:` day). What `plan diff` and `plan show` count with."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date

from sqlalchemy import select
from sqlalchemy.orm import Session

from duban.domain.obligations import Selector
from duban.store.models import Organization, OrgTag


@dataclass(frozen=True, kw_only=True)
class Roster:
    """The active organizations as a duty's selectors pick them, in memory."""

    tags: dict[str, frozenset[str]] = field(default_factory=dict)  # active org code → tags
    joined: dict[str, date | None] = field(default_factory=dict)

    def select(self, selectors: tuple[Selector, ...]) -> set[str]:
        found: set[str] = set()
        for sel in selectors:
            if sel.org is not None and sel.org in self.tags:
                found.add(sel.org)
            elif sel.tags:
                found |= {
                    code
                    for code, tags in self.tags.items()
                    if sel.tags <= tags and not sel.except_tags & tags
                }
        return found


def roster_of(session: Session) -> Roster:
    """The active organizations' tags and joining days, as the selectors read them."""
    tags: dict[str, set[str]] = {}
    joined: dict[str, date | None] = {}
    for code, day in session.execute(
        select(Organization.code, Organization.joined).where(Organization.active)
    ):
        tags[code] = set()
        joined[code] = day
    for code, tag in session.execute(
        select(Organization.code, OrgTag.tag).join(OrgTag, OrgTag.org_id == Organization.id)
    ):
        if code in tags:
            tags[code].add(tag)
    return Roster(tags={k: frozenset(v) for k, v in tags.items()}, joined=joined)
