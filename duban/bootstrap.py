"""The one place that wires settings, store, calendar and catalog together."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta
from functools import cached_property
from pathlib import Path

from duban.catalog.calendar import load_calendar
from duban.catalog.contacts import unreachable_steps
from duban.catalog.loader import Catalog, load_catalog
from duban.domain.due import local_date
from duban.domain.workdays import WorkdayCalendar
from duban.engine import adoption, lease, plans_end
from duban.engine.announcements import Announcement, plan_end_announcement
from duban.engine.calendar_sync import (
    CalendarSyncReport,
    CalendarWarning,
    calendar_warning,
    sync_calendar,
)
from duban.engine.deliver import DeliverReport, deliver
from duban.engine.materialize import MaterializeReport, materialize
from duban.engine.notices import Context
from duban.engine.sweep import SweepReport, sweep
from duban.engine.sync import SyncReport, sync_catalog
from duban.errors import SchedulerBusy
from duban.notify.transport import EmlFolderTransport, SmtpConfig, SmtpTransport, Transport
from duban.resources import bundled
from duban.settings import Settings
from duban.store.db import Store

CALENDAR_RECHECK_SECONDS = 30.0


def _folder_stamp(folder: Path | None) -> tuple[tuple[str, int], ...]:
    if folder is None or not folder.is_dir():
        return ()
    return tuple(sorted((p.name, p.stat().st_mtime_ns) for p in folder.glob("*.y*ml")))


@dataclass
class App:
    settings: Settings = field(default_factory=Settings)
    _calendar: WorkdayCalendar | None = field(default=None, init=False, repr=False)
    _calendar_stamp: tuple[tuple[str, int], ...] = field(default=(), init=False, repr=False)
    _calendar_checked: float = field(default=0.0, init=False, repr=False)

    @cached_property
    def store(self) -> Store:
        return Store.from_url(self.settings.database_url)

    @property
    def calendar(self) -> WorkdayCalendar:
        """The working-day calendar: the bundled years, calendar_dir's, provisional ones.

        Reloaded when calendar_dir's files change (looked at no more than every
        `CALENDAR_RECHECK_SECONDS`), so a `duban run` or `duban web` that is running picks up
        a year written by `duban calendar import` without a restart.
        """
        now = time.monotonic()
        if self._calendar is None or now - self._calendar_checked >= CALENDAR_RECHECK_SECONDS:
            self._calendar_checked = now
            stamp = _folder_stamp(self.settings.calendar_dir)
            if self._calendar is None or stamp != self._calendar_stamp:
                self._calendar = load_calendar(
                    bundled("calendar"), local=self.settings.calendar_dir
                )
                self._calendar_stamp = stamp
        return self._calendar

    def sync_calendar(self, now: datetime, *, actor: str = "scheduler") -> CalendarSyncReport:
        """Re-derive owed deadlines in years whose days off changed (engine.calendar_sync)."""
        return sync_calendar(self.store, calendar=self.calendar, now=now, tz=self.tz, actor=actor)

    def calendar_warning(self, now: datetime) -> CalendarWarning | None:
        return calendar_warning(
            self.calendar,
            today=local_date(now, self.settings.tz),
            warn_from=self.settings.calendar_warning_from,
            calendar_dir=str(self.settings.calendar_dir or "calendar_dir"),
        )

    def catalog(self) -> Catalog:
        return load_catalog(self.settings.plan_files, self.settings.org_files, self.calendar)

    @property
    def tz(self):  # type: ignore[no-untyped-def]
        return self.settings.tz

    def transport(self) -> Transport:
        """SMTP when configured; otherwise .eml files in mail_dir (the embedded default)."""
        if self.settings.smtp_url is not None:
            config = SmtpConfig.parse(self.settings.smtp_url.get_secret_value())
            return SmtpTransport(config, self.settings.mail_from)
        return EmlFolderTransport(self.settings.mail_dir)

    def context(self, now: datetime) -> Context:
        return Context(
            now=now,
            tz=self.settings.tz,
            calendar=self.calendar,
            base_url=self.settings.base_url,
            announcements=self.announcements(now),
        )

    def announcements(self, now: datetime) -> tuple[Announcement, ...]:
        """What the county office must hear now: a missing official calendar year, and the
        plans whose window ends within `plan_end_warning_days` (engine.plans_end)."""
        said: list[Announcement] = []
        warning = self.calendar_warning(now)
        if warning is not None:
            said.append(Announcement(kind="calendar", zh=warning.zh, en=warning.en))
        with self.store.read() as session:
            ending = plans_end.ending_plans(
                session,
                today=local_date(now, self.settings.tz),
                within_days=self.settings.plan_end_warning_days,
            )
        said.extend(plan_end_announcement(p) for p in ending)
        return tuple(said)

    def reconcile(self, now: datetime) -> tuple[MaterializeReport, SweepReport, DeliverReport]:
        """One full pass: materialize, sweep, deliver (what `duban tick` runs)."""
        self.sync_calendar(now)
        made = materialize(self.store, calendar=self.calendar, now=now, tz=self.settings.tz)
        swept = self.sweep(now)
        return made, swept, self.deliver(now)

    def sweep(self, now: datetime) -> SweepReport:
        return sweep(
            self.store,
            calendar=self.calendar,
            now=now,
            tz=self.settings.tz,
            catchup=timedelta(days=self.settings.catchup_days),
        )

    def deliver(self, now: datetime, *, stop: threading.Event | None = None) -> DeliverReport:
        """Deliver the outbox as of `now`; `stop` ends it after the message in flight."""
        return deliver(
            self.store,
            self.transport(),
            ctx=self.context(now),
            mail_from=self.settings.mail_from,
            retry=self.settings.retry_policy,
            stop=stop,
        )

    def claim(self, holder: str) -> str | None:
        """Take the scheduler lease for `holder` before anything else is written: None when
        taken, else who holds it (and nothing was changed).

        The lease's table and row are the same in every schema revision (0001 on), and an
        earlier release's running scheduler renews that very row, so a database of any
        revision is claimed as it is, before it is upgraded: an old scheduler at work keeps
        this release off its database. Only an empty database gets its schema first: there
        is nothing in it to lose, and the lease lives in it. A database at a revision this
        release does not know raises SchemaAhead, untouched.
        """
        if self.store.require_known() is None:
            self.store.upgrade()
        return lease.acquire(self.store, holder=holder)

    def init(
        self,
        *,
        now: datetime,
        load: bool = True,
        adopted: date | None = None,
        actor: str = "system",
        holder: str | None = None,
    ) -> SyncReport | None:
        """Create or upgrade the schema and (re)load the configured plans; safe to repeat.

        The catalog is validated before the database is touched, so a bad file changes nothing.
        Then the scheduler lease is taken (`claim`) for the whole init, unless the caller holds
        it already as `holder` (`duban run`): while another scheduler holds it the init raises
        SchedulerBusy, having changed nothing, so neither a running `duban run` or Prefect
        deployment of this release nor an earlier release's sees its schema, catalogue or
        adoption change under it.
        A plan already stored whose file changed is held, not applied (`duban plan apply`).
        The first init adopts duban on the day `adoption.evidence_day` gives (a new
        database: `now`'s local day; one an earlier release wrote: the earliest day it holds
        evidence of, so an upgrade withdraws nothing) unless `adopted` says otherwise;
        `adopted` on a later init moves the date (audited; earlier reopens, later withdraws).
        The report lists the ladder steps some organizations cannot receive
        (duban.catalog.contacts), for duties still owed.
        """
        catalog = self.catalog() if load else None
        if holder is not None:
            return self._init(now=now, catalog=catalog, adopted=adopted, actor=actor)
        holder = lease.holder_name("duban init")
        other = self.claim(holder)
        if other is not None:
            raise SchedulerBusy(
                f"another scheduler is running on this database: {other}; stop it first "
                "(or wait for its lease to expire), then run duban init again; nothing was "
                "changed"
            )
        with lease.held(self.store, holder=holder):
            return self._init(now=now, catalog=catalog, adopted=adopted, actor=actor)

    def _init(
        self, *, now: datetime, catalog: Catalog | None, adopted: date | None, actor: str
    ) -> SyncReport | None:
        """`init`'s work, under the lease: upgrade, sync, adoption, in that order."""
        self.store.upgrade()
        with self.store.write() as session:
            first = adoption.adopted_on(session) is None
            evidence = adoption.evidence_day(
                session, today=local_date(now, self.settings.tz), tz=self.settings.tz
            )
            report = None
            if catalog is not None:
                report = sync_catalog(session, catalog, now=now, actor=actor, amend=False)
            stored = adoption.adopted_on(session)
            day = adopted or stored or evidence
            adopting = adoption.set_adopted(session, day, now=now, actor=actor)
        if report is None or catalog is None:
            return None
        unreachable = tuple(unreachable_steps(catalog, adopted=day))
        return replace(report, adoption=adopting, first_init=first, unreachable=unreachable)
