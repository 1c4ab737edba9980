"""Databases written by earlier releases' own code, and what a database holds, for the
upgrade tests.

An earlier release is checked out of git history (`git archive`) into a scratch folder and
run with PYTHONPATH pointing at it, on the dependencies of today's venv; the driver
(tests/old_release_driver.py) runs its console commands. Without that history (a shallow
clone, an unpacked sdist) the tests skip, saying so; CI runs on a full clone.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import create_engine, inspect, text

from tests.conftest import FIXTURES, ROOT

#: a release at each schema revision an upgrade starts from: 0005 is issue 17's (before
#: adoption dates, migration 0007; its upgrade runs every later migration), 0009 the last
#: before 0010, whose database is adopted already. No commit at 0006 runs (each imports a
#: model, LoginFailure, that its own models.py no longer has), so none can build a database.
RELEASES = {"0005": "429adc7", "0009": "3ff7e69"}
DRIVER = Path(__file__).resolve().parent / "old_release_driver.py"
FIRST_INIT, LAST_TICK = "2022-05-10", "2022-08-10"  # the old release's first init, last tick
MINI = {
    "DUBAN_PLAN_FILES": f'["{FIXTURES / "mini-plan.yaml"}"]',
    "DUBAN_ORG_FILES": f'["{FIXTURES / "mini-orgs.yaml"}"]',
}


def release_tree(commit: str, dest: Path) -> Path:
    """The release at `commit` unpacked into `dest` (its package and bundled folders)."""
    if (dest / "duban").is_dir():
        return dest
    found = subprocess.run(
        ["git", "-C", str(ROOT), "cat-file", "-e", f"{commit}^{{commit}}"],
        capture_output=True,
        check=False,
    )
    if found.returncode != 0:
        pytest.skip(
            f"git history without commit {commit} (a shallow clone, or no .git): cannot build "
            "the earlier release's database; run on a full clone (git fetch --unshallow)"
        )
    dest.mkdir(parents=True, exist_ok=True)
    archive = subprocess.run(
        [
            "git",
            "-C",
            str(ROOT),
            "archive",
            commit,
            "duban",
            "calendar",
            "notifications",
            "obligations",
        ],
        capture_output=True,
        check=True,
    )
    subprocess.run(["tar", "-x", "-C", str(dest)], input=archive.stdout, check=True)
    return dest


def old_env(tree: Path, url: str, workdir: Path) -> dict[str, str]:
    """The environment that runs the release in `tree` on `url` from `workdir`."""
    return {
        **os.environ,
        **MINI,
        "PYTHONPATH": str(tree),
        "DUBAN_DATABASE_URL": url,
        "DUBAN_MAIL_DIR": str(workdir / "old-mail"),
        "DUBAN_WEB": "false",
        "COLUMNS": "200",
    }


def build(tree: Path, url: str, workdir: Path, *args: str) -> None:
    """A database the release in `tree` wrote: tasks in every state (the driver's)."""
    done = subprocess.run(
        [sys.executable, str(DRIVER), FIRST_INIT, LAST_TICK, *args],
        cwd=workdir,
        env=old_env(tree, url, workdir),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:] + done.stdout[-2000:]


def old_duban(tree: Path, url: str, workdir: Path, *args: str) -> subprocess.Popen[str]:
    """The release in `tree`'s `duban ARGS`, started (for `run`: its scheduler)."""
    return subprocess.Popen(
        [sys.executable, "-c", "from duban.cli.main import main; main()", *args],
        cwd=workdir,
        env=old_env(tree, url, workdir),
        stderr=subprocess.PIPE,
        text=True,
    )


TaskKey = tuple[str, str, str]  # organization, obligation, period


@dataclass(frozen=True)
class Snapshot:
    """What a database holds, read with plain SQL that every schema revision answers."""

    revision: str | None
    tasks: dict[TaskKey, tuple[str, str, str | None]]  # state, due day, reason
    rows: dict[str, int]  # every table's row count but the lease's (renewed while it runs)
    audit_head: tuple[int, str] | None  # last seq and hash

    @property
    def states(self) -> Counter[str]:
        return Counter(state for state, _, _ in self.tasks.values())


def snapshot(url: str) -> Snapshot:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            tables = sorted(inspect(conn).get_table_names())
            revision = (
                conn.scalar(text("SELECT version_num FROM alembic_version"))
                if "alembic_version" in tables
                else None
            )
            rows = {
                t: int(conn.scalar(text(f'SELECT count(*) FROM "{t}"')) or 0)
                for t in tables
                if t != "scheduler_lease"
            }
            tasks = {
                (org, ob, period): (state, str(due), reason)
                for org, ob, period, state, due, reason in conn.execute(
                    text(
                        "SELECT g.code, o.code, t.period_key, t.state, t.due_date, t.reason "
                        "FROM tasks t JOIN organizations g ON g.id = t.org_id "
                        "JOIN obligations o ON o.id = t.obligation_id"
                    )
                )
            }
            head = conn.execute(
                text("SELECT seq, hash FROM audit_events ORDER BY seq DESC LIMIT 1")
            ).first()
    finally:
        engine.dispose()
    return Snapshot(
        revision=None if revision is None else str(revision),
        tasks=tasks,
        rows=rows,
        audit_head=None if head is None else (int(head[0]), str(head[1])),
    )
