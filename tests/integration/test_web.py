"""The web UI and JSON API over HTTP (FastAPI's client), on a real SQLite file and PostgreSQL.

Roles, scoping, CSRF, throttling, tokens, uploads and the review flow, asserted on what a user
sees. The browser test (tests/e2e/test_browser.py) drives the same pages in Chromium.
"""

from __future__ import annotations

import hashlib
import io
from datetime import timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from openpyxl import load_workbook
from sqlalchemy import select

from duban.bootstrap import App
from duban.engine import users
from duban.engine.materialize import materialize
from duban.settings import Settings
from duban.store.db import Store
from duban.store.models import ApiToken, Task
from duban.web.app import create_app
from tests.conftest import FIXTURES
from tests.integration.helpers import TZ, at

PASSWORD = "correct horse battery"
PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64


class Clock:
    def __init__(self, day: str) -> None:
        self.now = at(day)

    def __call__(self):  # type: ignore[no-untyped-def]
        return self.now


@pytest.fixture
def site(mini: Store, calendar, tmp_path: Path):  # type: ignore[no-untyped-def]
    settings = Settings(
        database_url=str(mini.engine.url.render_as_string(hide_password=False)),
        plan_files=[FIXTURES / "mini-plan.yaml"],
        org_files=[FIXTURES / "mini-orgs.yaml"],
        evidence_dir=tmp_path / "evidence",
        upload_max_mb=1,
        base_url="http://testserver",
    )
    app = App(settings=settings)
    app.__dict__["store"] = mini
    clock = Clock("2022-07-06")
    materialize(mini, calendar=calendar, now=clock.now, tz=TZ)
    for name, role, org in [
        ("admin", "admin", None),
        ("audit", "auditor", None),
        ("h1user", "institution", "h1"),
        ("h2user", "institution", "h2"),
    ]:
        users.add_user(mini, name=name, role=role, org=org, password=PASSWORD, now=clock.now)
    web = create_app(app, clock=clock)
    web.state.test_clock = clock
    web.state.test_dir = tmp_path / "evidence"
    return web


def client(site) -> TestClient:  # type: ignore[no-untyped-def]
    return TestClient(site, follow_redirects=False)


def login(c: TestClient, name: str, password: str = PASSWORD):  # type: ignore[no-untyped-def]
    """Sign in through the form, as a browser does: fetch it first (login CSRF token)."""
    form = c.get("/login").text
    token = form.split('name="login_csrf" value="', 1)[1].split('"', 1)[0]
    return c.post("/login", data={"name": name, "password": password, "login_csrf": token})


def signed_in(site, name: str) -> tuple[TestClient, str]:  # type: ignore[no-untyped-def]
    c = client(site)
    r = login(c, name)
    assert r.status_code == 303, r.text
    page = c.get("/calendar").text
    csrf = page.split('name="csrf" value="', 1)[1].split('"', 1)[0]
    return c, csrf


def task_id(store: Store, org: str, obligation: str, period: str) -> int:
    from duban.store.models import ObligationRow, Organization

    with store.read() as s:
        return s.scalar(
            select(Task.id)
            .join(Organization, Organization.id == Task.org_id)
            .join(ObligationRow, ObligationRow.id == Task.obligation_id)
            .where(
                Organization.code == org,
                ObligationRow.code == obligation,
                Task.period_key == period,
            )
        )


def test_signed_out_pages_redirect_to_sign_in_and_api_says_401(site):
    c = client(site)
    r = c.get("/board?org=h1")
    assert r.status_code == 303 and r.headers["location"] == "/login?next=%2Fboard%3Forg%3Dh1"
    assert c.get("/api/tasks").status_code == 401
    assert "登录" in c.get("/login").text


def test_session_cookie_is_httponly_and_samesite(site):
    r = login(client(site), "admin")
    cookie = r.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=lax" in cookie


def test_institution_sees_only_its_own_tasks(site, mini):
    c, _ = signed_in(site, "h1user")
    rows = c.get("/api/tasks").json()
    assert rows and {r["org"] for r in rows} == {"h1"}
    other = task_id(mini, "h2", "drill", "2022-Q2")
    assert c.get(f"/api/tasks/{other}").status_code == 403
    assert c.get(f"/tasks/{other}").status_code == 403
    assert c.get(f"/api/tasks/{other}/timeline").status_code == 403
    assert c.get("/api/tasks?org=h2").json() == []
    assert c.get("/board").status_code == 403  # the board is for the county


