"""The quarterly circular (/report) as a page and as DOCX, the tallies behind the home pages,
and the SQL form of the outcomes, on a real SQLite file and PostgreSQL."""

from __future__ import annotations

import io
import re
from collections import Counter
from datetime import date
from html import unescape

import pytest
from docx import Document
from sqlalchemy import select, text

from duban.bootstrap import App
from duban.domain.tasks import COUNTED, Outcome, TaskState, outcome
from duban.engine import outcomes
from duban.engine.materialize import materialize
from duban.engine.notices import context_for
from duban.notify.render import render
from duban.store.db import Store
from duban.store.models import (
    ObligationRow,
    Outbox,
    TallyDutyDay,
    TallyOrgMonth,
    TallyOrgQuarter,
    Task,
)
from tests.integration.helpers import TZ, at
from tests.integration.test_home import lived  # noqa: F401 (fixture)
from tests.integration.test_web import signed_in, site  # noqa: F401 (fixture)


def page_tables(page: str) -> dict[str, list[list[str]]]:
    tables = {}
    for name, body in re.findall(
        r'<table class="report-table" id="([\w-]+)">(.*?)</table>', page, re.S
    ):
        rows = re.findall(r"<tr>(.*?)</tr>", body, re.S)
        tables[name] = [
            [unescape(c) for c in re.findall(r"<t[hd][^>]*>(.*?)</t[hd]>", r, re.S)] for r in rows
        ]
    return tables


def test_circular_docx_opens_and_holds_the_pages_figures(lived):  # noqa: F811
    c, _ = signed_in(lived, "admin")
    page = c.get("/report?quarter=2022-Q2")
    assert page.status_code == 200
    html = page.text
    assert "测试县妇幼健康工作督办通报（2022年第二季度）" in html
    assert "县卫健委妇幼股" in html and "2022年7月6日" in html
    r = c.get("/report?quarter=2022-Q2&format=docx")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("application/vnd.openxmlformats")
    assert "attachment" in r.headers["content-disposition"]
    doc = Document(io.BytesIO(r.content))
    paragraphs = [p.text for p in doc.paragraphs if p.text.strip()]
    assert paragraphs[0] == "测试县妇幼健康工作督办通报（2022年第二季度）"
    assert paragraphs[1] == "各有关单位："
    assert [p for p in paragraphs if p[:2] in ("一、", "二、", "三、", "四、", "五、", "六、")] == [
        "一、总体情况",
        "二、各单位按时完成率排名",
        "三、逾期未完成任务",
        "四、多次逾期的单位",
        "五、相关方案条款",
        "六、工作要求",
    ]
    # every paragraph of the page is in the document, and the tables are the same
    body = re.search(r'<article class="circular"[^>]*>(.*?)</article>', html, re.S).group(1)
    for p in re.findall(r'<p style="text-indent:2em">(.*?)</p>', body, re.S):
        assert unescape(p) in paragraphs
    docx_tables = [[[c.text for c in row.cells] for row in t.rows] for t in doc.tables]
    assert docx_tables == list(page_tables(html).values())
    ranking = docx_tables[0]
    assert ranking[0] == ["名次", "机构", "应完成", "按时", "逾期完成", "逾期未完成", "按时完成率"]
    # the ranking is the home page's: the Q2 rate of each institution, worst first
    home = c.get("/?period=2022-Q2").text
    on_home = re.findall(
        r'data-org="(\w+)"><th scope="row">([^<]*)</th>.*?>([\d.]+%|—)</a></td></tr>', home, re.S
    )
    assert [(name, rate) for _, name, rate in on_home] == [(r[1], r[6]) for r in ranking[1:]]
    overdue = docx_tables[1]
    assert overdue[0] == ["机构", "职责", "条款", "截止日期", "逾期天数"]
    drill = [row for row in overdue if row[1] == "季度急救演练" and row[0] == "一号医院"]
    assert drill == [["一号医院", "季度急救演练", "二（四）7", "2022-06-30", "6"]]
    assert any("二（四）7" in p and "每季度至少开展1次" in p for p in paragraphs)


def test_circular_is_for_the_county_only(lived):  # noqa: F811
    c, _ = signed_in(lived, "h1user")
    assert c.get("/report?quarter=2022-Q2").status_code == 403
    assert c.get("/report?quarter=2022-Q2&format=docx").status_code == 403
    auditor, _ = signed_in(lived, "audit")
    assert auditor.get("/report").status_code == 200  # the last whole quarter: 2022-Q2
    assert "2022年第二季度" in auditor.get("/report").text


def test_outcome_sql_agrees_with_the_domain_on_every_task(lived, mini: Store):  # noqa: F811
    with mini.read() as s:
        tasks = list(s.scalars(select(Task)))
    assert {t.state for t in tasks} >= {"open", "submitted", "accepted", "rejected", "waived"}
    for day in ("2022-06-30", "2022-07-06", "2022-10-01"):
        now = at(day)
        by_domain: dict[str, set[int]] = {}
        for t in tasks:
            o = outcome(TaskState(t.state), t.due_at, t.submitted_at, now)
            by_domain.setdefault(o.value, set()).add(t.id)
            if o in COUNTED:
                by_domain.setdefault("counted", set()).add(t.id)
        for name in outcomes.FILTERS:
            with mini.read() as s:
                found = set(s.scalars(select(Task.id).where(outcomes.outcome_sql(name, now))))
            assert found == by_domain.get(name, set()), (day, name)
    assert set(outcomes.FILTERS) == {o.value for o in Outcome} | {"counted"}


