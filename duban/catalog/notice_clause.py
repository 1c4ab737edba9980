"""Reads one holiday clause of a State Council notice (the grammar behind `notice.py`).

A clause, after `notice._normalize` (half-width punctuation, no spaces, 。 as "."):

    [一、]NAME[、NAME]:DAYS_OFF.[WORKDAYS上班.][鼓励….]

DAYS_OFF is one of
    D至D放假调休,共N天    D至D放假,共N天    D放假,共1天    D放假1天,不调休
    D放假,与周末连休      (off from D through the adjoining weekend)
    D放假,D补休           (off from the first D to the second)
and a date D is [YYYY年][M月]D日[(周X)] or with 星期X, the bracket also holding a lunar date
(农历腊月二十八、周日). A date without a year is in the notice's year, except that a date
without a month (至3日, 、18日) takes the year and month of the date before it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, timedelta

from duban.domain.workdays import SATURDAY, days_from

EN_NAMES: dict[str, str] = {
    "元旦": "New Year's Day",
    "春节": "Spring Festival",
    "清明节": "Tomb-sweeping Day",
    "劳动节": "Labour Day",
    "端午节": "Dragon Boat Festival",
    "中秋节": "Mid-autumn Festival",
    "国庆节": "National Day",
}
NEW_YEAR = "元旦"
ONE_DAY = timedelta(days=1)

_NAMES = "|".join(EN_NAMES)
_NUMERALS = "一二三四五六七八九"
_NUMBERED = re.compile(rf"^([{_NUMERALS}十]+)[、,.]")
_NAMED = re.compile(rf"^(?:{_NAMES})(?:[、,和](?:{_NAMES}))*:")
_NAMED_WITH_DATE = re.compile(rf"^(?:{_NAMES}).*?\d{{1,2}}月\d{{1,2}}日")
_NAMELESS = re.compile(r"^(?:\d{4}年)?\d{1,2}月\d{1,2}日.*(?:放假|上班|补休)")
_WEEKDAY = re.compile(r"^(?:星期|周|礼拜)([一二三四五六日天])$")
_ZH_WEEKDAYS = "一二三四五六日"
_WEEKDAY_NUMBERS = {**{c: i for i, c in enumerate(_ZH_WEEKDAYS)}, "天": 6}
_CLAUSE_NUMBERS = {
    **{c: i for i, c in enumerate(_NUMERALS, start=1)},
    "十": 10,
    **{f"十{c}": 10 + i for i, c in enumerate(_NUMERALS, start=1)},
}


def _date(p: str) -> str:
    return (
        rf"(?P<{p}>(?:(?P<{p}y>\d{{4}})年)?(?:(?P<{p}m>\d{{1,2}})月)?(?P<{p}d>\d{{1,2}})日)"
        rf"(?:\((?P<{p}w>[^()]*)\))?"
    )


_OFF = re.compile(rf"^{_date('a')}(?:至{_date('b')})?放假(?P<tail>.*)$")
_TAIL_COUNT = re.compile(r"^(?:调休)?(?:,共(?P<n>\d+)天)?$")  # 放假调休,共3天 / 放假,共1天
_TAIL_ONE_DAY = re.compile(r"^(?P<n>\d+)天(?:,不调休)?$")  # 放假1天,不调休
_TAIL_WEEKEND = re.compile(r"^,与周末连休(?:,共(?P<n>\d+)天)?$")
_TAIL_EXTRA = re.compile(rf"^,{_date('c')}补休$")
_WORKDAY = re.compile(_date("w"))


class Unreadable(Exception):
    """Why one clause line cannot be read; `notice.parse_notice` names and quotes the line."""


@dataclass(frozen=True, kw_only=True)
class Clause:
    """One clause as the notice sets it: days off and swapped workdays, in any year."""

    names: tuple[str, ...]
    start: date
    end: date
    workdays: tuple[date, ...]
    line: int

    def days(self) -> tuple[date, ...]:
        return days_from(self.start, self.end)


def looks_like_clause(line: str) -> bool:
    """True for a normalized line that must be read as a clause or refused: numbered (一、),
    opening with a holiday name and ： or a date, or opening with a date and saying 放假/上班."""
    return any(p.match(line) for p in (_NUMBERED, _NAMED, _NAMED_WITH_DATE, _NAMELESS))


def clause_number(line: str) -> int | None:
    """The clause's number (一、 is 1, 十二、 is 12), or None when it has none or a bad one."""
    match = _NUMBERED.match(line)
    return None if match is None else _CLAUSE_NUMBERS.get(match.group(1))


