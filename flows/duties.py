"""The engine steps as Prefect flows: thin wrappers over `duban.engine`, nothing more.

Every flow takes `now` from the flow run's scheduled start time
(`prefect.runtime.flow_run.scheduled_start_time`), never from the clock: a late, retried or
re-run flow run computes exactly what an on-time one would have, because the engine steps
compute what should exist as of `now` and insert only what is missing (unique keys, ON
CONFLICT DO NOTHING). Two runs of one duty and period at the same moment, or a run killed
half-way and retried, therefore end in the same state as one clean run.

- `materialize_duty(duty)`: one duty as of its period's opening: one INSERT … SELECT per
  obligation-period for all organizations (the database does the fan-out), so flow runs grow
  with duties × periods, never with institutions.
- `reconcile()`: everything, hourly: periods missed, changed rosters, and event-triggered
  duties (an event's tasks are created when it is recorded; reconcile is the safety net).
- `sweep()`: reminders, escalations and digests into the outbox, every 15 minutes.
- `deliver()`: the outbox to SMTP (or .eml files), every minute.

A failed run is not retried automatically: every step is a reconcile pass, so the next
scheduled one (reconcile hourly) does what it missed, and a refused run (see the lease below)
must not loop. Retried by hand (the UI, `prefect flow-run retry`), a run still acts as of its
original scheduled start.

Each run publishes a markdown artifact (created, enqueued, sent, retried, failed) and logs
through Prefect's run logger. Settings (database, SMTP, plans) come from the worker's
environment (`DUBAN_*`) or its `duban.toml`, as for every other duban command.

Only one of `duban run` and Prefect may drive a database: each flow run first takes the
scheduler lease (`duban.engine.lease`) for the holder `PREFECT_HOLDER`, shared by all flow
runs, and refuses to run while `duban run` holds it; `duban run` in turn refuses to start
while Prefect's lease is live (it expires `PREFECT_LEASE_TTL` after the last flow run).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from prefect import flow, get_run_logger
from prefect.artifacts import create_markdown_artifact
from prefect.runtime import deployment, flow_run
from pydantic import SecretStr

from duban.bootstrap import App
from duban.engine import lease
from duban.engine.materialize import materialize
from duban.errors import SchedulerBusy
from duban.settings import Settings

#: the scheduler-lease holder for every Prefect flow run (they share it; `duban run` doesn't)
PREFECT_HOLDER = "Prefect flows (duban prefect deploy)"
#: longer than the deliver interval, so a running Prefect deployment always holds the lease,
#: short enough that `duban run` can take over soon after the Prefect deployments stop
PREFECT_LEASE_TTL = timedelta(minutes=5)


@dataclass(frozen=True, kw_only=True)
class RunSummary:
    """What one flow run did; the artifact's table and the flow's return value."""

    step: str
    now: datetime
    created: int = 0
    enqueued: int = 0
    sent: int = 0
    retried: int = 0
    failed: int = 0
    detail: tuple[str, ...] = ()

    def as_dict(self) -> dict[str, int]:
        return {
            "created": self.created,
            "enqueued": self.enqueued,
            "sent": self.sent,
            "retried": self.retried,
            "failed": self.failed,
        }

    def markdown(self, tz_name: str, local: datetime) -> str:
        rows = [
            f"### duban {self.step} as of {local:%Y-%m-%d %H:%M} ({tz_name})",
            "",
            "| created | enqueued | sent | retried | failed |",
            "|---:|---:|---:|---:|---:|",
            f"| {self.created} | {self.enqueued} | {self.sent} | {self.retried} | {self.failed} |",
        ]
        if self.detail:
            rows += ["", *(f"- {line}" for line in self.detail)]
        return "\n".join(rows) + "\n"


def scheduled_now() -> datetime:
    """The flow run's scheduled start time as an aware UTC datetime: the engine's `now`.

    A run started by hand has its creation time as its scheduled start, so it acts now.
    """
    moment = flow_run.scheduled_start_time
    return datetime.fromisoformat(moment.isoformat()).astimezone(UTC)


def claim_database(app: App) -> None:
    """Take (or renew) the scheduler lease for Prefect; raise if `duban run` holds it."""
    other = lease.acquire(
        app.store, holder=PREFECT_HOLDER, now=datetime.now(UTC), ttl=PREFECT_LEASE_TTL
    )
    if other is not None:
        raise SchedulerBusy(
            f"`duban run` drives this database: {other}. Only one scheduler may act on a "
            "database: stop `duban run` (its lease then expires) or pause these deployments"
        )


def _settings_key(settings: Settings) -> str:
    values = settings.model_dump()
    return json.dumps(
        values,
        sort_keys=True,
        default=lambda v: v.get_secret_value() if isinstance(v, SecretStr) else str(v),
    )


_apps: dict[str, App] = {}


def engine_app() -> App:
    """duban wired from the worker's settings (`DUBAN_*`, duban.toml), holding the lease.

    A database at another schema than this release's is refused first (SchemaBehind: run
    `duban init`; SchemaAhead: upgrade the workers), without taking the lease: an upgrade by
    `duban init` must not find Prefect in its way because a flow run of this release started.

    A worker starts a process per flow run, but a process that runs many (a test, the
    benchmark, `flow.serve`) keeps one App per configuration: its connection pool and the
    parsed calendar are reused, not rebuilt for every run.
    """
    settings = Settings()
    key = _settings_key(settings)
    app = _apps.get(key)
    if app is None:
        app = _apps[key] = App(settings=settings)
    app.store.require_schema()
    claim_database(app)
    return app


def _artifact_key(step: str) -> str:
    return re.sub(r"[^a-z0-9-]+", "-", f"duban-{step}".lower()).strip("-")


def publish(app: App, summary: RunSummary) -> dict[str, int]:
    """Log the summary through Prefect's run logger and publish it as a markdown artifact."""
    local = summary.now.astimezone(app.tz)
    counts = summary.as_dict()
    get_run_logger().info(
        "%s as of %s: %s",
        summary.step,
        local.isoformat(),
        ", ".join(f"{k} {v}" for k, v in counts.items()),
    )
    create_markdown_artifact(
        markdown=summary.markdown(app.settings.timezone, local),
        key=_artifact_key(summary.step),
        description=f"duban {summary.step} as of {local:%Y-%m-%d %H:%M}",
    )
    return counts


