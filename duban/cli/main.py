"""The `duban` console script.

The clock is read here, at the top, and handed down as `now`; `--now` (on commands that change
things) replays any moment, which is how catch-up and deadlines are tested.
"""

from __future__ import annotations

import json
import logging
import signal
import sys
from datetime import UTC, date, datetime
from typing import Annotated

import typer
from rich.progress import Progress
from rich.table import Table

from duban.bootstrap import App
from duban.cli import plans
from duban.cli.calendar_cmd import cal_app, print_sync
from duban.cli.common import (
    ActorOption,
    NowOption,
    actor_name,
    err,
    errors,
    fail,
    out,
    parse_moment,
)
from duban.cli.demo_cmd import demo
from duban.cli.plan_cmd import plan_app
from duban.cli.prefect_cmd import prefect_app
from duban.domain.due import local_date
from duban.domain.tasks import Action, TaskState
from duban.engine import actions, feeds, notify_prefs, outbox, users
from duban.engine.materialize import materialize
from duban.engine.queries import list_tasks
from duban.store import audit

app = typer.Typer(
    help="督办 duban: plans as data, tasks on time, an audit trail you can trust.",
    no_args_is_help=True,
    add_completion=False,
)
audit_app = typer.Typer(help="Prove the audit trail is intact.", no_args_is_help=True)
event_app = typer.Typer(help="Record events that start deadline chains.", no_args_is_help=True)
task_app = typer.Typer(help="Act on one task.", no_args_is_help=True)
outbox_app = typer.Typer(help="Messages to send: list, retry.", no_args_is_help=True)
notify_app = typer.Typer(help="Notification preferences.", no_args_is_help=True)
user_app = typer.Typer(help="People who sign in to the web UI and the API.", no_args_is_help=True)
app.add_typer(plan_app, name="plan")
app.add_typer(audit_app, name="audit")
app.add_typer(event_app, name="event")
app.add_typer(task_app, name="task")
app.add_typer(cal_app, name="calendar")
app.add_typer(outbox_app, name="outbox")
app.add_typer(notify_app, name="notify")
app.add_typer(user_app, name="user")
app.add_typer(prefect_app, name="prefect")
app.command("demo")(demo)

log = logging.getLogger("duban")


def _app() -> App:
    return App()


def _show_local(moment: datetime, ctx: App) -> str:
    return moment.astimezone(ctx.tz).strftime("%Y-%m-%d %H:%M %Z")


@app.command()
def init(
    no_load: Annotated[
        bool, typer.Option("--no-load", help="Only create/upgrade the schema; load no plans.")
    ] = False,
    now: NowOption = None,
    adopted: Annotated[
        str | None,
        typer.Option(
            "--adopted",
            help="The day this deployment started using duban (default: the first init's "
            "day); nothing that fell due before it is owed. Changing it later is audited.",
        ),
    ] = None,
    actor: ActorOption = None,
) -> None:
    """Create or upgrade the database and load the configured plans and organizations
    (refused, changing nothing, while a scheduler holds the lease)."""
    ctx = _app()
    with errors():
        report = ctx.init(
            now=parse_moment(now, ctx),
            load=not no_load,
            adopted=_day(adopted) if adopted else None,
            actor=actor_name(actor),
        )
    out.print(f"database ready: {ctx.store.engine.url.render_as_string(hide_password=True)}")
    if report:
        out.print(
            f"loaded {report.plans} plans, {report.obligations} obligations "
            f"({report.changed_obligations} new or changed), {report.organizations} "
            "organizations"
        )
        plans.print_init(out, report)
    with errors():
        moment = parse_moment(now, ctx)
        print_sync(
            out,
            ctx.sync_calendar(moment, actor=actor_name(actor)),
            today=local_date(moment, ctx.tz),
        )
    print_calendar_warning(ctx, moment)
    if not users.has_admin(ctx.store):
        out.print(
            "no administrator yet; create the first one with\n"
            "  duban user add NAME --role admin --password-stdin"
        )


