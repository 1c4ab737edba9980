"""Benchmark: a year of the national-scale set through Prefect flows, against the engine direct.

    python bench/prefect.py [--orgs 30000] [--obligations 40] [--workers 1]

Needs the prefect extra (`pip install -e '.[prefect]'`) and PostgreSQL on 127.0.0.1. The set
is `bench/materialize.py`'s (organizations with mixed tags, obligations of every cadence, the
year 2024). The script starts its own Prefect server (its own database, scheduler service
off), then on two fresh duban databases does the same work twice:

- direct: for each duty and each period opening of the year, in time order, the engine's
  `materialize(now=opening, only=duty)`: what `duban run` does at each period start;
- Prefect: `duban prefect deploy`'s deployments; the server schedules each duty's runs from
  its RRULE over the year; the runs are executed by `--workers` processes through Prefect's
  flow engine (each a real flow run on the server: states, logs, an artifact), each process
  taking whole duties and running their periods in time order.

It prints both times, the ratio Prefect / direct (target ≤ 1.3, aim 1.1: the cost of a flow
run must vanish beside the set-based work) and the number of flow runs (duties × periods,
never institutions), and checks that both databases hold the same tasks.
"""

from __future__ import annotations

import argparse
import ctypes
import multiprocessing
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import traceback
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
# this file is named prefect.py: keep its folder off the path, or `import prefect` finds it
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != HERE]
sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402
from sqlalchemy import create_engine, text  # noqa: E402

from bench.materialize import PG_ADMIN, TZ, YEAR, loaded, write_inputs  # noqa: E402

SERVER_START_TIMEOUT = 120.0
POLL = 0.2
PR_SET_PDEATHSIG = 1  # prctl(2)


def _admin(statement: str) -> None:
    engine = create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            conn.execute(text(statement))
    finally:
        engine.dispose()


@contextmanager
def database(prefix: str, driver: str = "psycopg") -> Iterator[str]:
    name = f"{prefix}_{uuid.uuid4().hex[:8]}"
    _admin(f'CREATE DATABASE "{name}"')
    base = PG_ADMIN.rsplit("/", 1)[0].replace("postgresql+psycopg", f"postgresql+{driver}")
    try:
        yield f"{base}/{name}"
    finally:
        _admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _die_with_parent() -> None:
    """In the server's process: SIGTERM when this script dies, so no server is left over."""
    if sys.platform == "linux":
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


