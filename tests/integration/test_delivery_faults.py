"""Delivery under faults (issue 9, finding 6): each message at most once, except the one in
flight when a process dies; claims judged by the database's clock; storage and server
outages recorded and retried; one failure notice a day; connections always closed."""

from __future__ import annotations

import contextlib
import gc
import logging
import multiprocessing
import os
import signal
import subprocess
import threading
from collections import Counter
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, insert, select

from duban.engine import outbox
from duban.engine.claims import CLAIM_TIMEOUT
from duban.engine.deliver import deliver
from duban.engine.materialize import materialize
from duban.engine.notices import Context
from duban.notify.transport import EmlFolderTransport, SmtpConfig, SmtpTransport, Transport
from duban.store.db import Store
from duban.store.models import Outbox, Task
from tests.integration import workers
from tests.integration.helpers import TZ, at
from tests.integration.smtp import SmtpServer, wait_until

FROM = "duban@xinfeng.example.org"
OFFICE = "duty@office.example.org"
T = at("2022-06-21")


@pytest.fixture
def smtp(tmp_path: Path) -> Iterator[SmtpServer]:
    server = SmtpServer(tmp_path / "smtp")
    server.start()
    yield server
    server.stop()


def enqueue(store: Store, calendar, n: int, now: datetime = T, who: str = "p") -> list[str]:
    """`n` reminders due at `now`, to n different people (who0@…, who1@…); their keys."""
    materialize(store, calendar=calendar, now=now, tz=TZ)
    with store.write() as session:
        tasks = list(session.scalars(select(Task.id).order_by(Task.id)))
        rows = [
            {
                "key": f"reminder:{tasks[i % len(tasks)]}:{who}{i}",
                "kind": "reminder",
                "recipient": f"{who}{i}@example.org",
                "day": now.date(),
                "task_id": tasks[i % len(tasks)],
                "step": "reminder:-7:duty",
                "state": "pending",
                "attempts": 0,
                "next_attempt_at": now,
                "created_at": now,
            }
            for i in range(n)
        ]
        session.execute(insert(Outbox), rows)
    return [r["key"] for r in rows]


def ctx(calendar, now: datetime) -> Context:
    return Context(now=now, tz=TZ, calendar=calendar, base_url="https://duban.example.org")


def smtp_transport(smtp: SmtpServer) -> SmtpTransport:
    return SmtpTransport(SmtpConfig.parse(smtp.url), FROM)


def run(store: Store, calendar, now: datetime, transport: Transport, **kw):
    return deliver(store, transport, ctx=ctx(calendar, now), mail_from=FROM, **kw)


def received(smtp: SmtpServer) -> Counter[str]:
    return Counter(str(m["X-Duban-Key"]) for m in smtp.recorder.messages)


def states(store: Store) -> Counter[str]:
    with store.read() as session:
        return Counter(
            dict(session.execute(select(Outbox.state, func.count()).group_by(Outbox.state)).all())
        )


def age_claims(store: Store, by: timedelta) -> None:
    """As if `by` had passed on the database's clock since the rows were claimed."""
    with store.write() as session:
        for row in session.scalars(select(Outbox).where(Outbox.state == "sending")):
            row.claimed_at = row.claimed_at - by


def test_two_deliverers_whose_clocks_differ_send_each_message_once(mini, calendar, smtp):
    keys = enqueue(mini, calendar, 30)
    smtp.recorder.delay = 0.05
    first = threading.Thread(target=run, args=(mini, calendar, T, smtp_transport(smtp)))
    first.start()
    try:
        wait_until(lambda: smtp.recorder.count() >= 2, 30, "the first deliverer to send")
        # a second deliverer whose clock is 11 minutes ahead (another machine, or --now)
        second = run(mini, calendar, T + timedelta(minutes=11), smtp_transport(smtp))
    finally:
        first.join(timeout=60)
    assert second.sent == 0
    assert received(smtp) == Counter(keys)