def test_board_lists_overdue_longest_first_with_clause(site):
    c, _ = signed_in(site, "admin")
    rows = c.get("/api/tasks?overdue=true").json()
    assert rows and all(r["overdue_days"] > 0 for r in rows)
    page = c.get("/board").text
    # 2022-Q2 drill (due 06-30) is 6 days overdue on 07-06; the June report (due 07-05) 1
    assert page.index("季度急救演练") < page.index("月报")
    assert "二（四）7" in page and "逾期看板" in page


def test_upload_submit_reject_resubmit_accept(site, mini):
    tid = task_id(mini, "h1", "drill", "2022-Q2")
    inst, csrf = signed_in(site, "h1user")
    r = inst.post(
        f"/tasks/{tid}/evidence",
        data={"csrf": csrf, "kind": "photos", "note": "演练照片"},
        files=[("files", ("演练.pdf", PDF, "application/pdf"))],
    )
    assert r.status_code == 303 and "error" not in r.headers["location"]
    sha = hashlib.sha256(PDF).hexdigest()
    stored = site.state.test_dir / sha[:2] / sha
    assert stored.read_bytes() == PDF
    detail = inst.get(f"/api/tasks/{tid}").json()
    assert detail["missing"] == ["sign_in_sheet"]
    assert [e["sha256"] for e in detail["evidence"] if e["sha256"]] == [sha]
    assert inst.post(f"/tasks/{tid}/submit", data={"csrf": csrf}).status_code == 303
    admin, admin_csrf = signed_in(site, "admin")
    assert "演练.pdf" not in admin.get("/review").text  # the queue lists tasks, not files
    # times are stored in UTC and shown in Asia/Shanghai: the clock is 09:00 there, 01:00 UTC
    assert "2022-07-06 09:00" in admin.get("/review").text
    page = inst.get(f"/tasks/{tid}").text
    assert "2022-07-06 09:00" in page and "2022-07-06T01:00" not in page
    assert f'data-task="{tid}"' in admin.get("/review").text
    r = admin.post(f"/tasks/{tid}/reject", data={"csrf": admin_csrf, "reason": "缺签到表"})
    assert r.status_code == 303
    mine = inst.get("/my").text
    assert "已退回" in mine and "缺签到表" in mine
    assert mine.index("缺签到表") < mine.index("月报")  # rejected comes first
    inst.post(
        f"/tasks/{tid}/evidence",
        data={"csrf": csrf, "kind": "sign_in_sheet"},
        files=[("files", ("签到表.png", PNG, "image/png"))],
    )
    inst.post(f"/tasks/{tid}/submit", data={"csrf": csrf})
    admin.post(f"/tasks/{tid}/accept", data={"csrf": admin_csrf})
    timeline = admin.get(f"/api/tasks/{tid}/timeline").json()
    steps = [(e["actor"], e["action"]) for e in timeline]
    assert steps[0] == ("scheduler", "task.created")
    assert ("user:h1user", "task.submit") in steps and ("user:admin", "task.reject") in steps
    assert steps[-1] == ("user:admin", "task.accept")
    assert admin.get("/api/audit/verify").json()["ok"] is True
    # the file comes back only to someone who may see the task
    ev = next(e for e in detail["evidence"] if e["sha256"])
    assert inst.get(f"/evidence/{ev['id']}").content == PDF
    other, _ = signed_in(site, "h2user")
    assert other.get(f"/evidence/{ev['id']}").status_code == 403


def test_uploads_are_type_checked_and_bounded(site, mini):
    tid = task_id(mini, "h1", "drill", "2022-Q2")
    inst, csrf = signed_in(site, "h1user")

    def send(name: str, content: bytes) -> str:
        r = inst.post(
            f"/tasks/{tid}/evidence",
            data={"csrf": csrf, "kind": "photos"},
            files=[("files", (name, content, "application/pdf"))],
        )
        return r.headers["location"]

    assert "not+a+PDF" in send("fake.pdf", PNG)
    assert "not+accepted" in send("run.exe", b"MZ" + b"\0" * 10)
    assert "larger+than" in send("big.pdf", PDF + b"0" * (1024 * 1024))
    assert inst.get(f"/api/tasks/{tid}").json()["evidence"] == []
    assert not any(p.is_file() for p in site.state.test_dir.rglob("*"))


def test_forms_need_the_csrf_token(site, mini):
    tid = task_id(mini, "h1", "drill", "2022-Q2")
    inst, _ = signed_in(site, "h1user")
    assert inst.post(f"/tasks/{tid}/submit", data={"csrf": "forged"}).status_code == 403
    assert inst.post(f"/api/tasks/{tid}/submit").status_code == 403  # cookie without header


