"""`duban run` and `duban tick` under faults (issue 9, finding 6), through the real console
script: SIGTERM within seconds while a slow server is sending, a restart after kill -9 that
does not wait for the dead process, a database unreachable at start retried with one log
line, and a tick that says what it leaves waiting."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select, update

from duban.store.db import Store
from duban.store.models import Outbox
from tests.e2e.test_cli import DUBAN, MINI, duban
from tests.integration.smtp import SmtpServer, free_port, wait_until

START_TIMEOUT = 60


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def db_env(request, tmp_path: Path) -> dict[str, str]:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'duban.db'}"
    else:
        url = request.getfixturevalue("postgres_url")
    return {**MINI, "DUBAN_DATABASE_URL": url, "DUBAN_WEB": "false"}


class Running:
    """`duban run` in the background, its log in a file the test can poll."""

    def __init__(self, cwd: Path, env: dict[str, str], name: str = "run") -> None:
        self.log_file = cwd / f"{name}.log"
        self._log = self.log_file.open("w")
        self.process = subprocess.Popen(
            [DUBAN, "run"],
            cwd=cwd,
            env={**os.environ, "COLUMNS": "200", **env},
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )

    @property
    def log(self) -> str:
        return self.log_file.read_text()

    def wait_for(self, text: str, timeout: float = START_TIMEOUT) -> None:
        def seen() -> bool:
            if text in self.log:
                return True
            assert self.process.poll() is None, f"duban run ended early:\n{self.log}"
            return False

        wait_until(seen, timeout, f"{text!r} in the log of duban run")

    def terminate(self) -> float:
        """SIGTERM; seconds until it exited."""
        started = time.monotonic()
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=30)
        finally:
            self.close()
        return time.monotonic() - started

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=30)
        self._log.close()


@pytest.fixture
def running() -> Iterator[list[Running]]:
    started: list[Running] = []
    yield started
    for run in started:
        run.close()


def test_sigterm_stops_run_within_seconds_while_a_slow_server_is_sending(tmp_path, db_env, running):
    server = SmtpServer(tmp_path / "smtp")
    server.start()
    try:
        # yesterday's reminders could not go (the server was unreachable) ...
        down = {**db_env, "DUBAN_SMTP_URL": f"smtp://127.0.0.1:{free_port()}"}
        duban("init", "--now", "2022-04-01", cwd=tmp_path, env=db_env)
        for day in ("2022-06-21T09:00", "2022-06-24T09:00"):
            duban("tick", "--now", day, cwd=tmp_path, env=down)
        # ... and are retried a few seconds after `duban run` has started
        retry_at = datetime.now(UTC) + timedelta(seconds=4)
        store = Store.from_url(db_env["DUBAN_DATABASE_URL"])
        with store.write() as session:
            pending = update(Outbox).where(Outbox.state == "pending")
            waiting = session.execute(pending.values(next_attempt_at=retry_at)).rowcount
        assert waiting >= 6
        server.recorder.delay = 2  # each message takes 2 s: all of them, more than 12 s
        server.recorder.refuse["duty@office.example.org"] = "550 5.1.1 not today"
        env = {**db_env, "DUBAN_SMTP_URL": server.url, "DUBAN_DELIVER_SECONDS": "1"}
        run = Running(tmp_path, env)
        running.append(run)
        run.wait_for("scheduler started")
        wait_until(lambda: server.recorder.state()["data"] >= 1, 30, "the first message")
        took = run.terminate()
        assert run.process.returncode == 0, run.log
        assert took < 2 + 3, run.log  # the message in flight, then it stops
        with store.read() as session:
            states = list(session.scalars(select(Outbox.state)))
        assert "sending" not in states  # the unsent rest went back to the queue
        store.dispose()
    finally:
        server.stop()


def test_a_restart_after_kill_9_does_not_wait_for_the_dead_process(tmp_path, db_env, running):
    env = {**db_env, "DUBAN_MAIL_DIR": str(tmp_path / "mail")}
    first = Running(tmp_path, env, "first")
    running.append(first)
    first.wait_for("scheduler started")
    first.process.kill()
    first.process.wait(timeout=30)
    again = Running(tmp_path, env, "again")
    running.append(again)
    again.wait_for("scheduler started", timeout=30)
    assert "another scheduler" not in again.log
    assert again.terminate() < 10


class Proxy:
    """TCP on loopback to PostgreSQL that can be down (every connection dropped at once)."""

    def __init__(self, target: int) -> None:
        self.target = target
        self.port = free_port()
        self.up = threading.Event()
        self.refused = 0
        self._listener = socket.create_server(("127.0.0.1", self.port))
        self._open: list[socket.socket] = [self._listener]
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return  # closed
            if not self.up.is_set():
                self.refused += 1
                client.close()
                continue
            upstream = socket.create_connection(("127.0.0.1", self.target), timeout=10)
            upstream.settimeout(None)
            self._open += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    @staticmethod
    def _pump(source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for s in (source, sink):
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)

    def close(self) -> None:
        for s in self._open:
            with contextlib.suppress(OSError):
                s.close()
        self._thread.join(timeout=10)


@pytest.mark.postgres
def test_an_unreachable_database_at_start_is_retried_with_one_log_line(
    tmp_path, postgres_url, running
):
    real = postgres_url.rsplit("/", 1)
    port = int(real[0].rsplit(":", 1)[1])
    proxy = Proxy(port)
    try:
        via = f"{real[0].rsplit(':', 1)[0]}:{proxy.port}/{real[1]}"
        env = {**MINI, "DUBAN_DATABASE_URL": via, "DUBAN_WEB": "false"}
        run = Running(tmp_path, env)
        running.append(run)
        run.wait_for("the database cannot be reached")
        wait_until(lambda: proxy.refused >= 2, 30, "two attempts while it is down")
        proxy.up.set()
        run.wait_for("scheduler started")
        assert run.terminate() < 10
        log = run.log
        assert log.count("cannot be reached") == 1, log
        assert "can be reached again after" in log and "Traceback" not in log, log
    finally:
        proxy.close()


def test_tick_says_what_it_leaves_waiting(tmp_path, db_env):
    env = {**db_env, "DUBAN_MAIL_DIR": str(tmp_path / "mail")}
    duban("init", "--now", "2022-04-01", cwd=tmp_path, env=env)
    duban("tick", "--now", "2022-06-21T09:00", cwd=tmp_path, env=env)
    store = Store.from_url(db_env["DUBAN_DATABASE_URL"])
    with store.write() as session:  # another deliverer is sending three of them right now
        ids = list(session.scalars(select(Outbox.id).order_by(Outbox.id).limit(3)))
        session.execute(
            update(Outbox)
            .where(Outbox.id.in_(ids))
            .values(state="sending", claimed_at=datetime.now(UTC))
        )
    store.dispose()
    out = duban("tick", "--now", "2022-06-21T10:00", cwd=tmp_path, env=env).stdout
    said = " ".join(out.split())
    assert "0 sent, 0 to retry, 0 failed; still waiting: 3 claimed by another deliverer" in said
    unwritable = {**env, "DUBAN_MAIL_DIR": str(tmp_path / "mail" / "x.eml" / "mail")}
    (tmp_path / "mail" / "x.eml").write_text("a file, not a folder")
    done = duban("tick", "--now", "2022-06-29T09:00", cwd=tmp_path, env=unwritable)
    said = " ".join(done.stdout.split())
    assert "Traceback" not in done.stderr
    assert f"stopped: cannot write to the mail folder {tmp_path / 'mail' / 'x.eml'}" in said
    assert "still waiting: " in said and " to retry from 2022-06-29 01:15 UTC" in said
