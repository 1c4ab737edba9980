"""Configuration from `DUBAN_*` environment variables and an optional `duban.toml`.

Precedence: explicit arguments, then environment, then `duban.toml` in the working directory
(or the file named by `DUBAN_CONFIG`), then the embedded defaults: a SQLite file `duban.db`
in the working directory, Asia/Shanghai, and the bundled plans, county and calendar.
"""

from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from pydantic import Field, SecretStr
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from duban.domain.retry import RetryPolicy
from duban.resources import bundled_orgs, bundled_plans


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="DUBAN_", extra="forbid")

    database_url: str = "sqlite:///duban.db"
    timezone: str = "Asia/Shanghai"
    plan_files: list[Path] = Field(default_factory=bundled_plans)
    org_files: list[Path] = Field(default_factory=bundled_orgs)
    #: a folder of YYYY.yaml working-day years that *adds to* the bundled ones (2018–2026):
    #: a year the package lacks, or a local file overriding a bundled year; by default
    #: `calendar/` in the working directory, beside duban.db (`duban calendar import` writes
    #: here; `duban calendar list` says which file each year comes from)
    calendar_dir: Path | None = Path("calendar")
    #: from this month-day on, `tick`, `run`, the home page and the weekly summary warn when
    #: next year's official calendar is missing (its dates would be provisional)
    calendar_warning_from: str = Field(
        default="11-01", pattern=r"^(0[1-9]|1[0-2])-(0[1-9]|[12]\d|3[01])$"
    )
    #: how often `duban run` reconciles everything, besides each obligation's own period starts
    reconcile_minutes: int = 60
    #: how often `duban run` sweeps (ladder steps, digests) and delivers the outbox
    sweep_minutes: int = 15
    deliver_seconds: int = 60
    #: a ladder step whose moment is older than this is stale and not sent (summaries cover it)
    catchup_days: int = 14
    #: from this many days before a plan's window ends, its end is announced (`plan show`,
    #: the administrator's home, the weekly summary: duban.engine.plans_end.ending_plans)
    plan_end_warning_days: int = Field(default=60, ge=0, le=366)
    #: SMTP: smtp://user:pass@host:587?starttls=true, smtps://user:pass@host:465, or
    #: smtp://127.0.0.1:2525 for an unauthenticated relay. Unset: write .eml files to mail_dir.
    smtp_url: SecretStr | None = None
    mail_from: str = "duban@localhost.localdomain"
    mail_dir: Path = Path("outbox-mail")
    #: a message that failed with a 4xx or a dropped connection is tried again after
    #: retry_first_minutes, doubling up to retry_cap_minutes, and failed after retry_give_up_days
    retry_first_minutes: int = Field(default=15, ge=1)
    retry_cap_minutes: int = Field(default=240, ge=1)
    retry_give_up_days: int = Field(default=5, ge=1)
    #: links in messages point here (the web UI)
    base_url: str = "http://127.0.0.1:8000"
    #: the web UI: `duban run` serves it too unless web is false; `duban web` serves it alone
    web: bool = True
    web_host: str = "127.0.0.1"
    web_port: int = 8000
    #: processes serving `duban web` (pages render in Python: one process uses one core)
    web_workers: int = Field(default=1, ge=1, le=64)
    #: uploaded evidence, stored by SHA-256; never inside a folder the web server serves
    evidence_dir: Path = Path("evidence-files")
    upload_max_mb: int = Field(default=20, ge=1)
    #: reverse proxies whose X-Forwarded-For is believed (addresses or networks, e.g.
    #: ["127.0.0.1"] behind a local nginx); none by default, so no client picks its address
    trusted_proxies: list[str] = Field(default_factory=list)

    @property
    def retry_policy(self) -> RetryPolicy:
        return RetryPolicy(
            first=timedelta(minutes=self.retry_first_minutes),
            cap=timedelta(minutes=self.retry_cap_minutes),
            give_up=timedelta(days=self.retry_give_up_days),
        )

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        toml_file = Path(os.environ.get("DUBAN_CONFIG", "duban.toml"))
        return (
            init_settings,
            env_settings,
            TomlConfigSettingsSource(settings_cls, toml_file=toml_file),
        )
