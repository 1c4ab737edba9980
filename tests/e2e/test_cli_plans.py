"""The console script on plans as a county lives them: adoption, `plan show` owing, `plan diff`,
`plan apply`, and `init` on a changed plan."""

from __future__ import annotations

import json
from pathlib import Path

from tests.conftest import FIXTURES
from tests.e2e.test_cli import MINI, duban


def test_a_county_adopting_in_2026_owes_nothing_under_the_bundled_plans(tmp_path: Path) -> None:
    workdir = tmp_path
    """Before adoption existed, this created 1,061 tasks, every one years overdue."""
    out = duban("init", "--now", "2026-11-27", cwd=workdir).stdout
    assert "adopted 启用日期 2026-11-27" in out
    tick = duban("tick", "--now", "2026-11-27", cwd=workdir).stdout
    assert "0 tasks created" in tick
    show = duban("plan", "show", cwd=workdir).stdout
    assert "nhc-2018-maternal-safety-action (2018-06-01..2020-12-31): the window ended" in show
    assert "xf-2022-mch-safety-year (2022-04-01..2023-04-30): the window ended" in show


def test_adopted_inside_the_county_year_no_task_predates_it(tmp_path: Path) -> None:
    workdir = tmp_path
    duban("init", "--adopted", "2022-10-06", "--now", "2022-10-06", cwd=workdir)
    duban("tick", "--now", "2022-10-06", cwd=workdir)
    listed = json.loads(duban("tasks", "--json", cwd=workdir).stdout)
    assert listed and min(t["due"] for t in listed) >= "2022-10-06"
    assert not [t for t in listed if t["obligation"].startswith("nhc18-")]
    show = duban("plan", "show", "--org", "xf-zyy", "--now", "2022-10-06", cwd=workdir).stdout
    assert "xf-2022-mch-safety-year (2022-04-01..2023-04-30): still owes" in show
    # what a plan still owes is counted from today, not from adoption: years later, nothing
    later = duban("plan", "show", "--now", "2024-06-01", cwd=workdir).stdout
    assert (
        "xf-2022-mch-safety-year (2022-04-01..2023-04-30): the window ended on 2023-04-30; "
        "it owes nothing from 2024-06-01 on (方案已期满)"
    ) in later
    # moving adoption is audited and closes what is no longer owed
    moved = duban("init", "--adopted", "2022-12-01", "--now", "2022-10-07", cwd=workdir).stdout
    assert "adoption moved 启用日期变更 2022-10-06 → 2022-12-01" in moved
    assert "closed as withdrawn" in moved
    assert "audit chain intact" in duban("audit", "verify", cwd=workdir).stdout


def test_diff_apply_and_init_on_a_changed_plan(tmp_path: Path) -> None:
    workdir = tmp_path
    plan = workdir / "mini-plan.yaml"
    plan.write_text((FIXTURES / "mini-plan.yaml").read_text(encoding="utf-8"), encoding="utf-8")
    env = {**MINI, "DUBAN_PLAN_FILES": json.dumps([str(plan)])}
    duban("init", "--adopted", "2022-04-01", "--now", "2022-04-01", cwd=workdir, env=env)
    duban("tick", "--now", "2022-10-06", cwd=workdir, env=env)
    plan.write_text(
        plan.read_text(encoding="utf-8").replace(
            "due: {kind: day_of_next_month, day: 5}", "due: {kind: day_of_next_month, day: 10}"
        ),
        encoding="utf-8",
    )
    held = duban("init", "--now", "2022-10-06", cwd=workdir, env=env).stdout
    assert "plan mini changed since it was applied" in held and "duban plan apply" in held
    diff = duban("plan", "diff", str(plan), "--now", "2022-10-06", cwd=workdir, env=env).stdout
    assert "修改 changed" in diff and "due rule 截止规则" in diff and "report" in diff
    bad = workdir / "bad.yaml"
    bad.write_text(
        plan.read_text(encoding="utf-8").replace("{org: office}", "{org: nobody}"),
        encoding="utf-8",
    )
    refused = duban("plan", "apply", str(bad), cwd=workdir, env=env, ok=False)
    assert refused.returncode == 2 and "unknown organization 'nobody'" in refused.stderr
    applied = duban(
        "plan", "apply", str(plan), "--now", "2022-10-06", "--actor", "lead", cwd=workdir, env=env
    ).stdout
    assert "applied 已生效: plan mini version" in applied
    again = duban("plan", "apply", str(plan), "--now", "2022-10-06", cwd=workdir, env=env).stdout
    assert "no changes 无变化" in again and "nothing applied" in again
    assert "changed since it was applied" not in duban("init", cwd=workdir, env=env).stdout


