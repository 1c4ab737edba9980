"""The embedded scheduler: APScheduler 3 in one process, plus two threads of its own.

It only decides *when* to reconcile. One job per periodic obligation fires at the start of
each of its periods (local midnight in the plan's time zone) and materializes that
obligation; a reconcile job runs everything every few minutes (events, changed rosters,
anything missed); a sweep job queues reminders and escalations. Delivery runs in its own
thread (`Deliverer`), so a slow or unreachable mail server never holds up a sweep, and a
sweep never waits for mail; the lease that keeps this process the only scheduler on the
database is renewed from its own thread too (`LeaseKeeper`), from the moment it is taken,
through the start-up catch-up. At start-up it takes the lease first, then upgrades the schema
and loads the plans (`App.init`), then reconciles once, which is the catch-up after downtime:
a start refused because another scheduler holds the lease (an earlier release's too: its
lease is the same row) has changed nothing. All state is in the database, so killing the
process at any moment loses nothing; SIGTERM stops it within a few seconds (the message being
sent is finished first, for at most `STOP_GRACE`). A database that cannot be reached is
retried, with one log line per outage.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any, Protocol, TypeVar
from zoneinfo import ZoneInfo

from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.schedulers.base import BaseScheduler
from apscheduler.schedulers.blocking import BlockingScheduler
from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.interval import IntervalTrigger
from sqlalchemy import select
from sqlalchemy.exc import DBAPIError

from duban.bootstrap import App
from duban.domain.due import start_of_day
from duban.domain.obligations import Obligation
from duban.engine import duties, lease, outbox
from duban.engine.calendar_sync import CalendarSyncReport
from duban.engine.materialize import domain_obligation, materialize
from duban.engine.sync import SyncReport
from duban.errors import SchedulerBusy, StoreError
from duban.store.models import ObligationRow, Plan

log = logging.getLogger("duban.scheduler")
LEASE_RENEW = timedelta(seconds=30)
DB_RETRY = timedelta(seconds=5)
STOP_GRACE = timedelta(seconds=5)
Clock = Callable[[], datetime]
T = TypeVar("T")
DATABASE_DOWN = (DBAPIError, StoreError)  # connection refused or lost, server shutting down


class PeriodStartTrigger(BaseTrigger):  # type: ignore[misc]
    """Fires at local midnight on the first day of each period the obligation owes."""

    def __init__(self, obligation: Obligation, tz: ZoneInfo) -> None:
        self.starts = sorted({start_of_day(p.start, tz) for p in obligation.periods()})

    def get_next_fire_time(
        self, previous_fire_time: datetime | None, now: datetime
    ) -> datetime | None:
        after = previous_fire_time or now - timedelta(microseconds=1)
        return next((t for t in self.starts if t > after), None)

    def __str__(self) -> str:
        return f"period starts ({len(self.starts)})"


def holder_name() -> str:
    return lease.holder_name()


def _short(exc: BaseException) -> str:
    """The first line of a database error, without SQLAlchemy's background links."""
    orig = getattr(exc, "orig", None)
    text = str(orig if orig is not None else exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


class Outage:
    """Logs one line when something starts failing (and when its reason changes), and one
    when it works again: never a line per retry."""

    def __init__(self, down: str, back: str) -> None:
        self.down, self.back = down, back
        self.since: float | None = None
        self.problem = ""

    def failed(self, problem: str) -> None:
        if self.since is None or problem != self.problem:
            log.warning("%s: %s; retrying", self.down, problem)
        if self.since is None:
            self.since = time.monotonic()
        self.problem = problem

    def ok(self) -> None:
        if self.since is not None:
            log.info("%s after %.0f s", self.back, time.monotonic() - self.since)
        self.since = None
        self.problem = ""


def database_outage(what: str = "the database") -> Outage:
    return Outage(f"{what} cannot be reached", f"{what} can be reached again")


def until_reachable(
    step: Callable[[], T], outage: Outage, stop: threading.Event | None = None
) -> T | None:
    """Run `step`, retried every DB_RETRY while the database cannot be reached (one log line
    per outage). None if stopped first. Steps are reconciles, so running one again is safe."""
    while True:
        try:
            result = step()
        except DATABASE_DOWN as exc:
            outage.failed(_short(exc))
        else:
            outage.ok()
            return result
        if stop is None:
            time.sleep(DB_RETRY.total_seconds())  # SIGTERM interrupts it (SystemExit)
        elif stop.wait(DB_RETRY.total_seconds()):
            return None


def start_database(app: App, clock: Clock, holder: str) -> SyncReport | None:
    """Upgrade the schema and load the plans under `holder`'s lease, waiting for the database
    if needed."""
    report = until_reachable(lambda: app.init(now=clock(), holder=holder), database_outage())
    if report:
        log.info(
            "database %s: %d plans, %d obligations, %d organizations",
            app.store.where,
            report.plans,
            report.obligations,
            report.organizations,
        )
        for item in report.unreachable:
            log.warning("%s", item)
        for line in report.plan_lines():
            log.warning("%s", line)
    return report


class LeaseKeeper(threading.Thread):
    """Renews the scheduler lease every LEASE_RENEW until stopped; calls `on_lost` if another
    process took it (this one stalled past the lease's time to live)."""

    def __init__(self, app: App, holder: str, on_lost: Callable[[], None]) -> None:
        super().__init__(name="duban-lease", daemon=True)
        self.app, self.holder, self.on_lost = app, holder, on_lost
        self.stopping = threading.Event()
        self.outage = Outage(
            "cannot renew the scheduler lease", "the scheduler lease is renewed again"
        )

    def run(self) -> None:
        while not self.stopping.wait(LEASE_RENEW.total_seconds()):
            try:
                other = lease.acquire(self.app.store, holder=self.holder, ttl=lease.DEFAULT_TTL)
            except DATABASE_DOWN as exc:
                self.outage.failed(_short(exc))
                continue
            self.outage.ok()
            if other is not None:
                log.error("lost the scheduler lease to %s; stopping", other)
                self.on_lost()
                return


class Deliverer(threading.Thread):
    """Delivers the outbox every `deliver_seconds`, or at once when poked (after a sweep).

    A slow server makes delivery slow, nothing else; an unreachable one is logged once per
    outage; a stop request is honoured after the message in flight.
    """

    def __init__(self, app: App, clock: Clock, stop: threading.Event) -> None:
        super().__init__(name="duban-deliver", daemon=True)
        self.app, self.clock, self.stop = app, clock, stop
        self.poked = threading.Event()
        self.waiting: outbox.Waiting | None = None
        self.database = database_outage("delivery: the database")
        self.mail = Outage("delivery: nothing can be sent", "delivery: sending again")

    def poke(self) -> None:
        self.poked.set()

    def run(self) -> None:
        every = self.app.settings.deliver_seconds
        while not self.stop.is_set():
            self.poked.clear()
            self.once()
            deadline = time.monotonic() + every
            while not self.stop.is_set() and not self.poked.is_set():
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self.poked.wait(min(left, 0.5))

    def once(self) -> None:
        try:
            report = self.app.deliver(self.clock(), stop=self.stop)
        except DATABASE_DOWN as exc:
            self.database.failed(_short(exc))
            return
        self.database.ok()
        if report.unavailable:
            self.mail.failed(report.unavailable)
        elif report.sent:
            self.mail.ok()
        busy = report.sent or report.failed or report.taken_over or report.stopped
        if busy or report.waiting != self.waiting:  # what waits is said when it changes
            log.info("deliver: %s", report.summary())
        self.waiting = report.waiting


def build_scheduler(
    app: App,
    clock: Clock,
    stop: threading.Event,
    *,
    deliverer: Deliverer | None = None,
    background: bool = False,
) -> BaseScheduler:
    """The APScheduler jobs: materialize at period starts, reconcile, sweep. Delivery is not
    a job: the sweep pokes `deliverer`, which runs in its own thread."""
    tz = app.settings.tz
    kind = BackgroundScheduler if background else BlockingScheduler
    scheduler = kind(
        timezone=tz, job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": None}
    )
    database = database_outage()

    def guarded(job: Callable[..., None]) -> Callable[..., None]:
        def run(*args: Any) -> None:
            if stop.is_set():
                return
            try:
                job(*args)
            except DATABASE_DOWN as exc:
                database.failed(_short(exc))
            else:
                database.ok()

        return run

    def reconcile(only: str | None = None) -> None:
        if only is None:
            _calendar_pass(app, clock())
        report = materialize(app.store, calendar=app.calendar, now=clock(), tz=tz, only=only)
        if report.tasks_created or only is None:
            log.info(
                "reconcile%s: %d periods checked, %d tasks created",
                f" {only}" if only else "",
                report.periods_checked,
                report.tasks_created,
            )

    def sweep() -> None:
        swept = app.sweep(clock())
        if swept.messages:
            log.info("sweep: %d steps, %d messages queued", swept.marks, swept.messages)
            if deliverer is not None:
                deliverer.poke()

    with app.store.read() as session:
        plans = {pid: code for pid, code in session.execute(select(Plan.id, Plan.code))}
        rows = list(
            session.scalars(
                select(ObligationRow).where(
                    ObligationRow.active, ObligationRow.event_kind.is_(None)
                )
            )
        )
        # each duty by its plan and id (plans may share ids: duban.engine.duties)
        obligations = [
            (duties.qualified(plans[r.plan_id], r.code), domain_obligation(r, plans[r.plan_id]))
            for r in rows
        ]
    for name, ob in obligations:
        scheduler.add_job(
            guarded(reconcile),
            PeriodStartTrigger(ob, tz),
            args=[name],
            id=name,
            name=f"materialize {name}",
        )
    scheduler.add_job(
        guarded(reconcile),
        IntervalTrigger(minutes=app.settings.reconcile_minutes),
        id="reconcile",
        name="reconcile everything",
    )
    scheduler.add_job(
        guarded(sweep),
        IntervalTrigger(minutes=app.settings.sweep_minutes),
        id="sweep",
        name="sweep ladders and digests",
    )
    return scheduler


class Server(Protocol):
    """Something that serves in the foreground until stopped (the web UI's uvicorn server)."""

    def run(self) -> None: ...

    def stop(self) -> None: ...


def run(app: App, clock: Clock, serve: Server | None = None) -> None:
    """Run until interrupted. Raises SchedulerBusy if another scheduler holds the lease.

    The lease is taken before anything else is written (`App.claim`); the schema is upgraded
    and the plans loaded under it (`start_database`), renewed all along. With `serve`, the
    scheduler runs in the background and `serve.run()` holds the foreground (the web UI);
    stopping either stops both.
    """
    holder = holder_name()
    other = until_reachable(lambda: app.claim(holder), database_outage())
    if other is not None:
        raise SchedulerBusy(
            f"another scheduler is running on this database: {other}; "
            "stop it first, or wait for its lease to expire"
        )
    stop = threading.Event()
    scheduler: BaseScheduler | None = None

    def lost() -> None:
        stop.set()
        if scheduler is not None and scheduler.running:
            scheduler.shutdown(wait=False)
        if serve is not None:
            serve.stop()

    keeper = LeaseKeeper(app, holder, on_lost=lost)
    keeper.start()
    deliverer = Deliverer(app, clock, stop)
    try:
        start_database(app, clock, holder)
        _catch_up(app, clock, stop)
        if stop.is_set():
            return
        log.info("mail goes to %s", app.transport().describe())
        deliverer.start()  # the catch-up's messages go out while the scheduler runs
        scheduler = build_scheduler(
            app, clock, stop, deliverer=deliverer, background=serve is not None
        )
        log.info("scheduler started: %d jobs; press Ctrl+C to stop", len(scheduler.get_jobs()))
        if serve is None:
            scheduler.start()
        else:
            scheduler.start()
            try:
                serve.run()
            finally:
                if scheduler.running:
                    scheduler.shutdown(wait=False)
    except (KeyboardInterrupt, SystemExit):
        log.info("stopping")
    finally:
        stop.set()
        keeper.stopping.set()
        if deliverer.is_alive():
            deliverer.join(STOP_GRACE.total_seconds())
        try:
            lease.release(app.store, holder=holder)
        except DATABASE_DOWN as exc:
            log.warning("could not release the scheduler lease (it expires): %s", _short(exc))


def _calendar_pass(app: App, now: datetime) -> CalendarSyncReport:
    """Re-derive deadlines a changed calendar moves, and warn of a missing official year."""
    report = app.sync_calendar(now)
    for m in report.moved:
        log.info(
            "calendar changed: %s %s due %s -> %s (%d tasks)",
            m.obligation,
            m.period,
            m.old,
            m.new,
            m.tasks,
        )
    warning = app.calendar_warning(now)
    if warning is not None:
        log.warning("%s", warning.en)
    return report


def _catch_up(app: App, clock: Clock, stop: threading.Event) -> None:
    """Materialize and sweep as of now (after downtime: everything missed); retried while
    the database cannot be reached."""
    outage = database_outage("catch-up: the database")
    if until_reachable(lambda: _calendar_pass(app, clock()), outage, stop) is None:
        return
    made = until_reachable(
        lambda: materialize(app.store, calendar=app.calendar, now=clock(), tz=app.settings.tz),
        outage,
        stop,
    )
    if made is None:
        return
    log.info(
        "catch-up: %d periods checked, %d tasks created", made.periods_checked, made.tasks_created
    )
    swept = until_reachable(lambda: app.sweep(clock()), outage, stop)
    if swept is not None:
        log.info("catch-up: %d ladder steps, %d messages queued", swept.marks, swept.messages)
