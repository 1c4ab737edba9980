"""Bad plan files are rejected whole, with messages that name file, line and field."""

from __future__ import annotations

from pathlib import Path

import pytest

from duban.catalog.loader import load_catalog
from duban.errors import PlanError
from tests.conftest import FIXTURES

PLAN = (FIXTURES / "mini-plan.yaml").read_text(encoding="utf-8")
ORGS = FIXTURES / "mini-orgs.yaml"


def load(tmp_path: Path, calendar, text: str):
    path = tmp_path / "plan.yaml"
    path.write_text(text, encoding="utf-8")
    return load_catalog([path], [ORGS], calendar), path


def problems(tmp_path, calendar, text) -> list[str]:
    with pytest.raises(PlanError) as caught:
        load(tmp_path, calendar, text)
    assert str(caught.value).split("\n")[0].endswith("nothing was loaded:")
    return [str(p).replace(str(tmp_path / "plan.yaml"), "plan.yaml") for p in caught.value.problems]


def line_of(text: str, needle: str) -> int:
    return next(i for i, line in enumerate(text.splitlines(), 1) if needle in line)


def test_the_fixture_itself_loads(tmp_path, calendar):
    catalog, _ = load(tmp_path, calendar, PLAN)
    assert [o.domain.code for o in catalog.obligations] == [
        "drill",
        "report",
        "notify",
        "county-review",
    ]


def test_yaml_syntax_error_names_the_line(tmp_path, calendar):
    bad = PLAN.replace("    title: 月报", "    title: [月报")
    found = problems(tmp_path, calendar, bad)
    assert len(found) == 1 and found[0].startswith("plan.yaml:")
    assert "YAML syntax error" in found[0]


def test_unknown_field_names_line_and_field(tmp_path, calendar):
    bad = PLAN.replace("    evidence: [form]", "    evidence: [form]\n    deadline: soon")
    assert problems(tmp_path, calendar, bad) == [
        f"plan.yaml:{line_of(bad, 'deadline: soon')} [obligations.1.deadline]: unknown field; "
        "remove it or check its spelling"
    ]


def test_unknown_tag_is_named_with_the_known_ones(tmp_path, calendar):
    bad = PLAN.replace(
        "responsible: [{tags: [midwifery]}]\n    recurrence: {kind: quarterly}",
        "responsible: [{tags: [midwife]}]\n    recurrence: {kind: quarterly}",
    )
    assert problems(tmp_path, calendar, bad) == [
        f"plan.yaml:{line_of(bad, 'midwife]')} [obligations.0.responsible.0.tags.0]: unknown "
        "tag 'midwife'; known tags: county-office, midwifery"
    ]


def test_unknown_org_is_named(tmp_path, calendar):
    bad = PLAN.replace("{org: office}]", "{org: ofice}]", 1)
    assert problems(tmp_path, calendar, bad) == [
        f"plan.yaml:{line_of(bad, 'ofice')} [obligations.1.responsible.1.org]: unknown "
        "organization 'ofice'; add it to the organization file or fix the id"
    ]


def test_invalid_rrule_is_named(tmp_path, calendar):
    bad = PLAN.replace(
        "recurrence: {kind: quarterly}", "recurrence: {kind: rrule, rule: 'FREQ=FORTNIGHTLY'}"
    )
    found = problems(tmp_path, calendar, bad)
    assert len(found) == 1
    assert found[0].startswith(
        f"plan.yaml:{line_of(bad, 'FORTNIGHTLY')} [obligations.0.recurrence.rule]: invalid RRULE:"
    )


def test_due_rule_that_cannot_be_computed_is_refused(tmp_path, calendar):
    bad = PLAN.replace(
        "due: {kind: day_of_next_month, day: 5}", "due: {kind: day_of_next_month, day: 31}"
    )
    assert problems(tmp_path, calendar, bad) == [
        f"plan.yaml:{line_of(bad, 'day: 31')} [obligations.1.due.day]: Input should be less "
        "than or equal to 28"
    ]


def test_event_due_rule_on_a_periodic_duty_is_refused(tmp_path, calendar):
    bad = PLAN.replace("due: {kind: end_of_period}", "due: {kind: working_days_after, days: 5}")
    found = problems(tmp_path, calendar, bad)
    assert found == [
        f"plan.yaml:{line_of(bad, '- id: drill')} [obligations.0]: Value error, "
        "due rule working_days_after counts from an event; use it with recurrence "
        "kind: event"
    ]