def test_roles_are_enforced_on_actions(site, mini):
    tid = task_id(mini, "h1", "drill", "2022-Q2")
    auditor, csrf = signed_in(site, "audit")
    assert (
        auditor.post(f"/tasks/{tid}/waive", data={"csrf": csrf, "reason": "x"}).status_code == 403
    )
    assert auditor.get("/review").status_code == 403
    assert auditor.get("/history").status_code == 200
    inst, icsrf = signed_in(site, "h1user")
    assert inst.post(f"/tasks/{tid}/accept", data={"csrf": icsrf}).status_code == 403
    assert inst.get("/audit").status_code == 403


def test_failed_sign_ins_are_throttled(site):
    c = client(site)
    for _ in range(users.THROTTLE_MAX):
        assert login(c, "admin", "wrong").status_code == 401
    refused = login(c, "admin")
    assert refused.status_code == 429 and "登录失败次数过多" in refused.text
    site.state.test_clock.now += users.THROTTLE_WINDOW + timedelta(seconds=1)
    assert login(c, "admin").status_code == 303


def test_a_sign_in_form_posted_from_elsewhere_is_refused(site):
    c = client(site)
    forged = c.post("/login", data={"name": "admin", "password": PASSWORD, "login_csrf": "x"})
    assert forged.status_code == 403 and "duban_session" not in forged.headers.get("set-cookie", "")
    assert "页面已过期" in forged.text
    assert login(c, "admin").status_code == 303


def test_api_token_is_hashed_revocable_and_needs_no_csrf(site, mini):
    token = users.create_token(mini, name="h1user", label="t", now=site.state.test_clock.now)
    with mini.read() as s:
        assert token not in {t.token_hash for t in s.scalars(select(ApiToken))}
    c = client(site)
    auth = {"Authorization": f"Bearer {token}"}
    assert c.get("/api/me", headers=auth).json() == {
        "name": "h1user",
        "role": "institution",
        "org": "h1",
    }
    tid = task_id(mini, "h1", "report", "2022-06")
    up = c.post(
        f"/api/tasks/{tid}/evidence",
        headers=auth,
        data={"kind": "form"},
        files=[("files", ("报表.xlsx", xlsx_bytes(), "application/octet-stream"))],
    )
    assert up.status_code == 201, up.text
    assert c.post(f"/api/tasks/{tid}/submit", headers=auth).json()["state"] == "submitted"
    late = c.post(
        f"/api/tasks/{tid}/evidence",
        headers=auth,
        data={"kind": "form"},
        files=[("files", ("again.pdf", PDF, "application/pdf"))],
    )
    assert late.status_code == 409 and "is submitted" in late.json()["detail"]
    users.revoke_tokens(mini, name="h1user", now=site.state.test_clock.now)
    assert c.get("/api/me", headers=auth).status_code == 401


def test_disabled_user_loses_session_at_once(site, mini):
    c, _ = signed_in(site, "h2user")
    assert c.get("/my").status_code == 200
    users.disable_user(mini, name="h2user", now=site.state.test_clock.now)
    assert c.get("/my").status_code == 303


def xlsx_bytes() -> bytes:
    from openpyxl import Workbook

    book = Workbook()
    book.active.append(["月份", "人数"])  # type: ignore[union-attr]
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def test_exports_as_csv_and_xlsx(site):
    c, _ = signed_in(site, "audit")
    csv_text = c.get("/board?format=csv").content.decode("utf-8-sig")
    header, *rows = csv_text.strip().splitlines()
    assert "机构 institution" in header and rows and all(",h" in r or "office" in r for r in rows)
    xlsx = c.get("/history?format=xlsx")
    assert xlsx.headers["content-type"].startswith("application/vnd.openxmlformats")
    sheet = load_workbook(io.BytesIO(xlsx.content)).active
    assert sheet is not None and sheet.max_row > 1
    assert sheet.cell(1, 3).value == "机构 institution"


