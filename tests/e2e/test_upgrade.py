"""Issue 17: upgrading a database an earlier release wrote loses nothing, through the real
console script, on SQLite and PostgreSQL.

Each earlier release (tests/releases.py) builds its database with its own code: the mini plan
first loaded on 2022-05-10, after the periods due on 2022-05-05, so a release that adopted an
old database on the day of its first init (or of the upgrade) withdrew them; ticked to
2022-08-10; tasks open (overdue too), submitted, accepted, rejected and waived, and an event's
chain. Today's `duban init` then upgrades it.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from duban.store.db import head_revision
from tests.e2e.test_cli import DUBAN, duban
from tests.releases import (
    LAST_TICK,
    MINI,
    RELEASES,
    build,
    old_duban,
    release_tree,
    snapshot,
)

HEAD = head_revision()


@pytest.fixture(scope="module")
def trees(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("releases")


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'duban.db'}"
    return str(request.getfixturevalue("postgres_url"))


def env_for(url: str) -> dict[str, str]:
    return {**MINI, "DUBAN_DATABASE_URL": url}


def one_line(text: str) -> str:
    return " ".join(text.split())


@pytest.mark.parametrize("schema", sorted(RELEASES))
def test_an_upgrade_from_each_earlier_release_loses_nothing(
    schema: str, url: str, trees: Path, tmp_path: Path
) -> None:
    tree = release_tree(RELEASES[schema], trees / schema)
    adopted = ["--adopted", "2022-04-01"] if schema >= "0007" else []
    build(tree, url, tmp_path, *adopted)
    before = snapshot(url)
    assert before.revision == schema
    assert set(before.states) == {"open", "submitted", "accepted", "rejected", "waived"}
    assert any(due < "2022-05-10" for state, due, _ in before.tasks.values() if state == "open")
    env = env_for(url)

    # a command before the upgrade says what to do, exits 1, and changes nothing; the web
    # server refuses to start
    for command in (["tick", "--now", "2022-09-01"], ["web"]):
        refused = duban(*command, cwd=tmp_path, env=env, ok=False)
        assert refused.returncode == 1
        assert one_line(refused.stderr).endswith(
            f"error: the database at {url} is at schema {schema}, this duban needs {HEAD}: "
            "run duban init to upgrade"
        ), command
        assert "Traceback" not in refused.stderr
        assert snapshot(url) == before

    upgraded = duban("init", "--now", "2022-09-01", cwd=tmp_path, env=env).stdout
    # the earliest day the old database holds evidence of: its first tasks' period start
    assert "adopted 启用日期 2022-04-01" in upgraded
    assert "withdrawn" not in upgraded
    after = snapshot(url)
    assert after.revision == HEAD
    assert after.tasks == before.tasks  # every task: same state, due day and reason
    assert after.states == before.states
    verified = duban(
        "audit", "verify", "--head", before.audit_head[1], cwd=tmp_path, env=env
    ).stdout
    assert "audit chain intact" in verified and "extends the recorded head" in verified
    # what the old release created by its last tick is what today's owes by then
    again = duban("tick", "--now", LAST_TICK, cwd=tmp_path, env=env).stdout
    assert ", 0 tasks created" in again
    assert snapshot(url).tasks == before.tasks


def wait_for(proc: subprocess.Popen[str], words: str, timeout: float = 90) -> str:
    """Read `proc`'s stderr until a line holds `words`."""
    assert proc.stderr is not None
    log, deadline = "", time.monotonic() + timeout
    while words not in log:
        line = proc.stderr.readline()
        assert line and time.monotonic() < deadline, f"never said {words!r}: {log}"
        log += line
    return log


def stop(proc: subprocess.Popen[str]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


def test_a_start_refused_by_an_old_scheduler_leaves_its_database_as_it_was(
    url: str, trees: Path, tmp_path: Path
) -> None:
    """The release of issue 17 runs its scheduler; today's `duban run` and `duban init` are
    refused before they migrate, load or withdraw anything; once it stops, `duban run`
    upgrades the database and every task it held keeps its state."""
    tree = release_tree(RELEASES["0005"], trees / "0005")
    build(tree, url, tmp_path)
    old = old_duban(tree, url, tmp_path, "run")
    try:
        wait_for(old, "scheduler started")
        before = snapshot(url)
        assert before.revision == "0005"
        env = {**env_for(url), "DUBAN_WEB": "false"}
        for command in ("run", "init"):
            refused = duban(command, cwd=tmp_path, env=env, ok=False)
            assert refused.returncode == 1, refused.stderr
            said = one_line(refused.stderr)
            assert said.startswith(
                f"error: another scheduler is running on this database: duban run pid {old.pid} on "
            ), said
            assert "Traceback" not in refused.stderr
            assert snapshot(url) == before, f"a refused duban {command} changed the database"
        assert "nothing was changed" in said  # init's own words
    finally:
        stop(old)
    assert old.returncode == 0
    new = subprocess.Popen(
        [DUBAN, "run"],
        cwd=tmp_path,
        env={**os.environ, **env_for(url), "DUBAN_WEB": "false"},
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        wait_for(new, "scheduler started")
    finally:
        stop(new)
    after = snapshot(url)
    assert after.revision == HEAD
    assert {key: after.tasks[key] for key in before.tasks} == before.tasks


def test_a_database_newer_than_this_duban_or_missing_is_refused(url: str, tmp_path: Path) -> None:
    env = env_for(url)
    if url.startswith("sqlite"):
        missing = duban("tick", cwd=tmp_path, env=env, ok=False)
        assert missing.returncode == 1
        assert one_line(missing.stderr) == (
            f"error: the database at {url} is not initialised: run duban init"
        )
        assert not (tmp_path / "duban.db").exists()  # asking created no file
    duban("init", "--now", "2022-04-01", cwd=tmp_path, env=env)
    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = '9999'"))
    engine.dispose()
    before = snapshot(url)
    words = (
        f"error: the database at {url} is at schema 9999, newer than this duban knows (it "
        f"needs {HEAD}): a later release upgraded it; upgrade duban"
    )
    for command in (["tasks"], ["init"], ["run"], ["web"]):
        done = duban(*command, cwd=tmp_path, env={**env, "DUBAN_WEB": "false"}, ok=False)
        assert done.returncode == 1
        assert one_line(done.stderr).endswith(words), command
        assert snapshot(url) == before
