"""Flow runs on a real Prefect server and a real worker, against a real PostgreSQL: two runs
at once, a run killed half-way and retried, and the lease shared with `duban run`.

To stop a run at a chosen point, a test holds a row lock the run must wait for (an
uncommitted row on the same unique key) and waits until PostgreSQL shows the run waiting:
no sleeps, and no code of duban's replaced.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest
from prefect.client.orchestration import SyncPrefectClient
from prefect.client.schemas.objects import StateType
from prefect.events.filters import EventFilter, EventNameFilter, EventRelatedFilter
from prefect.states import Scheduled
from sqlalchemy import Connection, create_engine, text

from duban.engine import lease
from duban.engine.materialize import materialize
from duban.errors import SchedulerBusy
from flows.deployments import apply, wanted_deployments
from flows.duties import PREFECT_HOLDER
from tests.prefect.conftest import (
    BIN,
    QUIET_POOL,
    PrefectServer,
    PrefectWorker,
    run_scheduled,
    wait_until,
)
from tests.prefect.site import Site, local, make_site, process_env, state

# a server start (the first test), many flow runs: longer than the suite's 120 s per test
pytestmark = pytest.mark.timeout(600)

RUN_TIMEOUT = 120.0  # a worker starts a process per flow run; imports take seconds here


def deploy_site(client: SyncPrefectClient, site: Site, pool: str) -> None:
    app = site.app()
    apply(client, wanted_deployments(app), pool)
    app.store.dispose()


def new_run(client: SyncPrefectClient, site: Site, duty: str, when: datetime) -> UUID:
    """A run of the duty's deployment scheduled at `when`, its process pointed at the site."""
    deployment = client.read_deployment_by_name(f"duban-materialize/{site.code(duty)}")
    run = client.create_flow_run_from_deployment(
        deployment.id, state=Scheduled(scheduled_time=when), job_variables={"env": site.env}
    )
    return run.id


def run_state(client: SyncPrefectClient, run_id: UUID) -> StateType | None:
    state = client.read_flow_run(run_id).state
    return state.type if state else None


def worker_executed(client: SyncPrefectClient, run_id: UUID) -> bool:
    """Whether a worker has announced that it is done with the run (its process ended and
    the worker reported how)."""
    page = client.read_events(
        EventFilter(
            event=EventNameFilter(name=["prefect.worker.executed-flow-run"]),
            related=EventRelatedFilter(id=[f"prefect.flow-run.{run_id}"]),
        ),
        limit=1,
    )
    return bool(page.events)


def run_history(client: SyncPrefectClient, run_id: UUID) -> str:
    """The run's states, oldest first: what a test that waited in vain prints."""
    states = sorted(client.read_flow_run_states(run_id), key=lambda s: s.timestamp)
    return "\n".join(f"{s.timestamp} {s.type.value} {s.name}: {s.message or ''}" for s in states)


@contextmanager
def blocking_marker(url: str, obligation: str, period: str) -> Iterator[Connection]:
    """Hold an uncommitted `materializations` row for (obligation, period): a run that reaches
    that period waits for it inside its transaction, with the period's tasks inserted but
    not committed. Rolled back on leaving."""
    engine = create_engine(url)
    conn = engine.connect()
    try:
        conn.execute(
            text(
                "INSERT INTO materializations (obligation_id, period_key, fingerprint, "
                "tasks_created, at) SELECT id, :period, 'held by the test', 0, now() "
                "FROM obligations WHERE code = :code"
            ),
            {"code": obligation, "period": period},
        )
        yield conn
    finally:
        conn.rollback()
        conn.close()
        engine.dispose()


def lock_waiters(url: str) -> int:
    """Sessions on the site's database waiting for a lock right now."""
    database = url.rsplit("/", 1)[1]
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return int(
                conn.scalar(
                    text(
                        "SELECT count(*) FROM pg_stat_activity "
                        "WHERE datname = :db AND wait_event_type = 'Lock'"
                    ),
                    {"db": database},
                )
            )
    finally:
        engine.dispose()


def flow_run_processes(run_id: UUID) -> list[int]:
    """Processes started for the flow run (the worker sets PREFECT__FLOW_RUN_ID for them)."""
    marker = f"PREFECT__FLOW_RUN_ID={run_id}".encode()
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            if marker in (entry / "environ").read_bytes().split(b"\0"):
                found.append(int(entry.name))
        except OSError:
            continue
    return found


def reference_state(site: Site, url: str, duty: str, now: datetime) -> dict[str, list[Any]]:
    """The state one clean, uninterrupted materialization as of `now` leaves."""
    clean = Site(url=url, prefix=site.prefix, plan=site.plan, mail_dir=site.mail_dir)
    clean.init()
    app = clean.app()
    materialize(app.store, calendar=app.calendar, now=now, tz=app.tz, only=site.code(duty))
    app.store.dispose()
    return state(url)


