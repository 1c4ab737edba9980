"""Reminders, escalations, digests and summaries, delivered to a real SMTP server on loopback."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, datetime, timedelta
from email.message import EmailMessage

import pytest
from icalendar import Calendar
from sqlalchemy import select

from duban.domain.tasks import Action
from duban.engine import actions, feeds, notify_prefs, outbox
from duban.engine.deliver import CLAIM_TIMEOUT, deliver
from duban.engine.materialize import materialize
from duban.engine.notices import Context
from duban.engine.sweep import sweep
from duban.notify.render import message_id
from duban.notify.transport import SmtpConfig, SmtpTransport
from duban.store.db import Store
from duban.store.models import Outbox, Task
from tests.integration.helpers import TZ, at, death
from tests.integration.smtp import SmtpServer

FROM = "duban@xinfeng.example.org"
H1 = "duty@h1.example.org"
OFFICE = "duty@office.example.org"


@pytest.fixture
def smtp(tmp_path) -> Iterator[SmtpServer]:
    server = SmtpServer(tmp_path / "smtp")
    server.start()
    yield server
    server.stop()


def run_day(store: Store, calendar, smtp: SmtpServer, day: str, hour: int = 9):
    """What `duban run` does on a day: materialize, sweep, deliver."""
    now = at(day, hour)
    materialize(store, calendar=calendar, now=now, tz=TZ)
    sweep(store, calendar=calendar, now=now, tz=TZ)
    return send(store, calendar, smtp, now)


def send(store: Store, calendar, smtp: SmtpServer, now: datetime, transport=None):
    ctx = Context(now=now, tz=TZ, calendar=calendar, base_url="https://duban.example.org")
    transport = transport or SmtpTransport(SmtpConfig.parse(smtp.url), FROM)
    return deliver(store, transport, ctx=ctx, mail_from=FROM)


def text(msg: EmailMessage) -> str:
    body = msg.get_body(("plain",))
    assert body is not None
    return str(body.get_content())


def drill_task(store: Store, org: str = "h1") -> int:
    with store.read() as session:
        return session.scalar(
            select(Task.id).where(
                Task.period_key == "2022-Q2",
                Task.obligation_id == 1,
                Task.org_id.in_(select_org(org)),
            )
        )


def select_org(code: str):
    from duban.store.models import Organization

    return select(Organization.id).where(Organization.code == code)


def test_reminder_seven_working_days_before_is_specific_and_in_chinese(mini, calendar, smtp):
    report = run_day(mini, calendar, smtp, "2022-06-21")
    assert report.failed == 0 and report.sent > 0
    (msg,) = smtp.recorder.to(H1)
    assert msg["X-Duban-Kind"] == "reminder"
    assert msg["Subject"] == "【督办提醒】一号医院：季度急救演练（2022-Q2）截止 2022-06-30"
    body = text(msg)
    assert (
        "测试〔2022〕1号 二（四）7：“每季度至少开展1次专项技能培训和快速反应团队急救演练”" in body
    )
    assert "剩余工作日 Working days left: 7" in body
    assert "照片 / photos；签到表 / sign-in sheet" in body  # the evidence still missing
    key = msg["X-Duban-Key"]
    assert key.startswith("reminder:") and msg["Message-ID"] == message_id(key, FROM)
    assert f"https://duban.example.org/tasks/{drill_task(mini)}" in body
    assert msg.get_body(("html",)) is not None


def test_nothing_is_sent_twice_when_the_day_is_run_again(mini, calendar, smtp):
    run_day(mini, calendar, smtp, "2022-06-21")
    first = len(smtp.recorder.messages)
    again = run_day(mini, calendar, smtp, "2022-06-21", hour=15)
    assert again.sent == 0 and len(smtp.recorder.messages) == first


def test_several_things_on_one_day_make_one_digest(mini, calendar, smtp):
    run_day(mini, calendar, smtp, "2022-06-21")
    smtp.recorder.clear()
    run_day(mini, calendar, smtp, "2022-06-29")  # drill 1 working day before, June report 4
    (digest,) = smtp.recorder.to(H1)
    assert digest["X-Duban-Kind"] == "digest"
    assert digest["Subject"].startswith("【督办日报】2022-06-29：")
    body = text(digest)
    assert "== 一号医院 ==" in body
    assert "2022-06-30 季度急救演练（2022-Q2，二（四）7）" in body
    assert "2022-07-05 月报（2022-06，附件4）" in body


def test_no_reminder_for_a_submitted_task(mini, calendar, smtp):
    materialize(mini, calendar=calendar, now=at("2022-06-01"), tz=TZ)
    task = drill_task(mini)
    actions.add_note(mini, task_id=task, note="已完成", actor="h1", now=at("2022-06-10"))
    actions.transition(mini, task_id=task, action=Action.SUBMIT, actor="h1", now=at("2022-06-10"))
    run_day(mini, calendar, smtp, "2022-06-21")
    run_day(mini, calendar, smtp, "2022-06-29")
    run_day(mini, calendar, smtp, "2022-07-01")
    assert not [m for m in smtp.recorder.messages if m["X-Duban-Key"].split(":")[1] == str(task)]
    assert not [
        m
        for m in smtp.recorder.messages
        if "季度急救演练" in m["Subject"] and "一号医院" in m["Subject"]
    ]


def test_a_rejection_tells_the_institution_with_the_reason(mini, calendar, smtp):
    run_day(mini, calendar, smtp, "2022-07-20")
    smtp.recorder.clear()
    materialize(mini, calendar=calendar, now=at("2022-07-20"), tz=TZ)
    with mini.read() as session:
        task = session.scalar(
            select(Task.id).where(
                Task.period_key == "2022-Q3",
                Task.obligation_id == 1,
                Task.org_id.in_(select_org("h1")),
            )
        )
    actions.add_note(mini, task_id=task, note="演练照片", actor="h1", now=at("2022-07-20"))
    actions.transition(mini, task_id=task, action=Action.SUBMIT, actor="h1", now=at("2022-07-20"))
    actions.transition(
        mini,
        task_id=task,
        action=Action.REJECT,
        actor="admin",
        now=at("2022-07-21", 10),
        reason="缺少签到表",
    )
    run_day(mini, calendar, smtp, "2022-07-21", hour=11)
    (told,) = smtp.recorder.to(H1)
    assert told["Subject"].startswith("【督办·退回】一号医院：季度急救演练（2022-Q3）被退回")
    assert "缺少签到表" in text(told)
    # once: the next day's sweep does not repeat it
    run_day(mini, calendar, smtp, "2022-07-22", hour=11)
    assert len([m for m in smtp.recorder.to(H1) if "退回" in m["Subject"]]) == 1


def test_escalation_counts_working_days_across_national_day(mini, calendar, smtp):
    # death on 2022-09-20: notification due 09-27; +5 working days skips 10-01..07 and counts
    # the swapped Saturday 10-08 and Sunday 10-09, so the county is told on 10-09
    death(mini, calendar, org="h1", on=date(2022, 9, 20), now="2022-09-21")
    run_day(mini, calendar, smtp, "2022-09-28")
    heads = [m for m in smtp.recorder.to("head@h1.example.org") if "死亡通报" in m["Subject"]]
    assert [m["X-Duban-Kind"] for m in heads] == ["overdue"]
    for day in ("2022-10-02", "2022-10-07", "2022-10-08"):
        run_day(mini, calendar, smtp, day)
        assert not [m for m in smtp.recorder.to(OFFICE) if "死亡通报" in m["Subject"]], day
    run_day(mini, calendar, smtp, "2022-10-09")
    (esc,) = [m for m in smtp.recorder.to(OFFICE) if "死亡通报" in m["Subject"]]
    assert esc["X-Duban-Kind"] == "escalation"
    assert (
        esc["Subject"]
        == "【督办·升级】一号医院 逾期 12 天：死亡通报（二（七）12，截止 2022-09-27）"
    )


def test_catch_up_after_a_week_down_sends_the_step_that_still_makes_sense(mini, calendar, smtp):
    run_day(mini, calendar, smtp, "2022-06-17")
    smtp.recorder.clear()
    # down from 06-17 to 06-28: the 7-day reminder (06-21) was missed, the 1-day one is 06-29
    run_day(mini, calendar, smtp, "2022-06-28")
    task = drill_task(mini)
    assert steps_reached(mini, task) == ["reminder:-7:duty"]
    (news,) = smtp.recorder.to(H1)  # drill and June report: one digest for the day
    assert news["X-Duban-Kind"] == "digest" and "季度急救演练" in text(news)
    run_day(mini, calendar, smtp, "2022-06-28", hour=18)
    assert len(smtp.recorder.to(H1)) == 1
    run_day(mini, calendar, smtp, "2022-06-29")
    assert steps_reached(mini, task) == ["reminder:-1:duty", "reminder:-7:duty"]


def steps_reached(store: Store, task_id: int) -> list[str]:
    from duban.store.models import LadderMark

    with store.read() as session:
        return sorted(session.scalars(select(LadderMark.step).where(LadderMark.task_id == task_id)))


def test_crash_between_sending_and_recording_resends_the_same_message_id(mini, calendar, smtp):
    materialize(mini, calendar=calendar, now=at("2022-06-21"), tz=TZ)
    sweep(mini, calendar=calendar, now=at("2022-06-21"), tz=TZ)
    real = SmtpTransport(SmtpConfig.parse(smtp.url), FROM)

    class CrashAfterSend:
        def describe(self) -> str:
            return "crashing"

        def send(self, message: EmailMessage) -> None:
            real.send(message)
            raise SystemExit("killed between sending and recording")

        def close(self) -> None:
            real.close()

    with pytest.raises(SystemExit):
        send(mini, calendar, smtp, at("2022-06-21"), transport=CrashAfterSend())
    (first,) = smtp.recorder.messages
    # before the claim times out nobody touches it, whatever the caller's clock says
    later = at("2022-06-21") + CLAIM_TIMEOUT + timedelta(minutes=1)
    assert send(mini, calendar, smtp, later).sent == 0
    # once it is older than that by the database's clock, it is sent again, same Message-ID
    age_claims(mini, CLAIM_TIMEOUT + timedelta(minutes=1))
    report = send(mini, calendar, smtp, later)
    again = [m for m in smtp.recorder.messages if m["X-Duban-Key"] == first["X-Duban-Key"]]
    assert len(again) == 2 and {m["Message-ID"] for m in again} == {first["Message-ID"]}
    with mini.read() as session:
        row = session.scalar(select(Outbox).where(Outbox.key == first["X-Duban-Key"]))
        assert row.state == "sent"
    assert report.failed == 0


def age_claims(store: Store, by: timedelta) -> None:
    """As if `by` had passed on the database's clock since the rows were claimed."""
    with store.write() as session:
        for row in session.scalars(select(Outbox).where(Outbox.state == "sending")):
            row.claimed_at = row.claimed_at - by


