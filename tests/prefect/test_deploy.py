"""`duban prefect deploy` against a real Prefect server: schedules, idempotence, edits."""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from prefect.client.orchestration import SyncPrefectClient
from prefect.client.schemas.filters import DeploymentFilter, DeploymentFilterId

from duban.bootstrap import App
from duban.engine.materialize import domain_obligation
from duban.settings import Settings
from duban.store.models import ObligationRow, Plan
from flows.schedules import period_openings
from tests.prefect.conftest import BIN, QUIET_POOL, PrefectServer
from tests.prefect.site import TZ, Site, local, make_site, process_env

# a server start (the first test), many flow runs: longer than the suite's 120 s per test
pytestmark = pytest.mark.timeout(300)

# well beyond both ends: a missing DTSTART or UNTIL would show as runs outside the plan
WINDOW_MARGIN = timedelta(days=400)


def deploy(server: PrefectServer, site: Site, pool: str = QUIET_POOL) -> list[str]:
    """Run the real console script; return its output lines."""
    done = subprocess.run(
        [str(BIN / "duban"), "prefect", "deploy", "--pool", pool],
        env=process_env(server.env, site.env),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.splitlines()


def snapshot(client: SyncPrefectClient, site: Site) -> dict[str, Any]:
    """Each of the site's deployments: its id, last update, and its schedules (id, update)."""
    out = {}
    for duty in ("drill", "report"):
        d = client.read_deployment_by_name(f"duban-materialize/{site.code(duty)}")
        out[duty] = (
            d.id,
            d.updated,
            d.paused,
            [(s.id, s.updated, getattr(s.schedule, "rrule", None)) for s in d.schedules],
        )
    for name in ("reconcile", "sweep", "deliver"):
        d = client.read_deployment_by_name(f"duban-{name}/{name}")
        out[name] = (d.id, d.updated, d.paused, [(s.id, s.updated) for s in d.schedules])
    return out


def test_deploy_twice_changes_nothing_and_an_edit_changes_only_the_edited_duty(
    prefect_server: PrefectServer, duban_db: Callable[[], str], tmp_path: Path
) -> None:
    site = make_site(tmp_path, duban_db(), "d")
    site.init()
    first = deploy(prefect_server, site)
    assert f"created  duban-materialize/{site.code('drill')}" in first
    assert f"created  duban-materialize/{site.code('report')}" in first
    with prefect_server.client() as client:
        before = snapshot(client, site)
        again = deploy(prefect_server, site)
        assert again[-1] == (
            f"5 deployments in pool {QUIET_POOL!r}: 0 created, 0 updated, 5 unchanged, 0 paused"
        )
        assert snapshot(client, site) == before

        # the monthly report becomes bimonthly: its schedule changes in place, nothing else
        site.edit_plan(
            lambda plan: plan["obligations"][1].update(recurrence={"kind": "bimonthly"}),
            now=local("2022-04-02T00:00"),
        )
        edited = deploy(prefect_server, site)
        assert f"updated  duban-materialize/{site.code('report')}: schedule, version" in edited
        after = snapshot(client, site)
        assert {k for k in before if after[k] != before[k]} == {"report"}
        (old_schedule,), (new_schedule,) = before["report"][3], after["report"][3]
        assert new_schedule[0] == old_schedule[0], "the schedule was recreated, not updated"
        assert "FREQ=MONTHLY;INTERVAL=2" in new_schedule[2]

        # the drill leaves the plan: its deployment is paused, not deleted
        site.edit_plan(lambda plan: plan["obligations"].pop(0), now=local("2022-04-03T00:00"))
        left = deploy(prefect_server, site)
        assert f"paused   duban-materialize/{site.code('drill')} (the duty left its plan)" in left
        drill = client.read_deployment_by_name(f"duban-materialize/{site.code('drill')}")
        assert drill.paused and drill.id == before["drill"][0]


def scheduled_starts(client: SyncPrefectClient, deployment_id: Any, start: Any, end: Any) -> list:
    """Ask the server to schedule the deployment's runs over [start, end] (the scheduler
    service's own code, on an explicit window) and return their scheduled start times."""
    client.request(
        "POST",
        "/deployments/{id}/schedule",
        path_params={"id": deployment_id},
        json={
            "start_time": start.isoformat(),
            "end_time": end.isoformat(),
            "min_time": (end - start).total_seconds(),
            "min_runs": 1000,
            "max_runs": 1000,
        },
    )
    runs = client.read_flow_runs(
        deployment_filter=DeploymentFilter(id=DeploymentFilterId(any_=[deployment_id]))
    )
    return sorted(r.expected_start_time for r in runs)


def test_scheduled_runs_of_three_duties_are_the_engines_period_openings(
    prefect_server: PrefectServer, duban_db: Callable[[], str], tmp_path: Path
) -> None:
    """The bundled 2022 plan: a monthly, a two-monthly (Mar–Apr blocks: it opens before the
    plan) and a half-yearly duty (2022-H1 opens in January, before the plan's April start;
    2023-H1 would open before the plan ends but is not owed)."""
    url = duban_db()
    app = App(settings=Settings(database_url=url, mail_dir=tmp_path / "mail"))
    app.init(now=local("2022-04-01T00:00"))
    subprocess.run(
        [str(BIN / "duban"), "prefect", "deploy", "--pool", QUIET_POOL],
        env=process_env(prefect_server.env, {"DUBAN_DATABASE_URL": url}),
        check=True,
        capture_output=True,
        timeout=120,
    )
    chosen = [
        "xf22-special-population-monthly",
        "xf22-centre-supervision",
        "xf22-joint-meeting",
    ]
    with app.store.read() as session:
        plans = {p.id: p for p in session.query(Plan)}
        rows = {r.code: r for r in session.query(ObligationRow) if r.code in chosen}
        session.expunge_all()
    with prefect_server.client() as client:
        for code in chosen:
            row = rows[code]
            plan = plans[row.plan_id]
            openings = period_openings(domain_obligation(row, plan.code), TZ)
            deployment = client.read_deployment_by_name(f"duban-materialize/{code}")
            starts = scheduled_starts(
                client,
                deployment.id,
                openings[0] - WINDOW_MARGIN,
                local(f"{plan.valid_until}T00:00") + WINDOW_MARGIN,
            )
            assert [s.astimezone(TZ) for s in starts] == openings, code
    app.store.dispose()
