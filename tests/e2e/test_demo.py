"""`duban demo`: a living year of the county plan, in a database of its own.

The history is checked in the database the demo builds (on time, late, rejected and
resubmitted, waived, overdue, the maternal death's deadline chain, an audit trail that is a
verifiable history in time order); the real console script is run as a user would, and each
demo user signs in with the printed password in a real headless Chromium. The configured
database is never touched.
"""

from __future__ import annotations

import hashlib
import os
import re
import signal
import socket
import subprocess
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from playwright.sync_api import Browser, expect, sync_playwright
from sqlalchemy import select

from duban import demo
from duban.bootstrap import App
from duban.cli.demo_cmd import MARKER, demo_settings, prepare_folder
from duban.store.models import AuditEvent, Event, ObligationRow, Organization, Task
from tests.e2e.test_browser import CHROMIUM
from tests.e2e.test_cli import DUBAN, MINI, duban
from tests.integration.smtp import free_port

AS_OF = datetime(2022, 10, 6, 1, 0, tzinfo=UTC)  # 09:00 in Xinfeng, the demo's first moment
START_TIMEOUT = 120  # seconds for `duban demo` to build its year and start serving


def build(folder: Path, seed: int = demo.DEFAULT_SEED) -> App:
    prepare_folder(folder, configured=None)
    app = App(demo_settings(folder, "127.0.0.1", 8000))
    demo.build(app, as_of=demo.DEFAULT_AS_OF, seed=seed)
    return app


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Iterator[App]:
    app = build(tmp_path_factory.mktemp("demo"))
    yield app
    app.store.dispose()


def rows(app: App) -> list[dict[str, object]]:
    with app.store.read() as session:
        found = session.execute(
            select(
                Task.id,
                ObligationRow.code.label("obligation"),
                Organization.code.label("org"),
                Task.period_key,
                Task.state,
                Task.due_date,
                Task.due_at,
                Task.first_submitted_at,
                Task.submitted_at,
                Task.reason,
                Task.event_id,
            )
            .join(ObligationRow, ObligationRow.id == Task.obligation_id)
            .join(Organization, Organization.id == Task.org_id)
            .order_by(ObligationRow.code, Organization.code, Task.period_key)
        )
        return [dict(r._mapping) for r in found]


def test_the_demo_year_has_the_history_it_promises(built: App) -> None:
    tasks = rows(built)
    with built.store.read() as session:
        trail = list(
            session.execute(
                select(
                    AuditEvent.seq, AuditEvent.at, AuditEvent.action, AuditEvent.entity_id
                ).order_by(AuditEvent.seq)
            )
        )
    rejected_at = {t.entity_id: t.seq for t in trail if t.action == "task.reject"}
    submitted_after = {
        t.entity_id
        for t in trail
        if t.action == "task.submit"
        and t.entity_id in rejected_at
        and t.seq > rejected_at[t.entity_id]
    }
    due = [t for t in tasks if t["due_at"] <= AS_OF and t["event_id"] is None]
    waived = [t for t in due if t["state"] == "waived"]
    submitted = [t for t in due if t["first_submitted_at"] is not None]
    resubmitted = [t for t in submitted if str(t["id"]) in submitted_after]
    late = [
        t
        for t in submitted
        if str(t["id"]) not in rejected_at and t["first_submitted_at"] > t["due_at"]
    ]
    on_time = [
        t
        for t in submitted
        if str(t["id"]) not in rejected_at and t["first_submitted_at"] <= t["due_at"]
    ]
    overdue = [t for t in due if t["state"] == "open"]
    assert len(due) > 200
    assert len(on_time) > len(due) / 2  # most tasks submitted on time
    assert len(due) / 20 < len(late) < len(on_time) / 2
    assert len(resubmitted) >= 5 and all(
        t["state"] in ("submitted", "accepted") for t in resubmitted
    )
    assert 3 <= len(waived) < len(due) / 10 and all(t["reason"] for t in waived)
    assert 3 <= len(overdue) < len(due) / 10  # the board has something to show
    assert any(t["state"] == "submitted" for t in tasks)  # so has the review queue
    assert any(t["state"] == "accepted" and t["due_at"] > AS_OF for t in tasks)  # early birds
    # nothing that was due after the day is late, and no one acted after it
    assert all(t["submitted_at"] is None or t["submitted_at"] < AS_OF for t in tasks)
    # each institution a demo user signs in for has tasks in every state to look at,
    # a rejection waiting for it among them
    for org in ("xf-rmyy", "xf-jd-wsy"):
        states = {t["state"] for t in tasks if t["org"] == org}
        assert {"open", "accepted", "rejected"} <= states, (org, states)