def recount(store: Store) -> tuple[Counter, Counter, Counter]:  # type: ignore[type-arg]
    duty: Counter = Counter()  # type: ignore[type-arg]
    org: Counter = Counter()  # type: ignore[type-arg]
    quarter: Counter = Counter()  # type: ignore[type-arg]
    with store.read() as s:
        rows = s.execute(select(Task, ObligationRow.plan_id).join(ObligationRow)).all()
    for t, plan_id in rows:  # the duty tally counts every state; the institutions' delivered
        delivered = t.state in ("submitted", "accepted")
        late = delivered and t.submitted_at >= t.due_at
        duty[(t.due_date, t.obligation_id, t.state, late)] += 1
        if delivered:
            org[(t.due_date.replace(day=1), plan_id, t.org_id, t.state, late)] += 1
            first = t.due_date.replace(month=(t.due_date.month - 1) // 3 * 3 + 1, day=1)
            quarter[(first, plan_id, t.org_id, "late" if late else "on_time")] += 1
    return duty, org, quarter


def kept(store: Store) -> tuple[Counter, Counter, Counter]:  # type: ignore[type-arg]
    with store.read() as s:
        duty = Counter(
            {
                (r.due_date, r.obligation_id, r.state, r.late): r.n
                for r in s.scalars(select(TallyDutyDay))
                if r.n
            }
        )
        org = Counter(
            {
                (r.month, r.plan_id, r.org_id, r.state, r.late): r.n
                for r in s.scalars(select(TallyOrgMonth))
                if r.n
            }
        )
        quarter: Counter = Counter()  # type: ignore[type-arg]
        for r in s.scalars(select(TallyOrgQuarter)):
            quarter[(r.quarter, r.plan_id, r.org_id, "on_time")] += r.on_time
            quarter[(r.quarter, r.plan_id, r.org_id, "late")] += r.late
    return duty, org, +quarter


def test_tallies_follow_every_change_to_the_tasks(lived, mini: Store, calendar):  # noqa: F811
    assert kept(mini) == recount(mini) and sum(recount(mini)[1].values()) == 4
    # new periods open (their tasks are born open), and a repeated run adds nothing
    for _ in range(2):
        materialize(mini, calendar=calendar, now=at("2022-10-08"), tz=TZ)
        assert kept(mini) == recount(mini)
    # a bulk UPDATE behind duban's back (as the benchmark writes its history) is followed too
    with mini.write() as s:
        s.execute(
            text(
                "UPDATE tasks SET state = 'accepted', submitted_at = due_at "
                "WHERE state = 'open' AND period_key = '2022-05'"
            )
        )
        s.execute(text("UPDATE tasks SET state = 'open' WHERE state = 'submitted'"))
    assert kept(mini) == recount(mini)
    # a task born delivered is counted as well
    with mini.write() as s:
        template = s.scalars(select(Task).where(Task.period_key == "2022-Q2")).first()
        s.add(
            Task(
                obligation_id=template.obligation_id,
                org_id=template.org_id,
                period_key="2022-X",
                period_start=template.period_start,
                period_end=template.period_end,
                due_date=date(2022, 6, 30),
                due_at=template.due_at,
                opens_at=template.opens_at,
                state="submitted",
                submitted_at=at("2022-06-01"),
                created_at=at("2022-06-01"),
                updated_at=at("2022-06-01"),
            )
        )
    assert kept(mini) == recount(mini)


def test_weekly_summary_links_the_quarterly_circular(lived, mini: Store):  # noqa: F811
    app: App = lived.state.app
    ctx = app.context(at("2022-07-06"))
    row = Outbox(kind="summary", recipient="duty@office.example.org", day=date(2022, 7, 4))
    with mini.read() as s:
        context = context_for(s, row, ctx)
    mail = render("summary", context, to=row.recipient, key="k")
    for body in (mail.text, mail.html):
        assert "http://testserver/report?quarter=2022-Q3" in body
        assert "http://testserver/report?quarter=2022-Q2" in body
    assert TZ  # the context's clock is Asia/Shanghai's


@pytest.mark.parametrize("quarter", ["2022-Q1", "2023-Q4"])
def test_circular_of_a_quarter_with_nothing_due(lived, quarter):  # noqa: F811
    c, _ = signed_in(lived, "admin")
    page = c.get(f"/report?quarter={quarter}").text
    assert "本季度应完成督办任务0项" in page and "本季度无多次逾期的单位。" in page
    doc = Document(io.BytesIO(c.get(f"/report?quarter={quarter}&format=docx").content))
    assert any("按时完成率—" in p.text for p in doc.paragraphs)