def numeral(number: int) -> str:
    """The clause number as the notices write it (4 is 四)."""
    return next((k for k, v in _CLAUSE_NUMBERS.items() if v == number), str(number))


def read_clause(text: str, *, year: int, line: int) -> Clause:
    """Read one normalized clause line of the notice for `year`; raise `Unreadable` saying why."""
    numbered = _NUMBERED.match(text)
    if numbered and clause_number(text) is None:
        raise Unreadable(f"{numbered.group(1)} is not a clause number such as 一 or 七")
    head, colon, rest = text[numbered.end() if numbered else 0 :].partition(":")
    if not colon or head[:1].isdigit():
        raise Unreadable("expected the holiday name and ：, as in 一、元旦：1月1日放假…")
    names = tuple(re.split("[、,和]", head))
    unknown = [n for n in names if n not in EN_NAMES]
    if unknown:
        raise Unreadable(
            f"{'、'.join(unknown)} is not a holiday name; the notices name {'、'.join(EN_NAMES)}"
        )
    sentences = [s for s in re.split(r"[.;]", rest) if s]
    if not sentences:
        raise Unreadable("nothing after the holiday name: the days off are missing")
    new_year = NEW_YEAR in names
    start, end = _days_off(sentences[0], year=year, new_year=new_year)
    workdays: tuple[date, ...] = ()
    for i, sentence in enumerate(sentences[1:]):
        if i == 0 and sentence.endswith("上班"):
            workdays = _workdays(sentence, year=year, new_year=new_year)
        elif not sentence.startswith("鼓励"):
            # Only an encouragement (鼓励…除夕休息, 2024) follows the days off and workdays;
            # anything else may change the days and is not understood.
            raise Unreadable(
                f"cannot read the sentence {sentence}; after the days off and the "
                "workdays (上班) a clause has only an encouragement (鼓励…)"
            )
    if all(d.year != year for d in (start, end)):
        raise Unreadable(f"it sets no day off in {year}")
    return Clause(names=names, start=start, end=end, workdays=workdays, line=line)


def _days_off(sentence: str, *, year: int, new_year: bool) -> tuple[date, date]:
    match = _OFF.match(sentence)
    if match is None:
        if "放假" not in sentence:
            raise Unreadable("no 放假 (days off) in it: the text is damaged; paste it again")
        raise Unreadable(
            f"{sentence.partition('放假')[0] or 'nothing'} before 放假 is not a day "
            "or range such as 1月1日 or 1月1日至3日"
        )
    a = _resolve(match, "a", before=None, year=year, new_year=new_year)
    b = _resolve(match, "b", before=a, year=year, new_year=new_year) if match["b"] else None
    if b is not None and b < a:
        raise Unreadable(
            f"{match['b']} is before {match['a']}: write the years of a range "
            "that crosses into a new year"
        )
    tail = match["tail"]
    start, end = a, b or a
    weekend = _TAIL_WEEKEND.match(tail)
    extra = _TAIL_EXTRA.match(tail)
    count = _TAIL_COUNT.match(tail) or _TAIL_ONE_DAY.match(tail) or weekend
    if weekend and b is None:
        while (start - ONE_DAY).weekday() >= SATURDAY:
            start -= ONE_DAY
        while (end + ONE_DAY).weekday() >= SATURDAY:
            end += ONE_DAY
        if start == end:
            raise Unreadable(
                f"{match['a']} is {a}, a {a:%A}, which does not adjoin a "
                "weekend, yet the text says 与周末连休: it is damaged"
            )
    elif extra and b is None:
        end = _resolve(extra, "c", before=a, year=year, new_year=new_year)
        between = [a + timedelta(days=i) for i in range(1, (end - a).days)]
        if end <= a or any(d.weekday() < SATURDAY for d in between):
            raise Unreadable(
                f"the day off in lieu (补休) {extra['c']} does not follow "
                f"{match['a']} across a weekend"
            )
    elif not count or weekend:
        raise Unreadable(
            f"cannot read {tail or 'nothing'} after 放假: expected 调休，共N天, "
            "，与周末连休 or ，X日补休"
        )
    n = count["n"] if count else None
    if n is not None and int(n) != (end - start).days + 1:
        raise Unreadable(
            f"it says 共{n}天 but {start} to {end} is {(end - start).days + 1} "
            "days: the text is damaged; paste it again"
        )
    return start, end


