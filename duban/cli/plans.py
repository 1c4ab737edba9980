"""What `duban plan show|diff|apply` and `duban init` print about plans, adoption and amendments.

Kept out of main.py: the commands there read their options and call these.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date

from rich.console import Console
from rich.table import Table

from duban.catalog.contacts import Unreachable
from duban.catalog.expand import PlannedTask
from duban.catalog.loader import Catalog
from duban.engine.amend import ApplyReport, PlanDiff
from duban.engine.sync import SyncReport

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
    for plan in report.held:
        out.print(
            f"plan {plan} changed since it was applied (方案文件已修改，未自动生效); see what "
            f"would change with `duban plan diff FILE` and apply it with `duban plan apply FILE`"
        )


def print_unreachable(out: Console, found: Iterable[Unreachable]) -> None:
    """Warnings, not errors: the organizations a ladder step cannot reach, and why."""
    for item in found:
        out.print(f"warning 提醒无法送达: {item}", soft_wrap=True)


def print_owed(
    out: Console,
    catalog: Catalog,
    planned: Iterable[PlannedTask],
    *,
    adopted: date | None,
) -> None:
    """Per plan: which periods it still owes from adoption on, and which it does not."""
    owed: dict[str, list[PlannedTask]] = {}
    before: dict[str, int] = {}
    plan_of = {o.domain.code: o.plan.id for o in catalog.obligations}
    for t in planned:
        plan = plan_of[t.obligation]
        if adopted is not None and t.due < adopted:
            before[plan] = before.get(plan, 0) + 1
        else:
            owed.setdefault(plan, []).append(t)
    when = f"adopted {adopted}" if adopted else "not adopted yet: `duban init` adopts today"
    out.print(f"启用日期 {when}")
    for lp in catalog.plans:
        h = lp.header
        tasks = owed.get(h.id, [])
        window = f"{h.valid.start}..{h.valid.until}"
        if adopted is not None and h.valid.until < adopted:
            out.print(
                f"{h.id} ({window}): the window ended before adoption; it owes nothing "
                "(方案期满于启用之前，不产生任务)"
            )
            continue
        if not tasks:
            out.print(f"{h.id} ({window}): owes no periods (no periodic duty falls due)")
            continue
        keys = sorted({t.period.key for t in tasks if t.period.key != "once"})
        span = f"periods {keys[0]} … {keys[-1]}" if keys else "one-off duties only"
        out.print(
            f"{h.id} ({window}): still owes {len(tasks)} tasks due {min(t.due for t in tasks)}"
            f" … {max(t.due for t in tasks)} ({span}); "
            f"{before.get(h.id, 0)} fell due before adoption and are not owed"
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
            f"{c.code}\n{c.title}",
            ", ".join(c.aspects) or "-",
            str(c.creates),
            str(c.withdraws),
            str(c.retimed),
            str(c.closes),
        )
    out.print(table)
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
