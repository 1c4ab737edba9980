"""Notifications through the real console script: .eml default, SMTP, outbox, iCalendar."""

from __future__ import annotations

import json
from email import message_from_bytes, policy
from pathlib import Path

from icalendar import Calendar

from tests.e2e.test_cli import MINI, duban
from tests.integration.smtp import SmtpServer


def test_without_smtp_tick_writes_eml_files(tmp_path: Path):
    env = {
        **MINI,
        "DUBAN_MAIL_DIR": str(tmp_path / "mail"),
        "DUBAN_BASE_URL": "https://duban.example.org",
    }
    duban("init", "--now", "2022-04-01", cwd=tmp_path, env=env)
    out = duban("tick", "--now", "2022-06-21T09:00", cwd=tmp_path, env=env).stdout
    assert f"deliver (eml files in {tmp_path / 'mail'})" in " ".join(out.split())
    files = sorted((tmp_path / "mail").glob("*.eml"))
    assert files
    kinds = {
        message_from_bytes(f.read_bytes(), policy=policy.default)["X-Duban-Kind"] for f in files
    }
    assert {"reminder", "escalation", "summary"} <= kinds
    sent = json.loads(
        duban("outbox", "list", "--state", "sent", "--json", cwd=tmp_path, env=env).stdout
    )
    assert len(sent) == len(files)
    again = duban("tick", "--now", "2022-06-21T10:00", cwd=tmp_path, env=env).stdout
    assert "0 messages enqueued" in again and len(list((tmp_path / "mail").glob("*.eml"))) == len(
        files
    )


def test_smtp_url_sends_and_failed_messages_can_be_retried(tmp_path: Path):
    server = SmtpServer()
    server.recorder.refuse["duty@h2.example.org"] = "550 5.1.1 unknown mailbox"
    server.start()
    try:
        env = {**MINI, "DUBAN_SMTP_URL": server.url, "DUBAN_MAIL_FROM": "duban@example.org"}
        duban("init", "--now", "2022-04-01", cwd=tmp_path, env=env)
        out = duban("tick", "--now", "2022-06-21T09:00", cwd=tmp_path, env=env)
        assert "1 failed" in out.stdout
        assert "550 5.1.1 unknown mailbox" in out.stderr
        assert server.recorder.to("duty@h1.example.org")
        failed = json.loads(
            duban("outbox", "list", "--state", "failed", "--json", cwd=tmp_path, env=env).stdout
        )
        assert [f["recipient"] for f in failed] == ["duty@h2.example.org"]
        del server.recorder.refuse["duty@h2.example.org"]
        retried = duban(
            "outbox", "retry", "--failed", "--now", "2022-06-21T10:00", cwd=tmp_path, env=env
        ).stdout
        assert "1 messages queued again" in retried
        duban("tick", "--now", "2022-06-21T10:01", cwd=tmp_path, env=env)
        assert server.recorder.to("duty@h2.example.org")
    finally:
        server.stop()


def test_ics_command_prints_a_parseable_feed_and_a_url(tmp_path: Path):
    env = {**MINI, "DUBAN_BASE_URL": "https://duban.example.org"}
    duban("init", "--now", "2022-04-01", cwd=tmp_path, env=env)
    duban("tick", "--now", "2022-07-01", cwd=tmp_path, env=env)
    raw = duban("ics", "--org", "h1", "--now", "2022-07-01", cwd=tmp_path, env=env).stdout
    cal = Calendar.from_ical(raw)
    dues = sorted(str(e.decoded("dtstart")) for e in cal.walk("VEVENT"))
    assert "2022-09-30" in dues and "2022-07-05" in dues
    url = duban("ics", "--org", "h1", "--url", cwd=tmp_path, env=env).stdout.strip()
    assert url.startswith("https://duban.example.org/ics/") and url.endswith(".ics")
    assert duban("ics", "--org", "h1", "--url", cwd=tmp_path, env=env).stdout.strip() == url


def test_digest_only_preference_is_set_from_the_cli(tmp_path: Path):
    env = {**MINI, "DUBAN_MAIL_DIR": str(tmp_path / "mail")}
    duban("init", "--now", "2022-04-01", cwd=tmp_path, env=env)
    assert (
        "digest only"
        in duban("notify", "digest-only", "duty@office.example.org", cwd=tmp_path, env=env).stdout
    )
    duban("tick", "--now", "2022-06-21T09:00", cwd=tmp_path, env=env)
    rows = json.loads(duban("outbox", "list", "--json", cwd=tmp_path, env=env).stdout)
    office = sorted(r["kind"] for r in rows if r["recipient"] == "duty@office.example.org")
    assert office == ["digest", "summary"]