def test_one_maternal_death_with_its_deadline_chain(built: App) -> None:
    with built.store.read() as session:
        events = list(session.execute(select(Event.kind, Event.occurred_on, Event.org_id)))
    assert [(e.kind, e.occurred_on) for e in events] == [("maternal-death", date(2022, 9, 5))]
    chain = [
        (t["obligation"], t["org"], t["due_date"], t["state"])
        for t in rows(built)
        if t["event_id"] is not None
    ]
    assert sorted(chain, key=lambda c: c[2]) == [
        # 5 working days: the Mid-Autumn holiday (9-10 … 9-12) is not counted
        ("xf22-death-notify", "xf-rmyy", date(2022, 9, 13), "accepted"),
        # 20 working days: National Day off, the two swapped working weekend days (10-8, 10-9) on
        ("xf22-death-hospital-review", "xf-rmyy", date(2022, 10, 9), "open"),
        ("xf22-death-county-review", "xf-wjw-fy", date(2022, 11, 5), "open"),
    ]


def test_the_audit_trail_is_a_verifiable_history_in_time_order(built: App) -> None:
    with built.store.read() as session:
        moments = list(session.scalars(select(AuditEvent.at).order_by(AuditEvent.seq)))
    assert len(moments) > 500
    assert moments == sorted(moments) and moments[-1] < AS_OF
    assert moments[0].date() == date(2022, 5, 6)  # loaded the day after the plan was issued
    env = {"DUBAN_DATABASE_URL": built.settings.database_url}
    done = duban("audit", "verify", cwd=Path(built.settings.evidence_dir).parent, env=env)
    assert done.stdout.startswith(f"audit chain intact: {len(moments)} events")


def test_the_same_seed_makes_the_same_year(built: App, tmp_path: Path) -> None:
    again = build(tmp_path / "again")
    other = build(tmp_path / "other", seed=7)
    try:

        def fates(app: App) -> list[tuple[object, ...]]:
            keep = ("obligation", "org", "period_key", "state", "submitted_at", "reason")
            return [tuple(t[k] for k in keep) for t in rows(app)]

        assert fates(again) == fates(built)
        assert fates(other) != fates(built)
    finally:
        again.store.dispose()
        other.store.dispose()


def test_demo_refuses_the_configured_database_and_a_folder_it_did_not_make(tmp_path: Path) -> None:
    inside = tmp_path / "demo-here"
    env = {"DUBAN_DATABASE_URL": f"sqlite:///{inside / 'demo.db'}"}
    done = duban("demo", "--dir", str(inside), cwd=tmp_path, env=env, ok=False)
    assert done.returncode == 1
    assert "duban demo never touches a real database" in " ".join(done.stderr.split())
    assert not inside.exists()
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("keep me")
    done = duban("demo", "--dir", str(mine), cwd=tmp_path, ok=False)
    assert done.returncode == 1 and "did not make; nothing was changed" in done.stderr
    assert [p.name for p in mine.iterdir()] == ["notes.txt"]
    done = duban("demo", "--as-of", "2023-06-01", cwd=tmp_path, ok=False)
    assert done.returncode == 2
    assert "--as-of 2023-06-01 is outside the plan's year (2022-04-01 – 2023-04-30)" in done.stderr
    assert not (tmp_path / "duban-demo").exists()


