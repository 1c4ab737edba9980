"""A real Prefect 3 server and a real process worker on loopback, started once for tests/prefect.

The server (`prefect server start`) keeps its own database on the local PostgreSQL, created
for the run and dropped afterwards, and its home (PREFECT_HOME) in a temporary folder. Its
scheduler service is off: a test asks the server to schedule a deployment's runs over an
explicit window (`POST /deployments/{id}/schedule`, the same code the service runs), so
nothing fires on the wall clock behind the tests' backs. Every wait polls a health endpoint
or the API with a deadline; nothing sleeps a fixed time.

duban's own databases are fresh PostgreSQL databases per test (`duban_db`); flow runs find
theirs through `DUBAN_*` variables: in this process through the environment, in the worker's
flow-run processes through the run's job variables (`env`), as a site would set them.
"""

from __future__ import annotations

import ctypes
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, text

from tests.conftest import PG_ADMIN_URL, SKIP_PG

pytest.importorskip("prefect", reason="the prefect extra is not installed")

from prefect import get_client
from prefect.client.orchestration import SyncPrefectClient
from prefect.logging.handlers import APILogHandler
from prefect.settings import (
    PREFECT_API_URL,
    PREFECT_FLOWS_HEARTBEAT_FREQUENCY,
    temporary_settings,
)

