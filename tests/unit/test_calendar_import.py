"""Reading the State Council's holiday notice text into a calendar year (duban.catalog.notice).

The fixtures are the published notices for 2017 and 2023–2026 as gov.cn sets them. A bundled
year's parse must give exactly the bundled calendar/YYYY.yaml; 2017, which is not bundled,
is checked day by day against chinese_calendar and python-holidays.
"""

from __future__ import annotations

import dataclasses
import re
from datetime import date, timedelta
from pathlib import Path

import chinese_calendar
import holidays
import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from duban.catalog.calendar import load_calendar_file
from duban.catalog.notice import (
    NoticeYear,
    OtherYearDays,
    describe_notice,
    notice_yaml,
    parse_notice,
)
from duban.errors import NoticeError, PlanError

ROOT = Path(__file__).resolve().parents[2]
NOTICES = ROOT / "tests" / "fixtures" / "notices"
CALENDAR_DIR = ROOT / "calendar"
YEARS = (2017, 2023, 2024, 2025, 2026)
BUNDLED = (2023, 2024, 2025, 2026)
TEXT = {year: (NOTICES / f"{year}.txt").read_text(encoding="utf-8") for year in YEARS}
HALF_WIDTH = {"：": ":", "，": ",", "（": "(", "）": ")", "。": ".", "、": ","}
ZH_WEEKDAYS = "一二三四五六日"


def parse(year: int, text: str | None = None) -> NoticeYear:
    return parse_notice(TEXT[year] if text is None else text, source=f"{year}.txt")


def days_of(notice: NoticeYear) -> tuple[object, ...]:
    """Everything a parse sets, without the line numbers (which blank lines move)."""
    return (
        notice.year,
        notice.notice,
        [(h.name, h.en, h.start, h.end, h.workdays) for h in notice.holidays],
        [(o.year, o.name, o.en, o.holidays, o.workdays) for o in notice.elsewhere],
    )


def bundled_entries(year: int) -> list[tuple[object, ...]]:
    data = yaml.safe_load((CALENDAR_DIR / f"{year}.yaml").read_text(encoding="utf-8"))
    return [
        (h["name"], h["en"], h["from"], h["to"], tuple(h["workdays"])) for h in data["holidays"]
    ]


def line_of(text: str, fragment: str) -> int:
    return next(n for n, line in enumerate(text.splitlines(), 1) if fragment in line)


# --- the published notices -------------------------------------------------------------


@pytest.mark.parametrize("year", BUNDLED)
def test_each_bundled_notice_parses_to_the_bundled_holidays_in_order(year: int) -> None:
    entries = bundled_entries(year)
    # The bundled file also lists the next New Year's December days, set by next year's notice.
    this_notice = [e for e in entries if not (e[0] == "元旦" and e[2].month == 12)]
    parsed = [(h.name, h.en, h.start, h.end, h.workdays) for h in parse(year).holidays]
    assert parsed == this_notice


@pytest.mark.parametrize("year", BUNDLED)
def test_each_bundled_year_is_its_notice_plus_the_next_notices_december(year: int) -> None:
    bundled = load_calendar_file(CALENDAR_DIR / f"{year}.yaml")
    ours = parse(year).calendar()
    holidays_, workdays = set(ours.holidays), set(ours.workdays)
    if year + 1 in TEXT:
        for other in parse(year + 1).elsewhere:
            assert other.year == year
            holidays_ |= set(other.holidays)
            workdays |= set(other.workdays)
    assert (holidays_, workdays) == (set(bundled.holidays), set(bundled.workdays))


def test_days_a_notice_sets_in_the_year_before_are_kept_apart() -> None:
    # 2023: 2022年12月31日至2023年1月2日; 2024: a Monday 1月1日 "与周末连休".
    assert parse(2023).elsewhere == (
        OtherYearDays(
            year=2022,
            name="元旦",
            en="New Year's Day",
            holidays=(date(2022, 12, 31),),
            workdays=(),
            line=9,
        ),
    )
    assert [(o.year, o.holidays) for o in parse(2024).elsewhere] == [
        (2023, (date(2023, 12, 30), date(2023, 12, 31)))
    ]
    last_of_2022 = bundled_entries(2022)[-1]
    assert last_of_2022[:4] == ("元旦", "New Year's Day", date(2022, 12, 31), date(2022, 12, 31))


