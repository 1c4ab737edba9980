"""Benchmark: sweep over ~1,000,000 open tasks, and delivery to a local SMTP server.

    python bench/notify.py [--orgs 13000] [--db sqlite postgresql] [--messages 2000]

Sweep: the time of `sweep(now)` on a mid-year day against the baseline of one indexed scan of
the same open tasks (SELECT id, due_date … WHERE state IN ('open', 'rejected') through the same
driver). Target ratio ≤ 3.
Delivery: `deliver(now)` of N outbox messages to a local aiosmtpd server (claim, render, send,
record each outcome as the server answers) against raw smtplib sending the same, already
rendered, messages over one connection (`send_message`). Target: duban's rate ≥ 80% of the raw
rate. For reference it also prints the protocol alone: raw smtplib sending bytes serialized
in advance (`sendmail`), which no sender of new messages can beat.
"""

from __future__ import annotations

import argparse
import json
import smtplib
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import create_engine, func, insert, select, text

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.materialize import PG_ADMIN, TAGS, loaded, write_inputs  # noqa: E402
from duban.engine.deliver import deliver  # noqa: E402
from duban.engine.materialize import materialize  # noqa: E402
from duban.engine.notices import Context, context_for  # noqa: E402
from duban.engine.sweep import sweep  # noqa: E402
from duban.notify.render import render, to_email  # noqa: E402
from duban.notify.transport import SmtpConfig, SmtpTransport  # noqa: E402
from duban.notify.wire import wire_bytes  # noqa: E402
from duban.store.db import Store  # noqa: E402
from duban.store.models import Outbox, Task  # noqa: E402
from tests.integration.smtp import free_port  # noqa: E402


def wait_for_port(port: int) -> None:
    for _ in range(100):
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise RuntimeError(f"the SMTP server did not start on port {port}")


TZ = ZoneInfo("Asia/Shanghai")
FROM = "duban@bench.example.org"


def add_contacts(org_file: Path) -> None:
    data = json.loads(org_file.read_text())
    data["tags"]["county-office"] = "county office"
    for org in data["organizations"]:
        org["contacts"] = {
            "duty": {"role": "duty", "email": f"duty@{org['id']}.example.org"},
            "head": {"role": "head", "email": f"head@{org['id']}.example.org"},
        }
    data["organizations"].append(
        {
            "id": "office",
            "name": "县卫健委",
            "tags": ["county-office"],
            "contacts": {"duty": {"role": "duty", "email": "duty@office.example.org"}},
        }
    )
    org_file.write_text(json.dumps(data, ensure_ascii=False))


def timed(fn: Any) -> tuple[Any, float]:
    started = time.perf_counter()
    result = fn()
    return result, time.perf_counter() - started


def bench_sweep(store: Store, calendar: Any) -> None:
    now = datetime(2024, 12, 31, tzinfo=UTC)
    materialize(store, calendar=calendar, now=now, tz=TZ)
    with store.read() as session:
        total = session.scalar(select(func.count()).select_from(Task))

    def scan() -> int:
        count = 0
        with store.engine.connect() as conn:
            rows = conn.execution_options(yield_per=10_000).execute(
                select(Task.id, Task.due_date).where(Task.state.in_(["open", "rejected"]))
            )
            for _ in rows:
                count += 1
        return count

    scanned, base = timed(scan)
    # Day 1 is the worst case: nothing was ever submitted, so the sweep catches up on two
    # weeks of steps for a fifth of all tasks at once. Then an ordinary day: 06-25, when the
    # June reports reach their 7-day reminder.
    day = datetime(2024, 6, 20, 1, tzinfo=UTC)
    report, first = timed(lambda: sweep(store, calendar=calendar, now=day, tz=TZ))
    again, rerun = timed(lambda: sweep(store, calendar=calendar, now=day, tz=TZ))
    assert scanned == total and again.messages == 0
    nxt = datetime(2024, 6, 25, 1, tzinfo=UTC)  # the June reports reach their 7-day step
    following, ordinary = timed(lambda: sweep(store, calendar=calendar, now=nxt, tz=TZ))
    print(
        f"  sweep: {total:,} open tasks; indexed scan {base:5.2f} s\n"
        f"    first sweep (catch-up) {first:6.2f} s ratio {first / base:4.2f} "
        f"({report.marks:,} steps, {report.messages:,} messages)\n"
        f"    an ordinary day        {ordinary:6.2f} s ratio {ordinary / base:4.2f} "
        f"({following.marks:,} steps, {following.messages:,} messages)\n"
        f"    re-run of a day        {rerun:6.2f} s ratio {rerun / base:4.2f} (nothing new)"
    )