@contextmanager
def prefect_server(home: Path) -> Iterator[str]:
    """`prefect server start` on a free loopback port with its own PostgreSQL database."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    api = f"http://127.0.0.1:{port}/api"
    with database("prefect_bench", "asyncpg") as db_url:
        env = {
            **os.environ,
            "PREFECT_HOME": str(home),
            "PREFECT_API_DATABASE_CONNECTION_URL": db_url,
            "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
            "PREFECT_SERVER_UI_ENABLED": "false",
            "PREFECT_SERVER_SERVICES_SCHEDULER_ENABLED": "false",
        }
        env.pop("PREFECT_API_URL", None)
        log = (home / "server.log").open("wb")
        proc = subprocess.Popen(
            [str(Path(sys.executable).parent / "prefect"), "server", "start", "--host",
             "127.0.0.1", "--port", str(port)],
            env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
            preexec_fn=_die_with_parent,
        )  # fmt: skip
        try:
            deadline = time.monotonic() + SERVER_START_TIMEOUT
            while time.monotonic() < deadline and proc.poll() is None:
                try:
                    if httpx.get(f"{api}/health", timeout=2).json() is True:
                        break
                except (httpx.HTTPError, ValueError):
                    pass
                time.sleep(POLL)
            else:
                raise SystemExit(f"the Prefect server did not start; see {home / 'server.log'}")
            yield api
        finally:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=20)
            log.close()


def openings(catalog: Any) -> list[tuple[datetime, str]]:
    from flows.schedules import period_openings

    return sorted(
        (at, lo.domain.code)
        for lo in catalog.obligations
        if lo.domain.event is None
        for at in period_openings(lo.domain, TZ)
    )


def run_direct(url: str, plan: Path, orgs: Path) -> tuple[float, int]:
    from duban.engine.materialize import materialize

    store, calendar, catalog = loaded(url, plan, orgs)
    work = openings(catalog)
    started = time.perf_counter()
    created = 0
    for at, code in work:
        created += materialize(store, calendar=calendar, now=at, tz=TZ, only=code).tasks_created
    elapsed = time.perf_counter() - started
    store.dispose()
    return elapsed, created


def _warm_up(env: dict[str, str]) -> None:
    """Import Prefect and the flows, as a worker that is already running has."""
    os.environ.update(env)
    import prefect.flow_engine  # noqa: F401

    import flows.duties  # noqa: F401


def _execute(run_ids: list[str], env: dict[str, str]) -> int | str:
    """One worker process: run these flow runs in order through Prefect's flow engine.
    Returns the tasks created, or the traceback of what failed (exceptions from httpx do
    not survive the trip back to the parent process)."""
    try:
        return _execute_runs(run_ids, env)
    except Exception:
        return traceback.format_exc()


def _execute_runs(run_ids: list[str], env: dict[str, str]) -> int:
    os.environ.update(env)
    from prefect import get_client
    from prefect.flow_engine import run_flow
    from prefect.settings import PREFECT_FLOWS_HEARTBEAT_FREQUENCY, temporary_settings

    from flows.duties import materialize_duty

    created = 0
    # the heartbeat thread sleeps in 1 s steps and each run joins it: a second per run that a
    # worker's own process would not spend waiting (it exits instead)
    with (
        temporary_settings(updates={PREFECT_FLOWS_HEARTBEAT_FREQUENCY: None}),
        get_client(sync_client=True) as client,
    ):
        for run_id in run_ids:
            flow_run = client.read_flow_run(run_id)
            result = run_flow(materialize_duty, flow_run=flow_run, parameters=flow_run.parameters)
            created += result["created"]
    return created


def run_on_prefect(
    api: str, url: str, plan: Path, orgs: Path, workers: int, mail: Path
) -> tuple[float, int, int]:
    env = {
        "PREFECT_API_URL": api,
        "DUBAN_DATABASE_URL": url,
        "DUBAN_PLAN_FILES": f'["{plan}"]',
        "DUBAN_ORG_FILES": f'["{orgs}"]',
        "DUBAN_MAIL_DIR": str(mail),
    }
    os.environ.update(env)  # before Prefect is imported: it reads its settings then
    from prefect import get_client
    from prefect.client.schemas.filters import DeploymentFilter, DeploymentFilterId

    from duban.bootstrap import App
    from duban.settings import Settings
    from flows.deployments import apply, wanted_deployments

    store, _, _ = loaded(url, plan, orgs)
    store.dispose()
    app = App(settings=Settings())
    by_duty: dict[str, list[tuple[datetime, str]]] = {}
    with get_client(sync_client=True) as client:
        wanted = [w for w in wanted_deployments(app) if w.flow_name == "duban-materialize"]
        apply(client, wanted, "bench")
        window = (datetime(YEAR - 1, 1, 1, tzinfo=TZ), datetime(YEAR + 1, 1, 1, tzinfo=TZ))
        for want in wanted:
            deployment = client.read_deployment_by_name(want.full_name)
            client.request(
                "POST",
                "/deployments/{id}/schedule",
                path_params={"id": deployment.id},
                json={
                    "start_time": window[0].isoformat(),
                    "end_time": window[1].isoformat(),
                    "min_time": (window[1] - window[0]) / timedelta(seconds=1),
                    "min_runs": 10_000,
                    "max_runs": 10_000,
                },
            )
            runs = client.read_flow_runs(
                deployment_filter=DeploymentFilter(id=DeploymentFilterId(any_=[deployment.id]))
            )
            by_duty[want.name] = sorted((r.expected_start_time, str(r.id)) for r in runs)
    app.store.dispose()
    shares: list[list[str]] = [[] for _ in range(workers)]
    for n, code in enumerate(sorted(by_duty)):
        shares[n % workers].extend(run_id for _, run_id in by_duty[code])
    count = sum(len(s) for s in shares)
    context = multiprocessing.get_context("spawn")
    with context.Pool(workers, initializer=_warm_up, initargs=(env,)) as pool:
        pool.map(_warm_up, [env] * workers)  # workers are long-lived: start them untimed
        started = time.perf_counter()
        results = pool.starmap(_execute, [(share, env) for share in shares if share])
        elapsed = time.perf_counter() - started
    if failed := [r for r in results if isinstance(r, str)]:
        raise SystemExit(f"a flow-running process failed:\n{failed[0]}")
    return elapsed, sum(int(r) for r in results), count


def tasks_of(url: str) -> list[tuple[Any, ...]]:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return [
                tuple(r)
                for r in conn.execute(
                    text(
                        "SELECT o.code, g.code, t.period_key, t.due_date, t.created_at "
                        "FROM tasks t JOIN obligations o ON o.id = t.obligation_id "
                        "JOIN organizations g ON g.id = t.org_id ORDER BY 1, 2, 3"
                    )
                )
            ]
    finally:
        engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--orgs", type=int, default=30_000)
    parser.add_argument("--obligations", type=int, default=40)
    parser.add_argument("--workers", type=int, default=2, help="flow-running processes")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        plan, orgs = write_inputs(folder, args.orgs, args.obligations)
        print(f"{args.orgs:,} organizations, {args.obligations} obligations, year {YEAR}")
        with database("duban_bench_direct") as direct_url:
            direct, made = run_direct(direct_url, plan, orgs)
            print(f"direct   {direct:8.2f} s  {made:>10,} tasks")
            (folder / "home").mkdir()
            with prefect_server(folder / "home") as api, database("duban_bench_flows") as url:
                flows, created, runs = run_on_prefect(
                    api, url, plan, orgs, args.workers, folder / "mail"
                )
                print(f"prefect  {flows:8.2f} s  {created:>10,} tasks  {runs} flow runs")
                same = tasks_of(url) == tasks_of(direct_url)
        print(
            f"ratio prefect/direct {flows / direct:5.2f} (target <= 1.3)  flow runs {runs} "
            f"({runs / args.obligations:.1f} per duty; institutions {args.orgs:,})  "
            f"same tasks: {'yes' if same else 'NO'}"
        )
        if not same or created != made:
            raise SystemExit("the flows did not create the same tasks as the direct run")


if __name__ == "__main__":
    main()