@app.command()
def tasks(
    org: Annotated[str | None, typer.Option(help="Organization id.")] = None,
    obligation: Annotated[
        str | None,
        typer.Option(
            help="A duty: its id (across the plans that hold it) or PLAN/ID (that plan's)."
        ),
    ] = None,
    state: Annotated[TaskState | None, typer.Option(help="Task state.")] = None,
    overdue: Annotated[bool, typer.Option("--overdue", help="Only overdue tasks.")] = False,
    as_of: Annotated[
        str | None,
        typer.Option("--as-of", help="Judge overdue as of this date/time (default: now)."),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="JSON output.")] = False,
    limit: Annotated[int | None, typer.Option(help="At most this many.")] = None,
) -> None:
    """List tasks, most urgent first, with overdue and late derived as of --as-of."""
    ctx = _app()
    with errors():
        moment = parse_moment(as_of, ctx)
        found = list_tasks(
            ctx.store,
            now=moment,
            tz=ctx.tz,
            org=org,
            obligation=obligation,
            state=state,
            overdue=overdue,
            limit=limit,
            calendar=ctx.calendar,
        )
        if as_json:
            sys.stdout.write("[")
            for i, view in enumerate(found):
                sys.stdout.write(("," if i else "") + "\n" + json.dumps(view, ensure_ascii=False))
            sys.stdout.write("\n]\n")
            return
        table = Table(
            "id",
            "due 截止",
            "organization 机构",
            "obligation 职责",
            "period 周期",
            "state 状态",
            "overdue 逾期",
        )
        count = 0
        for v in found:
            count += 1
            table.add_row(
                str(v["id"]),
                v["due"] + (" (暂定 provisional)" if v["provisional"] else ""),
                v["org"],
                v["duty"],
                v["period"],
                v["state"] + (" (late)" if v["late"] else ""),
                f"{v['overdue_days']} d" if v["overdue"] else "",
            )
    out.print(table)
    out.print(f"{count} tasks as of {_show_local(moment, ctx)}")


@app.command()
def tick(now: NowOption = None) -> None:
    """One reconcile run as of --now: create tasks, sweep the ladders, deliver the outbox."""
    ctx = _app()
    with errors():
        moment = parse_moment(now, ctx)
        recalendared = ctx.sync_calendar(moment, actor="cli:tick")
        with Progress(console=err, transient=True) as bar:
            job = bar.add_task("materializing", total=None)
            report = materialize(
                ctx.store,
                calendar=ctx.calendar,
                now=moment,
                tz=ctx.tz,
                progress=lambda n, total: bar.update(job, completed=n, total=total),
            )
        swept = ctx.sweep(moment)
        transport = ctx.transport()
        delivered = ctx.deliver(moment)
    out.print(
        f"tick at {_show_local(moment, ctx)}: {report.periods_checked} periods checked, "
        f"{report.tasks_created} tasks created"
    )
    for code, n in sorted(report.by_obligation.items()):
        out.print(f"  {code}: +{n}")
    out.print(f"sweep: {swept.marks} ladder steps reached, {swept.messages} messages enqueued")
    for skipped in swept.skipped:
        out.print(f"  warning 提醒无法送达: {skipped}; nobody was told", soft_wrap=True)
    out.print(f"deliver ({transport.describe()}): {delivered.summary()}")
    for line in delivered.errors:
        err.print(f"  {line}", markup=False)
    print_sync(out, recalendared, today=local_date(moment, ctx.tz))
    print_calendar_warning(ctx, moment)


def print_calendar_warning(ctx: App, moment: datetime) -> None:
    """Next year's (or this year's) official calendar missing: said by tick and init."""
    warning = ctx.calendar_warning(moment)
    if warning is not None:
        out.print(f"warning: {warning.zh}\n  {warning.en}")


