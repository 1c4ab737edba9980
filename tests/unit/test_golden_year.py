"""Golden year: every task 信丰县中医院 (xf-zyy) owes under 信卫健字〔2022〕41号.

The expected list below is written out by hand from the plan text and the encoding decisions
recorded in obligations/xinfeng-2022-mch-safety-year.yaml, not copied from the engine's output.
xf-zyy carries the tags midwifery, county-hospital and four-county-hospitals; it is neither a
critical-care centre, the MCH hospital, a township centre nor a county office.

Window 2022-04-01 .. 2023-04-30; a period is owed when it ends inside it:
months 2022-04 … 2023-04 (13), quarters 2022-Q2 … 2023-Q1 (4), half-years 2022-H1 and
2022-H2 (2). Event-triggered duties (maternal death) have no planned periods.
"""

from __future__ import annotations

from datetime import date

import pytest

from duban.catalog.expand import planned_tasks
from duban.catalog.loader import Catalog
from duban.domain.workdays import WorkdayCalendar

PLAN_000 = "xf-2022-mch-safety-year"
ORG = "xf-zyy"

EXPECTED: list[tuple[str, str, str]] = [
    # 附件5 第1项: rectify the findings of the PREVIOUS quarter's leading-group meeting by the
    # end of this quarter (decision: not on the meeting's own day), so no task for 2022-Q2:
    # no meeting under this plan precedes it (see the obligation's note)
    ("xf22-meeting-rectification", "2022-Q3", "2022-09-30"),
    ("xf22-meeting-rectification", "2022-Q4", "2022-12-31"),
    ("xf22-meeting-rectification", "2023-Q1", "2023-03-31"),
    # 二（一）2: designate a part-time pregnancy manager (one of the four county hospitals)
    ("xf22-part-time-manager", "once", "2022-05-31"),
    # 二（二）3: yearly health-education plan "2022年5月之前"
    ("xf22-health-education-plan", "once", "2022-04-30"),
    # 二（二）3: offline + online education, quarterly evidence
    ("xf22-education-activities", "2022-Q2", "2022-06-30"),
    ("xf22-education-activities", "2022-Q3", "2022-09-30"),
    ("xf22-education-activities", "2022-Q4", "2022-12-31"),
    ("xf22-education-activities", "2023-Q1", "2023-03-31"),
    # 二（二）3: ≥30 science articles in the plan year (four county hospitals), due 2023-03-31
    # (decision: 2023-04-30 lay in a quarter no Annex 5 sheet covers, so it was never scored)
    ("xf22-science-articles", "once", "2023-03-31"),
    # 二（三）4: risk screening, quarterly evidence
    ("xf22-risk-screening", "2022-Q2", "2022-06-30"),
    ("xf22-risk-screening", "2022-Q3", "2022-09-30"),
    ("xf22-risk-screening", "2022-Q4", "2022-12-31"),
    ("xf22-risk-screening", "2023-Q1", "2023-03-31"),
    # 二（三）5: high-risk case management, quarterly evidence
    ("xf22-high-risk-case-management", "2022-Q2", "2022-06-30"),
    ("xf22-high-risk-case-management", "2022-Q3", "2022-09-30"),
    ("xf22-high-risk-case-management", "2022-Q4", "2022-12-31"),
    ("xf22-high-risk-case-management", "2023-Q1", "2023-03-31"),
    # 附件4: monthly special-population report, by the 5th of the next month, no shift
    ("xf22-special-population-monthly", "2022-04", "2022-05-05"),
    ("xf22-special-population-monthly", "2022-05", "2022-06-05"),
    ("xf22-special-population-monthly", "2022-06", "2022-07-05"),
    ("xf22-special-population-monthly", "2022-07", "2022-08-05"),
    ("xf22-special-population-monthly", "2022-08", "2022-09-05"),
    ("xf22-special-population-monthly", "2022-09", "2022-10-05"),
    ("xf22-special-population-monthly", "2022-10", "2022-11-05"),
    ("xf22-special-population-monthly", "2022-11", "2022-12-05"),
    ("xf22-special-population-monthly", "2022-12", "2023-01-05"),
    ("xf22-special-population-monthly", "2023-01", "2023-02-05"),
    ("xf22-special-population-monthly", "2023-02", "2023-03-05"),
    ("xf22-special-population-monthly", "2023-03", "2023-04-05"),
    ("xf22-special-population-monthly", "2023-04", "2023-05-05"),
    # 二（四）7: quarterly skills training and rapid-response drill
    ("xf22-skills-drill", "2022-Q2", "2022-06-30"),
    ("xf22-skills-drill", "2022-Q3", "2022-09-30"),
    ("xf22-skills-drill", "2022-Q4", "2022-12-31"),
    ("xf22-skills-drill", "2023-Q1", "2023-03-31"),
    # 二（四）7: quarterly DDI record
    ("xf22-ddi-record", "2022-Q2", "2022-06-30"),
    ("xf22-ddi-record", "2022-Q3", "2022-09-30"),
    ("xf22-ddi-record", "2022-Q4", "2022-12-31"),
    ("xf22-ddi-record", "2023-Q1", "2023-03-31"),
    # 二（四）7: half-yearly multi-department joint meeting
    ("xf22-joint-meeting", "2022-H1", "2022-06-30"),
    ("xf22-joint-meeting", "2022-H2", "2022-12-31"),
    # 二（四）7: newborn doctors in the delivery room, incentive measure
    ("xf22-newborn-doctor-incentive", "once", "2022-06-30"),
    # 二（五）9: ≥2 case-warning education sessions in the plan year, due 2023-03-31 (as above)
    ("xf22-case-warning-education", "once", "2023-03-31"),
    # 二（五）9: monthly self-assessment of key departments, month end
    ("xf22-key-department-self-assessment", "2022-04", "2022-04-30"),
    ("xf22-key-department-self-assessment", "2022-05", "2022-05-31"),
    ("xf22-key-department-self-assessment", "2022-06", "2022-06-30"),
    ("xf22-key-department-self-assessment", "2022-07", "2022-07-31"),
    ("xf22-key-department-self-assessment", "2022-08", "2022-08-31"),
    ("xf22-key-department-self-assessment", "2022-09", "2022-09-30"),
    ("xf22-key-department-self-assessment", "2022-10", "2022-10-31"),
    ("xf22-key-department-self-assessment", "2022-11", "2022-11-30"),
    ("xf22-key-department-self-assessment", "2022-12", "2022-12-31"),
    ("xf22-key-department-self-assessment", "2023-01", "2023-01-31"),
    ("xf22-key-department-self-assessment", "2023-02", "2023-02-28"),
    ("xf22-key-department-self-assessment", "2023-03", "2023-03-31"),
    ("xf22-key-department-self-assessment", "2023-04", "2023-04-30"),
    # 二（五）9: core quality and safety rules, quarterly evidence
    ("xf22-core-systems", "2022-Q2", "2022-06-30"),
    ("xf22-core-systems", "2022-Q3", "2022-09-30"),
    ("xf22-core-systems", "2022-Q4", "2022-12-31"),
    ("xf22-core-systems", "2023-Q1", "2023-03-31"),
    # 二（七）11: quarterly in-hospital critical-maternal review (county-level midwifery)
    ("xf22-in-hospital-critical-review", "2022-Q2", "2022-06-30"),
    ("xf22-in-hospital-critical-review", "2022-Q3", "2022-09-30"),
    ("xf22-in-hospital-critical-review", "2022-Q4", "2022-12-31"),
    ("xf22-in-hospital-critical-review", "2023-Q1", "2023-03-31"),
    # 附件5: quarterly report, end of the quarter's last month
    ("xf22-quarterly-report", "2022-Q2", "2022-06-30"),
    ("xf22-quarterly-report", "2022-Q3", "2022-09-30"),
    ("xf22-quarterly-report", "2022-Q4", "2022-12-31"),
    ("xf22-quarterly-report", "2023-Q1", "2023-03-31"),
]


