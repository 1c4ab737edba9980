"""`duban prefect deploy`: the catalog in the database, published as Prefect deployments.

- One deployment of the flow `duban-materialize` per periodic duty of every active plan,
  named after the duty's code (`PLAN:CODE` for a later plan reusing a code: see
  `deployment_names`), its parameter the duty's `PLAN/CODE`; its description carries the
  Chinese title, the document and clause, and the words that create the duty; its schedule
  (`flows.schedules`) fires at each period's opening, in the plan's time zone.
- One deployment each for `duban-reconcile` (hourly), `duban-sweep` (every 15 minutes) and
  `duban-deliver` (every minute), on the intervals `duban run` uses (`reconcile_minutes`,
  `sweep_minutes`, `deliver_seconds`).
- Every deployment has a concurrency limit of one; reconcile, sweep and deliver drop a run
  that would overlap the previous one (CANCEL_NEW), duties queue theirs (ENQUEUE).

Idempotent, and in place: an existing deployment is compared field by field with what the
catalog says, and only the fields that differ are patched (a PATCH of a deployment drops its
auto-scheduled runs, so nothing is patched when nothing changed). Its schedule is updated
through the schedule's own endpoint, keeping its id: sending `schedules` with the deployment
would delete and recreate them, which has produced duplicate runs. A duty that left the plan
(or whose plan is no longer loaded) keeps its deployment, paused: its history stays.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from prefect.client.orchestration import SyncPrefectClient
from prefect.client.schemas.actions import (
    DeploymentScheduleCreate,
    DeploymentUpdate,
    WorkPoolCreate,
)
from prefect.client.schemas.filters import FlowFilter, FlowFilterName
from prefect.client.schemas.objects import ConcurrencyLimitStrategy, ConcurrencyOptions
from prefect.client.schemas.responses import DeploymentResponse
from prefect.client.schemas.schedules import IntervalSchedule, RRuleSchedule
from prefect.exceptions import ObjectNotFound
from prefect.utilities.callables import parameter_schema
from sqlalchemy import select
from sqlalchemy.orm import Session

from duban.bootstrap import App
from duban.engine.duties import qualified
from duban.engine.materialize import domain_obligation
from duban.store.models import ObligationRow, Plan
from flows import duties
from flows.schedules import duty_schedule

DEFAULT_POOL = "duban"
#: the slug of the one schedule duban manages on each deployment (others are left alone)
SCHEDULE_SLUG = "duban"
#: interval schedules count from this local midnight (any fixed past moment would do)
INTERVAL_ANCHOR = datetime(2024, 1, 1)
TAG = "duban"
PAGE = 200

Schedule = RRuleSchedule | IntervalSchedule


@dataclass(frozen=True, kw_only=True)
class Wanted:
    """A deployment as the catalog says it should be."""

    flow_name: str
    name: str
    entrypoint: str
    description: str
    parameters: dict[str, Any]
    parameter_schema: dict[str, Any]
    tags: tuple[str, ...]
    version: str
    schedule: Schedule
    collision: ConcurrencyLimitStrategy

    @property
    def full_name(self) -> str:
        return f"{self.flow_name}/{self.name}"


@dataclass
class DeployReport:
    created: list[str] = field(default_factory=list)
    updated: dict[str, list[str]] = field(default_factory=dict)  # name -> fields changed
    unchanged: list[str] = field(default_factory=list)
    paused: list[str] = field(default_factory=list)
    pool_created: bool = False

    @property
    def changed(self) -> bool:
        return bool(self.created or self.updated or self.paused or self.pool_created)


def _entrypoint(fn: Callable[..., Any]) -> str:
    # a module path, not a file path: workers import the flows installed with duban
    return f"{fn.__module__}.{fn.__name__}"


def _schema(flow: Any) -> dict[str, Any]:
    return parameter_schema(flow).model_dump(exclude_unset=True)


def _duty_description(row: ObligationRow, plan: Plan) -> str:
    source = row.spec.get("source", {})
    document = source.get("document") or plan.document
    lines = [
        row.title,
        "",
        f"{document} {source.get('clause', '')}：「{source.get('quote', '')}」",
        f"{plan.title}（{plan.valid_from} – {plan.valid_until}）",
    ]
    return "\n".join(lines)


def deployment_names(session: Session) -> dict[int, str]:
    """Each duty's deployment name (`duban-materialize/<name>`): its id, for the first plan
    that used the id (so a deployment keeps its name, and its history, when next year's plan
    reuses the id), else `PLAN:ID` (Prefect refuses a slash in a name)."""
    first: dict[str, int] = {}
    found: dict[int, str] = {}
    rows = session.execute(
        select(ObligationRow.id, ObligationRow.code, Plan.code)
        .join(Plan, Plan.id == ObligationRow.plan_id)
        .order_by(Plan.id, ObligationRow.id)
    ).all()
    for i, code, plan in rows:
        owner = first.setdefault(code, i)
        found[i] = code if owner == i else f"{plan}:{code}"
    return found


def wanted_deployments(app: App) -> list[Wanted]:
    """Every deployment the catalog in the database calls for, duties first, by name."""
    tz: ZoneInfo = app.tz
    with app.store.read() as session:
        plans = {p.id: p for p in session.scalars(select(Plan))}
        rows = list(
            session.scalars(
                select(ObligationRow)
                .where(ObligationRow.active, ObligationRow.event_kind.is_(None))
                .order_by(ObligationRow.code)
            )
        )
        names = deployment_names(session)
        session.expunge_all()
    materialize = duties.materialize_duty
    out: list[Wanted] = []
    for row in rows:
        plan = plans[row.plan_id]
        schedule = duty_schedule(domain_obligation(row, plan.code), tz)
        if schedule is None:
            continue
        out.append(
            Wanted(
                flow_name=materialize.name,
                name=names[row.id],
                entrypoint=_entrypoint(materialize.fn),
                description=_duty_description(row, plan),
                parameters={"duty": qualified(plan.code, row.code)},
                parameter_schema=_schema(materialize),
                tags=(TAG, plan.code),
                version=row.content_hash[:12],
                schedule=RRuleSchedule(rrule=schedule.rrule, timezone=schedule.timezone),
                collision=ConcurrencyLimitStrategy.ENQUEUE,
            )
        )
    settings = app.settings
    anchor = INTERVAL_ANCHOR.replace(tzinfo=tz)
    for flow, every, what in (
        (duties.reconcile, timedelta(minutes=settings.reconcile_minutes), "catch-up, events"),
        (duties.sweep, timedelta(minutes=settings.sweep_minutes), "reminders, escalations"),
        (duties.deliver, timedelta(seconds=settings.deliver_seconds), "the outbox to SMTP"),
    ):
        out.append(
            Wanted(
                flow_name=flow.name,
                name=flow.name.removeprefix("duban-"),
                entrypoint=_entrypoint(flow.fn),
                description=f"duban {flow.name.removeprefix('duban-')}: {what}",
                parameters={},
                parameter_schema=_schema(flow),
                tags=(TAG,),
                version="1",
                schedule=IntervalSchedule(
                    interval=every, anchor_date=anchor, timezone=settings.timezone
                ),
                collision=ConcurrencyLimitStrategy.CANCEL_NEW,
            )
        )
    return out


def _same_schedule(have: Any, want: Schedule) -> bool:
    if isinstance(want, RRuleSchedule):
        return (
            isinstance(have, RRuleSchedule)
            and have.rrule == want.rrule
            and have.timezone == want.timezone
        )
    return (
        isinstance(have, IntervalSchedule)
        and have.interval == want.interval
        and have.anchor_date == want.anchor_date
        and have.timezone == want.timezone
    )


def _differences(have: DeploymentResponse, want: Wanted, pool: str) -> dict[str, Any]:
    """The DeploymentUpdate fields whose stored value differs from the wanted one."""
    wanted_fields: dict[str, Any] = {
        "description": want.description,
        "version": want.version,
        "entrypoint": want.entrypoint,
        "parameters": want.parameters,
        "parameter_openapi_schema": want.parameter_schema,
        "tags": list(want.tags),
        "work_pool_name": pool,
        "paused": False,
    }
    stored: dict[str, Any] = {
        "description": have.description,
        "version": have.version,
        "entrypoint": have.entrypoint,
        "parameters": have.parameters,
        "parameter_openapi_schema": have.parameter_openapi_schema,
        "tags": sorted(have.tags),
        "work_pool_name": have.work_pool_name,
        "paused": have.paused,
    }
    wanted_fields["tags"] = sorted(wanted_fields["tags"])
    changed = {k: v for k, v in wanted_fields.items() if stored[k] != v}
    limit = have.global_concurrency_limit.limit if have.global_concurrency_limit else None
    strategy = have.concurrency_options.collision_strategy if have.concurrency_options else None
    if limit != 1 or strategy != want.collision:
        changed["concurrency_limit"] = 1
        changed["concurrency_options"] = ConcurrencyOptions(collision_strategy=want.collision)
    return changed


def _sync_schedule(client: SyncPrefectClient, deployment: DeploymentResponse, want: Wanted) -> bool:
    """Create the duban schedule, or update it in place (same id); True if anything changed."""
    ours = [s for s in deployment.schedules if s.slug == SCHEDULE_SLUG]
    if not ours:
        client.create_deployment_schedules(
            deployment.id,
            [DeploymentScheduleCreate(schedule=want.schedule, active=True, slug=SCHEDULE_SLUG)],
        )
        return True
    current = ours[0]
    if _same_schedule(current.schedule, want.schedule) and current.active:
        return False
    client.update_deployment_schedule(
        deployment.id, current.id, active=True, schedule=want.schedule
    )
    return True


def ensure_pool(client: SyncPrefectClient, pool: str) -> bool:
    """Create the work pool (type process, Prefect's default job template) if it is missing."""
    try:
        client.read_work_pool(pool)
        return False
    except ObjectNotFound:
        from prefect.workers.process import ProcessWorker

        client.create_work_pool(
            WorkPoolCreate(
                name=pool,
                type=ProcessWorker.type,
                base_job_template=ProcessWorker.get_default_base_job_template(),
            )
        )
        return True


def apply(client: SyncPrefectClient, wanted: list[Wanted], pool: str) -> DeployReport:
    """Create or update each wanted deployment in place; pause duties no longer wanted."""
    report = DeployReport(pool_created=ensure_pool(client, pool))
    for want in wanted:
        try:
            have = client.read_deployment_by_name(want.full_name)
        except ObjectNotFound:
            flow_id = client.create_flow_from_name(want.flow_name)
            client.create_deployment(
                flow_id=flow_id,
                name=want.name,
                version=want.version,
                description=want.description,
                entrypoint=want.entrypoint,
                parameters=want.parameters,
                parameter_openapi_schema=want.parameter_schema,
                tags=list(want.tags),
                work_pool_name=pool,
                concurrency_limit=1,
                concurrency_options=ConcurrencyOptions(collision_strategy=want.collision),
                schedules=[
                    DeploymentScheduleCreate(
                        schedule=want.schedule, active=True, slug=SCHEDULE_SLUG
                    )
                ],
                paused=False,
            )
            report.created.append(want.full_name)
            continue
        changed = _differences(have, want, pool)
        if changed:
            client.update_deployment(have.id, DeploymentUpdate(**changed))
        if _sync_schedule(client, have, want):
            changed["schedule"] = want.schedule
        if changed:
            report.updated[want.full_name] = sorted(changed)
        else:
            report.unchanged.append(want.full_name)
    names = {w.name for w in wanted}
    flow_name = duties.materialize_duty.name
    for have in _deployments_of(client, flow_name):
        if have.name not in names and not have.paused:
            client.pause_deployment(have.id)
            report.paused.append(f"{flow_name}/{have.name}")
    return report


def _deployments_of(client: SyncPrefectClient, flow_name: str) -> list[DeploymentResponse]:
    """Every deployment of the flow, a page at a time (the API caps one answer)."""
    found: list[DeploymentResponse] = []
    only = FlowFilter(name=FlowFilterName(any_=[flow_name]))
    while page := client.read_deployments(flow_filter=only, offset=len(found), limit=PAGE):
        found.extend(page)
    return found
