"""deploy/ says what `duban prefect deploy` does: same deployments, pool, services.

No server needed: these read the files and compare them with the code.
"""

from __future__ import annotations

import configparser
import json
from datetime import datetime
from pathlib import Path

import yaml
from prefect.client.schemas.schedules import IntervalSchedule
from prefect.workers.process import ProcessWorker

from duban.bootstrap import App
from duban.settings import Settings
from flows.deployments import DEFAULT_POOL, wanted_deployments
from tests.conftest import ROOT
from tests.prefect.site import LOADED

DEPLOY = ROOT / "deploy"


def test_prefect_yaml_declares_the_service_deployments_duban_prefect_deploy_makes(
    tmp_path: Path,
) -> None:
    app = App(settings=Settings(database_url=f"sqlite:///{tmp_path / 'd.db'}"))
    app.init(now=LOADED)
    wanted = {w.name: w for w in wanted_deployments(app) if w.flow_name != "duban-materialize"}
    app.store.dispose()
    project = yaml.safe_load((DEPLOY / "prefect.yaml").read_text(encoding="utf-8"))
    declared = {d["name"]: d for d in project["deployments"]}
    assert set(declared) == set(wanted) == {"reconcile", "sweep", "deliver"}
    for name, want in wanted.items():
        got = declared[name]
        assert got["entrypoint"] == want.entrypoint
        assert got["work_pool"]["name"] == DEFAULT_POOL
        assert got["description"] == want.description
        assert got["concurrency_limit"] == {
            "limit": 1,
            "collision_strategy": want.collision.value,
        }
        (schedule,) = got["schedules"]
        assert isinstance(want.schedule, IntervalSchedule)
        assert schedule["interval"] == want.schedule.interval.total_seconds()
        assert schedule["timezone"] == want.schedule.timezone
        anchor = datetime.fromisoformat(schedule["anchor_date"])
        assert anchor == want.schedule.anchor_date


def test_the_work_pool_is_prefects_process_template_run_in_dubans_directory() -> None:
    pool = json.loads((DEPLOY / "work-pool.json").read_text(encoding="utf-8"))
    default = ProcessWorker.get_default_base_job_template()
    assert pool["job_configuration"] == default["job_configuration"]
    assert set(pool["variables"]["properties"]) == set(default["variables"]["properties"])
    assert pool["variables"]["properties"]["working_dir"]["default"] == "/var/lib/duban"


def test_compose_runs_postgres_the_server_two_workers_and_the_web_ui_on_one_database() -> None:
    compose = yaml.safe_load((DEPLOY / "compose.yaml").read_text(encoding="utf-8"))
    services = compose["services"]
    workers = [s for s in services.values() if "prefect worker start" in str(s.get("command"))]
    assert len(workers) == 2
    assert all(f"--pool {DEFAULT_POOL}" in w["command"] for w in workers)
    assert "prefect server start" in services["prefect-server"]["command"]
    assert "duban web" in services["web"]["command"]
    urls = {
        s["environment"]["DUBAN_DATABASE_URL"]
        for n, s in services.items()
        if n != "postgres" and "DUBAN_DATABASE_URL" in s.get("environment", {})
    }
    assert len(urls) == 1
    assert "evidence" in str(services["web"]["volumes"])


def test_systemd_units_start_the_server_workers_and_web_ui() -> None:
    commands = {}
    for unit in sorted((DEPLOY / "systemd").glob("*.service")):
        parser = configparser.ConfigParser(strict=False, interpolation=None)
        parser.read(unit, encoding="utf-8")
        commands[unit.name] = parser["Service"]["ExecStart"]
    assert commands == {
        "duban-web.service": "/opt/duban/venv/bin/duban web --host 127.0.0.1 --port 8000",
        "prefect-server.service": (
            "/opt/duban/venv/bin/prefect server start --host 0.0.0.0 --port 4200"
        ),
        "prefect-worker@.service": (
            f"/opt/duban/venv/bin/prefect worker start --pool {DEFAULT_POOL} --type process "
            "--name %H-%i"
        ),
    }
