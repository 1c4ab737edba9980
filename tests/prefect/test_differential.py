"""A simulated year: Prefect's flows and the embedded runner leave exactly the same state.

Both sites load the same plan file (tests/fixtures/mini-plan.yaml, prefixed) into their own
PostgreSQL database at the same moment, and live through the same year:

- at each period's opening, the duty is materialized: embedded, at `duban run`'s trigger times
  (`PeriodStartTrigger`); on Prefect, by the runs the server itself schedules from the
  deployment's RRULE (and the two lists of moments must be equal);
- every other Monday at 09:00 the ladders are swept; every fourth Monday everything is
  reconciled first and the outbox delivered afterwards (each flow run here costs about half
  a second of Prefect's API on this machine, so the year has about 85 of them);
- people act the same way on both: a submission, and a maternal death recorded in September.

Prefect's runs are real flow runs on the real server, run one after another in this process
by Prefect's flow engine (a worker would start a process for each), each acting as of its
scheduled start time.

"Exactly the same" is every row, by natural key: tasks, the audit trail (with its hashes,
so order, actors and timestamps too), the outbox (all but the moments delivery dates by the
database's clock) and the materialization markers.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from prefect.client.orchestration import SyncPrefectClient
from prefect.client.schemas.filters import (
    ArtifactFilter,
    ArtifactFilterKey,
    DeploymentFilter,
    DeploymentFilterId,
)
from prefect.states import Scheduled
from sqlalchemy import select

from duban.bootstrap import App
from duban.domain.tasks import Action
from duban.engine import actions
from duban.engine.materialize import domain_obligation, materialize
from duban.store.models import ObligationRow, Organization, Plan, Task
from flows.deployments import apply, wanted_deployments
from flows.schedules import period_openings
from tests.prefect.conftest import QUIET_POOL, PrefectServer, run_scheduled
from tests.prefect.site import TZ, Site, local, make_site, state
from tests.prefect.test_deploy import scheduled_starts

# a server start (the first test), many flow runs: longer than the suite's 120 s per test
pytestmark = pytest.mark.timeout(300)

FIRST_MONDAY = date(2022, 3, 28)
LAST_DAY = date(2023, 6, 30)  # the last period's escalations are done by then
SWEEP_EVERY = timedelta(days=14)
RECONCILE_EVERY = 2  # sweeps: reconcile, and deliver afterwards, every fourth Monday
YEAR_MARGIN = timedelta(days=400)

Moment = tuple[datetime, int, str, str]  # when, order at that instant, step, duty


def user_actions(app: App, prefix: str, when: datetime) -> None:
    """What people do on both sites: the h1 drill of 2022-Q3 submitted in July; a maternal
    death at h2 recorded on 28 September."""
    if when == local("2022-07-20T10:00"):
        with app.store.read() as session:
            task_id = session.scalar(
                select(Task.id)
                .join(ObligationRow, ObligationRow.id == Task.obligation_id)
                .join(Organization, Organization.id == Task.org_id)
                .where(
                    ObligationRow.code == f"{prefix}-drill",
                    Organization.code == "h1",
                    Task.period_key == "2022-Q3",
                )
            )
        assert task_id is not None
        actions.add_note(app.store, task_id=task_id, note="演练记录", actor="h1", now=when)
        actions.transition(app.store, task_id=task_id, action=Action.SUBMIT, actor="h1", now=when)
    if when == local("2022-09-28T10:00"):
        actions.record_event(
            app.store,
            kind="maternal-death",
            org="h2",
            occurred_on=date(2022, 9, 27),
            now=when,
            tz=app.tz,
            calendar=app.calendar,
            actor="office",
        )


def timeline(openings: dict[str, list[datetime]]) -> list[Moment]:
    moments: list[Moment] = [
        (at, 0, "materialize", duty) for duty, times in openings.items() for at in times
    ]
    moments += [(local(t), 1, "people", "") for t in ("2022-07-20T10:00", "2022-09-28T10:00")]
    day, week = FIRST_MONDAY, 0
    while day <= LAST_DAY:
        at = datetime(day.year, day.month, day.day, 9, tzinfo=TZ)
        moments.append((at, 3, "sweep", ""))
        if week % RECONCILE_EVERY == 0:
            moments += [(at, 2, "reconcile", ""), (at, 4, "deliver", "")]
        day, week = day + SWEEP_EVERY, week + 1
    return sorted(moments)


def embedded_openings(app: App) -> dict[str, list[datetime]]:
    """When `duban run` fires each periodic duty: its PeriodStartTrigger times."""
    with app.store.read() as session:
        plans = {p.id: p.code for p in session.scalars(select(Plan))}
        rows = session.scalars(
            select(ObligationRow).where(ObligationRow.active, ObligationRow.event_kind.is_(None))
        )
        return {r.code: period_openings(domain_obligation(r, plans[r.plan_id]), TZ) for r in rows}


def live_embedded(site: Site) -> list[Moment]:
    """The embedded runner's year: the calls `duban run`'s jobs make, at their moments."""
    app = site.app()
    moments = timeline(embedded_openings(app))
    for when, _, step, duty in moments:
        if step == "materialize":  # the job of the duty's PeriodStartTrigger
            materialize(app.store, calendar=app.calendar, now=when, tz=app.tz, only=duty)
        elif step == "reconcile":
            materialize(app.store, calendar=app.calendar, now=when, tz=app.tz)
        elif step == "sweep":
            app.sweep(when)
        elif step == "deliver":
            app.deliver(when)
        else:
            user_actions(app, site.prefix, when)
    app.store.dispose()
    return moments


def prefect_openings(client: SyncPrefectClient, site: Site) -> dict[str, list[Any]]:
    """The duty runs the server schedules from each deployment's RRULE, by scheduled time."""
    out: dict[str, list[Any]] = {}
    for duty in ("drill", "report"):
        code = site.code(duty)
        deployment = client.read_deployment_by_name(f"duban-materialize/{code}")
        start = local("2022-01-01T00:00") - YEAR_MARGIN
        scheduled_starts(client, deployment.id, start, start + 3 * YEAR_MARGIN)
        runs = client.read_flow_runs(
            deployment_filter=DeploymentFilter(id=DeploymentFilterId(any_=[deployment.id]))
        )
        out[code] = sorted((r.expected_start_time, r.id) for r in runs)
    return out