@flow(name="duban-materialize")
def materialize_duty(duty: str) -> dict[str, int]:
    """Create the tasks of one duty (its `PLAN/CODE`, or a bare code: every plan's duty of that
    id) for every period opened by the scheduled start time. The summary is published under
    the deployment's name (the duty's code, or `PLAN:CODE`: flows.deployments), so a duty's
    artifacts keep their key when next year's plan reuses its id."""
    now = scheduled_now()
    app = engine_app()
    report = materialize(app.store, calendar=app.calendar, now=now, tz=app.tz, only=duty)
    if report.periods_checked == 0:
        get_run_logger().warning(
            "duty %s owes no period by %s, or is not active in the catalog "
            "(left the plan? run `duban prefect deploy` to pause its deployment)",
            duty,
            now.isoformat(),
        )
    detail = (f"{report.periods_checked} periods checked, {report.periods_skipped} already done",)
    step = deployment.name or duty
    return publish(app, RunSummary(step=step, now=now, created=report.tasks_created, detail=detail))


@flow(name="duban-reconcile")
def reconcile() -> dict[str, int]:
    """Create every task that should exist by the scheduled start time (all duties, events)."""
    now = scheduled_now()
    app = engine_app()
    recalendared = app.sync_calendar(now)
    report = materialize(app.store, calendar=app.calendar, now=now, tz=app.tz)
    detail = tuple(f"{code}: +{n}" for code, n in sorted(report.by_obligation.items()))
    detail += tuple(
        f"calendar changed: {m.obligation} {m.period} due {m.old} -> {m.new} ({m.tasks} tasks)"
        for m in recalendared.moved
    )
    warning = app.calendar_warning(now)
    if warning is not None:
        get_run_logger().warning("%s", warning.en)
        detail += (warning.en,)
    return publish(
        app, RunSummary(step="reconcile", now=now, created=report.tasks_created, detail=detail)
    )


@flow(name="duban-sweep")
def sweep() -> dict[str, int]:
    """Decide each open task's ladder step and enqueue reminders, escalations and digests."""
    now = scheduled_now()
    app = engine_app()
    report = app.sweep(now)
    detail = (f"{report.marks} ladder steps reached",)
    return publish(app, RunSummary(step="sweep", now=now, enqueued=report.messages, detail=detail))


@flow(name="duban-deliver")
def deliver() -> dict[str, int]:
    """Send the outbox messages that are due."""
    now = scheduled_now()
    app = engine_app()
    report = app.deliver(now)
    return publish(
        app,
        RunSummary(
            step="deliver",
            now=now,
            sent=report.sent,
            retried=report.retried,
            failed=report.failed,
            detail=tuple(report.errors),
        ),
    )