@pytest.mark.skipif(not Path("/proc/self/environ").exists(), reason="needs Linux /proc")
def test_a_run_killed_half_way_and_retried_ends_as_a_clean_run(
    prefect_server: PrefectServer,
    prefect_worker: PrefectWorker,
    duban_db: Callable[[], str],
    tmp_path: Path,
) -> None:
    site = make_site(tmp_path, duban_db(), "k")
    site.init()
    when = local("2023-05-01T00:00")  # 13 monthly periods to catch up, one transaction each
    with prefect_server.client() as client:
        deploy_site(client, site, prefect_worker.pool)
        with blocking_marker(site.url, site.code("report"), "2022-09"):
            run_id = new_run(client, site, "report", when)
            wait_until(
                "the worker's run to reach 2022-09",
                lambda: lock_waiters(site.url) == 1,
                RUN_TIMEOUT,
            )
            pids = flow_run_processes(run_id)
            assert pids, "the worker's flow-run process was not found"
            for pid in pids:
                os.kill(pid, signal.SIGKILL)
        wait_until(
            "the killed run to be marked crashed",
            lambda: run_state(client, run_id) == StateType.CRASHED,
            RUN_TIMEOUT,
        )
        # Two parts of the worker report the crash: the process runner at once, the worker
        # when it has reaped the process, a moment later. A retry between the two is crashed
        # again by the second (Prefect proposes Crashed over Scheduled), so an operator, and
        # this test, retries once the worker has let the run go: its "executed" event.
        wait_until(
            "the worker to let the killed run go",
            lambda: worker_executed(client, run_id),
            RUN_TIMEOUT,
            prefect_worker.log,
            detail=lambda: run_history(client, run_id),
        )
        half = state(site.url)
        assert 0 < len(half["tasks"]) < 13 * 3, "the run was not stopped half-way"
        assert {t[2] for t in half["tasks"]} == {f"2022-{m:02d}" for m in range(4, 9)}

        # an operator retries it; the retried run keeps its scheduled start time as `now`
        retried = subprocess.run(
            [str(BIN / "prefect"), "flow-run", "retry", str(run_id)],
            env=process_env(prefect_server.env),
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert retried.returncode == 0, retried.stdout + retried.stderr
        wait_until(
            "the retried run to complete",
            lambda: run_state(client, run_id) in {StateType.COMPLETED, StateType.FAILED},
            2 * RUN_TIMEOUT,  # a worker polls, then its process imports Prefect: slow under CI
            prefect_worker.log,
            detail=lambda: run_history(client, run_id),
        )
        assert run_state(client, run_id) == StateType.COMPLETED
    assert state(site.url) == reference_state(site, duban_db(), "report", when)


def test_two_runs_of_one_duty_and_period_at_once_create_each_task_once(
    prefect_server: PrefectServer, duban_db: Callable[[], str], tmp_path: Path
) -> None:
    """Two flow-run processes (`python -m prefect.engine`, what a worker starts) for the same
    duty and period, released at the same instant. The deployment's concurrency limit is
    enforced when a worker submits a run; started by hand like this, nothing stops them, so
    only the unique keys and ON CONFLICT keep the tasks single."""
    site = make_site(tmp_path, duban_db(), "c")
    site.init()
    when = local("2022-04-01T00:00")
    with prefect_server.client() as client:
        deploy_site(client, site, QUIET_POOL)
        runs = [new_run(client, site, "drill", when) for _ in range(2)]
        with blocking_marker(site.url, site.code("drill"), "2022-Q2"):
            procs = [
                subprocess.Popen(
                    [sys.executable, "-m", "prefect.engine"],
                    env=process_env(
                        prefect_server.env, site.env, {"PREFECT__FLOW_RUN_ID": str(run_id)}
                    ),
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
                for run_id in runs
            ]
            try:
                wait_until(
                    "both runs to wait at the same period",
                    lambda: lock_waiters(site.url) == 2,
                    RUN_TIMEOUT,
                )
            except BaseException:
                for proc in procs:
                    proc.kill()
                raise
        for proc in procs:
            assert proc.wait(timeout=RUN_TIMEOUT) == 0
        assert [run_state(client, r) for r in runs] == [StateType.COMPLETED] * 2
    got = state(site.url)
    assert [t[:3] for t in got["tasks"]] == [
        (site.code("drill"), "h1", "2022-Q2"),
        (site.code("drill"), "h2", "2022-Q2"),
    ]
    created = [a for a in got["audit"] if a[3] == "tasks.created"]
    assert len(created) == 1
    clean = reference_state(site, duban_db(), "drill", when)
    # the period's marker counts what its last check created: 0 for the run that lost
    without_count = [(code, key, fp, at) for code, key, fp, _, at in got["materializations"]]
    assert without_count == [(c, k, f, a) for c, k, f, _, a in clean["materializations"]]
    assert {k: v for k, v in got.items() if k != "materializations"} == {
        k: v for k, v in clean.items() if k != "materializations"
    }


def test_flows_and_duban_run_never_drive_one_database_together(
    prefect_server: PrefectServer,
    duban_db: Callable[[], str],
    tmp_path: Path,
    site_env: Callable[[dict[str, str]], None],
    no_heartbeats: None,
) -> None:
    site = make_site(tmp_path, duban_db(), "l")
    site.init()
    site_env(site.env)
    app = site.app()
    now = datetime.now(UTC)
    with prefect_server.client() as client:
        deploy_site(client, site, QUIET_POOL)
        # `duban run` holds the lease: a flow run refuses, saying who holds it
        assert lease.acquire(app.store, holder="duban run pid 1 on host", now=now) is None
        run_id = new_run(client, site, "drill", local("2022-04-01T00:00"))
        with pytest.raises(SchedulerBusy, match=r"`duban run` drives this database: duban run"):
            run_scheduled(client, run_id)
        assert state(site.url)["tasks"] == []
        lease.release(app.store, holder="duban run pid 1 on host", now=now)

        # a flow run took the lease: `duban run` would refuse to start
        run_scheduled(client, new_run(client, site, "drill", local("2022-04-01T00:00")))
        other = lease.acquire(app.store, holder="duban run pid 2 on host", now=datetime.now(UTC))
        assert other is not None and other.startswith(PREFECT_HOLDER)
    app.store.dispose()