BIN = Path(sys.executable).parent
START_TIMEOUT = 120.0  # a cold server migrates its database first
STOP_TIMEOUT = 20.0
POLL = 0.2
PR_SET_PDEATHSIG = 1  # prctl(2)
WORKER_POOL = "duban-test"  # the pool the real worker polls
QUIET_POOL = "duban-quiet"  # deployments whose runs only the tests execute


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_until(
    what: str,
    ready: Callable[[], bool],
    timeout: float,
    log: Path | None = None,
    detail: Callable[[], str] | None = None,
) -> None:
    """Poll `ready` until it is true; fail naming `what`, `detail()` and the log's tail at the
    deadline."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if ready():
            return
        time.sleep(POLL)
    tail = log.read_text(errors="replace")[-3000:] if log and log.exists() else ""
    more = detail() if detail else ""
    pytest.fail(f"timed out after {timeout:.0f} s waiting for {what}\n{more}\n{tail}")


def _pg(statement: str) -> None:
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text(statement))
    finally:
        admin.dispose()


def pg_url(name: str, driver: str = "psycopg") -> str:
    base = PG_ADMIN_URL.rsplit("/", 1)[0].replace("postgresql+psycopg", f"postgresql+{driver}")
    return f"{base}/{name}"


def _die_with_pytest() -> None:
    """In the child, before exec: get SIGTERM when pytest dies (a timeout ends pytest with
    os._exit, and the server and worker run in sessions of their own), so none is left over."""
    if sys.platform == "linux":
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=STOP_TIMEOUT)


@dataclass(frozen=True)
class PrefectServer:
    api_url: str
    env: dict[str, str]  # what a client process needs (PREFECT_API_URL, PREFECT_HOME)
    log: Path

    def client(self) -> SyncPrefectClient:
        return get_client(sync_client=True)


def _healthy(url: str) -> bool:
    import httpx

    try:
        return httpx.get(f"{url}/health", timeout=2).json() is True
    except (httpx.HTTPError, ValueError):
        return False


@pytest.fixture(scope="package")
def prefect_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PrefectServer]:
    if SKIP_PG:
        pytest.skip("DUBAN_TEST_SKIP_POSTGRES=1")
    home = tmp_path_factory.mktemp("prefect-home")
    db = f"prefect_test_{uuid.uuid4().hex[:10]}"
    _pg(f'CREATE DATABASE "{db}"')
    port = free_port()
    api_url = f"http://127.0.0.1:{port}/api"
    client_env = {"PREFECT_HOME": str(home), "PREFECT_API_URL": api_url}
    server_env = {
        **os.environ,
        **client_env,
        "PREFECT_API_DATABASE_CONNECTION_URL": pg_url(db, "asyncpg"),
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "PREFECT_SERVER_UI_ENABLED": "false",
        "PREFECT_SERVER_SERVICES_SCHEDULER_ENABLED": "false",
    }
    server_env.pop("PREFECT_API_URL")  # the server is not a client of another server
    log = home / "server.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [str(BIN / "prefect"), "server", "start", "--host", "127.0.0.1", "--port", str(port)],
            env=server_env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=_die_with_pytest,
        )
    try:
        wait_until(
            "the Prefect server's /api/health",
            lambda: proc.poll() is not None or _healthy(api_url),
            START_TIMEOUT,
            log,
        )
        if proc.poll() is not None:
            pytest.fail(f"prefect server exited with {proc.returncode}\n{log.read_text()[-3000:]}")
        saved = {k: os.environ.get(k) for k in client_env}
        os.environ.update(client_env)
        try:
            with temporary_settings(updates={PREFECT_API_URL: api_url}):
                yield PrefectServer(api_url=api_url, env=client_env, log=log)
                # send the logs of the flow runs run in this process while the server is up
                APILogHandler().flush()
        finally:
            for k, v in saved.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v
    finally:
        _stop(proc)
        _pg(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)')


@dataclass(frozen=True)
class PrefectWorker:
    pool: str
    log: Path


@pytest.fixture(scope="package")
def prefect_worker(
    prefect_server: PrefectServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[PrefectWorker]:
    """A real process worker polling WORKER_POOL every second."""
    from flows.deployments import ensure_pool

    with prefect_server.client() as client:
        ensure_pool(client, WORKER_POOL)
    folder = tmp_path_factory.mktemp("worker")
    log = folder / "worker.log"
    env = {
        **os.environ,
        **prefect_server.env,
        "PREFECT_WORKER_QUERY_SECONDS": "1",
        "PREFECT_WORKER_HEARTBEAT_SECONDS": "5",
    }
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [str(BIN / "prefect"), "worker", "start", "--pool", WORKER_POOL, "--type", "process"],
            env=env,
            cwd=folder,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=_die_with_pytest,
        )

    def registered() -> bool:
        if proc.poll() is not None:
            return True
        with prefect_server.client() as client:
            return bool(client.read_workers_for_work_pool(WORKER_POOL))

    try:
        wait_until("the process worker to register with the server", registered, 60, log)
        if proc.poll() is not None:
            pytest.fail(f"prefect worker exited with {proc.returncode}\n{log.read_text()[-3000:]}")
        yield PrefectWorker(pool=WORKER_POOL, log=log)
    finally:
        _stop(proc)


@pytest.fixture
def duban_db() -> Iterator[Callable[[], str]]:
    """Make fresh duban databases on the local PostgreSQL; all dropped after the test."""
    made: list[str] = []

    def make() -> str:
        name = f"duban_test_{uuid.uuid4().hex[:12]}"
        _pg(f'CREATE DATABASE "{name}"')
        made.append(name)
        return pg_url(name)

    yield make
    for name in made:
        _pg(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def site_env(monkeypatch: pytest.MonkeyPatch) -> Callable[[dict[str, str]], None]:
    """Point this process's duban settings (and the flows run in it) at one site."""

    def use(env: dict[str, str]) -> None:
        for key, value in env.items():
            monkeypatch.setenv(key, value)

    return use


@pytest.fixture
def no_heartbeats() -> Iterator[None]:
    """In-process flow runs without Prefect's heartbeat thread.

    The thread sleeps in one-second steps and each run joins it on exit, so every flow run
    run in this process would last a second longer; heartbeats only serve to notice crashed
    runs, which the worker's tests cover.
    """
    with temporary_settings(updates={PREFECT_FLOWS_HEARTBEAT_FREQUENCY: None}):
        yield


def run_scheduled(client: SyncPrefectClient, flow_run_id: Any) -> Any:
    """Execute one scheduled flow run in this process, through Prefect's own flow engine,
    as a worker's flow-run process does (it keeps the run's scheduled start time)."""
    from prefect.flow_engine import run_flow
    from prefect.flows import load_flow_from_entrypoint

    flow_run = client.read_flow_run(flow_run_id)
    deployment = client.read_deployment(flow_run.deployment_id)
    assert deployment.entrypoint is not None
    flow = load_flow_from_entrypoint(deployment.entrypoint)
    return run_flow(flow, flow_run=flow_run, parameters=flow_run.parameters)
