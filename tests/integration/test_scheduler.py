"""The embedded scheduler under faults (issue 9, finding 6): the lease is renewed through a
long catch-up; a slow mail server holds up neither the sweep nor a stop request."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.exc import OperationalError

from duban import scheduler
from duban.bootstrap import App
from duban.engine import lease
from duban.settings import Settings
from duban.store.models import Outbox
from tests.conftest import FIXTURES
from tests.integration.helpers import at
from tests.integration.smtp import SmtpServer, wait_until


def app_for(db_url: str, tmp_path: Path, smtp_url: str | None = None) -> App:
    return App(
        settings=Settings(
            database_url=db_url,
            plan_files=[FIXTURES / "mini-plan.yaml"],
            org_files=[FIXTURES / "mini-orgs.yaml"],
            mail_dir=tmp_path / "mail",
            smtp_url=smtp_url,
            mail_from="duban@xinfeng.example.org",
            web=False,
        )
    )


@pytest.fixture
def smtp(tmp_path: Path) -> Iterator[SmtpServer]:
    server = SmtpServer(tmp_path / "smtp")
    server.start()
    yield server
    server.stop()


class Foreground:
    """A stand-in for the web server: returns at once, so `run` ends after its catch-up."""

    def run(self) -> None:
        return None

    def stop(self) -> None:
        return None


def test_the_lease_is_renewed_while_the_catch_up_runs(mini, db_url, tmp_path, monkeypatch):
    app = app_for(db_url, tmp_path)
    monkeypatch.setattr(lease, "DEFAULT_TTL", timedelta(seconds=1))
    monkeypatch.setattr(scheduler, "LEASE_RENEW", timedelta(seconds=0.2))
    catching_up, finish = threading.Event(), threading.Event()
    real = scheduler.materialize

    def slow_catch_up(*args, **kwargs):
        catching_up.set()
        finish.wait(30)  # a catch-up several times longer than the lease's time to live
        return real(*args, **kwargs)

    monkeypatch.setattr(scheduler, "materialize", slow_catch_up)
    running = threading.Thread(
        target=scheduler.run, args=(app, lambda: datetime.now(UTC), Foreground())
    )
    running.start()
    try:
        assert catching_up.wait(30)
        until = time.monotonic() + 3
        while time.monotonic() < until:
            # another `duban run`, whose clock is an hour ahead, is refused all along
            ahead = datetime.now(UTC) + timedelta(hours=1)
            held = lease.acquire(mini, holder="second", now=ahead)
            assert held is not None and held.startswith("duban run pid")
            time.sleep(0.1)
    finally:
        finish.set()
        running.join(timeout=30)
    assert not running.is_alive()
    assert lease.acquire(mini, holder="second") is None  # released on the way out
    app.store.dispose()


def test_a_slow_mail_server_holds_up_neither_the_sweep_nor_a_stop(mini, db_url, tmp_path, smtp):
    app = app_for(db_url, tmp_path, smtp_url=smtp.url)
    moment = [at("2022-06-21")]

    def clock() -> datetime:
        return moment[0]

    app.reconcile(moment[0])  # queues the day's reminders; the server is fast until now
    smtp.recorder.delay = 1.0
    with app.store.write() as session:
        for row in session.scalars(select(Outbox)):
            row.state, row.next_attempt_at = "pending", moment[0]  # all to be sent again
    stop = threading.Event()
    deliverer = scheduler.Deliverer(app, clock, stop)
    jobs = scheduler.build_scheduler(app, clock, stop, deliverer=deliverer, background=True)
    sweep = jobs.get_job("sweep").func
    deliverer.start()
    try:
        wait_until(lambda: smtp.recorder.state()["data"] >= 1, 30, "delivery to begin")
        moment[0] = at("2022-06-29")  # a week later: new reminders are due
        started = time.monotonic()
        sweep()
        assert time.monotonic() - started < 2
        assert count(app, day=moment[0].date()) > 0
    finally:
        started = time.monotonic()
        stop.set()
        deliverer.join(timeout=10)
    assert time.monotonic() - started < 2.5  # the message in flight, then it stops
    assert not deliverer.is_alive()
    assert count(app, state="sending") == 0  # what it had not sent is back in the queue
    app.store.dispose()


def count(app: App, **where: object) -> int:
    with app.store.read() as session:
        query = select(func.count()).select_from(Outbox)
        for name, value in where.items():
            query = query.where(getattr(Outbox, name) == value)
        return int(session.scalar(query) or 0)


def test_a_database_lost_during_the_catch_up_is_retried_with_one_log_line(
    mini, db_url, tmp_path, monkeypatch, caplog
):
    app = app_for(db_url, tmp_path)
    monkeypatch.setattr(scheduler, "DB_RETRY", timedelta(seconds=0.05))
    calls: list[int] = []
    real = scheduler.materialize

    def flaky(*args, **kwargs):
        calls.append(1)
        if len(calls) <= 3:
            raise OperationalError("SELECT 1", {}, Exception("server closed the connection"))
        return real(*args, **kwargs)

    monkeypatch.setattr(scheduler, "materialize", flaky)
    with caplog.at_level(logging.INFO, logger="duban"):
        scheduler.run(app, lambda: datetime.now(UTC), Foreground())
    said = [r.getMessage() for r in caplog.records if "the database" in r.getMessage()]
    assert len(calls) == 4
    assert said[0] == (
        "catch-up: the database cannot be reached: server closed the connection; retrying"
    )
    assert len(said) == 2 and said[1].startswith("catch-up: the database can be reached again")
    assert any(r.getMessage().startswith("scheduler started") for r in caplog.records)
    app.store.dispose()