def test_451_is_retried_with_backoff_and_then_delivered(mini, calendar, smtp):
    materialize(mini, calendar=calendar, now=at("2022-06-21"), tz=TZ)
    sweep(mini, calendar=calendar, now=at("2022-06-21"), tz=TZ)
    with mini.read() as session:
        pending = len(list(session.scalars(select(Outbox.id))))
    smtp.recorder.tempfail_data = 1
    now = at("2022-06-21")
    first = send(mini, calendar, smtp, now)
    assert first.retried == 1 and first.sent == pending - 1
    (row,) = outbox.list_messages(mini, state="pending")
    assert row["last_error"] == "451 4.3.0 mailbox busy, try again later"
    assert datetime.fromisoformat(row["next_attempt_at"]) == now + timedelta(minutes=15)
    assert send(mini, calendar, smtp, now + timedelta(minutes=14)).sent == 0
    assert send(mini, calendar, smtp, now + timedelta(minutes=15)).sent == 1
    assert len(smtp.recorder.messages) == pending


def test_dropped_server_is_retried_and_recovers(mini, calendar, smtp):
    materialize(mini, calendar=calendar, now=at("2022-06-21"), tz=TZ)
    sweep(mini, calendar=calendar, now=at("2022-06-21"), tz=TZ)
    smtp.stop()
    down = send(mini, calendar, smtp, at("2022-06-21"))
    assert down.sent == 0 and down.retried > 0 and down.failed == 0
    assert down.unavailable.startswith(f"cannot reach smtp 127.0.0.1:{smtp.port} (plain): ")
    assert "ConnectionRefusedError" in down.unavailable
    smtp.start()
    later = send(mini, calendar, smtp, at("2022-06-21") + timedelta(minutes=15))
    assert later.sent == down.retried