def test_a_claim_is_renewed_while_a_slow_server_outlasts_the_claim_timeout(mini, calendar, smtp):
    keys = enqueue(mini, calendar, 12)
    smtp.recorder.delay = 0.25  # 3 s in all, three times the claim timeout below
    timeout = timedelta(seconds=1)
    first = threading.Thread(
        target=run,
        args=(mini, calendar, T, smtp_transport(smtp)),
        kwargs={"claim_timeout": timeout},
    )
    first.start()
    others = 0
    try:
        wait_until(lambda: smtp.recorder.state()["data"] >= 1, 30, "the first deliverer to send")
        while first.is_alive():
            others += run(mini, calendar, T, smtp_transport(smtp), claim_timeout=timeout).sent
            first.join(timeout=0.1)
    finally:
        first.join(timeout=60)
    assert received(smtp) == Counter(keys)
    assert others == 0 and states(mini) == {"sent": 12}


def test_kill_9_while_delivering_resends_at_most_the_message_in_flight(
    mini, calendar, smtp, db_url
):
    keys = enqueue(mini, calendar, 20)
    smtp.recorder.delay = 0.2
    process = multiprocessing.get_context("spawn").Process(
        target=workers.deliver_now, args=(db_url, smtp.url, T.isoformat())
    )
    process.start()
    try:
        wait_until(lambda: smtp.recorder.state()["data"] >= 6, 60, "six messages begun")
    finally:
        os.kill(process.pid, signal.SIGKILL)
        process.join(timeout=30)
    assert process.exitcode == -signal.SIGKILL
    sent_before = smtp.recorder.count()
    assert 5 <= sent_before < 20
    smtp.recorder.delay = 0
    # nothing is touched before the dead process's claim is stale by the database's clock
    later = T + timedelta(minutes=1)
    assert run(mini, calendar, later, smtp_transport(smtp)).sent == 0
    age_claims(mini, CLAIM_TIMEOUT)
    run(mini, calendar, later, smtp_transport(smtp))
    got = received(smtp)
    assert set(got) == set(keys)
    twice = [k for k, n in got.items() if n > 1]
    assert len(twice) <= 1 and all(got[k] == 2 for k in twice), got
    assert states(mini) == {"sent": 20}


def test_a_mail_folder_that_is_not_writable_is_retried_and_counted_toward_the_give_up(
    mini, calendar, tmp_path
):
    enqueue(mini, calendar, 5)
    (tmp_path / "a-file").write_text("not a folder")
    folder = tmp_path / "a-file" / "mail"
    report = run(mini, calendar, T, EmlFolderTransport(folder))
    assert report.sent == 0 and report.retried == 5 and report.failed == 0
    assert (
        report.unavailable
        == f"cannot write to the mail folder {folder} (mail_dir): Not a directory"
    )
    rows = outbox.list_messages(mini)
    assert {(r["state"], r["attempts"], r["last_error"]) for r in rows} == {
        ("pending", 1, report.unavailable)
    }
    assert report.waiting == outbox.Waiting(
        due=0, later=5, next_at=T + timedelta(minutes=15), sending=0
    )
    # five days later it is given up, and the county office is told once, not five times
    late = run(mini, calendar, T + timedelta(days=5), EmlFolderTransport(folder))
    assert late.failed == 5
    notices = [r for r in outbox.list_messages(mini) if r["kind"] == "failure"]
    assert [n["recipient"] for n in notices] == [OFFICE]


@pytest.fixture
def tiny_disk(tmp_path: Path) -> Iterator[Path]:
    """A real 64 KiB file system (tmpfs), mounted for the test (the tests run as root)."""
    where = tmp_path / "tiny"
    where.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(where)])
    if mounted.returncode != 0:
        pytest.skip("cannot mount a tmpfs here (the test needs root)")
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], check=False)


def fill(disk: Path) -> Path:
    filler = disk / "filler"
    with contextlib.suppress(OSError), filler.open("wb") as f:
        while True:
            f.write(b"0" * 4096)
            f.flush()
    return filler


