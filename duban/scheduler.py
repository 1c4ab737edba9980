"""The embedded scheduler: APScheduler 3 in one process.

It only decides *when* to reconcile. One job per periodic obligation fires at the start of
each of its periods (local midnight in the plan's time zone) and materializes that
obligation; a reconcile job runs everything every few minutes (events, changed rosters,
anything missed); a lease job keeps this process the only scheduler on the database. At
start-up it reconciles once, which is the catch-up after downtime. All state is in the
database, so killing the process at any moment loses nothing.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Protocol
from zoneinfo import ZoneInfo

from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.schedulers.base import BaseScheduler
from apscheduler.schedulers.blocking import BlockingScheduler
from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.interval import IntervalTrigger
from sqlalchemy import select

from duban.bootstrap import App
from duban.domain.due import start_of_day
from duban.domain.obligations import Obligation
from duban.engine import lease
from duban.engine.materialize import domain_obligation, materialize
from duban.errors import SchedulerBusy
from duban.store.models import ObligationRow, Plan

log = logging.getLogger("duban.scheduler")
LEASE_RENEW = timedelta(seconds=30)
Clock = Callable[[], datetime]


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
    return f"duban run pid {os.getpid()} on {socket.gethostname()}"


def build_scheduler(
    app: App,
    clock: Clock,
    holder: str,
    stop: threading.Event,
    *,
    background: bool = False,
    on_lost: Callable[[], None] | None = None,
) -> BaseScheduler:
    tz = app.settings.tz
    kind = BackgroundScheduler if background else BlockingScheduler
    scheduler = kind(
        timezone=tz, job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": None}
    )

    def reconcile(only: str | None = None) -> None:
        report = materialize(app.store, calendar=app.calendar, now=clock(), tz=tz, only=only)
        log.info(
            "reconcile%s: %d periods checked, %d tasks created",
            f" {only}" if only else "",
            report.periods_checked,
            report.tasks_created,
        )

    def sweep_and_deliver() -> None:
        swept = app.sweep(clock())
        delivered = app.deliver(clock())
        if swept.messages or delivered.sent or delivered.retried or delivered.failed:
            log.info(
                "sweep: %d steps, %d messages; deliver: %d sent, %d to retry, %d failed",
                swept.marks,
                swept.messages,
                delivered.sent,
                delivered.retried,
                delivered.failed,
            )

    def deliver_only() -> None:
        delivered = app.deliver(clock())
        if delivered.sent or delivered.retried or delivered.failed:
            log.info(
                "deliver: %d sent, %d to retry, %d failed",
                delivered.sent,
                delivered.retried,
                delivered.failed,
            )

    def keep_lease() -> None:
        other = lease.acquire(app.store, holder=holder, now=clock())
        if other is not None:
            log.error("lost the scheduler lease to %s; stopping", other)
            stop.set()
            scheduler.shutdown(wait=False)
            if on_lost is not None:
                on_lost()

    with app.store.read() as session:
        plans = {pid: code for pid, code in session.execute(select(Plan.id, Plan.code))}
        rows = list(
            session.scalars(
                select(ObligationRow).where(
                    ObligationRow.active, ObligationRow.event_kind.is_(None)
                )
            )
        )
        obligations = [(r.code, domain_obligation(r, plans[r.plan_id])) for r in rows]
    for code, ob in obligations:
        scheduler.add_job(
            reconcile, PeriodStartTrigger(ob, tz), args=[code], id=code, name=f"materialize {code}"
        )
    scheduler.add_job(
        reconcile,
        IntervalTrigger(minutes=app.settings.reconcile_minutes),
        id="reconcile",
        name="reconcile everything",
    )
    scheduler.add_job(
        sweep_and_deliver,
        IntervalTrigger(minutes=app.settings.sweep_minutes),
        id="sweep",
        name="sweep ladders and digests, then deliver",
    )
    scheduler.add_job(
        deliver_only,
        IntervalTrigger(seconds=app.settings.deliver_seconds),
        id="deliver",
        name="deliver the outbox",
    )
    scheduler.add_job(
        keep_lease,
        IntervalTrigger(seconds=LEASE_RENEW.total_seconds()),
        id="lease",
        name="renew scheduler lease",
    )
    return scheduler


class Server(Protocol):
    """Something that serves in the foreground until stopped (the web UI's uvicorn server)."""

    def run(self) -> None: ...

    def stop(self) -> None: ...


def run(app: App, clock: Clock, serve: Server | None = None) -> None:
    """Run until interrupted. Raises SchedulerBusy if another scheduler holds the lease.

    With `serve`, the scheduler runs in the background and `serve.run()` holds the foreground
    (the web UI); stopping either stops both.
    """
    holder = holder_name()
    other = lease.acquire(app.store, holder=holder, now=clock())
    if other is not None:
        raise SchedulerBusy(
            f"another scheduler is running on this database: {other}; "
            "stop it first, or wait for its lease to expire"
        )
    stop = threading.Event()
    try:
        report = materialize(app.store, calendar=app.calendar, now=clock(), tz=app.settings.tz)
        log.info(
            "catch-up: %d periods checked, %d tasks created",
            report.periods_checked,
            report.tasks_created,
        )
        log.info("mail goes to %s", app.transport().describe())
        swept = app.sweep(clock())
        delivered = app.deliver(clock())
        log.info(
            "catch-up: %d ladder steps, %d messages enqueued, %d sent",
            swept.marks,
            swept.messages,
            delivered.sent,
        )
        if serve is None:
            scheduler = build_scheduler(app, clock, holder, stop)
            log.info("scheduler started: %d jobs; press Ctrl+C to stop", len(scheduler.get_jobs()))
            scheduler.start()
        else:
            scheduler = build_scheduler(
                app, clock, holder, stop, background=True, on_lost=serve.stop
            )
            scheduler.start()
            log.info("scheduler started: %d jobs; press Ctrl+C to stop", len(scheduler.get_jobs()))
            try:
                serve.run()
            finally:
                if scheduler.running:
                    scheduler.shutdown(wait=True)
    except (KeyboardInterrupt, SystemExit):
        log.info("stopping")
    finally:
        lease.release(app.store, holder=holder, now=clock())
