"""What the county office must be told before it is too late, on its home page, in the weekly
summary and by `duban tick`: a year counted on the provisional calendar (its notice not yet
imported), a plan whose window is about to end. Each is said in Chinese, then English."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, kw_only=True)
class Announcement:
    kind: str  # calendar | plan-end
    zh: str
    en: str