@pytest.fixture(scope="module")
def tasks(catalog: Catalog, calendar: WorkdayCalendar) -> list[tuple[str, str, date]]:
    return sorted(
        (t.obligation, t.period.key, t.due)
        for t in planned_tasks(catalog, calendar, org=ORG)
        if catalog.obligation(t.obligation).plan.id == PLAN_000
    )


def test_the_golden_year_of_xf_zyy(tasks: list[tuple[str, str, date]]) -> None:
    expected = sorted((code, key, date.fromisoformat(due)) for code, key, due in EXPECTED)
    assert len(EXPECTED) == 68
    missing = sorted(set(expected) - set(tasks))
    extra = sorted(set(tasks) - set(expected))
    assert not missing and not extra, f"missing: {missing}\nunexpected: {extra}"
    assert tasks == expected


def due_of(tasks: list[tuple[str, str, date]], code: str, key: str) -> date:
    found = [due for c, k, due in tasks if c == code and k == key]
    assert len(found) == 1, f"{code} {key}: {found}"
    return found[0]


def test_june_2022_annex4_report_is_due_5_july(tasks: list[tuple[str, str, date]]) -> None:
    assert due_of(tasks, "xf22-special-population-monthly", "2022-06") == date(2022, 7, 5)


def test_q3_2022_drill_is_due_30_september(tasks: list[tuple[str, str, date]]) -> None:
    assert due_of(tasks, "xf22-skills-drill", "2022-Q3") == date(2022, 9, 30)