def _workdays(sentence: str, *, year: int, new_year: bool) -> tuple[date, ...]:
    dates = sentence.removesuffix("上班")
    out: list[date] = []
    pos = 0
    while True:
        match = _WORKDAY.match(dates, pos)
        if match is None:
            raise Unreadable(
                f"cannot read the workdays {sentence}: expected days such as "
                "1月4日（周日）、1月5日（周一） before 上班"
            )
        day = _resolve(match, "w", before=out[-1] if out else None, year=year, new_year=new_year)
        if day.weekday() < SATURDAY:
            raise Unreadable(
                f"{match['w']} is {day}, a {day:%A}; a swapped workday (上班) "
                "is a Saturday or Sunday: the text is damaged"
            )
        out.append(day)
        pos = match.end()
        if pos == len(dates):
            return tuple(out)
        if dates[pos] not in "、,":
            raise Unreadable(f"cannot read {dates[pos:]} in the workdays (上班)")
        pos += 1


def _resolve(
    match: re.Match[str], p: str, *, before: date | None, year: int, new_year: bool
) -> date:
    """The date written in group `p`; its bracket, if any, must hold its weekday."""
    text, y, m, d = match[p], match[p + "y"], match[p + "m"], int(match[p + "d"])
    if m is None:
        if before is None or y is not None:
            raise Unreadable(f"{text} has no month")
        in_year, month = before.year, before.month
    else:
        in_year, month = (int(y) if y else year), int(m)
        if not 1 <= month <= 12:
            raise Unreadable(f"{text}: there is no month {month}; the text is damaged")
        if y is None and month == 12 and new_year:
            # 元旦's December days are in the year before; the notices write that year.
            raise Unreadable(
                f"{text} has no year, and a December day of 元旦 is in {year - 1}: "
                f"write {year - 1}年{text} (it then belongs in {year - 1}.yaml)"
            )
    allowed = (year - 1, year) if new_year else (year,)
    if in_year not in allowed:
        raise Unreadable(f"{text} is in {in_year}; this notice is for {year}")
    try:
        day = date(in_year, month, d)
    except ValueError:
        raise Unreadable(
            f"{text}: {in_year}年{month}月 has no day {d}; the text is damaged"
        ) from None
    _check_bracket(match[p + "w"], text, day)
    return day


def _check_bracket(bracket: str | None, text: str, day: date) -> None:
    if bracket is None:
        return
    said: str | None = None
    for item in re.split("[、,]", bracket):
        weekday = _WEEKDAY.match(item)
        if weekday and said is None:
            said = item
            if _WEEKDAY_NUMBERS[weekday.group(1)] != day.weekday():
                raise Unreadable(
                    f"{text} is {day}, a {day:%A} (周{_ZH_WEEKDAYS[day.weekday()]}), but the "
                    f"text says {item}: it is damaged; paste it again from the notice"
                )
        elif not item.startswith("农历"):  # a lunar date (农历除夕) is not checked
            raise Unreadable(
                f"cannot read ({bracket}) after {text}: expected its weekday, "
                "such as 周六 or 星期六"
            )
