"""The one place that wires settings, store, calendar and catalog together."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from functools import cached_property

from duban.catalog.calendar import load_calendar
from duban.catalog.loader import Catalog, load_catalog
from duban.domain.workdays import WorkdayCalendar
from duban.engine.sync import SyncReport, sync_catalog
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

    def init(self, *, now: datetime, load: bool = True) -> SyncReport | None:
        """Create or upgrade the schema and (re)load the configured plans; safe to repeat.

        The catalog is validated before the database is touched, so a bad file changes nothing.
        """
        catalog = self.catalog() if load else None
        self.store.upgrade()
        if catalog is None:
            return None
        with self.store.write() as session:
            return sync_catalog(session, catalog, now=now)