def test_joint_meetings_are_the_two_half_years_of_2022(tasks: list[tuple[str, str, date]]) -> None:
    meetings = [(k, due) for c, k, due in tasks if c == "xf22-joint-meeting"]
    assert meetings == [("2022-H1", date(2022, 6, 30)), ("2022-H2", date(2022, 12, 31))]


def test_no_task_for_duties_xf_zyy_does_not_owe(tasks: list[tuple[str, str, date]]) -> None:
    codes = {c for c, _, _ in tasks}
    not_owed = {
        "xf22-critical-reception-process",  # critical-care centres only
        "xf22-tcm-service",  # the MCH hospital only
        "xf22-centre-supervision",  # the pregnancy-management centre
        "xf22-leadership-meeting",  # the county health commission
        "xf22-death-notify",
    }  # event-triggered: no planned periods
    assert not codes & not_owed


# --- the reading decisions of issue 11, each against the text (see the obligations' notes) ---


def owed_by(catalog: Catalog, calendar: WorkdayCalendar, org: str) -> list[tuple[str, str, date]]:
    return sorted(
        (t.obligation, t.period.key, t.due) for t in planned_tasks(catalog, calendar, org=org)
    )


def test_rectification_is_due_a_quarter_after_the_meeting_it_answers(
    catalog: Catalog, calendar: WorkdayCalendar
) -> None:
    """Annex 5 row 1: the problems a quarter's meeting raises are fixed by the next quarter's
    end, never on the meeting's own last possible day."""
    tasks = owed_by(catalog, calendar, "xf-wjw") + owed_by(catalog, calendar, ORG)
    meetings = [due for c, _, due in tasks if c == "xf22-leadership-meeting"]
    fixes = [due for c, _, due in tasks if c == "xf22-meeting-rectification"]
    assert meetings == [date(2022, 6, 30), date(2022, 9, 30), date(2022, 12, 31), date(2023, 3, 31)]
    assert fixes == [date(2022, 9, 30), date(2022, 12, 31), date(2023, 3, 31)]
    assert not set(meetings[:1]) & set(fixes)