def test_2017_matches_chinese_calendar_every_day_and_python_holidays() -> None:
    notice = parse(2017)
    cal = notice.calendar()
    day, mismatches = date(2017, 1, 1), []
    while day.year == 2017:
        if cal.is_workday(day) != chinese_calendar.is_workday(day):
            mismatches.append(f"{day} {day:%a}: ours working={cal.is_workday(day)}")
        day += timedelta(days=1)
    assert not mismatches
    reference = holidays.China(years=2017)
    assert {d for d in reference if d.year == 2017} <= cal.holidays
    assert {d for d in reference.weekend_workdays if d.year == 2017} == cal.workdays


def test_2017_reads_buxiu_and_the_adjoining_weekend_and_the_combined_line() -> None:
    entries = [(h.name, h.start, h.end, h.workdays) for h in parse(2017).holidays]
    assert entries == [
        ("元旦", date(2017, 1, 1), date(2017, 1, 2), ()),  # 1月1日放假，1月2日（星期一）补休
        ("春节", date(2017, 1, 27), date(2017, 2, 2), (date(2017, 1, 22), date(2017, 2, 4))),
        ("清明节", date(2017, 4, 2), date(2017, 4, 4), (date(2017, 4, 1),)),
        ("劳动节", date(2017, 4, 29), date(2017, 5, 1), ()),  # 5月1日放假，与周末连休
        ("端午节", date(2017, 5, 28), date(2017, 5, 30), (date(2017, 5, 27),)),
        ("中秋节、国庆节", date(2017, 10, 1), date(2017, 10, 8), (date(2017, 9, 30),)),
    ]
    assert parse(2017).holidays[-1].en == "Mid-autumn Festival and National Day"
    assert parse(2017).elsewhere == ()  # 2016-12-31 is a plain Saturday, not named


@pytest.mark.parametrize(
    ("year", "notice"),
    [
        (2017, "国务院办公厅关于2017年部分节假日安排的通知（国办发明电〔2016〕17号）"),
        (2024, "国务院办公厅关于2024年部分节假日安排的通知（国办发明电〔2023〕7号）"),
        (2026, "国务院办公厅关于2026年部分节假日安排的通知（国办发明电〔2025〕7号）"),
    ],
)
def test_the_title_and_number_are_read(year: int, notice: str) -> None:
    assert (parse(year).year, parse(year).notice) == (year, notice)


def test_without_a_number_the_title_alone_is_the_notice() -> None:
    text = TEXT[2026].replace("国办发明电〔2025〕7号\n", "")
    assert parse(2026, text).notice == "国务院办公厅关于2026年部分节假日安排的通知"


# --- rendering -------------------------------------------------------------------------


@pytest.mark.parametrize("year", YEARS)
def test_the_rendered_yaml_loads_back_to_the_same_days(year: int, tmp_path: Path) -> None:
    notice = parse(year)
    rendered = notice_yaml(notice)
    path = tmp_path / f"{year}.yaml"
    path.write_text(rendered, encoding="utf-8")
    loaded, ours = load_calendar_file(path), notice.calendar()
    assert (loaded.years, loaded.holidays, loaded.workdays) == (
        ours.years,
        ours.holidays,
        ours.workdays,
    )
    assert "元旦" in rendered and "\\u" not in rendered  # CJK written as is, not escaped


@pytest.mark.parametrize("year", [2025, 2026])
def test_the_rendered_yaml_is_the_bundled_file_byte_for_byte(year: int) -> None:
    bundled = (CALENDAR_DIR / f"{year}.yaml").read_text(encoding="utf-8")
    url = yaml.safe_load(bundled)["url"]
    assert notice_yaml(dataclasses.replace(parse(year), url=url)) == bundled


def test_days_in_another_year_are_comments_naming_that_years_file(tmp_path: Path) -> None:
    rendered = notice_yaml(parse(2024))
    assert (
        "holidays:\n"
        "  # 元旦 (line 9) also sets 2023: 2023-12-30 Sat – 2023-12-31 Sun off;\n"
        "  # list that in 2023.yaml, not here.\n"
        "  - name: 元旦\n"
    ) in rendered
    assert "from: 2024-01-01\n    to: 2024-01-01\n" in rendered


def test_a_value_yaml_would_misread_is_quoted() -> None:
    notice = dataclasses.replace(parse(2026), url="https://www.gov.cn/a#b: c")
    assert yaml.safe_load(notice_yaml(notice))["url"] == "https://www.gov.cn/a#b: c"


