"""The missing-contact warning of `plan check` and `init` (issue 17), read from the files, and
the plan checks of `records_event`."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from duban.catalog.contacts import unreachable_steps
from duban.catalog.loader import load_catalog
from duban.errors import PlanError
from tests.conftest import FIXTURES

PARTY = (FIXTURES / "party-plan.yaml").read_text(encoding="utf-8")
ORGS = FIXTURES / "party-orgs.yaml"


def load(tmp_path: Path, calendar, plan: str = PARTY, orgs: Path = ORGS):
    path = tmp_path / "plan.yaml"
    path.write_text(plan, encoding="utf-8")
    return load_catalog([path], [orgs], calendar)


def test_plan_check_names_the_orgs_each_step_cannot_reach_and_why(tmp_path, calendar):
    # the report is owed by the branch whose meeting records the event (event_org)
    assert [str(u) for u in unreachable_steps(load(tmp_path, calendar))] == [
        "2 organizations cannot receive step 'overdue +1 → head' of duties party-meeting, "
        "party-meeting-report (no head contact): b2, b3",
        "1 organization cannot receive step 'escalation +3 → parent' of duties party-meeting, "
        "party-meeting-report (no parent organization): b3",
        "3 organizations cannot receive step 'escalation +5 → mch-section' of duties "
        "party-meeting, party-meeting-report (no organization tagged mch-section has a duty "
        "contact): b1, b2, b3",
    ]


def test_fourteen_orgs_without_a_head_are_one_warning(tmp_path, calendar):
    branches = "\n".join(
        f"  - {{id: g{i:02d}, name: 支部{i}, parent: office, tags: [party-branch], contacts: "
        f"{{duty: {{role: 委员, email: d@g{i:02d}.example.org}}}}}}"
        for i in range(1, 15)
    )
    orgs = tmp_path / "orgs.yaml"
    orgs.write_text(
        "region: 测试县\n"
        "tags: {party-branch: 党支部, county-office: 县卫健委, mch-section: 妇幼股}\n"
        "organizations:\n  - {id: office, name: 县卫健委, tags: [county-office, mch-section], "
        "contacts: {duty: {role: 值班, email: duty@office.example.org}}}\n" + branches + "\n",
        encoding="utf-8",
    )
    found = [str(u) for u in unreachable_steps(load(tmp_path, calendar, orgs=orgs))]
    assert found == [
        "14 organizations cannot receive step 'overdue +1 → head' of duties party-meeting, "
        "party-meeting-report (no head contact): g01, g02, g03, g04, g05, g06, g07, g08, g09, "
        "g10 and 4 more"
    ]


def test_a_plan_that_ended_before_adoption_warns_of_nothing(tmp_path, calendar):
    assert unreachable_steps(load(tmp_path, calendar), adopted=date(2024, 1, 1)) == []


def test_the_bundled_county_reaches_every_step(catalog):
    assert unreachable_steps(catalog) == []


def test_records_event_must_name_a_declared_event(tmp_path, calendar):
    bad = PARTY.replace("records_event: {kind: party-meeting-held", "records_event: {kind: meeting")
    with pytest.raises(PlanError) as caught:
        load(tmp_path, calendar, plan=bad)
    line = next(i for i, t in enumerate(bad.splitlines(), 1) if "records_event:" in t)
    assert [
        str(p).replace(str(tmp_path / "plan.yaml"), "plan.yaml") for p in caught.value.problems
    ] == [
        f"plan.yaml:{line} [obligations.0.records_event.kind]: unknown event kind 'meeting'; "
        "declare it under 'events' (known: party-meeting-held)"
    ]


def test_a_duty_cannot_record_the_event_it_is_counted_from(tmp_path, calendar):
    bad = PARTY.replace(
        "    due: {kind: days_after, days: 15}\n",
        "    due: {kind: days_after, days: 15}\n"
        "    records_event: {kind: party-meeting-held, label: 日期}\n",
    )
    with pytest.raises(PlanError) as caught:
        load(tmp_path, calendar, plan=bad)
    (problem,) = caught.value.problems
    assert problem.field == "obligations.1"
    assert problem.message == (
        "Value error, a duty cannot record the event it is counted from (party-meeting-held): "
        "each submission would start the duty again"
    )