def test_a_full_disk_is_retried_and_delivers_once_there_is_room(mini, calendar, tiny_disk):
    enqueue(mini, calendar, 3)
    folder = tiny_disk / "mail"
    folder.mkdir()
    filler = fill(tiny_disk)
    report = run(mini, calendar, T, EmlFolderTransport(folder))
    assert report.retried == 3 and report.sent == 0
    assert (
        report.unavailable
        == f"cannot write to the mail folder {folder} (mail_dir): the disk is full"
    )
    assert not list(folder.iterdir())  # no half-written file left behind
    filler.unlink()
    again = run(mini, calendar, T + timedelta(minutes=15), EmlFolderTransport(folder))
    assert again.sent == 3 and len(list(folder.glob("*.eml"))) == 3


def test_a_read_only_mail_folder_is_retried(mini, calendar, tiny_disk):
    enqueue(mini, calendar, 2)
    subprocess.run(["mount", "-o", "remount,ro", str(tiny_disk)], check=True)
    report = run(mini, calendar, T, EmlFolderTransport(tiny_disk / "mail"))
    assert report.retried == 2 and report.unavailable is not None
    assert report.unavailable.endswith("it is read-only or not writable by this user")


def test_smtp_down_for_more_than_five_days_tells_the_county_office_once(mini, calendar, smtp):
    enqueue(mini, calendar, 40)
    smtp.stop()
    assert run(mini, calendar, T, smtp_transport(smtp)).retried == 40
    gone = run(mini, calendar, T + timedelta(days=5, minutes=1), smtp_transport(smtp))
    assert gone.failed == 40
    smtp.start()
    run(mini, calendar, T + timedelta(days=5, minutes=2), smtp_transport(smtp))
    (notice,) = smtp.recorder.to(OFFICE)
    assert notice["Subject"].startswith("【督办·投递失败】40 封督办邮件未能送达")
    body = str(notice.get_body(("plain",)).get_content())
    assert body.count("duban outbox retry ") == 40 + 1  # each, and all of them
    # later failures make tomorrow's notice, listing only those
    enqueue(mini, calendar, 1, now=T + timedelta(days=5, hours=1), who="q")
    smtp.recorder.refuse["q0@example.org"] = "550 5.1.1 no such user"
    run(mini, calendar, T + timedelta(days=5, hours=2), smtp_transport(smtp))
    assert len(smtp.recorder.to(OFFICE)) == 1
    run(mini, calendar, T + timedelta(days=6), smtp_transport(smtp))
    notices = smtp.recorder.to(OFFICE)
    assert len(notices) == 2
    assert notices[1]["Subject"].startswith("【督办·投递失败】1 封督办邮件未能送达：q0@example.org")


def test_deliver_logs_no_line_per_message(mini, calendar, smtp, caplog):
    enqueue(mini, calendar, 30)
    smtp.recorder.tempfail_data = 10
    with caplog.at_level(logging.INFO, logger="duban"):
        report = run(mini, calendar, T, smtp_transport(smtp))
    assert report.sent == 20 and report.retried == 10
    assert report.errors == ["451 4.3.0 mailbox busy, try again later (10 messages)"]
    assert len([r for r in caplog.records if r.name.startswith("duban")]) <= 1


@pytest.mark.parametrize("case", ["sent", "refused", "login refused"])
def test_the_connection_is_closed_when_deliver_returns(mini, calendar, smtp, case):
    enqueue(mini, calendar, 3)
    url = smtp.url
    if case == "refused":
        smtp.recorder.refuse["p1@example.org"] = "550 5.1.1 no such user"
    if case == "login refused":  # the test server offers no AUTH: the login fails
        url = f"smtp://mailer:secret@127.0.0.1:{smtp.port}"
    gc.disable()  # an unclosed client would only be closed by the collector
    try:
        run(mini, calendar, T, SmtpTransport(SmtpConfig.parse(url), FROM))
        wait_until(lambda: smtp.recorder.state()["open"] == 0, 5, "the connection to close")
    finally:
        gc.enable()
    assert smtp.recorder.state()["quit"] >= 1
