"""The one place that wires settings, store, calendar and catalog together."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta
from functools import cached_property

from duban.catalog.calendar import load_calendar
from duban.catalog.contacts import unreachable_steps
from duban.catalog.loader import Catalog, load_catalog
from duban.domain.due import local_date
from duban.domain.workdays import WorkdayCalendar
from duban.engine import adoption
from duban.engine.deliver import DeliverReport, deliver
from duban.engine.materialize import MaterializeReport, materialize
from duban.engine.notices import Context
from duban.engine.sweep import SweepReport, sweep
from duban.engine.sync import SyncReport, sync_catalog
from duban.notify.transport import EmlFolderTransport, SmtpConfig, SmtpTransport, Transport
from duban.settings import Settings
from duban.store.db import Store


@dataclass
class App:
    settings: Settings = field(default_factory=Settings)

    @cached_property
    def store(self) -> Store:
        return Store.from_url(self.settings.database_url)

    @cached_property
    def calendar(self) -> WorkdayCalendar:
        return load_calendar(self.settings.calendar_dir)

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
            now=now, tz=self.settings.tz, calendar=self.calendar, base_url=self.settings.base_url
        )

    def reconcile(self, now: datetime) -> tuple[MaterializeReport, SweepReport, DeliverReport]:
        """One full pass: materialize, sweep, deliver (what `duban tick` runs)."""
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

    def init(
        self,
        *,
        now: datetime,
        load: bool = True,
        adopted: date | None = None,
        actor: str = "system",
    ) -> SyncReport | None:
        """Create or upgrade the schema and (re)load the configured plans; safe to repeat.

        The catalog is validated before the database is touched, so a bad file changes nothing.
        A plan already stored whose file changed is held, not applied (`duban plan apply`).
        The first init adopts duban on `now`'s local day unless `adopted` says otherwise;
        `adopted` on a later init moves the date (audited). The report lists the ladder steps
        some organizations cannot receive (duban.catalog.contacts), for duties still owed.
        """
        catalog = self.catalog() if load else None
        self.store.upgrade()
        with self.store.write() as session:
            first = adoption.adopted_on(session) is None
            today = adoption.first_load_day(session, local_date(now, self.settings.tz))
            report = None
            if catalog is not None:
                report = sync_catalog(session, catalog, now=now, actor=actor, amend=False)
            stored = adoption.adopted_on(session)
            day = adopted or stored or today
            adopting = adoption.set_adopted(session, day, now=now, actor=actor)
        if report is None or catalog is None:
            return None
        unreachable = tuple(unreachable_steps(catalog, adopted=day))
        return replace(report, adoption=adopting, first_init=first, unreachable=unreachable)
