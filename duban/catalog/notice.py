"""Reads the State Council's yearly holiday notice into one calendar year (calendar/YYYY.yaml).

《国务院办公厅关于YYYY年部分节假日安排的通知》 sets each holiday in one clause on its own line:

    一、元旦：1月1日（周四）至3日（周六）放假调休，共3天。1月4日（周日）上班。

`parse_notice` reads the text as pasted from gov.cn, `notice_yaml` renders the year as
calendar/YYYY.yaml, `describe_notice` lists it for a person to check. The rules:

- A line that starts like a clause (一、 … or a holiday name and ：) is read completely or the
  whole text is refused with `NoticeError`, naming every such line; a line that starts with a
  date and says 放假/上班 but has no holiday name is refused too. Every other line (heading,
  preamble, closing paragraph, office, date) is prose and ignored.
- Full- or half-width punctuation, spaces, blank lines and line endings do not matter.
- A date without a year is in the notice's year; one without a month (至3日, 、18日) takes the
  year and month of the date before it. A December day of 元旦 must name its year
  (2022年12月31日). A weekday in brackets must be the date's; 共N天 must count the range.
- "X日放假，与周末连休" is off from X through the adjoining weekend, as the bundled files
  list it; "X日放假，Y日补休" is off from X to Y.
- calendar/YYYY.yaml holds one year, so days a clause sets in another year (2022年12月31日 in
  the 2023 notice, or the weekend before a Monday 1月1日) are kept apart in
  `NoticeYear.elsewhere`, to be listed in that year's file.
"""

from __future__ import annotations

import json
import re
import unicodedata
from dataclasses import dataclass
from datetime import date

import yaml

from duban.catalog.notice_clause import (
    EN_NAMES,
    Clause,
    Unreadable,
    clause_number,
    looks_like_clause,
    numeral,
    read_clause,
)
from duban.domain.workdays import WorkdayCalendar, days_from
from duban.errors import NoticeError, Problem

__all__ = [
    "EN_NAMES",
    "NoticeHoliday",
    "NoticeYear",
    "OtherYearDays",
    "describe_notice",
    "notice_yaml",
    "parse_notice",
]

TITLE = "国务院办公厅关于{year}年部分节假日安排的通知"
_HEADING = re.compile(r"关于(\d{4})年部分节假日安排的通知")
_HEADING_START = re.compile(r"关于(\d{4})年$")  # the heading broken after 年, as gov.cn sets it
_HEADING_REST = "部分节假日安排的通知"
_PREAMBLE = re.compile(r"现将(\d{4})年(.*)通知如下")
_NUMBER = re.compile(r"国办发明电[〔\[【(](\d{4})[〕\]】)](\d+)号")
_URL = re.compile(r"https?://(?:www\.)?gov\.cn/[\w./%-]+")
_LINE_BREAK = re.compile(r"\r\n|\r|\n")  # not str.splitlines(): line numbers as an editor counts
_INVISIBLE = dict.fromkeys(map(ord, "\ufeff\u200b\u200c\u200d\u2060"))


@dataclass(frozen=True, kw_only=True)
class NoticeHoliday:
    """One holiday as YYYY.yaml lists it: days off `start`..`end`, the weekend days worked
    (`workdays`) in exchange, and the line of the notice it was read from."""

    name: str
    en: str
    start: date
    end: date
    workdays: tuple[date, ...]
    line: int

    def days(self) -> tuple[date, ...]:
        return days_from(self.start, self.end)


@dataclass(frozen=True, kw_only=True)
class OtherYearDays:
    """Days a clause of the notice sets in another year than the notice's; they belong in
    `year`.yaml (the bundled files list the December part of a New Year holiday so)."""

    year: int
    name: str
    en: str
    holidays: tuple[date, ...]
    workdays: tuple[date, ...]
    line: int


@dataclass(frozen=True, kw_only=True)
class NoticeYear:
    """A notice read completely: its year's holidays in the notice's order, and what it sets
    in other years. `notice` is the title, with the number (国办发明电〔YYYY〕N号) when the
    text has it; `url` is a gov.cn address found in the text, else "" (a caller that knows
    it sets it with `dataclasses.replace`). `calendar()` is the year to compare with another."""

    year: int
    notice: str
    holidays: tuple[NoticeHoliday, ...]
    elsewhere: tuple[OtherYearDays, ...] = ()
    url: str = ""
    source: str = "<stdin>"

    @property
    def holiday_days(self) -> frozenset[date]:
        return frozenset(d for h in self.holidays for d in h.days())

    @property
    def workdays(self) -> frozenset[date]:
        return frozenset(w for h in self.holidays for w in h.workdays)

    def calendar(self) -> WorkdayCalendar:
        """The year as `load_calendar_file` would load it from `notice_yaml`'s file."""
        return WorkdayCalendar(
            years=frozenset({self.year}),
            holidays=self.holiday_days,
            workdays=self.workdays,
            source=self.source,
        )