def live_on_prefect(client: SyncPrefectClient, site: Site) -> list[Moment]:
    app = site.app()
    apply(client, wanted_deployments(app), QUIET_POOL)
    duty_runs = prefect_openings(client, site)
    moments = timeline({code: [at for at, _ in runs] for code, runs in duty_runs.items()})
    run_at = {(code, at): run_id for code, runs in duty_runs.items() for at, run_id in runs}
    for when, _, step, duty in moments:
        if step == "materialize":
            run_scheduled(client, run_at[(duty, when)])
        elif step == "people":
            user_actions(app, site.prefix, when)
        else:
            deployment = client.read_deployment_by_name(f"duban-{step}/{step}")
            run = client.create_flow_run_from_deployment(
                deployment.id, state=Scheduled(scheduled_time=when)
            )
            run_scheduled(client, run.id)
    app.store.dispose()
    return moments


def test_a_year_on_prefect_leaves_exactly_the_state_the_embedded_runner_leaves(
    prefect_server: PrefectServer,
    duban_db: Callable[[], str],
    tmp_path: Path,
    site_env: Callable[[dict[str, str]], None],
    no_heartbeats: None,
) -> None:
    embedded = make_site(tmp_path / "embedded", duban_db(), "y")
    on_prefect = replace(embedded, url=duban_db(), mail_dir=tmp_path / "prefect" / "mail")
    embedded.init()
    on_prefect.init()
    embedded_moments = live_embedded(embedded)
    site_env(on_prefect.env)  # the flows run in this process read their settings from it
    with prefect_server.client() as client:
        prefect_moments = live_on_prefect(client, on_prefect)
        report_artifacts = client.read_artifacts(
            artifact_filter=ArtifactFilter(
                key=ArtifactFilterKey(any_=[f"duban-{on_prefect.code('report')}"])
            )
        )
    assert [(at.timestamp(), step, duty) for at, _, step, duty in prefect_moments] == [
        (at.timestamp(), step, duty) for at, _, step, duty in embedded_moments
    ]
    got, want = state(on_prefect.url), state(embedded.url)
    assert {name: len(rows) for name, rows in want.items()} == {
        name: len(rows) for name, rows in got.items()
    }
    for name in want:
        assert got[name] == want[name], name
    kinds = {row[1] for row in want["outbox"]}
    assert {"reminder", "overdue", "escalation", "digest", "summary"} <= kinds
    assert any(row[9] == "maternal-death" for row in want["tasks"])
    assert len(report_artifacts) == len(
        [m for m in prefect_moments if m[3] == on_prefect.code("report")]
    )
    assert "| created | enqueued | sent | retried | failed |" in report_artifacts[0].data
