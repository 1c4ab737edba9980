"""The provisional working-day calendar: a year for which no State Council notice is loaded.

Each year's official days off are fixed by 《国务院办公厅关于YYYY年部分节假日安排的通知》,
published in the preceding November. Until it is imported (`duban calendar import`), duban
does not stop counting: it uses the statutory holidays of 《全国年节及纪念日放假办法》 as in force
since 2025-01-01 (国务院令第795号, 2024-11-10), article 2:

- 元旦 1 day (1 January); 春节 4 days (除夕 and 正月初一 to 初三); 清明节 1 day (the day of the
  清明 solar term); 劳动节 2 days (1 and 2 May); 端午节 1 day (五月初五); 中秋节 1 day
  (八月十五); 国庆节 3 days (1 to 3 October);

and article 6: a holiday that falls on a Saturday or Sunday is made up on the next working
day (补假). No swapped workdays (调休) are guessed: those exist only by notice. Lunar dates
and the solar term come from `lunar_python` (6tail's lunar, maintained), never from a table
typed in here. Every date computed on such a year is shown as provisional.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from functools import lru_cache

from lunar_python import Lunar, Solar

from duban.domain.workdays import SATURDAY, ProvisionalRule

#: the first year the current 《全国年节及纪念日放假办法》 applies to; earlier years need files
LAW_IN_FORCE_FROM = 2025
#: duban's years end here (plans and the API bound years to 2000–2100)
LAST_YEAR = 2100
LAW = "《全国年节及纪念日放假办法》（国务院令第795号，2025年1月1日起施行）"


@dataclass(frozen=True, kw_only=True)
class StatutoryDay:
    day: date
    name: str  # 元旦, 春节, …
    en: str
    made_up: bool = False  # a 补假 day for a holiday on a weekend


def _lunar(year: int, month: int, day: int) -> date:
    solar = Lunar.fromYmd(year, month, day).getSolar()
    return date(solar.getYear(), solar.getMonth(), solar.getDay())


def _qingming(year: int) -> date:
    # The jieqi table of the lunar year that contains 1 June holds that calendar year's 清明.
    term = Solar.fromYmd(year, 6, 1).getLunar().getJieQiTable()["清明"]
    return date(term.getYear(), term.getMonth(), term.getDay())


def _festivals(year: int) -> list[tuple[date, str, str]]:
    new_year = _lunar(year, 1, 1)
    return [
        (date(year, 1, 1), "元旦", "New Year's Day"),
        (new_year - timedelta(days=1), "春节", "Spring Festival"),  # 除夕
        *((new_year + timedelta(days=i), "春节", "Spring Festival") for i in range(3)),
        (_qingming(year), "清明节", "Tomb-sweeping Day"),
        (date(year, 5, 1), "劳动节", "Labour Day"),
        (date(year, 5, 2), "劳动节", "Labour Day"),
        (_lunar(year, 5, 5), "端午节", "Dragon Boat Festival"),
        (_lunar(year, 8, 15), "中秋节", "Mid-autumn Festival"),
        *((date(year, 10, 1 + i), "国庆节", "National Day") for i in range(3)),
    ]


@lru_cache(maxsize=256)
def statutory_days(year: int) -> tuple[StatutoryDay, ...]:
    """The days off of `year` under the law alone, with 补假, in date order.

    Each festival day on a Saturday or Sunday is made up once, so two festivals on one
    weekend day (中秋节 on Sunday 2 October 2039) give two made-up days, as python-holidays
    also reads article 6; two on one weekday are one day off. A made-up day is the first
    weekday after the holiday that is neither a holiday nor already a made-up day.
    """
    festivals = sorted(_festivals(year))
    seen: dict[date, StatutoryDay] = {}
    for day, name, en in festivals:
        if day not in seen:
            seen[day] = StatutoryDay(day=day, name=name, en=en)
    made_up: list[StatutoryDay] = []
    taken = set(seen)
    for day_off, name, en in festivals:
        if day_off.weekday() < SATURDAY:
            continue
        day = day_off + timedelta(days=1)
        while day.weekday() >= SATURDAY or day in taken:
            day += timedelta(days=1)
        taken.add(day)
        made_up.append(StatutoryDay(day=day, name=name, en=en, made_up=True))
    return tuple(sorted([*seen.values(), *made_up], key=lambda h: h.day))


@dataclass(frozen=True, kw_only=True)
class StatutoryYears(ProvisionalRule):
    """The provisional rule for `WorkdayCalendar`: years from `first` to `last` by the law."""

    first: int = LAW_IN_FORCE_FROM
    last: int = LAST_YEAR

    def covers(self, year: int) -> bool:
        return self.first <= year <= self.last

    def holidays(self, year: int) -> frozenset[date]:
        return frozenset(h.day for h in statutory_days(year))

    def describe(self) -> str:
        return f"provisional: weekends and the statutory holidays of {LAW}, no swapped workdays"