def test_year_missing_from_the_calendar_is_named(tmp_path, calendar):
    bad = PLAN.replace(
        "valid: {from: 2022-04-01, until: 2023-04-30}",
        "valid: {from: 2016-04-01, until: 2017-04-30}",
    )
    found = problems(tmp_path, calendar, bad)
    assert [f.split(": add")[0] for f in found] == [
        f"plan.yaml:{line_of(bad, 'due: {kind: end_of_period}')} [obligations.0.due]: the "
        "working-day calendar does not cover 2016",
        f"plan.yaml:{line_of(bad, 'due: {kind: day_of_next_month')} [obligations.1.due]: the "
        "working-day calendar does not cover 2016",
    ]
    assert all("2016.yaml" in f and "calendar_dir" in f for f in found)


def test_a_plan_reaching_into_a_year_without_a_notice_loads(tmp_path, calendar):
    later = PLAN.replace(
        "valid: {from: 2022-04-01, until: 2023-04-30}",
        "valid: {from: 2026-04-01, until: 2027-04-30}",
    )
    catalog, _ = load(tmp_path, calendar, later)
    dues = [
        ob.domain.due_date(period, calendar)
        for ob in catalog.obligations
        for period in ob.domain.periods()
    ]
    assert max(dues).year == 2027 and calendar.is_provisional(max(dues))


def test_every_problem_of_a_file_is_reported_at_once(tmp_path, calendar):
    bad = PLAN.replace("{org: office}]", "{org: ofice}]", 1).replace(
        "[midwifery]}]\n    rec", "[midwife]}]\n    rec"
    )
    assert len(problems(tmp_path, calendar, bad)) == 2


def test_duplicate_key_is_refused(tmp_path, calendar):
    bad = PLAN.replace("    title: 月报", "    title: 月报\n    title: 季报")
    assert problems(tmp_path, calendar, bad) == [
        f"plan.yaml:{line_of(bad, 'title: 季报')} [obligations.1.title]: the key 'title' "
        "appears twice; keep one"
    ]


def test_one_bad_file_among_good_ones_loads_nothing(tmp_path, calendar):
    good = tmp_path / "good.yaml"
    good.write_text(PLAN, encoding="utf-8")
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        PLAN.replace("id: mini", "id: mini2").replace("{org: office}]", "{org: nobody}]"),
        encoding="utf-8",
    )
    with pytest.raises(PlanError) as caught:
        load_catalog([good, bad], [ORGS], calendar)
    messages = [str(p) for p in caught.value.problems]
    assert any("unknown organization 'nobody'" in m for m in messages)
    # another plan may reuse the duty ids (next year's plan continues them): not a problem
    assert not any("already used" in m for m in messages)


def test_duty_ids_repeat_across_plans_but_not_within_one(tmp_path, calendar):
    good = tmp_path / "good.yaml"
    good.write_text(PLAN, encoding="utf-8")
    next_year = tmp_path / "next.yaml"
    next_year.write_text(PLAN.replace("id: mini", "id: mini-2023"), encoding="utf-8")
    catalog = load_catalog([good, next_year], [ORGS], calendar)
    assert [o.plan.id for o in catalog.obligations if o.domain.code == "drill"] == [
        "mini",
        "mini-2023",
    ]
    assert catalog.obligation("drill", "mini-2023").plan.id == "mini-2023"
    twice = PLAN.replace("  - id: report", "  - id: drill", 1)
    assert problems(tmp_path, calendar, twice) == [
        f"plan.yaml:{line_of(twice, '  - id: drill') + 9} [obligations.1.id]: obligation id "
        f"'drill' is already used in plan.yaml:{line_of(twice, '  - id: drill')}"
    ]


def test_two_files_of_one_plan_id_are_refused(tmp_path, calendar):
    first, second = tmp_path / "a.yaml", tmp_path / "b.yaml"
    first.write_text(PLAN, encoding="utf-8")
    second.write_text(PLAN, encoding="utf-8")
    with pytest.raises(PlanError) as caught:
        load_catalog([first, second], [ORGS], calendar)
    assert [str(p) for p in caught.value.problems] == [
        f"{second}:2 [plan.id]: plan id 'mini' is already the plan of {first}:2; a new plan "
        "needs an id of its own"
    ]


def test_bare_on_yes_no_are_strings_not_booleans(tmp_path, calendar):
    once = PLAN.replace(
        "    recurrence: {kind: quarterly}\n    due: {kind: end_of_period}",
        "    recurrence: {kind: once}\n    due: {kind: date, on: 2022-05-31}",
    )
    catalog, _ = load(tmp_path, calendar, once)
    assert catalog.obligations[0].spec.due.on.isoformat() == "2022-05-31"
