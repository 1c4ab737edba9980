"""The missing-contact warning in the sweep (issue 17): a ladder step with nobody to tell is
marked skipped once per task and reported once per duty, step and organization, on SQLite
and PostgreSQL. The party branches (tests/fixtures/party-orgs.yaml): b1 has a head and a
parent, b2 no head, b3 neither head nor parent; no organization is tagged mch-section."""

from __future__ import annotations

from datetime import date

from sqlalchemy import select

from duban.engine import actions
from duban.engine.sweep import sweep
from duban.engine.unreachable import NO_RECIPIENT
from duban.store.db import Store
from duban.store.models import LadderMark, Outbox
from tests.integration.helpers import TZ, at


def run(store: Store, calendar, day: str, hour: int = 9) -> list[str]:
    return [str(s) for s in sweep(store, calendar=calendar, now=at(day, hour), tz=TZ).skipped]


def test_a_step_nobody_can_receive_is_reported_once_per_org_and_step(party, calendar):
    # the 2022-H1 meeting fell due 2022-06-30: 07-01 is +1 working day, the head's step
    assert run(party, calendar, "2022-07-01") == [
        "duty party-meeting step 'overdue +1 → head': no head contact for org b2",
        "duty party-meeting step 'overdue +1 → head': no head contact for org b3",
    ]
    assert run(party, calendar, "2022-07-01", hour=18) == []  # a second tick: nothing again
    assert run(party, calendar, "2022-07-04") == []  # the step still current: still once
    # +3 (07-05): the parent's duty contact; b3 has no parent
    assert run(party, calendar, "2022-07-05") == [
        "duty party-meeting step 'escalation +3 → parent': no parent organization for org b3"
    ]
    # +5 (07-07): nobody is tagged mch-section, so no branch can be escalated there
    assert run(party, calendar, "2022-07-07") == [
        f"duty party-meeting step 'escalation +5 → mch-section': no organization tagged "
        f"mch-section has a duty contact for org {org}"
        for org in ("b1", "b2", "b3")
    ]
    with party.read() as s:
        recipients = set(s.scalars(select(Outbox.recipient)))
        skipped = s.scalars(select(LadderMark).where(LadderMark.recipient == NO_RECIPIENT)).all()
    # those who exist are still told; the skip marks never become messages
    assert "head@b1.example.org" in recipients and NO_RECIPIENT not in recipients
    assert {(m.step, m.kind) for m in skipped} == {
        ("overdue:+1:head", "skipped"),
        ("escalation:+3:parent", "skipped"),
        ("escalation:+5:mch-section", "skipped"),
    }
    assert len(skipped) == 2 + 1 + 3


def test_two_tasks_of_one_org_on_a_step_make_one_line(party, calendar):
    for _ in range(2):  # two meetings of b2 on one day, recorded by the county
        actions.record_event(
            party,
            kind="party-meeting-held",
            org="b2",
            occurred_on=date(2022, 7, 4),
            now=at("2022-07-06"),
            tz=TZ,
            calendar=calendar,
            actor="admin",
        )
    # both reports fall due 2022-07-19; +1 working day is 07-20
    lines = run(party, calendar, "2022-07-20")
    assert [line for line in lines if "party-meeting-report" in line] == [
        "duty party-meeting-report step 'overdue +1 → head': no head contact for org b2 (2 tasks)"
    ]
    assert [line for line in run(party, calendar, "2022-07-21") if "report" in line] == []
