"""What `duban plan show|diff|apply` and `duban init` print about plans, adoption and amendments.

Kept out of main.py: the commands there read their options and call these.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date
from pathlib import Path
from zoneinfo import ZoneInfo

from rich.console import Console
from rich.table import Table

from duban.catalog.contacts import Unreachable
from duban.catalog.roll import Rolled
from duban.engine.amend import ApplyReport, PlanDiff
from duban.engine.plans_end import RHYTHM, EndingPlan, Standing
from duban.engine.sync import SyncReport
from duban.engine.withdraw import WithdrawReport

CHANGE_LABEL = {"added": "新增 added", "changed": "修改 changed", "withdrawn": "撤销 withdrawn"}


def print_init(out: Console, report: SyncReport) -> None:
    """The adoption day and any plan that changed since it was applied."""
    adoption = report.adoption
    if adoption is not None:
        if adoption.previous is None:
            out.print(
                f"adopted 启用日期 {adoption.adopted}: nothing that fell due before it is owed "
                "(change it with `duban init --adopted YYYY-MM-DD`)"
            )
        elif adoption.previous != adoption.adopted:
            out.print(f"adoption moved 启用日期变更 {adoption.previous} → {adoption.adopted}")
        else:
            out.print(f"adopted 启用日期 {adoption.adopted}")
        if adoption.reopened:
            out.print(
                f"  {adoption.reopened} tasks withdrawn for an earlier adoption day are owed "
                "again and were reopened"
            )
        if adoption.withdrawn:
            out.print(
                f"  {adoption.withdrawn} open tasks fell due before it and were closed as withdrawn"
            )
    print_unreachable(out, report.unreachable)
    for line in report.plan_lines():
        out.print(line)


def print_ending(out: Console, ending: Iterable[EndingPlan]) -> None:
    """The plans whose window ends soon, and what stops then (duban.engine.plans_end)."""
    for p in ending:
        when = "today 今天" if p.days_left == 0 else f"in {p.days_left} days"
        out.print(
            f"plan {p.code} ends 方案即将期满 on {p.valid_until} ({when}): "
            f"{len(p.stopping)} of its {len(p.duties)} duties stop then"
        )
        for d in p.stopping:
            last = f", last period {d.last_period}" if d.last_period else ""
            out.print(f"  stops 停止: {d.ref} {d.title} ({RHYTHM.get(d.rhythm, d.rhythm)}{last})")
        for d in p.duties:
            if d.continued_by:
                out.print(f"  continues 接续: {d.ref} in {d.continued_by}")


def print_unreachable(out: Console, found: Iterable[Unreachable]) -> None:
    """Warnings, not errors: the organizations a ladder step cannot reach, and why."""
    for item in found:
        out.print(f"warning 提醒无法送达: {item}", soft_wrap=True)


def print_standings(
    out: Console,
    standings: Iterable[Standing],
    *,
    adopted: date | None,
    today: date,
    tz: ZoneInfo,
) -> None:
    """Per plan: what it still owes from today on (and from adoption), or why nothing."""
    when = f"adopted {adopted}" if adopted else "not adopted yet: `duban init` adopts today"
    start = max(d for d in (today, adopted) if d is not None)
    out.print(f"启用日期 {when}; what each plan still owes is counted from {start}")
    for st in standings:
        p = st.plan
        head = f"{p.code} ({p.valid_from}..{p.valid_until})"
        if st.state == "withdrawn":
            day = p.withdrawn_at.astimezone(tz).date() if p.withdrawn_at else "?"
            out.print(
                f"{head}: withdrawn 已撤销 on {day} ({p.withdrawn_reason}); it owes nothing "
                "(`duban plan apply FILE` puts it in force again)"
            )
        elif st.state == "ended-before-adoption":
            out.print(
                f"{head}: the window ended before adoption; it owes nothing "
                "(方案期满于启用之前，不产生任务)"
            )
        elif st.state == "ended":
            out.print(
                f"{head}: the window ended on {p.valid_until}; it owes nothing from {start} on "
                "(方案已期满)"
            )
        elif st.state == "nothing-due":
            out.print(f"{head}: owes no periods from {start} on (no periodic duty falls due)")
        else:
            span = (
                f"periods {st.periods[0]} … {st.periods[1]}"
                if st.periods
                else "one-off duties only"
            )
            out.print(
                f"{head}: still owes {st.owed} tasks due {st.first_due} … {st.last_due} ({span})"
            )


def print_diff(out: Console, plan_diff: PlanDiff) -> None:
    d = plan_diff
    version = f"{d.stored_sha256[:12]} → " if d.stored_sha256 else ""
    out.print(
        f"plan {d.plan} ({d.file}) version {version}{d.sha256[:12]}, as of {d.as_of}"
        + (" — new plan 新方案" if d.new_plan else "")
    )
    if d.empty:
        out.print("no changes 无变化: the database holds this version")
        return
    if d.reactivates:
        out.print(
            f"plan {d.plan} was withdrawn 已撤销: applying it puts it in force again "
            f"(重新生效), its duties owing the periods due from {d.as_of} on"
        )
    if not d.changes:
        out.print("only the plan's header changed (title, document, dates); no duty changes")
        return
    table = Table(
        "change 变化",
        "duty 职责",
        "what 内容",
        "creates 新增任务",
        "withdraws 不再产生",
        "retimed 改期",
        "closes 关闭待办",
    )
    for c in d.changes:
        table.add_row(
            CHANGE_LABEL[c.change],
            f"{c.code}\n{c.title}" + (f"\n接续 continues {c.continues}" if c.continues else ""),
            ", ".join(c.aspects) or "-",
            str(c.creates),
            str(c.withdraws),
            str(c.retimed),
            str(c.closes),
        )
    out.print(table)
    continuing = [c for c in d.changes if c.continues]
    if continuing:
        out.print(
            f"{len(continuing)} of its {len(d.changes)} duties continue a duty of an earlier plan "
            "(the same id; 接续上一方案): that plan keeps its duties, tasks and history"
        )
    out.print(
        "Tasks already created keep the rule they were created under; new and changed duties "
        f"owe the periods due from {d.as_of} on; open tasks of a withdrawn duty are closed as "
        "withdrawn (never deleted)."
    )


def print_apply(out: Console, report: ApplyReport) -> None:
    print_diff(out, report.diff)
    if not report.applied:
        out.print("nothing applied 未写入")
        return
    out.print(
        f"applied 已生效: plan {report.diff.plan} version {report.diff.sha256} "
        f"({report.closed} open tasks closed as withdrawn)"
    )


def print_withdraw(out: Console, report: WithdrawReport, *, tz: ZoneInfo) -> None:
    when = report.withdrawn_at.astimezone(tz).strftime("%Y-%m-%d %H:%M")
    if report.already:
        out.print(
            f"plan {report.plan} was already withdrawn 已撤销 on {when} ({report.reason}); "
            "nothing changed"
        )
        return
    out.print(
        f"withdrawn 已撤销: plan {report.plan} on {when}; {report.duties} duties stopped, "
        f"{report.closed} open tasks closed as withdrawn"
    )


def print_roll(out: Console, rolled: Rolled, path: Path) -> None:
    out.print(
        f"wrote {path}: plan {rolled.plan} ({rolled.valid_from}..{rolled.valid_until}), rolled "
        f"from {rolled.source} by {rolled.years} year{'s' if rolled.years > 1 else ''}; "
        f"{len(rolled.marked)} fields marked 待确认 / to confirm"
    )
    if rolled.overlap:
        out.print(
            f"note: both windows cover {rolled.overlap[0]}..{rolled.overlap[1]}: a period ending "
            "then is owed under both plans; move the new window's start if that is not meant"
        )
    out.print(f"next: edit it, then `duban plan diff {path}` and `duban plan apply {path}`")