def test_describe_lists_each_holiday_and_each_workday_on_its_own_line() -> None:
    assert describe_notice(parse(2024))[:6] == [
        "2024: 国务院办公厅关于2024年部分节假日安排的通知（国办发明电〔2023〕7号）",
        "元旦 (New Year's Day): 2024-01-01 Mon, 1 day off",
        "春节 (Spring Festival): 2024-02-10 Sat – 2024-02-17 Sat, 8 days off",
        "  worked: 2024-02-04 Sun (上班, for 春节)",
        "  worked: 2024-02-18 Sun (上班, for 春节)",
        "清明节 (Tomb-sweeping Day): 2024-04-04 Thu – 2024-04-06 Sat, 3 days off",
    ]
    assert describe_notice(parse(2024))[-1] == (
        "元旦 (line 9) also sets 2023: 2023-12-30 Sat – 2023-12-31 Sun off; "
        "list that in 2023.yaml, not here."
    )
    assert len(describe_notice(parse(2026))) == 1 + 7 + 6  # title, holidays, workdays


# --- wording, punctuation and layout variants ------------------------------------------


def _half_width(text: str) -> str:
    return text.translate(str.maketrans(HALF_WIDTH))


VARIANTS = {
    "星期 for 周": lambda t: t.replace("（周", "（星期"),
    "周 for 星期": lambda t: t.replace("（星期", "（周"),
    "星期天 for 星期日": lambda t: t.replace("星期日", "星期天"),
    "half-width punctuation": _half_width,
    "full-width digits": lambda t: t.translate(str.maketrans("0123456789", "０１２３４５６７８９")),
    "Windows line endings and a BOM": lambda t: "\ufeff" + t.replace("\n", "\r\n"),
    "indented with ideographic spaces": lambda t: "\n".join(f"　　{ln}  " for ln in t.split("\n")),
    "no blank lines": lambda t: re.sub(r"\n+", "\n", t),
    "spaces between the characters": lambda t: " ".join(t),
    "the heading on one line": lambda t: t.replace("年\n部分节假日", "年部分节假日"),
    "the heading broken after 年": lambda t: re.sub(r"(关于\d{4}年)(部分)", r"\1\n\2", t),
    "gov.cn's page header above": lambda t: (
        "标　　题：国务院办公厅关于{y}年部分节假日安排的通知\n"
        "发文字号：{n}\n成文日期：2025年11月04日\n主题分类：综合政务\\其他\n" + t
    ),
    "Xinhua's dateline": lambda t: t.replace(
        "各省、",
        "新华社北京11月4日电 国务院办公厅关于{y}年部分节假日安排的通知，全文如下：\n各省、",
    ),
}


@pytest.mark.parametrize("year", YEARS)
@pytest.mark.parametrize("variant", VARIANTS)
def test_wording_and_layout_variants_give_the_same_year(year: int, variant: str) -> None:
    number = re.search(r"国办发明电〔\d+〕\d+号", TEXT[year])
    assert number is not None
    text = VARIANTS[variant](TEXT[year]).replace("{y}", str(year)).replace("{n}", number[0])
    assert days_of(parse(year, text)) == days_of(parse(year))


@pytest.mark.parametrize("variant", VARIANTS)
def test_each_variant_changes_some_fixture(variant: str) -> None:
    # a variant that changes nothing would make the test above pass for nothing
    assert any(VARIANTS[variant](TEXT[year]) != TEXT[year] for year in YEARS)


def test_a_gov_cn_address_in_the_text_becomes_the_url() -> None:
    url = "https://www.gov.cn/zhengce/content/202511/content_7047090.htm"
    assert parse(2026, TEXT[2026] + f"\n{url}\n").url == url
    assert parse(2026).url == ""


@st.composite
def mutated(draw: st.DrawFn) -> tuple[int, str]:
    """A fixture with some full-width marks made half-width and stray whitespace added."""
    year = draw(st.sampled_from(YEARS))
    text = TEXT[year]
    marks = [i for i, ch in enumerate(text) if ch in HALF_WIDTH]
    swapped = draw(st.sets(st.sampled_from(marks), max_size=40))
    chars = [HALF_WIDTH[ch] if i in swapped else ch for i, ch in enumerate(text)]
    for at in sorted(draw(st.lists(st.integers(0, len(chars)), max_size=30)), reverse=True):
        chars.insert(at, draw(st.sampled_from([" ", "\u3000", "\t", "  ", "\u00a0"])))
    ending = draw(st.sampled_from(["\n", "\r\n", "\r"]))
    return year, "".join(chars).replace("\n", ending)


