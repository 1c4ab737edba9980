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
from dataclasses import dataclass
from datetime import date
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from duban.catalog.provisional import StatutoryYears
from duban.catalog.yamlfile import load_yaml, validation_problems
from duban.domain.workdays import SATURDAY, WorkdayCalendar, days_from
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
        for day in days_from(h.start, h.end):
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


@dataclass(frozen=True, kw_only=True)
class YearSource:
    """Where one year of the calendar comes from: an official file, or the provisional rule."""

    year: int
    path: Path | None  # None: provisional
    origin: str  # "bundled" | "local" | "provisional"


def year_files(directory: Path) -> dict[int, Path]:
    """The `YYYY.yaml` files of `directory` by year (empty when it does not exist)."""
    if not directory.is_dir():
        return {}
    found: dict[int, Path] = {}
    for path in sorted(directory.iterdir()):
        match = YEAR_FILE.match(path.name)
        if match:
            found[int(match.group(1))] = path
    return found


def calendar_sources(bundled: Path, local: Path | None) -> dict[int, YearSource]:
    """Each year with an official file, from `local` where it has one, else from `bundled`."""
    sources = {
        y: YearSource(year=y, path=p, origin="bundled") for y, p in year_files(bundled).items()
    }
    if local is not None:
        for y, p in year_files(local).items():
            sources[y] = YearSource(year=y, path=p, origin="local")
    return dict(sorted(sources.items()))


def load_calendar(
    directory: Path, *, local: Path | None = None, provisional: bool = True
) -> WorkdayCalendar:
    """Load every `YYYY.yaml` of `directory` (the bundled years) and of `local` (the
    `calendar_dir` setting), a local file overriding the bundled one for its year; years with
    no file after the law's start are provisional (`catalog.provisional`) unless
    `provisional` is false. All problems in all files are reported together."""
    sources = calendar_sources(directory, local)
    if not sources:
        raise PlanError(
            [
                Problem(
                    file=str(local or directory),
                    line=None,
                    field="",
                    message="no calendar year files (YYYY.yaml) found here",
                )
            ]
        )
    parts: list[WorkdayCalendar] = []
    problems: list[Problem] = []
    for source in sources.values():
        assert source.path is not None
        try:
            parts.append(load_calendar_file(source.path))
        except PlanError as exc:
            problems.extend(exc.problems)
    if problems:
        raise PlanError(problems)
    merged = WorkdayCalendar.merge(parts)
    return WorkdayCalendar(
        years=merged.years,
        holidays=merged.holidays,
        workdays=merged.workdays,
        # named in "calendar missing" messages: the folder a user adds to, never the package
        source=str(local) if local is not None else "",
        provisional=StatutoryYears() if provisional else None,
    )
