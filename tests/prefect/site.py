"""One duban site for the Prefect tests: the small plan under a prefix, its settings, its state.

Deployments are named after duty codes and the Prefect server is shared by the package's
tests, so each test loads tests/fixtures/mini-plan.yaml with its duty codes prefixed
(`k-drill`, `k-report`, …) and never meets another test's deployments.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import yaml
from sqlalchemy import create_engine, text

from duban.bootstrap import App
from duban.engine.sync import sync_catalog
from duban.settings import Settings
from tests.conftest import FIXTURES

TZ = ZoneInfo("Asia/Shanghai")
LOADED = datetime(2022, 3, 1, tzinfo=UTC)


def local(text_: str) -> datetime:
    """A local (Asia/Shanghai) time written as ISO, as an aware UTC datetime."""
    return datetime.fromisoformat(text_).replace(tzinfo=TZ).astimezone(UTC)


@dataclass(frozen=True)
class Site:
    url: str
    prefix: str
    plan: Path
    mail_dir: Path

    def code(self, duty: str) -> str:
        return f"{self.prefix}-{duty}"

    @property
    def env(self) -> dict[str, str]:
        """DUBAN_* variables that point a process (or a flow run's process) at this site."""
        return {
            "DUBAN_DATABASE_URL": self.url,
            "DUBAN_PLAN_FILES": f'["{self.plan}"]',
            "DUBAN_ORG_FILES": f'["{FIXTURES / "mini-orgs.yaml"}"]',
            "DUBAN_MAIL_DIR": str(self.mail_dir),
        }

    def app(self) -> App:
        return App(
            settings=Settings(
                database_url=self.url,
                plan_files=[self.plan],
                org_files=[FIXTURES / "mini-orgs.yaml"],
                mail_dir=self.mail_dir,
            )
        )

    def init(self, now: datetime = LOADED) -> None:
        app = self.app()
        app.init(now=now)
        app.store.dispose()

    def edit_plan(self, change: Any, now: datetime) -> None:
        """Rewrite the plan file (`change(plan_dict)` edits it) and apply it to the database."""
        data = yaml.safe_load(self.plan.read_text(encoding="utf-8"))
        change(data)
        self.plan.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
        app = self.app()
        with app.store.write() as session:
            sync_catalog(session, app.catalog(), now=now)
        app.store.dispose()


def make_site(folder: Path, url: str, prefix: str) -> Site:
    data = yaml.safe_load((FIXTURES / "mini-plan.yaml").read_text(encoding="utf-8"))
    data["plan"]["id"] = f"{prefix}-{data['plan']['id']}"
    for ob in data["obligations"]:
        ob["id"] = f"{prefix}-{ob['id']}"
    folder.mkdir(parents=True, exist_ok=True)
    plan = folder / "plan.yaml"
    plan.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    return Site(url=url, prefix=prefix, plan=plan, mail_dir=folder / "mail")


# What "the same state" means: every row a user or an auditor sees, by its natural key.
# Left out: surrogate ids (tasks are named by obligation, organization and period), and the
# outbox's claimed_at / sent_at, which delivery dates by the database's clock, not by `now`.
STATE_QUERIES = {
    "tasks": """
        SELECT o.code, g.code, t.period_key, t.period_start, t.period_end, t.due_date,
               t.due_at, t.opens_at, t.state, e.kind, e.occurred_on, t.submitted_at,
               t.created_at, t.updated_at
        FROM tasks t JOIN obligations o ON o.id = t.obligation_id
        JOIN organizations g ON g.id = t.org_id LEFT JOIN events e ON e.id = t.event_id
        ORDER BY 1, 2, 3""",
    "audit": """
        SELECT seq, at, actor, action, entity, entity_id, payload, prev_hash, hash
        FROM audit_events ORDER BY seq""",
    "outbox": """
        SELECT x.key, x.kind, x.recipient, x.day, x.step, x.state, x.attempts,
               x.next_attempt_at, x.subject, x.message_id, x.created_at, x.last_error,
               x.sent_at IS NOT NULL, o.code, g.code, t.period_key
        FROM outbox x LEFT JOIN tasks t ON t.id = x.task_id
        LEFT JOIN obligations o ON o.id = t.obligation_id
        LEFT JOIN organizations g ON g.id = t.org_id
        ORDER BY x.key""",
    "materializations": """
        SELECT o.code, m.period_key, m.fingerprint, m.tasks_created, m.at
        FROM materializations m JOIN obligations o ON o.id = m.obligation_id
        ORDER BY 1, 2""",
}


def state(url: str) -> dict[str, list[tuple[Any, ...]]]:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return {
                name: [tuple(row) for row in conn.execute(text(sql))]
                for name, sql in STATE_QUERIES.items()
            }
    finally:
        engine.dispose()


def process_env(*parts: dict[str, str]) -> dict[str, str]:
    env = dict(os.environ)
    for part in parts:
        env.update(part)
    return env
