"""Each role's home page in a real headless Chromium (Debian's; no browser download): the
charts render with no network, fit a 390 px phone, their bars lead to exactly the tasks
counted, and axe-core (shipped in axe-playwright-python) finds no serious or critical
accessibility violation. Screenshots go to build/screenshots (DUBAN_TEST_ARTIFACTS)."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator

import pytest
from axe_playwright_python.sync_playwright import Axe
from playwright.sync_api import Browser, Page, expect

from tests.e2e.site import add_users, served
from tests.e2e.test_browser import PHONE, browser, shot, sign_in  # noqa: F401
from tests.e2e.test_cli import MINI, duban

#: (org, duty, period, submitted on (local), then): a history as of 2022-07-06, so the charts
#: show on time, late, overdue and a rejection
HISTORY = [
    ("h1", "report", "2022-04", "2022-05-04", "accept"),
    ("h2", "report", "2022-04", "2022-05-05", "accept"),
    ("office", "report", "2022-04", "2022-05-06", "accept"),
    ("h1", "report", "2022-05", "2022-06-02", None),
    ("h2", "report", "2022-05", "2022-06-09", None),
    ("h1", "drill", "2022-Q2", "2022-06-28", "accept"),
    ("h2", "drill", "2022-Q2", "2022-07-02", "reject"),
    ("h1", "report", "2022-06", "2022-07-04", None),
]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """`duban web` on the mini plan as lived to 2022-07-06 (the clock runs on from today, so
    the pages are asked for 2022 where it matters)."""
    work = tmp_path_factory.mktemp("home")
    env = {**MINI, "DUBAN_EVIDENCE_DIR": str(work / "ev"), "DUBAN_MAIL_DIR": str(work / "mail")}
    duban("init", "--adopted", "2022-04-01", cwd=work, env=env)
    duban("tick", "--now", "2022-07-06", cwd=work, env=env)
    tasks = json.loads(duban("tasks", "--json", cwd=work, env=env).stdout)
    ids = {(t["org"], t["obligation"], t["period"]): t["id"] for t in tasks}
    for org, duty, period, day, then in HISTORY:
        tid = str(ids[(org, duty, period)])
        duban("task", "submit", tid, "--note", "见附件", "--now", f"{day}T10:00", cwd=work, env=env)
        if then == "accept":
            duban("task", "accept", tid, "--now", f"{day}T16:00", cwd=work, env=env)
        elif then == "reject":
            duban(
                "task",
                "reject",
                tid,
                "--reason",
                "缺签到表",
                "--now",
                f"{day}T16:00",
                cwd=work,
                env=env,
            )
    add_users(work, env)
    with served(work, env) as base:
        yield base


HOMES = [
    ("admin", "全县督办概况", "home-admin", "/?period=2022"),
    ("h1user", "本机构督办概况", "home-institution", "/"),
    ("audit", "审计概况", "home-auditor", "/?year=2022"),
]


def serious(page: Page) -> list[str]:
    """axe-core's serious and critical violations on the page, as readable lines."""
    found = Axe().run(page).response["violations"]
    return [
        f"{v['id']} ({v['impact']}): {v['help']} — {[n['target'] for n in v['nodes']][:3]}"
        for v in found
        if v.get("impact") in ("serious", "critical")
    ]


@pytest.mark.parametrize(("name", "heading", "picture", "path"), HOMES)
def test_home_page_on_desktop_and_phone_is_accessible(
    server: str,
    browser: Browser,  # noqa: F811
    name: str,
    heading: str,
    picture: str,
    path: str,
) -> None:
    page = sign_in(browser, server, name)
    expect(page.locator("h1")).to_have_text(heading)
    page.goto(server + path)
    expect(page.locator("svg.chart").first).to_be_visible()
    # the charts' table forms open for the screenshot and the accessibility check
    for summary in page.locator("details > summary").all():
        summary.click()
    page.set_viewport_size({"width": 1280, "height": 900})
    shot(page, picture)
    assert serious(page) == []
    page.set_viewport_size(PHONE)
    page.reload()
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= PHONE["width"], f"{name}'s home is {width}px wide on a phone"
    shot(page, "phone-" + picture)
    assert serious(page) == []


def test_admin_home_bars_and_numbers_lead_to_exactly_their_tasks(
    server: str,
    browser: Browser,  # noqa: F811
) -> None:
    page = sign_in(browser, server, "admin")
    overdue = int(page.locator("#overdue a.n").inner_text())
    assert overdue > 0
    page.locator("#overdue a.n").click()
    expect(page.locator("h1")).to_have_text("逾期看板")
    expect(page.locator("table.tasks tbody tr")).to_have_count(overdue)
    page.go_back()
    # a bar of the duty chart: its count, then the board it opens
    bar = page.locator("svg.chart a").filter(has=page.locator("title")).last
    label = bar.locator("title").first.text_content() or ""
    count = int(re.findall(r"(\d+)$", label)[0])
    bar.click()
    expect(page.locator("h1")).to_have_text("逾期看板")
    expect(page.locator("table.tasks tbody tr")).to_have_count(count)


def test_circular_prints_and_downloads(server: str, browser: Browser) -> None:  # noqa: F811
    page = sign_in(browser, server, "admin")
    page.goto(f"{server}/report?quarter=2022-Q2")
    expect(page.locator("article h1")).to_contain_text("督办通报（2022年第二季度）")
    shot(page, "report-2022-Q2")
    page.emulate_media(media="print")
    expect(page.locator("header")).to_be_hidden()
    shot(page, "report-2022-Q2-print")
    page.emulate_media(media="screen")
    with page.expect_download() as download:
        page.locator("#docx").click()
    assert download.value.suggested_filename.endswith("（2022年第二季度）.docx")
