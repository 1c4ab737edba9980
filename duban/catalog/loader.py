"""Loads plan and organization files into one validated `Catalog`, or raises `PlanError`.

All files are validated before anything is returned, and every problem in every file is
reported at once, so a bad file loads nothing and a user fixes everything in one pass.
Semantic checks run after the schema: unknown tags and organizations, duplicate ids, invalid
RRULEs, and every due date of every periodic duty is computed against the working-day
calendar, so a year the calendar lacks is caught at load time, not at the deadline.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import ValidationError

from duban.catalog import schema as s
from duban.catalog.duecheck import due_kind_problems, month_day_problems
from duban.catalog.yamlfile import LineIndex, load_yaml, validation_problems
from duban.domain import due as d
from duban.domain import periods as p
from duban.domain.obligations import Obligation, Selector
from duban.domain.workdays import WorkdayCalendar
from duban.errors import CalendarYearMissing, PlanError, Problem

_CADENCES = {
    "monthly": p.Cadence.MONTHLY,
    "bimonthly": p.Cadence.BIMONTHLY,
    "quarterly": p.Cadence.QUARTERLY,
    "half_yearly": p.Cadence.HALF_YEARLY,
    "yearly": p.Cadence.YEARLY,
}


@dataclass(frozen=True, kw_only=True)
class LoadedObligation:
    """A validated obligation: the domain object, its full spec, and where it came from."""

    domain: Obligation
    spec: s.ObligationSpec
    plan: s.PlanHeader
    defaults: s.Defaults
    file: str
    line: int | None

    @property
    def content_hash(self) -> str:
        return _hash(self.spec_json())

    def spec_json(self) -> dict[str, Any]:
        data = self.spec.model_dump(mode="json", by_alias=True)
        if data.get("records_event") is None:
            data.pop("records_event", None)  # absent as before it existed: hashes unchanged
        data["reminders"] = (self.spec.reminders or self.defaults.reminders).model_dump(mode="json")
        data["escalation"] = [
            e.model_dump(mode="json") for e in (self.spec.escalation or self.defaults.escalation)
        ]
        data["source"]["document"] = self.spec.source.document or self.plan.document
        data["valid"] = {
            "from": self.domain.valid_from.isoformat(),
            "until": self.domain.valid_until.isoformat(),
        }
        return data


@dataclass(frozen=True, kw_only=True)
class LoadedPlan:
    header: s.PlanHeader
    events: dict[str, s.EventKind]
    file: str
    content_hash: str
    file_sha256: str = ""  # the plan's version: the SHA-256 of the file's bytes
    text: str | None = None  # the file as written: stored, what `duban plan roll` starts from


@dataclass(frozen=True, kw_only=True)
class Catalog:
    region: str
    tags: dict[str, str]
    organizations: tuple[s.OrgSpec, ...]
    plans: tuple[LoadedPlan, ...]
    obligations: tuple[LoadedObligation, ...]

    def obligation(self, code: str, plan: str | None = None) -> LoadedObligation:
        """The duty of that id (of `plan`, or of the first plan holding it)."""
        for o in self.obligations:
            if o.domain.code == code and plan in (None, o.plan.id):
                return o
        raise KeyError(code)

    @property
    def event_kinds(self) -> dict[str, s.EventKind]:
        kinds: dict[str, s.EventKind] = {}
        for plan in self.plans:
            kinds.update(plan.events)
        return kinds


def _hash(data: object) -> str:
    text = json.dumps(data, sort_keys=True, ensure_ascii=False, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def _recurrence(spec: s.RecurrenceSpec, window_start: date) -> p.Recurrence:
    if isinstance(spec, s.RRule):
        return p.RRuleRecurrence(rule=spec.rule, dtstart=spec.dtstart or window_start)
    if isinstance(spec, s.Once):
        return p.OnceRecurrence()
    if isinstance(spec, s.OnEvent):
        return p.EventRecurrence(event=spec.event)
    return p.CalendarRecurrence(cadence=_CADENCES[spec.kind])


def _due(spec: s.DueSpec) -> d.DueRule:
    kind: d.DueKind
    if isinstance(spec, s.EndOfPeriodSpec):
        kind = d.EndOfPeriod()
    elif isinstance(spec, s.EndOfQuarterSpec):
        kind = d.EndOfQuarter()
    elif isinstance(spec, s.EndOfFirstMonthSpec):
        kind = d.EndOfFirstMonth()
    elif isinstance(spec, s.DayOfNextMonthSpec):
        kind = d.DayOfNextMonth(day=spec.day)
    elif isinstance(spec, s.DateSpec):
        kind = d.FixedDate(on=spec.on)
    elif isinstance(spec, s.MonthDaySpec):
        kind = d.MonthDay(month=spec.month, day=spec.day)
    elif isinstance(spec, s.WorkingDaysAfterSpec):
        kind = d.WorkingDaysAfter(days=spec.days)
    elif isinstance(spec, s.DaysAfterSpec):
        kind = d.DaysAfter(days=spec.days)
    else:
        kind = d.MonthsAfter(months=spec.months)
    return d.DueRule(kind=kind, shift=spec.shift is s.Shift.NEXT_WORKING_DAY)


def load_orgs(paths: Sequence[Path]) -> tuple[str, dict[str, str], list[s.OrgSpec], list[Problem]]:
    problems: list[Problem] = []
    region = ""
    tags: dict[str, str] = {}
    orgs: list[tuple[s.OrgSpec, LineIndex, int]] = []
    for path in paths:
        try:
            data, index = load_yaml(path)
            parsed = s.OrgFile.model_validate(data)
        except PlanError as exc:
            problems.extend(exc.problems)
            continue
        except ValidationError as exc:
            problems.extend(validation_problems(exc, index))
            continue
        region = region or parsed.region
        tags.update(parsed.tags)
        orgs.extend((o, index, i) for i, o in enumerate(parsed.organizations))
    seen: set[str] = set()
    ids = {o.id for o, _, _ in orgs}
    for org, index, i in orgs:
        if org.id in seen:
            problems.append(
                index.problem(
                    ["organizations", i, "id"], f"organization id {org.id!r} is used twice"
                )
            )
        seen.add(org.id)
        if org.parent is not None and org.parent not in ids:
            problems.append(
                index.problem(
                    ["organizations", i, "parent"], f"unknown parent organization {org.parent!r}"
                )
            )
        for j, tag in enumerate(org.tags):
            if tag not in tags:
                problems.append(
                    index.problem(
                        ["organizations", i, "tags", j],
                        f"unknown tag {tag!r}; declare it under 'tags' "
                        f"(known: {', '.join(sorted(tags))})",
                    )
                )
    return region, tags, [o for o, _, _ in orgs], problems


def _check_obligation(
    spec: s.ObligationSpec,
    i: int,
    index: LineIndex,
    tags: dict[str, str],
    org_ids: set[str],
    events: dict[str, s.EventKind],
    header: s.PlanHeader,
) -> list[Problem]:
    problems: list[Problem] = []
    at: list[str | int] = ["obligations", i]
    for j, sel in enumerate(spec.responsible):
        for field in ("tags", "except_tags"):
            for k, tag in enumerate(getattr(sel, field) or []):
                if tag not in tags:
                    problems.append(
                        index.problem(
                            [*at, "responsible", j, field, k],
                            f"unknown tag {tag!r}; known tags: {', '.join(sorted(tags))}",
                        )
                    )
        if sel.org is not None and sel.org not in org_ids:
            problems.append(
                index.problem(
                    [*at, "responsible", j, "org"],
                    f"unknown organization {sel.org!r}; add it to the "
                    "organization file or fix the id",
                )
            )
    if spec.submit_to is not None and spec.submit_to not in org_ids:
        problems.append(
            index.problem(
                [*at, "submit_to"],
                f"unknown organization {spec.submit_to!r}; the receiver must be in the "
                "organization file",
            )
        )
    if isinstance(spec.recurrence, s.OnEvent) and spec.recurrence.event not in events:
        problems.append(
            index.problem(
                [*at, "recurrence", "event"],
                f"unknown event kind {spec.recurrence.event!r}; declare it "
                f"under 'events' (known: {', '.join(sorted(events))})",
            )
        )
    if spec.records_event is not None and spec.records_event.kind not in events:
        problems.append(
            index.problem(
                [*at, "records_event", "kind"],
                f"unknown event kind {spec.records_event.kind!r}; declare it under 'events' "
                f"(known: {', '.join(sorted(events)) or 'none'})",
            )
        )
    window = spec.valid or header.valid
    if spec.valid and not (
        header.valid.start <= window.start and window.until <= header.valid.until
    ):
        problems.append(
            index.problem(
                [*at, "valid"], "an obligation's window must lie inside the plan's window"
            )
        )
    problems.extend(due_kind_problems(spec, index, at))
    if isinstance(spec.due, s.DateSpec) and not (window.start <= spec.due.on <= window.until):
        problems.append(
            index.problem(
                [*at, "due", "on"],
                f"{spec.due.on} is outside the window {window.start}..{window.until}",
            )
        )
    return problems


def build_obligation(spec: s.ObligationSpec, header: s.PlanHeader) -> Obligation:
    window = spec.valid or header.valid
    return Obligation(
        code=spec.id,
        plan=header.id,
        title=spec.title,
        recurrence=_recurrence(spec.recurrence, window.start),
        due=_due(spec.due),
        responsible=tuple(
            Selector(
                tags=frozenset(sel.tags or ()),
                except_tags=frozenset(sel.except_tags),
                org=sel.org,
                event_org=sel.event_org,
            )
            for sel in spec.responsible
        ),
        valid_from=window.start,
        valid_until=window.until,
    )


def _compute_all_due_dates(
    ob: Obligation, calendar: WorkdayCalendar, index: LineIndex, at: list[str | int]
) -> list[Problem]:
    # Every due date must fall in a covered year, shifted or not: reminders and escalations
    # count working days around it.
    try:
        for period in ob.periods():
            calendar.is_workday(ob.due_date(period, calendar))
    except CalendarYearMissing as exc:
        return [index.problem([*at, "due"], str(exc))]
    except ValueError as exc:
        return [index.problem([*at, "recurrence"], f"cannot compute the periods: {exc}")]
    return []


def load_catalog(
    plan_paths: Iterable[Path], org_paths: Iterable[Path], calendar: WorkdayCalendar
) -> Catalog:
    """Validate every file; return the catalog or raise PlanError listing every problem."""
    region, tags, orgs, problems = load_orgs(list(org_paths))
    org_ids = {o.id for o in orgs}
    plans: list[LoadedPlan] = []
    obligations: list[LoadedObligation] = []
    plan_files: dict[str, str] = {}
    for path in plan_paths:
        try:
            data, index = load_yaml(path)
            parsed = s.PlanFile.model_validate(data)
        except PlanError as exc:
            problems.extend(exc.problems)
            continue
        except ValidationError as exc:
            problems.extend(validation_problems(exc, index))
            continue
        try:
            ZoneInfo(parsed.plan.timezone)
        except (ZoneInfoNotFoundError, ValueError):
            problems.append(
                index.problem(["plan", "timezone"], f"unknown time zone {parsed.plan.timezone!r}")
            )
        if parsed.plan.id in plan_files:
            problems.append(
                index.problem(
                    ["plan", "id"],
                    f"plan id {parsed.plan.id!r} is already the plan of "
                    f"{plan_files[parsed.plan.id]}; a new plan needs an id of its own",
                )
            )
        plan_files[parsed.plan.id] = f"{path}:{index.line(['plan', 'id'])}"
        raw = Path(path).read_bytes()
        plans.append(
            LoadedPlan(
                header=parsed.plan,
                events=parsed.events,
                file=str(path),
                content_hash=_hash(data),
                file_sha256=hashlib.sha256(raw).hexdigest(),
                text=raw.decode("utf-8", errors="replace"),
            )
        )
        # duty ids are unique within a plan; another plan may reuse them (it continues them)
        seen: dict[str, str] = {}
        for i, spec in enumerate(parsed.obligations):
            at: list[str | int] = ["obligations", i]
            if spec.id in seen:
                problems.append(
                    index.problem(
                        [*at, "id"], f"obligation id {spec.id!r} is already used in {seen[spec.id]}"
                    )
                )
            seen[spec.id] = f"{path}:{index.line(at)}"
            found = _check_obligation(spec, i, index, tags, org_ids, parsed.events, parsed.plan)
            try:
                ob = build_obligation(spec, parsed.plan)
            except ValueError as exc:
                found.append(index.problem([*at, "recurrence", "rule"], f"invalid RRULE: {exc}"))
            else:
                found.extend(_compute_all_due_dates(ob, calendar, index, at))
                found.extend(month_day_problems(ob, calendar, index, at))
                obligations.append(
                    LoadedObligation(
                        domain=ob,
                        spec=spec,
                        plan=parsed.plan,
                        defaults=parsed.defaults,
                        file=str(path),
                        line=index.line(at),
                    )
                )
            problems.extend(found)
    if problems:
        raise PlanError(problems)
    return Catalog(
        region=region,
        tags=tags,
        organizations=tuple(orgs),
        plans=tuple(plans),
        obligations=tuple(obligations),
    )
