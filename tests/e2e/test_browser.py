"""The web UI in a real headless Chromium (Debian's, driven by Playwright; no browser download).

`duban web` runs as the real console script on a scratch SQLite database with the test plan.
An institution uploads evidence and submits; the county rejects it with a reason from the
review queue; the institution sees the reason first on its list and resubmits; the county
accepts; an auditor reads the timeline, exports the history and sees the audit-chain status;
English is one click away. Each main page is saved as a screenshot (desktop, and the board and a
task on a phone screen) under DUBAN_TEST_ARTIFACTS (default build/screenshots), to look at.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright

from tests.e2e.site import PASSWORD, add_users, served
from tests.e2e.test_cli import MINI, duban

CHROMIUM = os.environ.get("DUBAN_TEST_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
SHOTS = Path(os.environ.get("DUBAN_TEST_ARTIFACTS") or Path(__file__).parents[2] / "build")
SHOTS = SHOTS / "screenshots"
PHONE = {"width": 390, "height": 844}


def shot(page: Page, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    work = tmp_path_factory.mktemp("web")
    env = {
        **MINI,
        "DUBAN_EVIDENCE_DIR": str(work / "evidence"),
        "DUBAN_MAIL_DIR": str(work / "mail"),
    }
    # adopted when the mini plan began, so its 2022 periods are owed
    duban("init", "--adopted", "2022-04-01", cwd=work, env=env)
    duban("tick", "--now", "2022-07-06", cwd=work, env=env)
    add_users(work, env)
    with served(work, env) as base:
        yield base


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    assert Path(CHROMIUM).exists(), (
        f"no Chromium at {CHROMIUM}: install Debian's package (apt-get install chromium) "
        "or set DUBAN_TEST_CHROMIUM"
    )
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=["--no-sandbox"])
        yield b
        b.close()


def sign_in(browser: Browser, base: str, name: str) -> Page:
    page = browser.new_context(locale="zh-CN").new_page()
    page.goto(f"{base}/")
    expect(page).to_have_url(f"{base}/login?next=%2F")
    page.get_by_label("用户名").fill(name)
    page.get_by_label("密码").fill(PASSWORD)
    page.get_by_role("button", name="登录").click()
    return page


def test_evidence_review_and_history_in_a_real_browser(
    server: str, browser: Browser, tmp_path: Path
) -> None:
    pdf = tmp_path / "演练记录.pdf"
    pdf.write_bytes(b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n")
    png = tmp_path / "现场照片.png"
    png.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 64)

    inst = sign_in(browser, server, "h1user")
    inst.goto(f"{server}/my")  # signed in, each role lands on its home page
    expect(inst.locator("h1")).to_have_text("我的任务")
    shot(inst, "institution-my-tasks")
    # the county hospital's Q2 drill is overdue
    inst.get_by_role("link", name="季度急救演练").first.click()
    expect(inst.locator("#state")).to_contain_text("待办")
    expect(inst.locator("#missing")).to_contain_text("照片")
    inst.locator("select[name=kind]").select_option("photos")
    inst.locator("input[name=files]").set_input_files([str(pdf), str(png)])
    inst.locator("#upload").click()
    expect(inst.locator("#evidence")).to_contain_text("演练记录.pdf")
    expect(inst.locator("#evidence")).to_contain_text("现场照片.png")
    expect(inst.locator("#evidence li")).to_have_count(2)
    expect(inst.locator("#missing")).not_to_contain_text("照片")
    shot(inst, "institution-task")
    task_url = inst.url
    inst.locator("#submit").click()
    expect(inst.locator("#state")).to_contain_text("待审核")

    admin = sign_in(browser, server, "admin")
    admin.goto(f"{server}/board")  # signed in, each role lands on its home page
    expect(admin.locator("h1")).to_have_text("逾期看板")
    expect(admin.locator("table.tasks")).to_contain_text("月报")
    shot(admin, "admin-board")
    admin.get_by_role("link", name="审核队列").click()
    shot(admin, "admin-review-queue")
    row = admin.locator("tr", has_text="季度急救演练")
    row.get_by_placeholder("原因").fill("缺少签到表")
    row.get_by_role("button", name="退回").click()
    expect(admin.locator("body")).to_contain_text("暂无")

    inst.goto(f"{server}/my")
    first = inst.locator("table.tasks tbody tr").first
    expect(first).to_contain_text("已退回")
    expect(first).to_contain_text("缺少签到表")
    inst.goto(task_url)
    expect(inst.locator("#reason")).to_have_text("缺少签到表")
    inst.locator("#submit").click()
    expect(inst.locator("#state")).to_contain_text("待审核")

    admin.goto(task_url)
    admin.locator("#accept").click()
    expect(admin.locator("#state")).to_contain_text("已通过")
    admin.get_by_role("link", name="完成情况矩阵").click()
    expect(admin.locator("table.matrix")).to_be_visible()
    shot(admin, "admin-matrix")
    admin.goto(f"{server}/score?org=h1&quarter=2022-Q2")
    shot(admin, "admin-score-annex5")
    admin.goto(f"{server}/calendar?year=2022")
    shot(admin, "admin-year-calendar")

    auditor = sign_in(browser, server, "audit")
    auditor.goto(f"{server}/history")  # signed in, each role lands on its home page
    expect(auditor.locator("h1")).to_have_text("完成历史")
    shot(auditor, "auditor-history")
    auditor.goto(task_url)
    timeline = auditor.locator("#timeline")
    for step in ("user:h1user", "task.submit", "task.reject", "task.accept"):
        expect(timeline).to_contain_text(step)
    expect(auditor.locator("#upload")).to_have_count(0)  # read-only
    expect(auditor.locator("#accept")).to_have_count(0)
    shot(auditor, "auditor-task-timeline")
    auditor.goto(f"{server}/history?org=h1")
    with auditor.expect_download() as download:
        auditor.get_by_role("link", name="导出 CSV").click()
    exported = Path(download.value.path()).read_text(encoding="utf-8-sig")
    drill = [line for line in exported.splitlines() if "季度急救演练" in line and "2022-Q2" in line]
    assert len(drill) == 1 and "accepted" in drill[0], exported[:500]
    auditor.get_by_role("link", name="审计日志").click()
    expect(auditor.locator("#chain")).to_contain_text("审计链完整")
    shot(auditor, "auditor-audit")
    auditor.get_by_role("link", name="English").click()
    expect(auditor.locator("#chain")).to_contain_text("Audit chain intact")
    shot(auditor, "auditor-audit-en")


def test_pages_fit_a_phone_screen(server: str, browser: Browser) -> None:
    # the audit log's hashes are the widest cells: without the phone layout it overflows
    for name, path in [
        ("admin", "/board"),
        ("h1user", "/my"),
        ("admin", "/matrix?obligation=report"),
        ("admin", "/audit"),
        ("admin", "/score?org=h1&quarter=2022-Q2"),
    ]:
        page = sign_in(browser, server, name)
        page.set_viewport_size(PHONE)
        page.goto(f"{server}{path}")
        # nothing wider than the screen but the tables, which scroll in their own box
        width = page.evaluate("document.documentElement.scrollWidth")
        assert width <= PHONE["width"], f"{path} is {width}px wide on a {PHONE['width']}px phone"
        shot(page, "phone-" + path.strip("/").split("?")[0])


def test_institution_cannot_open_another_institutions_task(server: str, browser: Browser) -> None:
    admin = sign_in(browser, server, "admin")
    admin.goto(f"{server}/history?org=h2")
    link = admin.locator("table.tasks a").first.get_attribute("href")
    inst = sign_in(browser, server, "h1user")
    response = inst.goto(f"{server}{link}")
    assert response is not None and response.status == 403
    expect(inst.locator("body")).to_contain_text("无权访问")