def parse_notice(text: str, *, source: str = "<stdin>") -> NoticeYear:
    """Read the text of one yearly holiday notice, as pasted from gov.cn.

    `source` names the text in messages (the file it came from). Raises `NoticeError`, with
    every problem at once and nothing returned, when the text has no year (no heading
    关于YYYY年部分节假日安排的通知 and no preamble 现将YYYY年…通知如下), no holiday clause, or a
    clause-like line it cannot read completely; each problem reads
    "FILE:LINE: could not read: <the line as written> — <why and what to do>".
    """
    raw = _LINE_BREAK.split(text)
    lines = [_normalize(line) for line in raw]
    problems: list[Problem] = []

    def unreadable(n: int, why: str) -> None:
        problems.append(_problem(source, n, f"could not read: {raw[n - 1].strip()} — {why}"))

    year = _year(lines, source, problems)
    if year is None:
        raise NoticeError(problems)
    clauses: list[Clause] = []
    last_number = 0
    for n, line in enumerate(lines, start=1):
        if not looks_like_clause(line):
            continue
        number = clause_number(line)
        if number is not None:
            if number != last_number + 1:
                after = f"clause {numeral(last_number)}" if last_number else "no clause"
                unreadable(
                    n,
                    f"clause {numeral(number)} follows {after}: a clause is missing, repeated "
                    "or out of order; paste the whole notice again",
                )
            last_number = number
        try:
            clauses.append(read_clause(line, year=year, line=n))
        except Unreadable as exc:
            unreadable(n, str(exc))
    if not clauses and not problems:
        problems.append(
            _problem(
                source,
                None,
                "no holiday clause (such as 一、元旦：1月1日放假…) in the text: "
                "paste the whole notice",
            )
        )
    for n, why in _clashes(clauses):
        unreadable(n, why)
    if not problems:
        problems.extend(_preamble_problems(lines, raw, clauses, source))
    if problems:
        # in the order of the text, as a person fixes it
        raise NoticeError(sorted(problems, key=lambda p: p.line or 0))
    return _year_of(year, clauses, lines, source)


def _problem(source: str, line: int | None, message: str) -> Problem:
    return Problem(file=source, line=line, field="", message=message)


def _normalize(line: str) -> str:
    # NFKC makes full-width ：，（）；digits and spaces half-width; 。 and 、 have no half-width
    # form there, so 。 becomes "." by hand. Chinese needs no spaces: every space is stray.
    text = unicodedata.normalize("NFKC", line).translate(_INVISIBLE)
    return re.sub(r"\s+", "", text).replace("。", ".")


def _year(lines: list[str], source: str, problems: list[Problem]) -> int | None:
    found: list[tuple[int, int]] = []  # (line, year) of each heading and the preamble
    for n, line in enumerate(lines, start=1):
        heading = _HEADING.search(line)
        if heading is None and n < len(lines) and lines[n].startswith(_HEADING_REST):
            heading = _HEADING_START.search(line)
        preamble = _PREAMBLE.search(line)
        for match in (heading, preamble):
            if match is not None:
                found.append((n, int(match.group(1))))
    if not found:
        problems.append(
            _problem(
                source,
                None,
                "no year in the text: it has neither the heading "
                "国务院办公厅关于YYYY年部分节假日安排的通知 nor the preamble "
                "现将YYYY年…通知如下; paste the whole notice",
            )
        )
        return None
    first_line, year = found[0]
    for n, other in found:
        if other != year:
            problems.append(
                _problem(
                    source,
                    n,
                    f"this line is about {other}, line {first_line} about "
                    f"{year}: paste one notice at a time",
                )
            )
    return year


def _clashes(clauses: list[Clause]) -> list[tuple[int, str]]:
    """Clauses that contradict one another: a holiday set twice, a day both off and worked.
    One finding per clause: the first is enough to show the text is wrong."""
    out: dict[int, str] = {}
    named: dict[str, Clause] = {}
    off: dict[date, Clause] = {}
    for c in clauses:
        again = [named[n] for n in c.names if n in named]
        overlap = [d for d in c.days() if d in off]
        if again:
            out[c.line] = f"{'、'.join(c.names)} is set again; line {again[0].line} sets it"
        elif overlap:
            first = off[overlap[0]]
            out[c.line] = (
                f"{overlap[0]} is a day off of {'、'.join(first.names)} (line {first.line}) too"
            )
        named.update(dict.fromkeys(c.names, c))
        off.update(dict.fromkeys(c.days(), c))
    for c in clauses:
        worked_off = [w for w in c.workdays if w in off]
        if worked_off and c.line not in out:
            first = off[worked_off[0]]
            out[c.line] = (
                f"{worked_off[0]} is worked here but is a day off of "
                f"{'、'.join(first.names)} (line {first.line})"
            )
    return sorted(out.items())


