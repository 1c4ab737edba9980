"""The real `duban` console script, in a scratch directory, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from tests.conftest import FIXTURES
from tests.integration.smtp import free_port

DUBAN = shutil.which("duban") or str(Path(sys.executable).with_name("duban"))
MINI = {
    "DUBAN_PLAN_FILES": json.dumps([str(FIXTURES / "mini-plan.yaml")]),
    "DUBAN_ORG_FILES": json.dumps([str(FIXTURES / "mini-orgs.yaml")]),
}


def duban(
    *args: str, cwd: Path, env: dict[str, str] | None = None, ok: bool = True
) -> subprocess.CompletedProcess[str]:
    full_env = {**os.environ, "COLUMNS": "200", **(env or {})}
    done = subprocess.run(
        [DUBAN, *args], cwd=cwd, env=full_env, capture_output=True, text=True, timeout=120
    )
    if ok:
        assert done.returncode == 0, done.stderr + done.stdout
    return done


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    return tmp_path


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def env(request, workdir) -> dict[str, str]:
    if request.param == "sqlite":
        return dict(MINI)
    return {**MINI, "DUBAN_DATABASE_URL": request.getfixturevalue("postgres_url")}


def test_calendar_command_counts_the_national_day_swaps(workdir):
    assert (
        duban("calendar", "add-workdays", "2022-09-28", "5", cwd=workdir).stdout.strip()
        == "2022-10-10"
    )
    assert duban("calendar", "is-workday", "2022-10-08", cwd=workdir).returncode == 0
    assert duban("calendar", "is-workday", "2022-10-03", cwd=workdir, ok=False).returncode == 1


def test_calendar_command_refuses_an_uncovered_year(workdir):
    done = duban("calendar", "add-workdays", "2017-01-03", "1", cwd=workdir, ok=False)
    assert done.returncode == 1
    assert "does not cover 2017" in done.stderr and "calendar/2017.yaml" in done.stderr
    assert "site-packages" not in done.stderr and "_bundled" not in done.stderr


def test_calendar_command_says_when_an_answer_is_provisional(workdir):
    done = duban("calendar", "add-workdays", "2026-12-31", "5", cwd=workdir)
    assert done.stdout.strip() == "2027-01-08"
    assert "note: 2027 is provisional" in done.stderr


def test_init_is_safe_to_run_twice(workdir, env):
    first = duban("init", "--now", "2022-04-01", cwd=workdir, env=env).stdout
    assert "loaded 1 plans, 4 obligations (4 new or changed), 4 organizations" in first
    second = duban("init", "--now", "2022-04-02", cwd=workdir, env=env).stdout
    assert "(0 new or changed)" in second


def test_tick_then_list_overdue_as_json(workdir, env):
    duban("init", "--now", "2022-04-01", cwd=workdir, env=env)
    out = duban("tick", "--now", "2022-07-06T08:00", cwd=workdir, env=env).stdout
    assert "tasks created" in out
    again = duban("tick", "--now", "2022-07-06T09:00", cwd=workdir, env=env).stdout
    assert "6 periods checked, 0 tasks created" in again
    listed = json.loads(
        duban(
            "tasks",
            "--org",
            "h1",
            "--overdue",
            "--as-of",
            "2022-07-06",
            "--json",
            cwd=workdir,
            env=env,
        ).stdout
    )
    assert {(t["obligation"], t["period"], t["due"], t["overdue_days"]) for t in listed} == {
        ("drill", "2022-Q2", "2022-06-30", 6),
        ("report", "2022-04", "2022-05-05", 62),
        ("report", "2022-05", "2022-06-05", 31),
        ("report", "2022-06", "2022-07-05", 1),
    }
    on_time = json.loads(
        duban(
            "tasks",
            "--org",
            "h1",
            "--overdue",
            "--as-of",
            "2022-07-05",
            "--json",
            cwd=workdir,
            env=env,
        ).stdout
    )
    assert "2022-06" not in {t["period"] for t in on_time if t["obligation"] == "report"}


def test_event_add_prints_the_deadline_chain(workdir, env):
    duban("init", "--now", "2022-04-01", cwd=workdir, env=env)
    out = duban(
        "event",
        "add",
        "maternal-death",
        "--org",
        "h2",
        "--on",
        "2022-09-28",
        "--now",
        "2022-09-29",
        cwd=workdir,
        env=env,
    ).stdout
    assert "h2 notify due 2022-10-10" in out
    assert "office county-review due 2022-11-28" in out


def test_task_lifecycle_and_audit_verify_then_tamper(workdir):
    duban("init", "--now", "2022-04-01", cwd=workdir, env=MINI)
    duban("tick", "--now", "2022-05-10", cwd=workdir, env=MINI)
    task = json.loads(
        duban(
            "tasks",
            "--org",
            "h1",
            "--obligation",
            "drill",
            "--json",
            "--as-of",
            "2022-05-10",
            cwd=workdir,
            env=MINI,
        ).stdout
    )[0]["id"]
    duban(
        "task",
        "submit",
        str(task),
        "--note",
        "演练记录",
        "--actor",
        "h1-user",
        "--now",
        "2022-06-01",
        cwd=workdir,
        env=MINI,
    )
    done = duban("task", "accept", str(task), "--actor", "admin", cwd=workdir, env=MINI, ok=False)
    assert done.returncode == 0, done.stderr
    refused = duban("task", "accept", str(task), cwd=workdir, env=MINI, ok=False)
    assert refused.returncode == 1
    assert "cannot accept a task that is accepted" in refused.stderr
    head = duban("audit", "head", cwd=workdir, env=MINI).stdout.split()[0]
    assert (
        "audit chain intact"
        in duban("audit", "verify", "--head", head, cwd=workdir, env=MINI).stdout
    )
    with sqlite3.connect(workdir / "duban.db") as conn:
        conn.execute("UPDATE audit_events SET actor = 'nobody' WHERE action = 'task.accept'")
    broken = duban("audit", "verify", cwd=workdir, env=MINI, ok=False)
    assert broken.returncode == 1
    assert "audit chain BROKEN" in broken.stderr and "(task.accept task" in broken.stderr


def mutated_plan(workdir: Path, old: str, new: str) -> Path:
    """A copy of the mini plan with `old` replaced by `new`."""
    bad = workdir / "bad.yaml"
    text = (FIXTURES / "mini-plan.yaml").read_text(encoding="utf-8")
    bad.write_text(text.replace(old, new), encoding="utf-8")
    return bad


def test_plan_check_names_file_line_and_field(workdir):
    bad = mutated_plan(workdir, "day: 5}", "day: 5, every: 2}")
    done = duban(
        "plan", "check", str(bad), "--orgs", str(FIXTURES / "mini-orgs.yaml"), cwd=workdir, ok=False
    )
    assert done.returncode == 2
    line = next(
        i
        for i, text in enumerate(bad.read_text(encoding="utf-8").splitlines(), 1)
        if "every: 2" in text
    )
    assert f"{bad}:{line} [obligations.1.due.every]: unknown field" in " ".join(done.stderr.split())


def test_a_bad_plan_file_loads_nothing(workdir):
    bad = mutated_plan(workdir, "{org: office}]", "{org: nobody}]")
    env = {**MINI, "DUBAN_PLAN_FILES": json.dumps([str(FIXTURES / "mini-plan.yaml"), str(bad)])}
    done = duban("init", cwd=workdir, env=env, ok=False)
    assert done.returncode == 2 and "unknown organization 'nobody'" in done.stderr
    assert not (workdir / "duban.db").exists()  # validated before the database is touched


def test_run_starts_catches_up_and_refuses_a_second_scheduler(workdir):
    port = free_port()
    env = {**os.environ, **MINI, "COLUMNS": "200", "DUBAN_WEB_PORT": str(port)}
    # a deployment adopted when the mini plan began, so every one of its periods is owed
    duban("init", "--adopted", "2022-04-01", cwd=workdir, env=MINI)
    first = subprocess.Popen(
        [DUBAN, "run"], cwd=workdir, env=env, stderr=subprocess.PIPE, text=True
    )
    try:
        log = ""
        deadline = time.monotonic() + 60
        while "scheduler started" not in log and time.monotonic() < deadline:
            line = first.stderr.readline()
            assert line, f"duban run ended early: {log}"
            log += line
        assert "catch-up:" in log and "scheduler started" in log
        assert f"web UI on http://127.0.0.1:{port}/" in log
        # the web UI is served by the same process
        page = ""
        for _ in range(100):
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/login") as response:
                    page = response.read().decode()
                break
            except OSError:
                time.sleep(0.1)
        assert "登录" in page
        # the mini plan's window is long past: every period was caught up at start-up
        listed = json.loads(duban("tasks", "--json", cwd=workdir, env=MINI).stdout)
        assert len(listed) == 2 * 4 + 3 * 13
        second = duban("run", cwd=workdir, env=MINI, ok=False)
        assert second.returncode == 1
        assert "another scheduler is running on this database: duban run pid" in " ".join(
            second.stderr.split()
        )
    finally:
        first.send_signal(signal.SIGTERM)
        first.wait(timeout=30)
    assert first.returncode == 0
    # the lease was released on the way out: a new scheduler may start at once
    starts_and_stops(workdir, {**env, "DUBAN_WEB_PORT": str(free_port())})


def starts_and_stops(workdir: Path, env: dict[str, str]) -> None:
    """`duban run` reaches "scheduler started"; then SIGTERM stops it."""
    proc = subprocess.Popen([DUBAN, "run"], cwd=workdir, env=env, stderr=subprocess.PIPE, text=True)
    try:
        log = ""
        while "scheduler started" not in log:
            line = proc.stderr.readline()
            assert line, log
            log += line
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)


def test_duban_toml_in_the_working_directory_is_read(workdir):
    (workdir / "duban.toml").write_text(
        'database_url = "sqlite:///from-toml.db"\n'
        f'plan_files = ["{FIXTURES / "mini-plan.yaml"}"]\n'
        f'org_files = ["{FIXTURES / "mini-orgs.yaml"}"]\n',
        encoding="utf-8",
    )
    out = duban("init", cwd=workdir).stdout
    assert "sqlite:///from-toml.db" in out and "1 plans, 4 obligations" in out
    assert (workdir / "from-toml.db").exists() and not (workdir / "duban.db").exists()


def test_plan_show_lists_every_due_date_of_the_year(workdir):
    out = duban("plan", "show", "--year", "2022", "--org", "xf-zyy", cwd=workdir).stdout
    rows = [line for line in out.splitlines() if "xf22-special-population-monthly" in line]
    # April–November 2022 reports fall due in 2022 (the December one on 2023-01-05)
    assert len(rows) == 8
    assert any(line.startswith("│ 2022-07-05") and "2022-06" in line for line in rows)
    assert out.rstrip().splitlines()[-1].endswith("due dates")


def test_user_commands(workdir):
    duban("init", cwd=workdir, env=MINI)
    add = ["user", "add"]
    full_env = {**os.environ, **MINI}

    def add_user(
        *args: str, password: str = "a long passphrase"
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [DUBAN, *add, *args, "--password-stdin"],
            cwd=workdir,
            env=full_env,
            input=password + "\n",
            capture_output=True,
            text=True,
        )

    assert add_user("boss", "--role", "admin").returncode == 0
    assert "no administrator yet" not in duban("init", cwd=workdir, env=MINI).stdout
    refused = add_user("h1", "--role", "institution")
    assert refused.returncode != 0 and "needs --org ORG" in refused.stderr
    assert "unknown organization" in add_user("x", "--role", "institution", "--org", "nope").stderr
    assert "too short" in add_user("y", "--role", "auditor", password="short").stderr
    assert add_user("h1", "--role", "institution", "--org", "h1").returncode == 0
    listed = json.loads(duban("user", "list", "--json", cwd=workdir, env=MINI).stdout)
    assert [(u["name"], u["role"], u["org"]) for u in listed] == [
        ("boss", "admin", None),
        ("h1", "institution", "h1"),
    ]
    token = duban("user", "token", "h1", cwd=workdir, env=MINI).stdout.strip()
    assert token.startswith("dbn_") and len(token) > 40
    duban("user", "disable", "h1", cwd=workdir, env=MINI)
    assert json.loads(duban("user", "list", "--json", cwd=workdir, env=MINI).stdout)[1]["disabled"]
    assert "no active user" in duban("user", "token", "h1", cwd=workdir, env=MINI, ok=False).stderr


def test_init_says_how_to_create_the_first_administrator(workdir):
    assert "duban user add NAME --role admin" in duban("init", cwd=workdir, env=MINI).stdout


def test_run_says_so_when_the_web_port_is_taken(workdir):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = duban("run", cwd=workdir, env={**MINI, "DUBAN_WEB_PORT": str(port)}, ok=False)
    assert done.returncode == 1
    assert f"the web UI cannot listen on 127.0.0.1:{port}" in " ".join(done.stderr.split())
    # the lease was released on the way out: a scheduler on a free port starts at once
    starts_and_stops(workdir, {**os.environ, **MINI, "DUBAN_WEB_PORT": str(free_port())})