def test_scored_one_off_duties_fall_in_a_quarter_an_annex5_sheet_covers(
    catalog: Catalog, calendar: WorkdayCalendar
) -> None:
    """The 30 articles, the two case-warning sessions and resuscitation teaching were due
    2023-04-30, in 2023-Q2, which no Annex 5 sheet covers: their points were never scored."""
    last_sheet_day = date(2023, 3, 31)  # the 2023-Q1 sheet is the last one the plan owes
    for ob in catalog.obligations:
        if ob.plan.id == PLAN_000 and ob.spec.score and ob.spec.recurrence.kind == "once":
            for period in ob.domain.periods():
                assert ob.domain.due_date(period, calendar) <= last_sheet_day, ob.domain.code
    for code in ("xf22-science-articles", "xf22-case-warning-education"):
        assert due_of(owed_by(catalog, calendar, ORG), code, "once") == last_sheet_day
    assert due_of(owed_by(catalog, calendar, "xf-wjw"), "xf22-resuscitation-teaching", "once") == (
        last_sheet_day
    )


def test_annex2_yearly_expert_guidance_is_owed_by_the_commission(
    catalog: Catalog, calendar: WorkdayCalendar
) -> None:
    tasks = owed_by(catalog, calendar, "xf-wjw")
    assert due_of(tasks, "xf22-expert-group-guidance", "once") == date(2023, 3, 31)
    assert catalog.obligation("xf22-expert-group-guidance").spec.source.clause == "附件2 第5条"


def test_annex4_is_not_owed_by_the_mch_hospital_that_hosts_the_centre(
    catalog: Catalog, calendar: WorkdayCalendar
) -> None:
    annex4 = "xf22-special-population-monthly"
    assert not [t for t in owed_by(catalog, calendar, "xf-fby") if t[0] == annex4]
    assert len([t for t in owed_by(catalog, calendar, "xf-rmyy") if t[0] == annex4]) == 13
    assert catalog.obligation(annex4).spec.submit_to == "xf-ygzx"


def test_escalations_go_to_the_mch_section_alone(catalog: Catalog) -> None:
    """Both county-office addresses got every escalation, so each officer got it twice."""
    for ob in catalog.obligations:
        targets = {e.notify.value for e in ob.spec.escalation or ob.defaults.escalation}
        assert "county-office" not in targets, ob.domain.code
        assert "mch-section" in targets


def test_national_plan_starts_when_institutions_act_june_2018(
    catalog: Catalog, calendar: WorkdayCalendar
) -> None:
    """五（一）2: institutions act from June 2018 (the plan was issued 2018-04-27)."""
    tasks = [t for t in owed_by(catalog, calendar, ORG) if t[0].startswith("nhc18-")]
    months = sorted(k for c, k, _ in tasks if c == "nhc18-department-self-assessment")
    assert months[0] == "2018-06" and len(months) == 31
    assert min(due for _, _, due in tasks) == date(2018, 6, 30)


def test_national_health_education_plan_is_due_as_its_year_begins(
    catalog: Catalog, calendar: WorkdayCalendar
) -> None:
    """四（一）1: a yearly work plan due on 31 December of the year it plans for was useless."""
    tasks = owed_by(catalog, calendar, ORG)
    plans = [(c, k, due) for c, k, due in tasks if c.startswith("nhc18-health-education-plan")]
    assert plans == [
        ("nhc18-health-education-plan", "2019", date(2019, 1, 31)),
        ("nhc18-health-education-plan", "2020", date(2020, 1, 31)),
        ("nhc18-health-education-plan-2018", "once", date(2018, 6, 30)),
    ]


def test_every_bundled_duty_speaks_chinese_first_and_says_where_its_rhythm_comes_from(
    catalog: Catalog,
) -> None:
    for ob in catalog.obligations:
        first_line = (ob.spec.note or "").strip().splitlines()[0]
        assert ob.spec.rhythm is not None, ob.domain.code
        cjk = sum(1 for ch in first_line if "\u4e00" <= ch <= "\u9fff")
        assert cjk > len(first_line) / 3, f"{ob.domain.code}: {first_line[:30]!r}"