def _preamble_problems(
    lines: list[str], raw: list[str], clauses: list[Clause], source: str
) -> list[Problem]:
    # The preamble lists every holiday the clauses set: a clause line lost in copying shows.
    for n, line in enumerate(lines, start=1):
        match = _PREAMBLE.search(line)
        if match is None:
            continue
        listed = set(re.findall("|".join(EN_NAMES), match.group(2)))
        named = {name for c in clauses for name in c.names}
        missing = [name for name in EN_NAMES if name in listed - named]
        extra = [name for name in EN_NAMES if name in named - listed]
        if not missing and not extra:
            return []
        why = (
            f"it names {'、'.join(missing)}, which no clause sets: a clause is missing"
            if missing
            else f"it does not name {'、'.join(extra)}, which a clause sets"
        )
        message = f"could not read: {raw[n - 1].strip()} — {why}; paste the whole notice again"
        return [_problem(source, n, message)]
    return []


def _year_of(year: int, clauses: list[Clause], lines: list[str], source: str) -> NoticeYear:
    holidays: list[NoticeHoliday] = []
    elsewhere: list[OtherYearDays] = []
    for c in clauses:
        name, en = "、".join(c.names), " and ".join(EN_NAMES[n] for n in c.names)
        days = [d for d in c.days() if d.year == year]
        # read_clause refuses a clause with no day off in its notice's year
        holidays.append(
            NoticeHoliday(
                name=name,
                en=en,
                start=days[0],
                end=days[-1],
                workdays=tuple(w for w in c.workdays if w.year == year),
                line=c.line,
            )
        )
        others = sorted({d.year for d in (*c.days(), *c.workdays)} - {year})
        elsewhere.extend(
            OtherYearDays(
                year=other,
                name=name,
                en=en,
                holidays=tuple(d for d in c.days() if d.year == other),
                workdays=tuple(w for w in c.workdays if w.year == other),
                line=c.line,
            )
            for other in others
        )
    numbers = [m for line in lines for m in _NUMBER.finditer(line)]
    notice = TITLE.format(year=year)
    if numbers:
        notice += f"（国办发明电〔{numbers[0].group(1)}〕{int(numbers[0].group(2))}号）"
    url = next((m.group(0) for line in lines for m in _URL.finditer(line)), "")
    return NoticeYear(
        year=year,
        notice=notice,
        holidays=tuple(holidays),
        elsewhere=tuple(elsewhere),
        url=url,
        source=source,
    )


def notice_yaml(year: NoticeYear) -> str:
    """Render `year` as calendar/YYYY.yaml (the bundled files' layout, CJK unescaped).

    `load_calendar_file` reads the result back to the same days. Days the notice sets in
    other years are comments above their holiday, naming the file they belong in.
    """
    out = [f"year: {year.year}", f"notice: {_scalar(year.notice)}"]
    if year.url:
        out.append(f"url: {_scalar(year.url)}")
    out.append("holidays:")
    for h in year.holidays:
        for other in year.elsewhere:
            if other.line == h.line:
                out.extend(f"  # {text}" for text in _elsewhere_text(other))
        workdays = ", ".join(w.isoformat() for w in h.workdays)
        out += [
            f"  - name: {_scalar(h.name)}",
            f"    en: {_scalar(h.en)}",
            f"    from: {h.start.isoformat()}",
            f"    to: {h.end.isoformat()}",
            f"    workdays: [{workdays}]",
        ]
    return "\n".join(out) + "\n"


def _scalar(value: str) -> str:
    # Plain when YAML reads it back unchanged (all the notice's names and titles), else a
    # JSON string, which YAML reads as a double-quoted scalar.
    try:
        if yaml.safe_load(f"k: {value}") == {"k": value}:
            return value
    except yaml.YAMLError:
        pass
    return json.dumps(value, ensure_ascii=False)


def _span(start: date, end: date) -> str:
    if start == end:
        return f"{start} {start:%a}"
    return f"{start} {start:%a} – {end} {end:%a}"


def _elsewhere_text(other: OtherYearDays) -> list[str]:
    parts = []
    if other.holidays:
        parts.append(f"{_span(other.holidays[0], other.holidays[-1])} off")
    if other.workdays:
        parts.append("worked " + ", ".join(w.isoformat() for w in other.workdays))
    return [
        f"{other.name} (line {other.line}) also sets {other.year}: {'; '.join(parts)};",
        f"list that in {other.year}.yaml, not here.",
    ]


def describe_notice(year: NoticeYear) -> list[str]:
    """Lines for a person to check against the notice: the title, each holiday with its
    days off, each swapped workday, then what the notice sets in other years."""
    out = [f"{year.year}: {year.notice}"]
    for h in year.holidays:
        count = (h.end - h.start).days + 1
        out.append(
            f"{h.name} ({h.en}): {_span(h.start, h.end)}, "
            f"{count} {'day' if count == 1 else 'days'} off"
        )
        out.extend(f"  worked: {w} {w:%a} (上班, for {h.name})" for w in h.workdays)
    for other in year.elsewhere:
        out.append(" ".join(_elsewhere_text(other)))
    return out
