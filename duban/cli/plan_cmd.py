"""`duban plan …`: check, show, diff, apply, withdraw and roll plans.

The database holds the plans (`duban init` loads configured files it does not hold yet and
changes nothing else about them); these commands are how a plan changes: `apply` a new plan
or a new version, `withdraw` one, `roll` this year's into next year's draft.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from duban.bootstrap import App
from duban.catalog.contacts import unreachable_steps
from duban.catalog.loader import load_catalog
from duban.cli import plans
from duban.cli.common import ActorOption, NowOption, actor_name, errors, fail, out, parse_moment
from duban.domain.due import local_date
from duban.engine import adoption, amend, plans_end
from duban.engine.roll import roll_plan
from duban.engine.roster import roster_of
from duban.engine.withdraw import withdraw_plan
from duban.errors import PlanError, RollRefused

plan_app = typer.Typer(
    help="Check, show, diff, apply, withdraw and roll plans.", no_args_is_help=True
)


def _initialised(ctx: App) -> None:
    if not ctx.store.is_initialised():
        fail("the database is not initialised; run `duban init` first")


@plan_app.command("check")
def plan_check(
    files: Annotated[list[Path], typer.Argument(help="Plan files to check.")],
    orgs: Annotated[
        list[Path] | None,
        typer.Option("--orgs", help="Organization files (default: the configured ones)."),
    ] = None,
) -> None:
    """Validate plan files; every problem names the file, line and field. Warns about the
    organizations a ladder step cannot reach (a contact they, or their parent, lack), and says
    which years of a plan's window are counted on the provisional calendar."""
    ctx = App()
    with errors():
        catalog = load_catalog(files, orgs or ctx.settings.org_files, ctx.calendar)
    for plan in catalog.plans:
        count = sum(1 for o in catalog.obligations if o.plan.id == plan.header.id)
        out.print(f"ok  {plan.file}: plan {plan.header.id}, {count} obligations")
        window = plan.header.valid
        years = ctx.calendar.provisional_years(window.start, window.until)
        if years:
            named = ", ".join(map(str, years))
            out.print(
                f"    note: {named} has no State Council notice loaded: its working days are "
                "provisional (weekends and statutory holidays); import the notice with "
                "`duban calendar import NOTICE.txt` when it is published"
            )
    plans.print_unreachable(out, unreachable_steps(catalog))


@plan_app.command("show")
def plan_show(
    year: Annotated[int | None, typer.Option(help="Only due dates in this year.")] = None,
    org: Annotated[str | None, typer.Option(help="Only this organization.")] = None,
    now: NowOption = None,
) -> None:
    """The plans the database holds (the configured files before `duban init`): which end
    soon and what stops then, what each still owes from today (--now), and every due date
    owed from adoption on (per duty and period)."""
    ctx = App()
    with errors():
        today = local_date(parse_moment(now, ctx), ctx.tz)
        ending: list[plans_end.EndingPlan] = []
        if ctx.store.is_initialised():
            with ctx.store.read() as session:
                views = plans_end.stored_plans(session)
                roster = roster_of(session)
                adopted = adoption.adopted_on(session)
                ending = plans_end.ending_plans(
                    session, today=today, within_days=ctx.settings.plan_end_warning_days
                )
        else:
            views, roster = plans_end.file_plans(ctx.catalog())
            adopted = None
            out.print("the database is not initialised: the configured plan files")
        standing = plans_end.standings(
            views, roster, ctx.calendar, today=today, adopted=adopted, org=org
        )
        rows: dict[tuple[date, str, str], list[str]] = {}
        for _, t in plans_end.planned(
            views, roster, ctx.calendar, start=adopted, year=year, org=org
        ):
            rows.setdefault((t.due, t.obligation, t.period.key), []).append(t.org)
    plans.print_ending(out, ending)
    plans.print_standings(out, standing, adopted=adopted, today=today, tz=ctx.tz)
    titles = {d.ref: d.title for v in views for d in v.duties}
    table = Table("due 截止", "obligation 职责", "period 周期", "title 名称", "organizations 机构")
    for (due, code, key), who in sorted(rows.items()):
        table.add_row(
            due.isoformat(),
            code,
            key,
            titles[code],
            ", ".join(who) if len(who) <= 3 else f"{len(who)} organizations",
        )
    out.print(table)
    out.print(f"{len(rows)} due dates")