@settings(max_examples=60, deadline=None)
@given(case=mutated())
def test_punctuation_width_and_stray_spaces_never_change_the_result(case: tuple[int, str]) -> None:
    year, text = case
    assert days_of(parse(year, text)) == days_of(parse(year))


def _zh(day: date, before: date | None, style: str) -> str:
    written = (
        f"{day.day}日" if before and before.month == day.month else f"{day.month}月{day.day}日"
    )
    return written + (f"（{style}{ZH_WEEKDAYS[day.weekday()]}）" if style else "")


@st.composite
def clauses(draw: st.DrawFn) -> tuple[int, date, date, tuple[date, ...], str]:
    """A 劳动节 clause for any year, written as the notices write one."""
    year = draw(st.integers(2001, 2098))
    start = draw(st.dates(date(year, 1, 1), date(year, 12, 20)))
    end = start + timedelta(days=draw(st.integers(0, 10)))
    weekend = [
        start + timedelta(days=i)
        for i in range(-12, 24)
        if (start + timedelta(days=i)).weekday() >= 5
        and (start + timedelta(days=i)).year == year
        and not start <= start + timedelta(days=i) <= end
    ]
    workdays = tuple(sorted(draw(st.sets(st.sampled_from(weekend), max_size=2))))
    style = draw(st.sampled_from(["周", "星期", ""]))
    off = _zh(start, None, style)
    if end != start:
        off += "至" + _zh(end, start, style)
    text = f"四、劳动节：{off}放假调休，共{(end - start).days + 1}天。"
    if workdays:
        text += "、".join(_zh(w, None, style or "星期") for w in workdays) + "上班。"
    return year, start, end, workdays, text


@settings(max_examples=100, deadline=None)
@given(case=clauses())
def test_any_clause_written_as_the_notices_write_it_is_read_back(
    case: tuple[int, date, date, tuple[date, ...], str],
) -> None:
    year, start, end, workdays, clause = case
    text = f"国务院办公厅关于{year}年部分节假日安排的通知\n{clause.replace('四、', '')}\n"
    (holiday,) = parse_notice(text).holidays
    assert (holiday.name, holiday.start, holiday.end, holiday.workdays) == (
        "劳动节",
        start,
        end,
        workdays,
    )


# --- damaged texts are refused, naming and quoting the line ----------------------------

DAMAGED = [
    # (year, as published, as damaged, what the message must say)
    (
        2026,
        "2月15日（农历腊月二十八、周日）至23日（农历正月初七、周一）放假调休，共9天。2月14日（周六）、2月28日（周六）上班。",
        "2月15日（农历腊月二十八、周日）至23",
        "no 放假",
    ),
    (
        2026,
        "1月1日（周四）至3日（周六）放假",
        "1月1日（周四）至（周六）放假",
        "is not a day or range",
    ),
    (
        2026,
        "4月4日（周六）至6日",
        "4月4日（周五）至6日",
        "2026-04-04, a Saturday (周六), but the text says 周五",
    ),
    (
        2017,
        "5月27日（星期六）上班",
        "5月27日（星期日）上班",
        "2017-05-27, a Saturday (周六), but the text says 星期日",
    ),
    (2026, "5月1日（周五）至5日", "13月1日（周五）至5日", "there is no month 13"),
    (2024, "4月4日至6日", "4月31日至6日", "2024年4月 has no day 31"),
    (2026, "至27日（周日）放假，共3天。", "至27日（周日），共3天。", "no 放假"),
    (2026, "共9天", "共8天", "共8天 but 2026-02-15 to 2026-02-23 is 9 days"),
    (
        2026,
        "5月9日（周六）上班",
        "5月8日（周五）上班",
        "a swapped workday (上班) is a Saturday or Sunday",
    ),
    (
        2026,
        "10月10日（周六）上班。",
        "10月10日（周六）上班。具体另行通知。",
        "cannot read the sentence 具体另行通知",
    ),
    (2024, "6月10日放假，与周末连休", "6月12日放假，与周末连休", "does not adjoin a weekend"),
    (2023, "2022年12月31日至2023年1月2日", "12月31日至1月2日", "write 2022年12月31日"),
    (2026, "七、国庆节：10月1日", "10月1日", "expected the holiday name"),
    (2026, "七、国庆节：", "七、国庆：", "国庆 is not a holiday name"),
    (
        2026,
        "10月1日（周四）至7日（周三）",
        "9月27日（周日）至10月3日（周六）",
        "2026-09-27 is a day off of 中秋节 (line 18) too",
    ),
    (2026, "三、清明节", "四、清明节", "clause 四 follows clause 二"),
    (
        2017,
        "1月2日（星期一）补休",
        "1月4日（星期三）补休",
        "does not follow 1月1日 across a weekend",
    ),
    (2026, "、周日）至23日", "、礼拜八）至23日", "cannot read (农历腊月二十八、礼拜八)"),
    (
        2026,
        "1月4日（周日）上班",
        "2027年1月4日（周一）上班",
        "2027年1月4日 is in 2027; this notice is for 2026",
    ),
]


