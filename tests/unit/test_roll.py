"""`duban plan roll`'s text edit (duban.catalog.roll): next year's draft of the bundled plans
passes the real plan check, keeps every duty id, comment and note, and marks what to confirm."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from duban.catalog.loader import load_catalog
from duban.catalog.roll import MARK, next_code, roll_text, shift
from duban.errors import RollRefused
from tests.conftest import FIXTURES, ROOT

XF = ROOT / "obligations" / "xinfeng-2022-mch-safety-year.yaml"
NHC = ROOT / "obligations" / "nhc-2018-maternal-safety-action.yaml"
ORGS = sorted((ROOT / "obligations" / "organizations").glob("*.yaml"))


@pytest.mark.parametrize(("source", "year"), [(XF, 2023), (NHC, 2021)])
def test_the_bundled_plans_roll_into_drafts_that_pass_plan_check(
    source: Path, year: int, tmp_path: Path, calendar
) -> None:
    text = source.read_text(encoding="utf-8")
    rolled = roll_text(text, file=str(source), to_year=year)
    draft = tmp_path / "next.yaml"
    draft.write_text(rolled.text, encoding="utf-8")
    old = load_catalog([source], ORGS, calendar)
    new = load_catalog([draft], ORGS, calendar)  # what `duban plan check` runs
    years = year - old.plans[0].header.valid.start.year
    assert new.plans[0].header.id == rolled.plan != old.plans[0].header.id
    assert [o.domain.code for o in new.obligations] == [o.domain.code for o in old.obligations]
    for before, after in zip(old.obligations, new.obligations, strict=True):
        assert after.domain.valid_from == shift(before.domain.valid_from, years)
        assert after.domain.valid_until == shift(before.domain.valid_until, years)
        if before.spec.due.kind == "date":
            assert after.spec.due.on == shift(before.spec.due.on, years)  # type: ignore[union-attr]
        assert after.spec.note == before.spec.note and after.spec.source == before.spec.source
    # every comment line of the file is kept; only the marked lines and dates changed
    comments = [line for line in text.splitlines() if line.lstrip().startswith("#")]
    assert [line for line in rolled.text.splitlines() if line.lstrip().startswith("#")] == comments
    assert rolled.text.count(MARK) == len(rolled.marked) >= 3


def test_the_county_plans_draft_marks_its_document_and_dates() -> None:
    rolled = roll_text(XF.read_text(encoding="utf-8"), file=str(XF), to_year=2023)
    assert rolled.plan == "xf-2023-mch-safety-year"
    assert (rolled.valid_from, rolled.valid_until) == (date(2023, 4, 1), date(2024, 4, 30))
    assert "  document: 信卫健字〔2022〕41号  # 待确认 / to confirm\n" in rolled.text
    assert "  issued: 2023-05-05  # 待确认 / to confirm\n" in rolled.text
    assert "  title_en: >-  # 待确认 / to confirm\n" in rolled.text
    assert rolled.overlap == (date(2023, 4, 1), date(2023, 4, 30))


def test_a_comment_already_on_the_line_follows_the_mark() -> None:
    rolled = roll_text(NHC.read_text(encoding="utf-8"), file=str(NHC), to_year=2021)
    assert (
        "  document: 国卫妇幼发〔2018〕9号  # 待确认 / to confirm  # the issuing notice's number"
    ) in rolled.text
    assert rolled.overlap is None


def test_plan_ids_and_days_move_by_the_year_difference() -> None:
    assert next_code("xf-2022-mch-safety-year", 2022, 1) == "xf-2023-mch-safety-year"
    assert next_code("xf22-mch", 2022, 1) == "xf23-mch"
    assert next_code("xf122-mch", 2022, 1) == "xf122-mch-2023"
    assert next_code("mini", 2022, 2) == "mini-2024"
    assert shift(date(2024, 2, 29), 1) == date(2025, 2, 28)
    assert shift(date(2022, 4, 1), 1) == date(2023, 4, 1)


def test_a_year_that_does_not_move_the_plan_is_refused() -> None:
    text = (FIXTURES / "mini-plan.yaml").read_text(encoding="utf-8")
    with pytest.raises(RollRefused, match=r"plan mini starts in 2022; --to must be a later year"):
        roll_text(text, file="mini-plan.yaml", to_year=2021)


def test_rrule_dates_and_a_duty_window_move_too() -> None:
    text = (
        (FIXTURES / "mini-plan.yaml")
        .read_text(encoding="utf-8")
        .replace(
            "    recurrence: {kind: quarterly}\n",
            "    recurrence:\n"
            "      {kind: rrule, rule: 'FREQ=MONTHLY;UNTIL=20230301', dtstart: 2022-05-01}\n"
            "    valid: {from: 2022-05-01, until: 2023-03-31}\n",
        )
    )
    rolled = roll_text(text, file="mini-plan.yaml", to_year=2023)
    assert "rule: 'FREQ=MONTHLY;UNTIL=20240301', dtstart: 2023-05-01}" in rolled.text
    assert "    valid: {from: 2023-05-01, until: 2024-03-31}\n" in rolled.text
