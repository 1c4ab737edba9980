"""`duban calendar import` and `list` through the real console script."""

from __future__ import annotations

import subprocess
from pathlib import Path

from tests.conftest import FIXTURES, ROOT
from tests.e2e.test_cli import DUBAN, MINI, duban

NOTICE_2026 = FIXTURES / "notices" / "2026.txt"


def test_import_writes_the_year_beside_the_bundled_ones_and_list_names_its_file(tmp_path: Path):
    done = duban("calendar", "import", str(NOTICE_2026), cwd=tmp_path)
    written = tmp_path / "calendar" / "2026.yaml"
    assert f"wrote {Path('calendar') / '2026.yaml'}" in done.stdout
    assert written.read_text(encoding="utf-8") == (ROOT / "calendar" / "2026.yaml").read_text(
        encoding="utf-8"
    ).replace("url: https://www.gov.cn/zhengce/content/202511/content_7047090.htm\n", "")
    listed = duban("calendar", "list", "--to", "2028", cwd=tmp_path).stdout.splitlines()
    assert "2025  bundled      bundled" in listed
    assert f"2026  local        {Path('calendar') / '2026.yaml'}" in listed
    assert any(line.startswith("2027  provisional  provisional: weekends") for line in listed)
    # the bundled years still count: calendar_dir adds, it does not replace
    assert duban("calendar", "add-workdays", "2022-09-28", "5", cwd=tmp_path).stdout == (
        "2022-10-10\n"
    )


def test_a_damaged_notice_writes_nothing_and_names_the_line(tmp_path: Path):
    text = NOTICE_2026.read_text(encoding="utf-8").replace("4月4日（周六）", "4月4日（周五）")
    bad = tmp_path / "notice.txt"
    bad.write_text(text, encoding="utf-8")
    done = duban("calendar", "import", str(bad), cwd=tmp_path, ok=False)
    assert done.returncode == 2
    line = next(i for i, t in enumerate(text.splitlines(), 1) if "4月4日（周五）" in t)
    assert f"notice.txt:{line}: could not read:" in done.stderr
    assert not (tmp_path / "calendar").exists()


def test_import_from_stdin_of_a_year_already_there_needs_force(tmp_path: Path):
    text = NOTICE_2026.read_text(encoding="utf-8")

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [DUBAN, "calendar", "import", "-", *args],
            input=text,
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=60,
        )

    assert run().returncode == 0
    again = run()
    assert again.returncode == 1
    assert "exists; compare it with the notice, then use --force" in " ".join(again.stderr.split())
    assert run("--force").returncode == 0


def test_tick_in_november_warns_that_next_years_calendar_is_missing(tmp_path: Path):
    env = dict(MINI)
    duban("init", "--now", "2022-04-01", cwd=tmp_path, env=env)
    october = duban("tick", "--now", "2026-10-30", cwd=tmp_path, env=env).stdout
    assert "warning:" not in october
    november = duban("tick", "--now", "2026-11-02", cwd=tmp_path, env=env).stdout
    assert "warning: 2027年的国务院节假日安排尚未导入" in november
    assert "run `duban calendar import NOTICE.txt` (it writes to calendar)" in november
    settings = {**env, "DUBAN_CALENDAR_WARNING_FROM": "12-15"}
    assert "warning:" not in duban("tick", "--now", "2026-12-01", cwd=tmp_path, env=settings).stdout


def test_a_plan_into_next_year_checks_ok_and_says_which_year_is_provisional(tmp_path: Path):
    plan = tmp_path / "plan.yaml"
    plan.write_text(
        (FIXTURES / "mini-plan.yaml")
        .read_text(encoding="utf-8")
        .replace(
            "valid: {from: 2022-04-01, until: 2023-04-30}",
            "valid: {from: 2026-04-01, until: 2027-04-30}",
        ),
        encoding="utf-8",
    )
    done = duban(
        "plan", "check", str(plan), "--orgs", str(FIXTURES / "mini-orgs.yaml"), cwd=tmp_path
    )
    text = " ".join(done.stdout.split())
    assert f"ok {plan}: plan mini, 4 obligations" in text
    assert "note: 2027 has no State Council notice loaded: its working days are provisional" in text