@pytest.mark.parametrize(("year", "good", "bad", "why"), DAMAGED, ids=[d[3] for d in DAMAGED])
def test_a_damaged_clause_is_refused_naming_and_quoting_its_line(
    year: int, good: str, bad: str, why: str
) -> None:
    assert TEXT[year].count(good) == 1
    text = TEXT[year].replace(good, bad)
    n = line_of(text, bad)
    with pytest.raises(NoticeError) as excinfo:
        parse(year, text)
    line = text.splitlines()[n - 1].strip()
    (problem,) = [p for p in excinfo.value.problems if p.line == n]
    assert problem.file == f"{year}.txt"
    assert problem.message.startswith(f"could not read: {line} — ")
    assert why in problem.message
    assert f"{year}.txt:{n}: could not read: {line} — " in str(excinfo.value)


def test_the_message_the_user_sees_is_exact() -> None:
    text = TEXT[2026].replace("4月4日（周六）", "4月4日（周五）")
    with pytest.raises(NoticeError) as excinfo:
        parse_notice(text, source="notices/2026.txt")
    assert isinstance(excinfo.value, PlanError)  # the CLI prints every PlanError the same way
    assert str(excinfo.value) == (
        "the notice text could not be read completely (1 problem); nothing was imported:\n"
        "  notices/2026.txt:12: could not read: "
        "三、清明节：4月4日（周五）至6日（周一）放假，共3天。"
        " — 4月4日 is 2026-04-04, a Saturday (周六), but the text says 周五: it is damaged; "
        "paste it again from the notice"
    )


def test_every_damaged_line_is_reported_at_once_in_the_order_of_the_text() -> None:
    text = (
        TEXT[2026]
        .replace("共3天。1月4日", "共4天。1月4日")
        .replace("5月9日（周六）", "5月9日（周日）")
    )
    with pytest.raises(NoticeError) as excinfo:
        parse(2026, text)
    assert [p.line for p in excinfo.value.problems] == [8, 14]


def test_a_clause_missing_from_an_unnumbered_text_is_caught_by_the_preamble() -> None:
    unnumbered = re.sub(r"^[一二三四五六七]、", "", TEXT[2026], flags=re.MULTILINE)
    assert days_of(parse(2026, unnumbered)) == days_of(parse(2026))
    text = unnumbered.replace("清明节：4月4日（周六）至6日（周一）放假，共3天。\n", "")
    with pytest.raises(NoticeError) as excinfo:
        parse(2026, text)
    (problem,) = excinfo.value.problems
    assert problem.line == 6
    assert "it names 清明节, which no clause sets" in problem.message


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("", "no year in the text"),
        ("一、元旦：1月1日（周四）至3日（周六）放假调休，共3天。\n", "no year in the text"),
        (TEXT[2026].split("一、")[0], "no holiday clause"),
        (
            "国务院办公厅关于调整2019年劳动节假期安排的通知\n经国务院批准，现将2019年劳动节放假"
            "调整安排通知如下：5月1日至4日放假调休，共4天。\n",
            "no holiday clause",
        ),
    ],
    ids=["empty", "clauses without a heading", "heading and preamble only", "another notice"],
)
def test_a_text_without_a_year_or_without_clauses_is_refused(text: str, why: str) -> None:
    with pytest.raises(NoticeError) as excinfo:
        parse_notice(text, source="pasted.txt")
    (problem,) = excinfo.value.problems
    assert (problem.file, problem.line) == ("pasted.txt", None)
    assert why in problem.message


def test_a_text_holding_two_years_is_refused() -> None:
    text = TEXT[2026].replace("现将2026年", "现将2025年")
    with pytest.raises(NoticeError) as excinfo:
        parse(2026, text)
    (problem,) = excinfo.value.problems
    assert problem.line == 6
    assert "about 2025, line 1 about 2026" in problem.message
