"""Loads calendar/*.yaml (one file per year) into a `WorkdayCalendar`.

A year file lists each official holiday as a date range with the swapped workdays that
pay for it, and cites the State Council notice it comes from:

    year: 2022
    notice: 国务院办公厅关于2022年部分节假日安排的通知（国办发明电〔2021〕11号）
    holidays:
      - name: 国庆节
        en: National Day
        from: 2022-10-01
        to: 2022-10-07
        workdays: [2022-10-08, 2022-10-09]
"""

from __future__ import annotations

import re
from datetime import date, timedelta
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from duban.catalog.yamlfile import load_yaml, validation_problems
from duban.domain.workdays import SATURDAY, WorkdayCalendar
from duban.errors import PlanError, Problem

YEAR_FILE = re.compile(r"^(\d{4})\.ya?ml$")


class HolidaySpec(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    name: str
    en: str = ""
    start: date = Field(alias="from")
    end: date = Field(alias="to")
    workdays: list[date] = Field(default_factory=list)

    @model_validator(mode="after")
    def _ordered(self) -> HolidaySpec:
        if self.end < self.start:
            raise ValueError(f"'to' ({self.end}) is before 'from' ({self.start})")
        return self


class YearSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    year: int
    notice: str = Field(min_length=1)
    url: str = ""
    holidays: list[HolidaySpec]


def _days(spec: HolidaySpec) -> list[date]:
    return [spec.start + timedelta(days=i) for i in range((spec.end - spec.start).days + 1)]


def load_calendar_file(path: Path) -> WorkdayCalendar:
    data, index = load_yaml(path)
    try:
        spec = YearSpec.model_validate(data)
    except ValidationError as exc:
        raise PlanError(validation_problems(exc, index)) from exc
    problems: list[Problem] = []
    match = YEAR_FILE.match(path.name)
    if match and int(match.group(1)) != spec.year:
        problems.append(
            index.problem(["year"], f"year {spec.year} does not match the file name {path.name}")
        )
    holidays: set[date] = set()
    workdays: set[date] = set()
    for i, h in enumerate(spec.holidays):
        for day in _days(h):
            if day.year != spec.year:
                problems.append(index.problem(["holidays", i], f"{day} is not in {spec.year}"))
            holidays.add(day)
        for j, w in enumerate(h.workdays):
            if w.weekday() < SATURDAY:
                problems.append(
                    index.problem(
                        ["holidays", i, "workdays", j],
                        f"{w} is a {w:%A}; a swapped workday is a Saturday or Sunday",
                    )
                )
            if w.year != spec.year:
                # Each file holds only its own year; a swap in another year goes in that file.
                problems.append(
                    index.problem(
                        ["holidays", i, "workdays", j],
                        f"{w} is not in {spec.year}; list it in {w.year}.yaml",
                    )
                )
            workdays.add(w)
    clash = holidays & workdays
    if clash:
        problems.append(
            index.problem(["holidays"], f"{min(clash)} is both a holiday and a working day")
        )
    if problems:
        raise PlanError(problems)
    return WorkdayCalendar(
        years=frozenset({spec.year}),
        holidays=frozenset(holidays),
        workdays=frozenset(workdays),
        source=str(path.parent),
    )


def load_calendar(directory: Path) -> WorkdayCalendar:
    """Load every `YYYY.yaml` in `directory`; all problems in all files are reported together."""
    files = (
        sorted(p for p in directory.iterdir() if YEAR_FILE.match(p.name))
        if directory.is_dir()
        else []
    )
    if not files:
        raise PlanError(
            [
                Problem(
                    file=str(directory),
                    line=None,
                    field="",
                    message="no calendar year files (YYYY.yaml) found here",
                )
            ]
        )
    parts: list[WorkdayCalendar] = []
    problems: list[Problem] = []
    for path in files:
        try:
            parts.append(load_calendar_file(path))
        except PlanError as exc:
            problems.extend(exc.problems)
    if problems:
        raise PlanError(problems)
    merged = WorkdayCalendar.merge(parts)
    return WorkdayCalendar(
        years=merged.years,
        holidays=merged.holidays,
        workdays=merged.workdays,
        source=str(directory),
    )