PlanFileArg = Annotated[Path, typer.Argument(help="The plan file (a new version, or a new plan).")]


@plan_app.command("diff")
def plan_diff(file: PlanFileArg, now: NowOption = None) -> None:
    """What applying FILE would change, against what the database holds; writes nothing."""
    ctx = App()
    with errors():
        catalog = load_catalog([file], ctx.settings.org_files, ctx.calendar)
        _initialised(ctx)
        found = amend.diff(
            ctx.store, catalog, calendar=ctx.calendar, now=parse_moment(now, ctx), tz=ctx.tz
        )
    plans.print_diff(out, found)


@plan_app.command("apply")
def plan_apply(
    file: PlanFileArg,
    reason: Annotated[
        str | None, typer.Option(help="Why (closes the open tasks of withdrawn duties).")
    ] = None,
    now: NowOption = None,
    actor: ActorOption = None,
) -> None:
    """Apply FILE: a new plan (a plan id the database does not hold), a plan's new version,
    or a withdrawn plan again. Shows the changes, keeps history, audits it."""
    ctx = App()
    with errors():
        catalog = load_catalog([file], ctx.settings.org_files, ctx.calendar)
        _initialised(ctx)
        report = amend.apply(
            ctx.store,
            catalog,
            calendar=ctx.calendar,
            now=parse_moment(now, ctx),
            tz=ctx.tz,
            actor=actor_name(actor),
            reason=reason,
        )
    plans.print_apply(out, report)


@plan_app.command("withdraw")
def plan_withdraw(
    code: Annotated[str, typer.Argument(help="The plan's id (its file's `plan: id:`).")],
    reason: Annotated[str, typer.Option(help="Why (kept on the plan and every closed task).")],
    now: NowOption = None,
    actor: ActorOption = None,
) -> None:
    """Withdraw a plan: its duties stop, its open tasks close as withdrawn (audited). `duban
    plan apply FILE` puts it in force again."""
    ctx = App()
    with errors():
        _initialised(ctx)
        report = withdraw_plan(
            ctx.store, code, reason=reason, now=parse_moment(now, ctx), actor=actor_name(actor)
        )
    plans.print_withdraw(out, report, tz=ctx.tz)


@plan_app.command("roll")
def plan_roll(
    code: Annotated[str, typer.Argument(help="The plan to roll (its id in the database).")],
    to: Annotated[int, typer.Option("--to", help="The year the new plan starts.")],
    out_file: Annotated[Path, typer.Option("--out", help="Where to write the draft.")],
    force: Annotated[bool, typer.Option("--force", help="Overwrite --out if it exists.")] = False,
    now: NowOption = None,
) -> None:
    """Write next year's draft of a plan (window, dated deadlines and plan id moved; duty ids
    kept; what to confirm marked) to check, edit and apply. Writes nothing to the database."""
    ctx = App()
    with errors():
        _initialised(ctx)
        if out_file.exists() and not force:
            raise RollRefused(f"{out_file} exists; choose another --out, or add --force")
        rolled = roll_plan(
            ctx.store, code, to_year=to, today=local_date(parse_moment(now, ctx), ctx.tz)
        )
        out_file.write_text(rolled.text, encoding="utf-8")
    plans.print_roll(out, rolled, out_file)
    try:
        load_catalog([out_file], ctx.settings.org_files, ctx.calendar)
    except PlanError as exc:
        fail(f"written, but it does not pass `duban plan check` yet: {exc}", 2)
    out.print(f"ok  {out_file} passes `duban plan check`")
