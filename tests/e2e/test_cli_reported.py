"""Issue 17 through the console script, on SQLite and PostgreSQL: `plan check` and `init` warn
of the organizations a ladder step cannot reach, `tick` says once which step it skipped for
whom, and `task submit --on` records the meeting and creates the report owed after it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import FIXTURES
from tests.e2e.test_cli import duban

PLAN, ORGS = FIXTURES / "party-plan.yaml", FIXTURES / "party-orgs.yaml"
PARTY = {"DUBAN_PLAN_FILES": json.dumps([str(PLAN)]), "DUBAN_ORG_FILES": json.dumps([str(ORGS)])}
WARNINGS = [
    "warning 提醒无法送达: 2 organizations cannot receive step 'overdue +1 → head' of duties "
    "party-meeting, party-meeting-report (no head contact): b2, b3",
    "warning 提醒无法送达: 1 organization cannot receive step 'escalation +3 → parent' of "
    "duties party-meeting, party-meeting-report (no parent organization): b3",
    "warning 提醒无法送达: 3 organizations cannot receive step 'escalation +5 → mch-section' "
    "of duties party-meeting, party-meeting-report (no organization tagged mch-section has a "
    "duty contact): b1, b2, b3",
]


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def env(request) -> dict[str, str]:
    if request.param == "sqlite":
        return dict(PARTY)
    return {**PARTY, "DUBAN_DATABASE_URL": request.getfixturevalue("postgres_url")}


def warnings(text: str) -> list[str]:
    return [line.strip() for line in text.splitlines() if "warning" in line]


def test_plan_check_warns_of_unreachable_steps_but_passes(tmp_path: Path) -> None:
    done = duban("plan", "check", str(PLAN), "--orgs", str(ORGS), cwd=tmp_path)
    assert done.stdout.splitlines()[0] == f"ok  {PLAN}: plan party, 2 obligations"
    assert warnings(done.stdout) == WARNINGS


def test_init_tick_and_submit_with_the_meeting_date(tmp_path: Path, env) -> None:
    init = duban("init", "--now", "2022-06-01", "--adopted", "2022-01-01", cwd=tmp_path, env=env)
    assert warnings(init.stdout) == WARNINGS
    tick = duban("tick", "--now", "2022-07-01", cwd=tmp_path, env=env).stdout
    assert warnings(tick) == [
        "warning 提醒无法送达: duty party-meeting step 'overdue +1 → head': no head contact for "
        f"org {org}; nobody was told"
        for org in ("b2", "b3")
    ]
    again = duban("tick", "--now", "2022-07-01T18:00", cwd=tmp_path, env=env).stdout
    assert warnings(again) == []
    listed = duban(
        "tasks", "--org", "b1", "--obligation", "party-meeting", "--json", cwd=tmp_path, env=env
    ).stdout
    (task,) = [t for t in json.loads(listed) if t["period"] == "2022-H2"]
    tid = str(task["id"])
    refused = duban(
        "task",
        "submit",
        tid,
        "--note",
        "纪要",
        "--now",
        "2022-07-06",
        cwd=tmp_path,
        env=env,
        ok=False,
    )
    assert refused.returncode == 1
    assert "needs 会议召开日期 / Date of the meeting: enter the day it happened" in refused.stderr
    done = duban(
        "task", "submit", tid, "--on", "2022-07-04", "--now", "2022-07-06", cwd=tmp_path, env=env
    ).stdout.splitlines()
    assert done[0] == f"task {tid}: submitted"
    assert done[1].startswith("event ") and done[1].endswith(
        " (party-meeting-held) on 2022-07-04: 1 tasks created"
    )
    assert done[2].endswith(": b1 party-meeting-report due 2022-07-19")