def test_550_for_one_recipient_fails_it_alone_and_tells_the_county(mini, calendar, smtp):
    smtp.recorder.refuse["duty@h2.example.org"] = "550 5.1.1 no such user here"
    report = run_day(mini, calendar, smtp, "2022-06-21")
    assert report.failed == 1 and smtp.recorder.to(H1)
    (failed,) = outbox.list_messages(mini, state="failed")
    assert failed["recipient"] == "duty@h2.example.org"
    assert failed["last_error"] == "550 5.1.1 no such user here"
    # the failure notice went out on the next delivery
    send(mini, calendar, smtp, at("2022-06-21") + timedelta(minutes=1))
    notices = [m for m in smtp.recorder.to(OFFICE) if "投递失败" in m["Subject"]]
    assert len(notices) == 1 and "550 5.1.1 no such user here" in text(notices[0])
    # fixed address: an administrator retries it
    del smtp.recorder.refuse["duty@h2.example.org"]
    assert outbox.retry(mini, ids=None, now=at("2022-06-22"), actor="admin") == 1
    assert send(mini, calendar, smtp, at("2022-06-22")).sent == 1
    assert smtp.recorder.to("duty@h2.example.org")


def test_still_undelivered_after_five_days_is_failed(mini, calendar, smtp):
    materialize(mini, calendar=calendar, now=at("2022-06-21"), tz=TZ)
    sweep(mini, calendar=calendar, now=at("2022-06-21"), tz=TZ)
    smtp.stop()
    now = at("2022-06-21")
    send(mini, calendar, smtp, now)
    report = send(mini, calendar, smtp, now + timedelta(days=5, minutes=1))
    assert report.failed > 0 and report.sent == 0
    assert {r["state"] for r in outbox.list_messages(mini) if r["kind"] != "failure"} == {"failed"}


