"""The home pages over HTTP on a real SQLite file and PostgreSQL: each number against a count
made here from the tasks themselves, each number's link leading to a board or history that
lists exactly the tasks counted, institution scoping, filters, refused parameters, escaping.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from html import unescape

import pytest
from sqlalchemy import select, update

from duban.domain.tasks import Action
from duban.engine import actions, homes, stats
from duban.engine.materialize import materialize
from duban.engine.snapshots import SnapshotCache
from duban.store.db import Store
from duban.store.models import ObligationRow, Organization, Plan, Task
from tests.integration.helpers import TZ, at
from tests.integration.test_web import signed_in, site, task_id  # noqa: F401 (fixture)

NOW = at("2022-07-06")
LINK = re.compile(r'<a (?:class="[^"]*" )?href="(/(?:board|history)\?[^"]*)">([\d.]+%?|—)</a>')


def act(store: Store, tid: int, action: Action, day: str, hour: int = 9, reason: str = "") -> None:
    if action is Action.SUBMIT:
        actions.add_note(store, task_id=tid, note="见附件", actor="test", now=at(day, hour))
    actions.transition(
        store, task_id=tid, action=action, actor="test", now=at(day, hour), reason=reason or None
    )


@pytest.fixture
def lived(site, mini: Store):  # type: ignore[no-untyped-def]  # noqa: F811
    """The mini county as of 2022-07-06 with a history: on time, late, rejected, waived,
    submitted early, waiting for review."""
    tid = lambda org, ob, p: task_id(mini, org, ob, p)  # noqa: E731
    act(mini, tid("h1", "report", "2022-04"), Action.SUBMIT, "2022-05-04")  # on time
    act(mini, tid("h1", "report", "2022-04"), Action.ACCEPT, "2022-05-06")
    act(mini, tid("h1", "report", "2022-05"), Action.SUBMIT, "2022-06-08")  # late
    act(mini, tid("h2", "report", "2022-04"), Action.SUBMIT, "2022-05-05", hour=23)  # on time
    act(mini, tid("h2", "drill", "2022-Q2"), Action.SUBMIT, "2022-07-01")  # late …
    act(mini, tid("h2", "drill", "2022-Q2"), Action.REJECT, "2022-07-02", reason="缺签到表")
    act(mini, tid("office", "report", "2022-04"), Action.WAIVE, "2022-05-10", reason="机构调整")
    act(mini, tid("h1", "drill", "2022-Q3"), Action.SUBMIT, "2022-07-05")  # early, due 09-30
    return site


@dataclass(frozen=True)
class Row:
    id: int
    org: str
    obligation: str
    state: str
    due: date
    due_at: datetime
    submitted_at: datetime | None
    opens_at: datetime


def all_tasks(store: Store) -> list[Row]:
    with store.read() as s:
        return [
            Row(t.id, org, ob, t.state, t.due_date, t.due_at, t.submitted_at, t.opens_at)
            for t, org, ob in s.execute(
                select(Task, Organization.code, ObligationRow.code)
                .join(Organization, Organization.id == Task.org_id)
                .join(ObligationRow, ObligationRow.id == Task.obligation_id)
            )
        ]


# the outcomes, written out here independently of duban's code
def on_time(r: Row) -> bool:
    return r.state in ("submitted", "accepted") and r.submitted_at < r.due_at  # type: ignore[operator]


def late(r: Row) -> bool:
    return r.state in ("submitted", "accepted") and r.submitted_at >= r.due_at  # type: ignore[operator]


def overdue(r: Row, now: datetime = NOW) -> bool:
    return r.state in ("open", "rejected") and r.due_at <= now


def ids(rows: list[Row], *tests) -> set[int]:  # type: ignore[no-untyped-def]
    return {r.id for r in rows if all(t(r) for t in tests)}


def in_q(q: int, year: int = 2022):  # type: ignore[no-untyped-def]
    first, last = (
        date(year, 3 * q - 2, 1),
        [None, date(year, 3, 31), date(year, 6, 30), date(year, 9, 30), date(year, 12, 31)][q],
    )
    return lambda r: first <= r.due <= last  # type: ignore[operator]


def listed(c, url: str) -> set[int]:  # type: ignore[no-untyped-def]
    """The task ids a board or history page lists (all pages)."""
    found: set[int] = set()
    while url:
        page = c.get(url)
        assert page.status_code == 200, (url, page.text[:300])
        found |= {int(i) for i in re.findall(r'<tr data-task="(\d+)"', page.text)}
        more = re.search(r'<a[^>]*href="(\?[^"]*page=\d+)"[^>]*>[^<]*(下一页|Next)', page.text)
        url = url.split("?")[0] + unescape(more.group(1)) if more else ""
    return found


def number(page: str, card: str) -> tuple[int, str]:
    found = re.search(rf'id="{card}">.*?<a class="n[^"]*" href="([^"]*)">(\d+)</a>', page, re.S)
    assert found, card
    return int(found.group(2)), unescape(found.group(1))


def test_admin_home_numbers_match_the_tasks_and_link_to_exactly_them(lived, mini):
    c, _ = signed_in(lived, "admin")
    page = c.get("/").text
    assert "全县督办概况" in page
    rows = all_tasks(mini)
    n, link = number(page, "overdue")
    assert n == len(ids(rows, overdue)) and listed(c, link) == ids(rows, overdue)
    n, link = number(page, "review")
    expected = ids(rows, lambda r: r.state == "submitted")
    assert n == len(expected) == 3 and listed(c, link) == expected
    # due in the next 7 working days from Wednesday 2022-07-06: up to Friday 07-15
    n, link = number(page, "due-soon")
    soon = ids(
        rows,
        lambda r: r.state in ("open", "rejected"),
        lambda r: r.due_at > NOW,
        lambda r: r.due <= date(2022, 7, 15),
        lambda r: r.opens_at <= NOW,
    )
    assert n == len(soon) and listed(c, link) == soon
    # this quarter against the last, from the rates table: each figure a link to its tasks
    q3, q2 = (
        re.search(rf'data-period="{k}">(.*?)</tr>', page, re.S).group(1)
        for k in ("2022-Q3", "2022-Q2")
    )
    for cells, quarter in ((q3, in_q(3)), (q2, in_q(2))):
        links = [(unescape(u), v) for u, v in LINK.findall(cells)]
        sets = [ids(rows, quarter, on_time), ids(rows, quarter, late), ids(rows, quarter, overdue)]
        for (url, shown), expected in zip(links, sets, strict=False):
            assert int(shown) == len(expected) and listed(c, url) == expected, url
        counted = set().union(*sets)
        assert listed(c, links[3][0]) == counted
        assert links[3][1] == f"{100 * len(sets[0]) / len(counted):.1f}%"


def test_every_number_and_bar_on_the_admin_home_lists_its_count(lived):
    c, _ = signed_in(lived, "admin")
    for query in ("", "?tag=midwifery", "?plan=mini", "?period=2022-Q2", "?period=2022"):
        page = c.get("/" + query).text
        links = LINK.findall(page)
        assert len(links) > 20, query
        for url, shown in links:
            if shown.isdigit():
                assert len(listed(c, unescape(url))) == int(shown), (query, url)
        # the bars link to the same sets as the table rows
        bars = set(re.findall(r'<a href="(/(?:board|history)\?[^"]*)" tabindex="-1">', page))
        assert bars and bars <= {u for u, _ in links} | {
            m for m in re.findall(r'href="(/(?:board|history)\?[^"]*)"', page)
        }


def test_admin_home_filters_apply_to_every_number(lived, mini):
    c, _ = signed_in(lived, "admin")
    rows = all_tasks(mini)
    page = c.get("/?tag=midwifery").text
    n, _ = number(page, "overdue")
    assert n == len(ids(rows, overdue, lambda r: r.org in ("h1", "h2")))
    page = c.get("/?period=2022-Q2").text
    n, link = number(page, "overdue")
    assert n == len(ids(rows, overdue, in_q(2))) and "due_from=2022-04-01" in link
    by_org = re.search(r'<table id="by-org">(.*?)</table>', page, re.S).group(1)
    assert re.findall(r'data-org="(\w+)"', by_org)[0] == "office"  # worst first: 0%
    # a plan with no duties here: nothing counted
    with mini.write() as s:
        s.execute(update(Plan).values(code="mini"))
    page = c.get("/?plan=none-such").text
    assert number(page, "overdue")[0] == 0


@pytest.mark.parametrize(
    ("url", "name"),
    [
        ("/?period=2022-Q5", "period"),
        ("/?tag=%3Cscript%3E", "tag"),
        ("/?plan=" + "x" * 80, "plan"),
        ("/board?due_from=2022-13-01", "due_from"),
        ("/history?outcome=bogus", "outcome"),
        ("/report?quarter=2022-3", "quarter"),
        ("/report?quarter=2022-Q3&format=pdf", "format"),
    ],
)
def test_bad_parameters_are_refused_naming_them(lived, url, name):
    c, _ = signed_in(lived, "admin")
    r = c.get(url)
    assert 400 <= r.status_code < 500 and name in r.text, (url, r.status_code)


def test_institution_home_shows_only_its_own_tasks(lived, mini):
    rows = all_tasks(mini)
    c, _ = signed_in(lived, "h2user")
    page = c.get("/").text
    assert "本机构督办概况" in page and "全县督办概况" not in page
    shown = {int(i) for i in re.findall(r'data-task="(\d+)"', page)}
    mine = {r.id for r in rows if r.org == "h2"}
    assert shown and shown <= mine
    rejected = re.search(r'id="rejected">(.*?)</section>', page, re.S).group(1)
    assert {int(i) for i in re.findall(r'data-task="(\d+)"', rejected)} == ids(
        rows, lambda r: r.org == "h2", lambda r: r.state == "rejected"
    )
    assert "缺签到表" in rejected
    late_ones = re.search(r'id="overdue">(.*?)</section>', page, re.S).group(1)
    assert {int(i) for i in re.findall(r'data-task="(\d+)"', late_ones)} == ids(
        rows, lambda r: r.org == "h2", overdue
    )
    assert number(page, "n-overdue")[0] == len(ids(rows, lambda r: r.org == "h2", overdue))
    # its rate this quarter next to the county's, both counted here
    own = re.search(r'id="rate-own">(.*?)</tr>', page, re.S).group(1)
    county = re.search(r'id="rate-county">(.*?)</tr>', page, re.S).group(1)

    def cells(html: str) -> list[str]:
        return re.findall(r"<td>([^<]*)</td>", html)

    q3 = in_q(3)
    assert cells(own)[:3] == [
        str(len(ids(rows, lambda r: r.org == "h2", q3, t))) for t in (on_time, late, overdue)
    ]
    assert cells(county)[:3] == [str(len(ids(rows, q3, t))) for t in (on_time, late, overdue)]
    # nothing of another institution, and no link to the county's boards
    assert "/board?" not in page and "/history?" not in page
    other = c.get("/?tag=midwifery")  # the admin filters do nothing for an institution
    assert other.status_code == 200


def test_auditor_home_completion_by_quarter_and_chain_head(lived, mini):
    rows = all_tasks(mini)
    c, _ = signed_in(lived, "audit")
    page = c.get("/").text
    assert "审计概况" in page and "审计链完整" in page
    head = re.search(r'<code id="head"[^>]*>(\w+)</code>', page).group(1)
    assert head == c.get("/api/audit/verify").json()["head"]
    q2 = re.search(r'data-period="2022-Q2">(.*?)</tr>', page, re.S).group(1)
    links = [(unescape(u), v) for u, v in LINK.findall(q2)]
    assert [int(v) for _, v in links[:3]] == [
        len(ids(rows, in_q(2), t)) for t in (on_time, late, overdue)
    ]
    n, link = number(page, "late")
    assert n == len(ids(rows, late)) and listed(c, link) == ids(rows, late)


def test_hostile_names_are_escaped_on_the_new_pages(lived, mini):
    evil = "<script>alert(1)</script>"
    with mini.write() as s:
        s.execute(update(Organization).where(Organization.code == "h2").values(name=evil))
        s.execute(update(ObligationRow).values(title=evil))
    for name, urls in (
        # the board and the matrix too: their rows are written by hand-tuned code (r['x'] in
        # the task list, duban.web.cells for the matrix), which must still escape names
        ("admin", ["/", "/report?quarter=2022-Q2", "/report?quarter=2022-Q3", "/board"]),
        ("admin", ["/matrix?obligation=report"]),
        ("h2user", ["/"]),
        ("audit", ["/"]),
    ):
        c, _ = signed_in(lived, name)
        for url in urls:
            page = c.get(url).text
            assert evil not in page, (name, url)
            assert "&lt;script&gt;" in page, (name, url)


def test_home_pages_and_circular_in_english(lived):
    for name, url, words in (
        ("admin", "/?period=2022-Q2", "Where the county stands"),
        (
            "admin",
            "/history?outcome=counted&due_from=2022-04-01&due_to=2022-06-30",
            "tasks the rate counts",
        ),
        ("h1user", "/", "Where we stand"),
        ("audit", "/", "Audit overview"),
        ("audit", "/report?quarter=2022-Q2", "Download as Word"),
    ):
        c, _ = signed_in(lived, name)
        c.cookies.set("lang", "en")
        r = c.get(url)
        assert r.status_code == 200 and words in r.text, (name, url)


def test_the_admin_home_is_reused_only_while_nothing_changed(lived, mini, calendar):
    """On PostgreSQL a computed home is kept per database snapshot, named by the commits that
    changed tasks or the catalogue: a second view reuses it, also after a commit that
    changes neither (a note); a submission, a change behind duban's back, a renamed
    institution, new periods, or the next day, are shown at once. (SQLite keeps nothing.)"""
    cache: SnapshotCache[homes.AdminHome] = SnapshotCache()
    pg = mini.dialect == "postgresql"

    def home(now: datetime = NOW, kept: SnapshotCache[homes.AdminHome] | None = cache):
        return homes.admin_home(mini, now=now, tz=TZ, calendar=calendar, cache=kept)

    first = home()
    assert home() == first
    assert cache.hits == (1 if pg else 0)

    overdue_task = task_id(mini, "h2", "report", "2022-05")
    actions.add_note(mini, task_id=overdue_task, note="见附件", actor="h2user", now=NOW)
    assert home() == first and cache.hits == (2 if pg else 0)  # a note changes no number

    act(mini, overdue_task, Action.SUBMIT, "2022-07-06", hour=10)
    after = home()
    assert (after.overdue.n, after.review.n) == (first.overdue.n - 1, first.review.n + 1)
    assert after == home(kept=None)

    with mini.write() as s:  # behind duban's back: a bulk UPDATE, outside the engine
        s.execute(update(Task).where(Task.id == overdue_task).values(state="accepted"))
    behind = home()
    assert behind.review.n == after.review.n - 1 and behind == home(kept=None)

    with mini.write() as s:  # a synced catalogue renames the worst institution
        worst = behind.by_org[0].code
        s.execute(update(Organization).where(Organization.code == worst).values(name="改名后"))
    assert home().by_org[0].name == "改名后"

    # the periods of the coming months open; tasks due in them are owed, not yet overdue
    misses = cache.misses
    materialize(mini, calendar=calendar, now=NOW + timedelta(days=92), tz=TZ)
    today = home()
    assert cache.misses == misses + (1 if pg else 0)  # new tasks: computed again
    assert today == home(kept=None)
    later = NOW + timedelta(days=92)  # the same snapshot, three months on: they are overdue
    assert home(later) == home(later, kept=None)
    assert home(later).overdue.n > today.overdue.n


def test_the_chart_of_the_worst_institutions_breaks_ties_by_code(lived, mini):
    """The chart shows the first N of the full ranking (worst rate, then most overdue, then
    code), also when institutions tie across its edge: on PostgreSQL the worst are chosen
    before their names are joined, and every institution tied with the last comes along."""
    with mini.write() as s:  # h1 and h2 alike in 2022-Q2: every task accepted late
        s.execute(
            update(Task)
            .where(Task.due_date.between(date(2022, 4, 1), date(2022, 6, 30)))
            .values(state="accepted", submitted_at=Task.due_at)
        )
    q2 = stats.Window.parse("2022-Q2")
    with mini.read() as s:
        sel = stats.select_for(s, plan=None, tag=None)
        full, counted = stats.ranking(s, sel, q2, now=NOW, limit=None)
        assert counted == len(full) >= 3
        assert len({(r.rate.rate, r.rate.overdue.n) for r in full}) == 1  # all tied
        assert [r.code for r in full] == sorted(r.code for r in full)
        for n in range(1, len(full) + 1):
            assert stats.ranking(s, sel, q2, now=NOW, limit=n) == (full[:n], counted)