def test_next_years_plan_through_the_console(tmp_path: Path, db_url: str) -> None:
    """The year-end routine (issue 17): roll, check, diff, apply; init keeps the applied plan;
    the end is announced; the old plan is withdrawn explicitly, and stays so."""
    workdir = tmp_path
    env = {**MINI, "DUBAN_DATABASE_URL": db_url}
    duban("init", "--adopted", "2022-04-01", "--now", "2022-04-01", cwd=workdir, env=env)
    duban("tick", "--now", "2022-11-20", cwd=workdir, env=env)
    roll = ("plan", "roll", "mini", "--to", "2023", "--out", "next.yaml", "--now", "2022-11-20")
    rolled = duban(*roll, cwd=workdir, env=env).stdout
    assert (
        "wrote next.yaml: plan mini-2023 (2023-04-01..2024-04-30), rolled from mini by 1 year; "
        "3 fields marked 待确认 / to confirm"
    ) in rolled
    assert "ok  next.yaml passes `duban plan check`" in rolled
    refused = duban(*roll, cwd=workdir, env=env, ok=False)
    assert refused.returncode == 1 and "next.yaml exists; choose another --out, or add --force" in (
        refused.stderr.replace("\n", "")
    )
    assert duban(*roll, "--force", cwd=workdir, env=env).returncode == 0
    draft = workdir / "next.yaml"
    draft.write_text(
        draft.read_text(encoding="utf-8").replace("测试〔2022〕1号", "测试〔2023〕1号"),
        encoding="utf-8",
    )
    assert "ok  next.yaml: plan mini-2023, 4 obligations" in (
        duban("plan", "check", "next.yaml", cwd=workdir, env=env).stdout
    )
    diff = duban("plan", "diff", "next.yaml", "--now", "2022-11-20", cwd=workdir, env=env).stdout
    assert "— new plan 新方案" in diff and "接续 continues mini/report" in diff
    assert "4 of its 4 duties continue a duty of an earlier plan (the same id" in diff
    applied = duban("plan", "apply", "next.yaml", "--now", "2022-11-20", cwd=workdir, env=env)
    assert "applied 已生效: plan mini-2023 version" in applied.stdout
    init = duban("init", "--now", "2022-11-21", cwd=workdir, env=env).stdout
    assert "applied plan mini-2023 is not in plan_files; kept" in init
    show = duban("plan", "show", "--now", "2023-03-01", cwd=workdir, env=env).stdout
    assert (
        "plan mini ends 方案即将期满 on 2023-04-30 (in 60 days): 0 of its 4 duties stop then"
        in (show)
    )
    assert "  continues 接续: mini/report in mini-2023/report" in show
    assert "mini-2023 (2023-04-01..2024-04-30): still owes" in show
    listed = json.loads(
        duban("tasks", "--obligation", "mini/report", "--json", cwd=workdir, env=env).stdout
    )
    assert listed and {t["plan"] for t in listed} == {"mini"}
    withdraw = ("plan", "withdraw", "mini", "--reason", "被2023年方案取代", "--now", "2022-11-22")
    gone = duban(*withdraw, cwd=workdir, env=env).stdout
    assert "withdrawn 已撤销: plan mini on 2022-11-22 00:00; 4 duties stopped, " in gone
    again = duban("plan", "withdraw", "mini", "--reason", "x", cwd=workdir, env=env).stdout
    assert "plan mini was already withdrawn 已撤销 on 2022-11-22 00:00 (被2023年方案取代)" in again
    blank = duban("plan", "withdraw", "mini-2023", "--reason", " ", cwd=workdir, env=env, ok=False)
    assert "reason: is empty; say why the plan is withdrawn (--reason)" in blank.stderr
    held = duban("init", "--now", "2022-11-23", cwd=workdir, env=env).stdout
    assert "plan mini was withdrawn 已撤销; its configured file is not loaded again" in held
    show = duban("plan", "show", "--now", "2022-11-23", cwd=workdir, env=env).stdout
    assert (
        "mini (2022-04-01..2023-04-30): withdrawn 已撤销 on 2022-11-22 (被2023年方案取代)" in show
    )
    assert "audit chain intact" in duban("audit", "verify", cwd=workdir, env=env).stdout