def test_digest_only_person_gets_one_digest_instead_of_escalations(mini, calendar, smtp):
    notify_prefs.set_digest_only(mini, OFFICE, True)
    run_day(mini, calendar, smtp, "2022-06-21")
    to_office = smtp.recorder.to(OFFICE)
    kinds = sorted(m["X-Duban-Kind"] for m in to_office)
    assert kinds == ["digest", "summary"]


def test_weekly_summary_once_a_week_longest_overdue_first(mini, calendar, smtp):
    for day in ("2022-07-04", "2022-07-05", "2022-07-08", "2022-07-11"):
        run_day(mini, calendar, smtp, day)
    summaries = [m for m in smtp.recorder.to(OFFICE) if m["X-Duban-Kind"] == "summary"]
    assert [m["Subject"].split("：")[0] for m in summaries] == [
        "【督办周报】2022-W27",
        "【督办周报】2022-W28",
    ]
    body = text(summaries[0])
    by_org = body.split("按职责")[0]
    assert by_org.index("最早截止 2022-05-05") < by_org.index("县卫健委妇幼股")


def test_login_failure_never_reveals_the_password(mini, calendar, smtp):
    materialize(mini, calendar=calendar, now=at("2022-06-21"), tz=TZ)
    sweep(mini, calendar=calendar, now=at("2022-06-21"), tz=TZ)
    secret = "s3cret-Pa55"
    config = SmtpConfig.parse(f"smtp://mailer:{secret}@127.0.0.1:{smtp.port}")
    report = send(mini, calendar, smtp, at("2022-06-21"), transport=SmtpTransport(config, FROM))
    assert report.sent == 0 and report.errors
    assert report.unavailable == (
        f"cannot log in to smtp mailer@127.0.0.1:{smtp.port} (plain): "
        "SMTPNotSupportedError: SMTP AUTH extension not supported by server."
    )
    assert not any(secret in e for e in report.errors)
    assert not any(secret in (r["last_error"] or "") for r in outbox.list_messages(mini))
    assert secret not in config.describe()


def test_ics_feed_parses_and_holds_the_due_dates(mini, calendar):
    materialize(mini, calendar=calendar, now=at("2022-07-01"), tz=TZ)
    token = feeds.feed_token(mini, "h1", now=at("2022-07-01"))
    assert len(token) >= 40 and feeds.org_for_token(mini, token) == "h1"
    assert feeds.feed_token(mini, "h1", now=at("2022-07-02")) == token
    raw = feeds.ics_feed(mini, "h1", now=at("2022-07-01"), base_url="https://d.example.org")
    cal = Calendar.from_ical(raw)
    events = {str(e["summary"]): e for e in cal.walk("VEVENT")}
    drill = events["【截止】季度急救演练（2022-Q3）"]
    assert drill.decoded("dtstart") == date(2022, 9, 30)
    assert drill.decoded("dtend") == date(2022, 10, 1)
    assert events["【截止】月报（2022-06）"].decoded("dtstart") == date(2022, 7, 5)
    assert len(events) == 2 + 3 + 1  # drills Q2, Q3; reports Apr–Jun… and July
    renewed = feeds.feed_token(mini, "h1", now=at("2022-07-03"), renew=True)
    assert renewed != token and feeds.org_for_token(mini, token) is None
