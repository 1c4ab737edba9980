"""Which organizations cannot receive a ladder step, read from the plan and organization files.

A step tells `duty` or `head` (the responsible organization's contact of that role), `parent`
(the duty contact of the organization's parent) or `county-office` / `mch-section` (the duty
contacts of every organization so tagged). An organization responsible for a duty whose step
names a contact it lacks would get nothing from that step; `duban plan check` and
`duban init` list them as warnings (a county may accept a gap), and the sweep reports each
step it skips (duban.engine.sweep).

Who is responsible: the organizations the duty's selectors name. An `event_org` duty is owed
by the organization where its event happens: for an event that a duty records when it is
submitted (`records_event`), the organizations responsible for that duty; an event an
administrator records may happen anywhere, so those are left to the sweep.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from duban.catalog.expand import selected_orgs
from duban.catalog.loader import Catalog, LoadedObligation
from duban.catalog.schema import OrgSpec
from duban.domain.ladder import Ladder, Step

SHOWN = 10  # organizations named per warning; the rest are counted


def step_label(step: Step) -> str:
    """How a step reads in a warning: `escalation +5 → head`, `reminder -7 → duty`."""
    return f"{step.kind} {step.offset:+d} → {step.notify}"


def ladder_of(ob: LoadedObligation) -> Ladder:
    reminders = ob.spec.reminders or ob.defaults.reminders
    escalation = ob.spec.escalation or ob.defaults.escalation
    return Ladder.build(
        before=reminders.before_working_days,
        to=reminders.to.value,
        escalation=[(e.after_working_days, e.notify.value) for e in escalation],
    )


def why_unreachable(
    notify: str, org: OrgSpec, by_id: dict[str, OrgSpec], offices: dict[str, bool]
) -> str | None:
    """Why `org` gets nothing from a step telling `notify`, or None when someone is told."""
    if notify in ("duty", "head"):
        return None if notify in org.contacts else f"no {notify} contact"
    if notify == "parent":
        if org.parent is None:
            return "no parent organization"
        parent = by_id.get(org.parent)
        if parent is None or "duty" not in parent.contacts:
            return f"the parent {org.parent} has no duty contact"
        return None
    if offices.get(notify):
        return None
    return f"no organization tagged {notify} has a duty contact"


@dataclass(frozen=True, kw_only=True)
class Unreachable:
    """Organizations that cannot receive some steps of some duties, for one reason."""

    steps: tuple[str, ...]
    duties: tuple[str, ...]
    reason: str
    orgs: tuple[str, ...]

    def __str__(self) -> str:
        n = len(self.orgs)
        who = f"{n} organization{'s' if n != 1 else ''} cannot"
        steps = ", ".join(f"'{s}'" for s in self.steps)
        noun = "step" if len(self.steps) == 1 else "steps"
        duties = (
            f"duty {self.duties[0]}" if len(self.duties) == 1 else f"duties {_some(self.duties)}"
        )
        return f"{who} receive {noun} {steps} of {duties} ({self.reason}): {_some(self.orgs)}"


def _some(codes: tuple[str, ...]) -> str:
    more = f" and {len(codes) - SHOWN} more" if len(codes) > SHOWN else ""
    return ", ".join(codes[:SHOWN]) + more


def _responsible(catalog: Catalog, ob: LoadedObligation) -> set[str]:
    found: set[str] = set()
    for selector in ob.domain.responsible:
        if selector.event_org:
            for other in catalog.obligations:
                recorded = other.spec.records_event
                if recorded is not None and recorded.kind == ob.domain.event:
                    found |= _responsible(catalog, other)
        else:
            found |= selected_orgs(catalog, selector)
    return found


def unreachable_steps(catalog: Catalog, *, adopted: date | None = None) -> list[Unreachable]:
    """Every (steps, duties, reason) group of organizations that a ladder step cannot reach;
    with `adopted`, only duties whose window has not ended before it."""
    by_id = {o.id: o for o in catalog.organizations}
    offices = {
        tag: any(tag in o.tags and "duty" in o.contacts for o in catalog.organizations)
        for tag in ("county-office", "mch-section")
    }
    # (step, reason, orgs) → duties, then (reason, orgs, duties) → steps
    per_step: dict[tuple[Step, str, tuple[str, ...]], list[str]] = {}
    for ob in catalog.obligations:
        if adopted is not None and ob.domain.valid_until < adopted:
            continue
        orgs = sorted(_responsible(catalog, ob))
        for step in ladder_of(ob).steps:
            lacking: dict[str, list[str]] = {}
            for code in orgs:
                reason = why_unreachable(step.notify, by_id[code], by_id, offices)
                if reason is not None:
                    lacking.setdefault(reason, []).append(code)
            for reason, names in lacking.items():
                per_step.setdefault((step, reason, tuple(names)), []).append(ob.domain.code)
    grouped: dict[tuple[str, tuple[str, ...], tuple[str, ...]], list[Step]] = {}
    for (step, reason, codes), duties in per_step.items():
        grouped.setdefault((reason, codes, tuple(duties)), []).append(step)
    return [
        Unreachable(
            steps=tuple(step_label(s) for s in sorted(steps)),
            duties=duties,
            reason=reason,
            orgs=codes,
        )
        for (reason, codes, duties), steps in sorted(
            grouped.items(), key=lambda kv: (kv[0][2], min(kv[1]), kv[0][0])
        )
    ]