def bench_deliver(store: Store, calendar: Any, messages: int) -> None:
    now = datetime(2024, 6, 20, 2, tzinfo=UTC)
    with store.write() as session:
        session.execute(text("DELETE FROM outbox"))
        task_ids = list(session.scalars(select(Task.id).limit(messages)))
        session.execute(
            insert(Outbox),
            [
                {
                    "key": f"reminder:{t}:bench",
                    "kind": "reminder",
                    "recipient": f"p{i}@example.org",
                    "day": now.date(),
                    "task_id": t,
                    "step": "reminder:-7:duty",
                    "state": "pending",
                    "attempts": 0,
                    "next_attempt_at": now,
                    "created_at": now,
                }
                for i, t in enumerate(task_ids)
            ],
        )
    ctx = Context(now=now, tz=TZ, calendar=calendar, base_url="https://duban.example.org")
    with store.read() as session:
        rendered = [
            to_email(
                render(r.kind, context_for(session, r, ctx), to=r.recipient, key=r.key),
                mail_from=FROM,
            )
            for r in session.scalars(select(Outbox).order_by(Outbox.id))
        ]
    # the server runs in its own process, as a real mail server would
    port = free_port()
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "aiosmtpd",
            "-n",
            "-c",
            "aiosmtpd.handlers.Sink",
            "-l",
            f"127.0.0.1:{port}",
        ]
    )
    wait_for_port(port)
    try:

        def raw() -> None:
            with smtplib.SMTP("127.0.0.1", port) as smtp:
                for msg in rendered:
                    smtp.send_message(msg, from_addr=FROM)

        _, base = timed(raw)
        wires = [(str(m["To"]), wire_bytes(m)) for m in rendered]

        def protocol() -> None:
            with smtplib.SMTP("127.0.0.1", port) as smtp:
                for to, wire in wires:
                    smtp.sendmail(FROM, [to], wire)

        _, floor = timed(protocol)
        transport = SmtpTransport(SmtpConfig.parse(f"smtp://127.0.0.1:{port}"), FROM)
        report, took = timed(lambda: deliver(store, transport, ctx=ctx, mail_from=FROM))
        assert report.sent == len(rendered), report
    finally:
        server.terminate()
        server.wait()
    n = len(rendered)
    print(
        f"  deliver: {n:,} messages; raw smtplib {n / base:7.1f}/s; duban {n / took:7.1f}/s "
        f"({100 * base / took:4.1f}% of raw); the protocol alone (bytes serialized in "
        f"advance) {n / floor:7.1f}/s"
    )


def run_one(label: str, url: str, plan: Path, orgs: Path, messages: int) -> None:
    store, calendar, _ = loaded(url, plan, orgs)
    print(label)
    bench_sweep(store, calendar)
    bench_deliver(store, calendar, messages)
    store.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[1])
    parser.add_argument("--orgs", type=int, default=13_000)
    parser.add_argument("--messages", type=int, default=2_000)
    parser.add_argument(
        "--db", nargs="+", default=["sqlite", "postgresql"], choices=["sqlite", "postgresql"]
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        plan, orgs = write_inputs(folder, args.orgs, 40)
        add_contacts(orgs)
        print(f"{args.orgs:,} organizations ({', '.join(TAGS)}), 40 obligations, year 2024")
        for dialect in args.db:
            if dialect == "sqlite":
                run_one("sqlite", f"sqlite:///{folder / 'bench.db'}", plan, orgs, args.messages)
                continue
            name = f"duban_bench_{uuid.uuid4().hex[:8]}"
            admin = create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
            with admin.connect() as conn:
                conn.execute(text(f'CREATE DATABASE "{name}"'))
            try:
                run_one(
                    "postgresql", PG_ADMIN.rsplit("/", 1)[0] + f"/{name}", plan, orgs, args.messages
                )
            finally:
                with admin.connect() as conn:
                    conn.execute(text(f'DROP DATABASE "{name}" WITH (FORCE)'))
                admin.dispose()


if __name__ == "__main__":
    main()