def test_matrix_and_score_sheet(site, mini):
    tid = task_id(mini, "h1", "drill", "2022-Q2")
    inst, csrf = signed_in(site, "h1user")
    inst.post(
        f"/tasks/{tid}/evidence",
        data={"csrf": csrf, "kind": "photos"},
        files=[("files", ("a.pdf", PDF, "application/pdf"))],
    )
    inst.post(f"/tasks/{tid}/submit", data={"csrf": csrf})
    admin, admin_csrf = signed_in(site, "admin")
    page = admin.get("/matrix?obligation=drill").text
    assert 'data-cell="overdue"' in page and f'href="/tasks/{tid}"' in page
    # submitted on 07-06 for a 06-30 deadline: late
    assert 'data-cell="late"' in page
    admin.post(f"/tasks/{tid}/accept", data={"csrf": admin_csrf})
    sheet = inst.get("/score?quarter=2022-Q2").text
    assert 'id="earned">2.0<' in sheet
    h2 = admin.get("/score?org=h2&quarter=2022-Q2").text
    assert 'id="earned">0.0<' in h2


def test_openapi_describes_the_api(site):
    paths = client(site).get("/openapi.json").json()["paths"]
    for path in [
        "/api/tasks",
        "/api/tasks/{task_id}",
        "/api/tasks/{task_id}/evidence",
        "/api/tasks/{task_id}/submit",
        "/api/tasks/{task_id}/reject",
        "/api/tasks/{task_id}/timeline",
    ]:
        assert path in paths


def test_english_is_one_click_away(site):
    c, _ = signed_in(site, "admin")
    assert "逾期看板" in c.get("/board").text
    c.get("/lang/en?next=/board")
    assert "Overdue board" in c.get("/board").text


def test_ics_feed_is_served_by_token(site, mini):
    from duban.engine import feeds

    token = feeds.feed_token(mini, "h1", now=site.state.test_clock.now)
    r = client(site).get(f"/ics/{token}.ics")
    assert r.status_code == 200 and b"BEGIN:VCALENDAR" in r.content
    assert client(site).get("/ics/nope.ics").status_code == 404


def test_admin_records_a_maternal_death_and_the_chain_appears(site, mini):
    admin, csrf = signed_in(site, "admin")
    form = admin.get("/events/new").text
    assert "maternal-death" in form
    r = admin.post(
        "/events",
        data={"csrf": csrf, "kind": "maternal-death", "org": "h2", "occurred_on": "2022-06-28"},
    )
    assert r.status_code == 303
    rows = admin.get("/api/tasks?obligation=notify").json()
    # 5 working days after 2022-06-28
    assert [(t["org"], t["due"]) for t in rows] == [("h2", "2022-07-05")]
    review = admin.get("/api/tasks?obligation=county-review").json()
    assert [(t["org"], t["due"]) for t in review] == [("office", "2022-08-28")]
    inst, icsrf = signed_in(site, "h1user")
    assert (
        inst.post(
            "/events",
            data={
                "csrf": icsrf,
                "kind": "maternal-death",
                "org": "h1",
                "occurred_on": "2022-06-28",
            },
        ).status_code
        == 403
    )


def test_waive_needs_a_reason_and_leaves_the_board(site, mini):
    tid = task_id(mini, "h2", "drill", "2022-Q2")
    admin, csrf = signed_in(site, "admin")
    assert f'data-task="{tid}"' in admin.get("/board").text
    refused = admin.post(f"/tasks/{tid}/waive", data={"csrf": csrf, "reason": ""})
    assert "error=" in refused.headers["location"]
    admin.post(f"/tasks/{tid}/waive", data={"csrf": csrf, "reason": "停业整顿"})
    assert f'data-task="{tid}"' not in admin.get("/board").text
    assert admin.get(f"/api/tasks/{tid}").json()["state"] == "waived"
    history = admin.get("/history?state=waived").text
    assert "停业整顿" in history


def test_year_calendar_lists_every_due_date(site):
    c, _ = signed_in(site, "audit")
    page = c.get("/calendar?year=2022").text
    # quarterly drill: Q2, Q3, Q4 of 2022 end inside the plan window
    for due in ("2022-06-30", "2022-09-30", "2022-12-31"):
        assert due in page
    assert "2022-05-05" in page  # the April report, due on the 5th of May
    assert "2023-03-31" not in page