def test_a_taken_port_is_said_before_the_year_is_built(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = duban("demo", "--port", str(port), cwd=tmp_path, ok=False)
    assert done.returncode == 1
    assert f"the web UI cannot listen on 127.0.0.1:{port}" in done.stderr
    assert not (tmp_path / "duban-demo").exists()


def test_a_folder_the_demo_made_is_rebuilt_from_scratch(tmp_path: Path) -> None:
    folder = tmp_path / "duban-demo"
    prepare_folder(folder, configured=None)
    (folder / "demo.db").write_bytes(b"last run")
    (folder / "outbox-mail").mkdir()
    db = prepare_folder(folder, configured=None)
    assert db == folder.resolve() / "demo.db"
    assert [p.name for p in folder.iterdir()] == [MARKER]


# --- the real console script, in a real browser ---------------------------------------------


@dataclass
class Running:
    base: str
    passwords: dict[str, str]
    output: list[str] = field(default_factory=list)


def fingerprint(path: Path) -> tuple[str, int]:
    return hashlib.sha256(path.read_bytes()).hexdigest(), path.stat().st_mtime_ns


@pytest.fixture(scope="module")
def running(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Running]:
    """`duban demo` as a user starts it, next to a configured real database it must not touch
    (before and after: the same bytes, the same mtime, no journal beside it)."""
    work = tmp_path_factory.mktemp("demo-run")
    real = work / "real.db"
    env = {**MINI, "DUBAN_DATABASE_URL": f"sqlite:///{real}"}
    duban("init", cwd=work, env=env)
    before = fingerprint(real)
    port = free_port()
    proc = subprocess.Popen(
        [DUBAN, "demo", "--port", str(port)],
        cwd=work,
        env={**os.environ, **env, "COLUMNS": "200"},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    lines: list[str] = []
    started = threading.Event()

    def read() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.append(line)
            if "scheduler started" in line:
                started.set()
        started.set()  # the process ended: stop waiting

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        started.wait(START_TIMEOUT)
        log = "".join(lines)
        assert "scheduler started" in log, log
        passwords = dict(re.findall(r"^\s+(\S+)\s+\S+\s+password: (\S+)", log, re.M))
        assert set(passwords) == {"admin", "auditor", "rmyy", "jdwsy"}, log
        assert f"web UI: http://127.0.0.1:{port}/" in log
        yield Running(f"http://127.0.0.1:{port}", passwords, lines)
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
        reader.join(timeout=10)
    assert proc.returncode == 0, "".join(lines)
    assert fingerprint(real) == before
    assert not Path(f"{real}-wal").exists() and not (work / "duban.db").exists()
    assert (work / "duban-demo" / MARKER).is_file() and (work / "duban-demo" / "demo.db").is_file()


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    assert Path(CHROMIUM).exists(), f"no Chromium at {CHROMIUM} (apt-get install chromium)"
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=["--no-sandbox"])
        try:
            yield b
        finally:
            b.close()


@pytest.mark.parametrize(
    ("name", "home", "heading"),
    [
        ("admin", "/board", "逾期"),
        ("auditor", "/history", "历史"),
        ("rmyy", "/my", "我的任务"),
        ("jdwsy", "/my", "我的任务"),
    ],
)
def test_each_demo_user_signs_in_with_the_printed_password_and_sees_rows(
    running: Running, browser: Browser, name: str, home: str, heading: str
) -> None:
    context = browser.new_context(locale="zh-CN")
    context.set_default_timeout(15_000)
    try:
        page = context.new_page()
        page.goto(f"{running.base}/")
        page.get_by_label("用户名").fill(name)
        page.get_by_label("密码").fill(running.passwords[name])
        page.get_by_role("button", name="登录").click()
        # each role lands on its home page (numbers and charts), then opens its list
        expect(page).to_have_url(f"{running.base}/")
        expect(page.locator("main h1")).to_be_visible()
        page.goto(f"{running.base}{home}")
        expect(page.locator("h1")).to_contain_text(heading)
        body = page.locator("table.tasks tbody tr")
        expect(body.first).to_be_visible()
        assert body.count() > 0
        assert "2022-" in page.locator("table.tasks").inner_text()
        if name == "admin":
            # the clock runs on from 2022-10-06: the longest overdue task on the board (the
            # first) fell due in the plan's first months, not years before the real today
            days = int(body.first.locator("td.overdue").inner_text())
            assert 30 < days < 160
    finally:
        context.close()