@app.command()
def run() -> None:
    """Run the embedded scheduler on this database (initialising or upgrading it first, once
    it holds the scheduler lease)."""
    from duban import scheduler

    logging.basicConfig(
        level=logging.INFO,
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    logging.getLogger("apscheduler").setLevel(logging.WARNING)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    ctx = _app()
    with errors():
        server = None
        if ctx.settings.web:
            from duban.web.app import WebServer

            server = WebServer(ctx, ctx.settings.web_host, ctx.settings.web_port)
            log.info(
                "web UI on http://%s:%d/ (API schema at /openapi.json)",
                ctx.settings.web_host,
                ctx.settings.web_port,
            )
        scheduler.run(ctx, clock=lambda: datetime.now(UTC), serve=server)


@event_app.command("add")
def event_add(
    kind: Annotated[str, typer.Argument(help="Event kind, e.g. maternal-death.")],
    org: Annotated[str, typer.Option(help="Organization where it happened.")],
    on: Annotated[str, typer.Option(help="Date it happened (YYYY-MM-DD).")],
    note: Annotated[str | None, typer.Option(help="A note for the record.")] = None,
    now: NowOption = None,
    actor: ActorOption = None,
) -> None:
    """Record an event and create its deadline chain."""
    ctx = _app()
    with errors():
        try:
            occurred = date.fromisoformat(on)
        except ValueError:
            fail(f"--on {on!r} is not a date; use YYYY-MM-DD", 2)
        moment = parse_moment(now, ctx)
        result = actions.record_event(
            ctx.store,
            kind=kind,
            org=org,
            occurred_on=occurred,
            now=moment,
            tz=ctx.tz,
            calendar=ctx.calendar,
            actor=actor_name(actor),
            note=note,
        )
        out.print(f"event {result.event_id} recorded; {result.report.tasks_created} tasks created")
        for view in list_tasks(ctx.store, now=moment, tz=ctx.tz, event=result.event_id):
            out.print(f"  task {view['id']}: {view['org']} {view['duty']} due {view['due']}")


def _act(
    task_id: int, action: Action, actor: str | None, now: str | None, reason: str | None = None
) -> None:
    ctx = _app()
    with errors():
        state = actions.transition(
            ctx.store,
            task_id=task_id,
            action=action,
            actor=actor_name(actor),
            now=parse_moment(now, ctx),
            reason=reason,
        )
    out.print(f"task {task_id}: {state.value}")


@task_app.command("submit")
def task_submit(
    task_id: int,
    note: Annotated[
        str | None, typer.Option(help="Attach this note as evidence before submitting.")
    ] = None,
    on: Annotated[
        str | None,
        typer.Option(
            "--on",
            help="The date the event this duty records happened (YYYY-MM-DD), e.g. the "
            "day the meeting was held; required for such a duty (records_event).",
        ),
    ] = None,
    now: NowOption = None,
    actor: ActorOption = None,
) -> None:
    """Submit a task (with a note as evidence); a duty that records an event takes --on."""
    ctx = _app()
    with errors():
        moment = parse_moment(now, ctx)
        occurred = _day(on) if on is not None else None
        if note:
            actions.add_note(
                ctx.store, task_id=task_id, note=note, actor=actor_name(actor), now=moment
            )
        done = actions.submit(
            ctx.store,
            task_id=task_id,
            actor=actor_name(actor),
            now=moment,
            tz=ctx.tz,
            calendar=ctx.calendar,
            occurred_on=occurred,
        )
    out.print(f"task {task_id}: {done.state.value}")
    rec = done.recorded
    if rec is None:
        return
    if rec.corrected_from is not None:
        out.print(
            f"event {rec.event_id} ({rec.kind}) corrected {rec.corrected_from} → "
            f"{rec.occurred_on}; {rec.retimed} open tasks retimed, {rec.created} created"
        )
    else:
        out.print(
            f"event {rec.event_id} ({rec.kind}) on {rec.occurred_on}: {rec.created} tasks created"
        )
    for view in list_tasks(ctx.store, now=moment, tz=ctx.tz, event=rec.event_id):
        out.print(f"  task {view['id']}: {view['org']} {view['obligation']} due {view['due']}")


@task_app.command("accept")
def task_accept(task_id: int, now: NowOption = None, actor: ActorOption = None) -> None:
    """Accept a submitted task."""
    _act(task_id, Action.ACCEPT, actor, now)


@task_app.command("reject")
def task_reject(
    task_id: int,
    reason: Annotated[str, typer.Option(help="Why.")],
    now: NowOption = None,
    actor: ActorOption = None,
) -> None:
    """Reject a submitted task, with a reason."""
    _act(task_id, Action.REJECT, actor, now, reason)


@task_app.command("waive")
def task_waive(
    task_id: int,
    reason: Annotated[str, typer.Option(help="Why.")],
    now: NowOption = None,
    actor: ActorOption = None,
) -> None:
    """Waive an open task, with a reason."""
    _act(task_id, Action.WAIVE, actor, now, reason)


@audit_app.command("verify")
def audit_verify(
    head: Annotated[
        str | None,
        typer.Option("--head", help="A head recorded earlier that today's log must still contain."),
    ] = None,
) -> None:
    """Recompute every hash of the audit chain; exit 1 naming the first broken link."""
    ctx = _app()
    with errors(), ctx.store.consistent() as session:
        verdict = audit.verify(session, expected_head=head)
    if not verdict.ok:
        fail(f"audit chain BROKEN after {verdict.count - 1} good events: {verdict.problem}")
    extra = f"; it extends the recorded head {head[:12]}…" if head else ""
    out.print(f"audit chain intact: {verdict.count} events, head {verdict.head}{extra}")


@audit_app.command("head")
def audit_head() -> None:
    """Print the latest hash and event count (keep it to prove nothing is rewritten later)."""
    ctx = _app()
    with errors(), ctx.store.read() as session:
        digest, count = audit.head(session)
    out.print(f"{digest} {count}")


@outbox_app.command("list")
def outbox_list(
    state: Annotated[str | None, typer.Option(help="pending, sending, sent or failed.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="JSON output.")] = False,
    limit: Annotated[int, typer.Option(help="At most this many, newest first.")] = 100,
) -> None:
    """Messages in the outbox, newest first."""
    ctx = _app()
    with errors():
        rows = outbox.list_messages(ctx.store, state=state, limit=limit)
        waiting = outbox.waiting(ctx.store, now=datetime.now(UTC))
    if as_json:
        sys.stdout.write(json.dumps(rows, ensure_ascii=False, indent=1) + "\n")
        return
    table = Table("id", "kind", "to", "day", "state", "attempts", "subject / last error")
    for r in rows:
        table.add_row(
            str(r["id"]),
            r["kind"],
            r["recipient"],
            r["day"],
            r["state"],
            str(r["attempts"]),
            r["last_error"] or r["subject"] or "",
        )
    out.print(table)
    out.print(f"still waiting: {waiting.describe()}")


@outbox_app.command("retry")
def outbox_retry(
    ids: Annotated[list[int] | None, typer.Argument(help="Outbox ids to retry.")] = None,
    failed: Annotated[bool, typer.Option("--failed", help="Retry every failed message.")] = False,
    now: NowOption = None,
    actor: ActorOption = None,
) -> None:
    """Put failed messages back in the queue (they are sent on the next delivery)."""
    if not ids and not failed:
        fail("name outbox ids, or give --failed", 2)
    ctx = _app()
    with errors():
        count = outbox.retry(
            ctx.store, ids=ids or None, now=parse_moment(now, ctx), actor=actor_name(actor)
        )
    out.print(f"{count} messages queued again")


@app.command()
def ics(
    org: Annotated[str, typer.Option(help="Organization id.")],
    url: Annotated[bool, typer.Option("--url", help="Print the subscription URL instead.")] = False,
    renew: Annotated[
        bool, typer.Option("--renew", help="Revoke the old URL, make a new one.")
    ] = False,
    now: NowOption = None,
) -> None:
    """An organization's deadlines as an iCalendar (RFC 5545) feed."""
    ctx = _app()
    with errors():
        moment = parse_moment(now, ctx)
        if url or renew:
            token = feeds.feed_token(ctx.store, org, now=moment, renew=renew)
            out.print(f"{ctx.settings.base_url.rstrip('/')}/ics/{token}.ics")
            return
        sys.stdout.buffer.write(
            feeds.ics_feed(
                ctx.store,
                org,
                now=moment,
                base_url=ctx.settings.base_url,
                calendar=ctx.calendar,
            )
        )


@notify_app.command("digest-only")
def notify_digest_only(
    email: Annotated[str, typer.Argument(help="The person's e-mail address.")],
    off: Annotated[bool, typer.Option("--off", help="Back to per-task messages.")] = False,
) -> None:
    """Let a person receive one daily digest instead of per-task messages."""
    ctx = _app()
    with errors():
        notify_prefs.set_digest_only(ctx.store, email, not off)
    out.print(f"{email}: {'per-task messages' if off else 'digest only'}")


def _day(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        fail(f"{text!r} is not a date; use YYYY-MM-DD", 2)


def main() -> None:
    app()


def _password(stdin: bool) -> str | None:
    if stdin:
        return sys.stdin.readline().rstrip("\n")
    if sys.stdin.isatty():
        first = typer.prompt("password", hide_input=True)
        if typer.prompt("again", hide_input=True) != first:
            fail("the two passwords differ; nothing was created", 2)
        return str(first)
    return None


@user_app.command("add")
def user_add(
    name: Annotated[str, typer.Argument(help="Sign-in name.")],
    role: Annotated[str, typer.Option(help="admin, institution or auditor.")],
    org: Annotated[str | None, typer.Option(help="The organization (institution users).")] = None,
    password_stdin: Annotated[
        bool, typer.Option("--password-stdin", help="Read the password from standard input.")
    ] = False,
    now: NowOption = None,
) -> None:
    """Create a user (asks for the password on a terminal, or reads it with --password-stdin)."""
    ctx = _app()
    with errors():
        password = _password(password_stdin)
        if password is None:
            fail("give a password: on a terminal, or with --password-stdin", 2)
        users.add_user(
            ctx.store, name=name, role=role, org=org, password=password, now=parse_moment(now, ctx)
        )
    out.print(f"user {name} ({role}{', ' + org if org else ''}) created")


@user_app.command("list")
def user_list(
    as_json: Annotated[bool, typer.Option("--json", help="JSON output.")] = False,
) -> None:
    """Every user, disabled ones included."""
    ctx = _app()
    with errors():
        rows = users.list_users(ctx.store)
    if as_json:
        sys.stdout.write(json.dumps(rows, ensure_ascii=False, indent=1) + "\n")
        return
    table = Table("name", "role", "org", "disabled", "created")
    for r in rows:
        table.add_row(
            str(r["name"]),
            str(r["role"]),
            str(r["org"] or ""),
            str(r["disabled"]),
            str(r["created_at"]),
        )
    out.print(table)


@user_app.command("unlock")
def user_unlock(
    name: Annotated[str, typer.Argument(help="Sign-in name.")], now: NowOption = None
) -> None:
    """Clear a name's failed sign-ins (after guessing locked it for unknown browsers)."""
    ctx = _app()
    with errors():
        count = users.unlock(ctx.store, name=name, now=parse_moment(now, ctx))
    out.print(f"{name}: {count} sign-in counters cleared")


@user_app.command("disable")
def user_disable(
    name: Annotated[str, typer.Argument(help="Sign-in name.")], now: NowOption = None
) -> None:
    """Disable a user: their sessions and API tokens stop working at once."""
    ctx = _app()
    with errors():
        users.disable_user(ctx.store, name=name, now=parse_moment(now, ctx))
    out.print(f"user {name} disabled")


@user_app.command("token")
def user_token(
    name: Annotated[str, typer.Argument(help="Sign-in name.")],
    label: Annotated[str, typer.Option(help="What the token is for.")] = "api",
    revoke: Annotated[
        bool, typer.Option("--revoke", help="Revoke all of the user's tokens.")
    ] = False,
    now: NowOption = None,
) -> None:
    """Create a personal API token (printed once; send it as Authorization: Bearer TOKEN)."""
    ctx = _app()
    with errors():
        if revoke:
            count = users.revoke_tokens(ctx.store, name=name, now=parse_moment(now, ctx))
            out.print(f"{count} tokens of {name} revoked")
            return
        token = users.create_token(ctx.store, name=name, label=label, now=parse_moment(now, ctx))
    sys.stdout.write(token + "\n")


@app.command()
def web(
    host: Annotated[str | None, typer.Option(help="Address to listen on.")] = None,
    port: Annotated[int | None, typer.Option(help="Port to listen on.")] = None,
    workers: Annotated[
        int | None,
        typer.Option(min=1, max=64, help="Server processes (default web_workers, 1)."),
    ] = None,
) -> None:
    """Serve the web UI and the JSON API alone (no scheduler)."""
    from duban.web.app import serve_workers

    logging.basicConfig(
        level=logging.INFO,
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    ctx = _app()
    with errors():
        if not ctx.store.is_initialised():
            ctx.init(now=datetime.now(UTC))
        ctx.store.require_schema()  # an older or newer schema: refused before serving
        host = host or ctx.settings.web_host
        port = port or ctx.settings.web_port
        log.info("web UI on http://%s:%d/ (API schema at /openapi.json)", host, port)
        if not users.has_admin(ctx.store):
            log.warning("no administrator yet: duban user add NAME --role admin --password-stdin")
        serve_workers(ctx, host, port, workers or ctx.settings.web_workers)