def test_history_is_newest_first_and_pages_through_everything(site, monkeypatch):
    import duban.web.listing as web_app

    c, _ = signed_in(site, "audit")
    dues = [r["due"] for r in c.get("/api/tasks").json()]
    page = c.get("/history").text
    newest, oldest = max(dues), min(dues)
    assert page.index(newest) < page.index(oldest)
    assert 'rel="next"' not in page  # everything fits on one page of 100
    monkeypatch.setattr(web_app, "PAGE_ROWS", 3)
    paged = signed_in(create_app(site.state.app, clock=site.state.clock), "audit")[0]
    seen: list[str] = []
    url = "/history?tag=midwifery"
    while url:
        page = paged.get(url).text
        ids = [chunk.split('"', 1)[0] for chunk in page.split('data-task="')[1:]]
        assert 1 <= len(ids) <= 3
        seen += ids
        _, found, rest = page.partition('rel="next" href="')
        url = "/history" + rest.split('"', 1)[0].replace("&amp;", "&") if found else ""
    # every task of the filter exactly once, across the pages, and the filter kept
    tagged = c.get("/api/tasks?tag=midwifery").json()
    assert sorted(seen) == sorted(str(r["id"]) for r in tagged) and len(seen) == len(set(seen))
    assert "上一页" in page
    # exports are not cut at the page size
    rows = paged.get("/history?format=csv").content.decode("utf-8-sig").strip().splitlines()
    assert len(rows) - 1 == len(dues)


def test_matrix_pages_by_institution(site, monkeypatch):
    import duban.web.listing as web_app

    monkeypatch.setattr(web_app, "MATRIX_ORGS", 1)
    admin = signed_in(create_app(site.state.app, clock=site.state.clock), "admin")[0]
    first = admin.get("/matrix?obligation=drill").text
    second = admin.get("/matrix?obligation=drill&page=2").text

    def table(page: str) -> str:
        return page.split('<table class="matrix">', 1)[1].split("</table>", 1)[0]

    assert "一号医院" in table(first) and "二号医院" not in table(first)
    assert "二号医院" in table(second) and "一号医院" not in table(second)
    assert 'rel="next"' in first and 'rel="prev"' in second
    # every page has the same period columns
    assert first.count("<th>2022-Q") == second.count("<th>2022-Q") >= 2
    # the export holds every institution, not one page of them
    csv = admin.get("/matrix?obligation=drill&format=csv").content.decode("utf-8-sig")
    lines = csv.strip().splitlines()
    assert [line.split(",")[0] for line in lines[1:]] == ["h1", "h2"]
    assert "overdue" in lines[1] and lines[0].startswith("机构代码 org,机构 institution,2022-Q2")


def test_a_province_gets_an_institution_code_field_not_a_list(site, monkeypatch):
    import duban.web.listing as web_app

    c, _ = signed_in(site, "admin")
    assert '<select name="org">' in c.get("/board").text
    monkeypatch.setattr(web_app, "ORG_CHOICES", 1)
    big = signed_in(create_app(site.state.app, clock=site.state.clock), "admin")[0]
    page = big.get("/board?org=h2").text
    assert '<select name="org">' not in page and 'name="org" size="14" value="h2"' in page
    assert "二号医院" in page and "一号医院" not in page


def test_the_plan_form_downloads_blank_and_filled_in(site, mini):
    tid = task_id(mini, "h1", "report", "2022-06")
    inst, _ = signed_in(site, "h1user")
    page = inst.get(f"/tasks/{tid}").text
    assert f'href="/tasks/{tid}/form.xlsx"' in page
    assert 'href="/obligations/report/form.xlsx"' in page

    def cells(response) -> list[list[object]]:  # type: ignore[no-untyped-def]
        assert response.status_code == 200, response.text
        assert "attachment" in response.headers["content-disposition"]
        sheet = load_workbook(io.BytesIO(response.content)).active
        assert sheet is not None
        return [list(row) for row in sheet.iter_rows(values_only=True)]

    filled = cells(inst.get(f"/tasks/{tid}/form.xlsx"))
    assert filled[0][0] == "育龄妇女重点特殊人群孕情摸排月报表"
    assert filled[1][0] == "填报单位：一号医院　2022年6月"
    assert filled[2] == ["姓名", "出生年月", "是否怀孕", "备注"]
    assert filled[-1][0].startswith("填报人")
    assert len(filled) == 3 + 5 + 1  # title, header, columns, five blank rows, footer
    blank = cells(inst.get("/obligations/report/form.xlsx"))
    assert "一号医院" not in blank[1][0] and blank[1][0].startswith("填报单位：")
    assert "/obligations/report/form.xlsx" in inst.get("/score?quarter=2022-Q2").text
    # not another institution's task, and not a duty without a form
    other = task_id(mini, "h2", "report", "2022-06")
    assert inst.get(f"/tasks/{other}/form.xlsx").status_code == 403
    assert inst.get("/obligations/drill/form.xlsx").status_code == 404
    assert client(site).get("/obligations/report/form.xlsx").status_code == 303
