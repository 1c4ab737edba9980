"""The web UI as an attacker and a careless client use it (issue 9): hostile text is escaped on
every page that shows it, parallel guesses are throttled, no input answers 500, text is capped,
exports cannot be broken by stored text, storage failures say what to do.

Each test here failed on the code before the guard it names was added.
"""

from __future__ import annotations

import io
import subprocess
import threading
import zipfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from openpyxl import load_workbook

from duban.engine import users
from duban.errors import AuthError, Throttled
from duban.store.db import Store
from tests.integration import test_web
from tests.integration.test_web import PASSWORD, PDF, client, login, signed_in, task_id

site = test_web.site  # the same signed-up county site, as a fixture here too

# Text that is harmless only when escaped: a script, a form that posts elsewhere, a refresh,
# and quotes that would break out of an attribute.
HOSTILE = (
    '<script>alert(1)</script><form action="/tasks/1/waive" method="post">'
    '<button id="evil">x</button></form><meta http-equiv="refresh" content="0;url=//evil">'
    "\"'><img src=x>"
)
RAW_MARKERS = (
    "<script>alert(1)",
    '<form action="/tasks/1/waive"',
    "<meta http-equiv",
    "<img src=x",
)


def assert_escaped(html: str, where: str) -> None:
    for marker in RAW_MARKERS:
        assert marker not in html, f"{where} writes {marker!r} raw"
    assert "&lt;script&gt;" in html, f"{where} does not show the text at all"


def test_hostile_text_is_escaped_on_every_page_that_shows_it(site, mini):
    tid = task_id(mini, "h1", "drill", "2022-Q2")
    other = task_id(mini, "h2", "drill", "2022-Q2")
    inst, csrf = signed_in(site, "h1user")
    r = inst.post(
        f"/tasks/{tid}/evidence",
        data={"csrf": csrf, "kind": "photos", "note": HOSTILE},
        files=[("files", (HOSTILE[:60] + ".pdf", PDF, "application/pdf"))],
    )
    assert r.status_code == 303 and "error" not in r.headers["location"], r.headers["location"]
    assert inst.post(f"/tasks/{tid}/submit", data={"csrf": csrf}).status_code == 303
    admin, admin_csrf = signed_in(site, "admin")
    r = admin.post(f"/tasks/{tid}/reject", data={"csrf": admin_csrf, "reason": HOSTILE})
    assert r.status_code == 303
    r = admin.post(f"/tasks/{other}/waive", data={"csrf": admin_csrf, "reason": HOSTILE})
    assert r.status_code == 303
    users.add_user(
        mini,
        name=HOSTILE[:60],
        role="auditor",
        org=None,
        password=PASSWORD,
        now=site.state.test_clock.now,
    )
    pages = {
        "task page (note, file name, reason, timeline)": inst.get(f"/tasks/{tid}").text,
        "my tasks (reason)": inst.get("/my").text,
        "history (reason)": admin.get("/history").text,
        "waived task page": admin.get(f"/tasks/{other}").text,
        "task page ?error=": admin.get(f"/tasks/{tid}", params={"error": HOSTILE}).text,
        "sign-in ?next=": client(site).get("/login", params={"next": "/" + HOSTILE}).text,
    }
    for where, html in pages.items():
        assert_escaped(html, where)
    # reflected filters: written back into the filter form's inputs
    board = admin.get("/history", params={"period": 'x"><svg onload=1>'})
    assert board.status_code == 400 and "<svg onload" not in board.text
    # a user name is shown in the header of that user's own pages
    evil, _ = signed_in_as(site, HOSTILE[:60])
    assert_escaped(evil.get("/history").text, "header (user name)")


def signed_in_as(site, name: str):  # type: ignore[no-untyped-def]
    c = client(site)
    assert login(c, name).status_code == 303
    return c, None


def test_parallel_guesses_are_counted_before_any_is_checked(mini: Store, site):
    """31 simultaneous wrong guesses: at most THROTTLE_MAX reach the password check."""
    now = site.state.test_clock.now

    def guess(_: int) -> str:
        try:
            users.sign_in(mini, name="admin", password="wrong guess", address="10.9.9.9", now=now)
        except Throttled:
            return "throttled"
        except AuthError:
            return "checked"
        return "signed in"

    with ThreadPoolExecutor(max_workers=31) as pool:
        outcomes = list(pool.map(guess, range(31)))
    assert outcomes.count("checked") == users.THROTTLE_MAX
    assert outcomes.count("throttled") == 31 - users.THROTTLE_MAX
    # and the right password from that address is refused too, without being checked
    with pytest.raises(Throttled):
        users.sign_in(mini, name="admin", password=PASSWORD, address="10.9.9.9", now=now)


def test_guesses_from_everywhere_do_not_lock_the_owner_out_of_a_known_browser(site, mini):
    owner = client(site)
    assert login(owner, "admin").status_code == 303  # this browser is now known
    now = site.state.test_clock.now
    for n in range(users.ACCOUNT_MAX + 1):  # a botnet: every guess from another address
        with pytest.raises(AuthError):
            users.sign_in(mini, name="admin", password="guess", address=f"10.0.0.{n}", now=now)
    stranger = client(site)
    refused = login(stranger, "admin")  # the right password, from an unknown browser
    assert refused.status_code == 429
    owner.cookies.delete("duban_session")
    assert login(owner, "admin").status_code == 303  # the known browser still signs in


def test_forwarded_addresses_are_ignored_unless_the_proxy_is_trusted(tmp_path, mini, calendar):
    """Against a real uvicorn: by default X-Forwarded-For cannot pick the counted address."""
    import httpx

    from duban.bootstrap import App
    from duban.settings import Settings
    from duban.web.app import WebServer
    from tests.conftest import FIXTURES

    def throttled_after_spoofing(trusted: list[str]) -> bool:
        settings = Settings(
            database_url=mini.engine.url.render_as_string(hide_password=False),
            plan_files=[FIXTURES / "mini-plan.yaml"],
            org_files=[FIXTURES / "mini-orgs.yaml"],
            evidence_dir=tmp_path / "ev",
            trusted_proxies=trusted,
        )
        app = App(settings=settings)
        app.__dict__["store"] = mini
        port = free_port()
        server = WebServer(app, "127.0.0.1", port)
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        base = f"http://127.0.0.1:{port}"
        try:
            wait_until_up(base)
            with httpx.Client(base_url=base, timeout=10) as http:
                status = 0
                for n in range(users.THROTTLE_MAX + 1):
                    form = http.get("/login").text
                    token = form.split('name="login_csrf" value="', 1)[1].split('"', 1)[0]
                    status = http.post(
                        "/login",
                        data={"name": "nobody", "password": "x", "login_csrf": token},
                        headers={"X-Forwarded-For": f"203.0.113.{n}"},
                    ).status_code
            return status == 429
        finally:
            server.stop()
            thread.join(timeout=10)
            with mini.write() as s:
                from duban.store.models import LoginCounter

                s.query(LoginCounter).delete()

    assert throttled_after_spoofing([]) is True
    assert throttled_after_spoofing(["127.0.0.1"]) is False


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_until_up(base: str) -> None:
    import time

    import httpx

    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            if httpx.get(base + "/api/health", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.05)
    raise AssertionError(f"{base} did not come up")


BAD_QUERIES = [
    "/api/tasks?year=99999",
    "/api/tasks?year=-1",
    "/board?year=99999",
    "/history?year=-1",
    "/matrix?year=99999",
    f"/api/tasks/{2**63}",
    f"/api/tasks/{2**64}/timeline",
    f"/api/tasks?offset={2**63}",
    f"/api/tasks?limit={2**63}",
    f"/tasks/{2**63}",
    f"/evidence/{2**63}",
    "/calendar?year=abc",
    "/board?page=²",
    f"/history?page={2**63}",
    "/score?quarter=0000-Q1",
    "/score?quarter=9999-Q4",
    "/score?org=a/b&format=xlsx",
    "/board?format=pdf",
    "/api/tasks?state=lost",
    "/tasks/1?error=" + "x" * 5000,
    "/login?next=/" + "x" * 5000,
]


@pytest.mark.parametrize("url", BAD_QUERIES)
def test_bad_parameters_get_a_4xx_naming_the_parameter(site, url):
    admin, _ = signed_in(site, "admin")
    r = admin.get(url)
    assert 400 <= r.status_code < 500, (url, r.status_code, r.text[:300])
    if url.startswith("/api/"):
        body = r.json()
        assert isinstance(body["detail"], str) and body["errors"], body
        name = url.split("?")[1].split("=")[0] if "?" in url else "task_id"
        assert name in body["detail"], body["detail"]


def test_a_lone_surrogate_or_a_control_character_in_a_reason_is_refused(site, mini):
    tid = task_id(mini, "h1", "drill", "2022-Q2")
    admin, _ = signed_in(site, "admin")
    token = users.create_token(mini, name="admin", label="t", now=site.state.test_clock.now)
    auth = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    for raw in ('{"reason": "\\ud800"}', '{"reason": "bad\\u0007bell"}'):
        r = admin.post(f"/api/tasks/{tid}/waive", content=raw, headers=auth)
        assert r.status_code == 422, r.text
        assert "reason" in r.json()["detail"]
    assert admin.get(f"/api/tasks/{tid}").json()["state"] == "open"  # nothing was written


def test_text_is_capped_before_it_reaches_the_audit_trail(site, mini):
    tid = task_id(mini, "h1", "drill", "2022-Q2")
    inst, csrf = signed_in(site, "h1user")
    r = inst.post(
        f"/tasks/{tid}/evidence", data={"csrf": csrf, "kind": "photos", "note": "长" * 4001}
    )
    assert r.status_code == 303 and "4001" in r.headers["location"]
    admin, admin_csrf = signed_in(site, "admin")
    r = admin.post(f"/tasks/{tid}/waive", data={"csrf": admin_csrf, "reason": "x" * 2001})
    assert "2001" in r.headers["location"]
    detail = admin.get(f"/api/tasks/{tid}").json()
    assert detail["state"] == "open" and detail["evidence"] == []


def test_exports_survive_formulas_and_characters_xlsx_refuses(site, mini):
    """Text stored before control characters were refused must not break exports for good."""
    from sqlalchemy import update

    from duban.store.models import Task

    a = task_id(mini, "h1", "drill", "2022-Q2")
    b = task_id(mini, "h2", "drill", "2022-Q2")
    with mini.write() as s:
        s.execute(update(Task).where(Task.id == a).values(state="waived", reason="bell\x07 here"))
        s.execute(
            update(Task).where(Task.id == b).values(state="waived", reason="\t=cmd|' /C calc'!A0")
        )
    admin, _ = signed_in(site, "admin")
    xlsx = admin.get("/history?format=xlsx")
    assert xlsx.status_code == 200
    sheet = load_workbook(io.BytesIO(xlsx.content)).active
    reasons = [row[-1] for row in sheet.iter_rows(min_row=2, values_only=True) if row[-1]]
    assert "bell\ufffd here" in reasons
    csv = admin.get("/history?format=csv").content.decode("utf-8-sig")
    assert "'\t=cmd" in csv and "\n\t=cmd" not in csv and ",\t=cmd" not in csv


def docx_damaged() -> bytes:
    """A .docx whose central directory names a file in bytes that are not the UTF-8 its flag
    promises: reading the package raises UnicodeDecodeError, not BadZipFile."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("[Content_Types].xml", "<x/>")
        z.writestr("word/文档.xml", "<x/>")  # non-ASCII: stored as UTF-8, flag 0x800
    data = bytearray(buf.getvalue())
    name = "word/文档.xml".encode()
    at = data.rfind(name)  # the central directory's copy
    data[at + 5 : at + 8] = b"\xff\xfe\xfd"
    return bytes(data)


def test_a_malformed_office_file_is_refused_not_a_500(site, mini):
    tid = task_id(mini, "h1", "drill", "2022-Q2")
    inst, csrf = signed_in(site, "h1user")
    for content in (docx_damaged(), b"PK\x03\x04" + b"\x00" * 200):
        r = inst.post(
            f"/tasks/{tid}/evidence",
            data={"csrf": csrf, "kind": "photos"},
            files=[("files", ("会议纪要.docx", content, "application/octet-stream"))],
        )
        assert r.status_code == 303 and "not+a+DOCX" in r.headers["location"]


def test_the_api_answers_201_only_when_something_was_stored(site, mini):
    tid = task_id(mini, "h1", "drill", "2022-Q2")
    token = users.create_token(mini, name="h1user", label="t", now=site.state.test_clock.now)
    c = client(site)
    auth = {"Authorization": f"Bearer {token}"}
    empty = c.post(f"/api/tasks/{tid}/evidence", headers=auth, files={"kind": (None, "photos")})
    assert empty.status_code == 400 and "nothing to upload" in empty.json()["detail"]
    ok = c.post(
        f"/api/tasks/{tid}/evidence",
        headers=auth,
        data={"kind": "photos"},
        files=[("files", ("a.pdf", PDF, "application/pdf"))],
    )
    assert ok.status_code == 201 and len(ok.json()["evidence"]) == 1
    wrong_kind = c.post(
        f"/api/tasks/{tid}/evidence",
        headers=auth,
        data={"kind": "ledger"},
        files=[("files", ("a.pdf", PDF, "application/pdf"))],
    )
    assert wrong_kind.status_code == 409 and "photos" in wrong_kind.json()["detail"]


def test_the_openapi_schema_documents_every_error_the_api_gives(site):
    schema = client(site).get("/openapi.json").json()
    body = schema["components"]["schemas"]["ErrorBody"]
    assert body["properties"]["detail"]["type"] == "string"
    for path, methods in schema["paths"].items():
        for method, op in methods.items():
            codes = set(op["responses"])
            if path != "/api/health":
                assert {"401", "422"} <= codes, (method, path)
            for code in codes - {"200", "201"}:
                ref = op["responses"][code]["content"]["application/json"]["schema"]["$ref"]
                assert ref.endswith("/ErrorBody"), (method, path, code)
    upload = schema["paths"]["/api/tasks/{task_id}/evidence"]["post"]
    assert "multipart/form-data" in upload["requestBody"]["content"]
    assert "token" in schema["components"]["securitySchemes"]
    # and an error really has that shape
    r = client(site).get("/api/tasks/1")
    assert r.status_code == 401 and set(r.json()) <= {"detail", "errors"}


@pytest.fixture
def tiny_disk(tmp_path: Path):  # type: ignore[no-untyped-def]
    """A real 64 KiB file system (tmpfs), mounted for the test (the tests run as root)."""
    where = tmp_path / "tiny"
    where.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(where)], check=True)
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], check=False)


def test_a_full_evidence_disk_answers_507_and_stores_nothing(site, mini, tiny_disk):
    from duban.web.app import create_app

    site.state.app.settings.evidence_dir = tiny_disk
    web = create_app(site.state.app, clock=site.state.test_clock)
    tid = task_id(mini, "h1", "drill", "2022-Q2")
    inst, csrf = signed_in(web, "h1user")
    big = PDF + b"0" * (200 * 1024)  # within the upload limit, beyond the disk
    r = inst.post(
        f"/tasks/{tid}/evidence",
        data={"csrf": csrf, "kind": "photos"},
        files=[("files", ("big.pdf", big, "application/pdf"))],
    )
    assert r.status_code == 507 and "full" in r.text
    assert inst.get(f"/api/tasks/{tid}").json()["evidence"] == []
    assert not [p for p in tiny_disk.rglob("*") if p.is_file()]


def test_an_evidence_folder_that_cannot_be_written_answers_503(site, mini, tmp_path):
    from duban.web.app import create_app

    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the folder should be")
    site.state.app.settings.evidence_dir = blocker / "evidence"
    web = create_app(site.state.app, clock=site.state.test_clock)
    tid = task_id(mini, "h1", "drill", "2022-Q2")
    token = users.create_token(mini, name="h1user", label="t", now=site.state.test_clock.now)
    r = client(web).post(
        f"/api/tasks/{tid}/evidence",
        headers={"Authorization": f"Bearer {token}"},
        data={"kind": "photos"},
        files=[("files", ("a.pdf", PDF, "application/pdf"))],
    )
    assert r.status_code == 503 and "cannot be written" in r.json()["detail"]


def test_a_method_the_api_does_not_have_says_which_it_has(site):
    r = client(site).request("TRACE", "/api/me")
    assert r.status_code == 405 and r.headers["allow"] == "GET"
    assert r.json() == {"detail": "Method Not Allowed"}


def test_an_administrator_clears_a_locked_name_from_the_command_line(site, mini):
    now = site.state.test_clock.now
    for n in range(users.ACCOUNT_MAX + 1):
        with pytest.raises(AuthError):
            users.sign_in(mini, name="admin", password="guess", address=f"10.1.0.{n}", now=now)
    with pytest.raises(Throttled):
        users.sign_in(mini, name="admin", password=PASSWORD, address="10.2.0.1", now=now)
    assert users.unlock(mini, name="admin", now=now) >= 1
    token, _, _ = users.sign_in(mini, name="admin", password=PASSWORD, address="10.2.0.1", now=now)
    assert token


def test_successful_sign_ins_do_not_use_up_the_budget(site, mini):
    """A county office where a dozen colleagues sign in as themselves from one address, or one
    administrator from a dozen browsers, is never throttled: only failures count."""
    now = site.state.test_clock.now
    for _ in range(max(users.ACCOUNT_MAX, users.ADDRESS_MAX) + 2):
        users.sign_in(mini, name="admin", password=PASSWORD, address="10.3.0.1", now=now)
    with pytest.raises(AuthError):
        users.sign_in(mini, name="admin", password="wrong", address="10.3.0.1", now=now)
    assert users.sign_in(mini, name="admin", password=PASSWORD, address="10.3.0.1", now=now)


def test_every_answer_carries_the_security_headers_and_private_ones_are_not_cached(site, mini):
    """Pages, errors and sign-in all forbid framing and sniffing under one content policy;
    a task, its evidence and the API are never kept by a browser or a proxy."""
    tid = task_id(mini, "h1", "drill", "2022-Q2")
    admin, _ = signed_in(site, "admin")
    answers = {
        "/board": admin.get("/board"),
        "/login": client(site).get("/login"),
        "/nowhere": admin.get("/nowhere"),
        f"/tasks/{tid}": admin.get(f"/tasks/{tid}"),
        "/api/tasks": admin.get("/api/tasks"),
        "/board unsigned": client(site).get("/board"),
    }
    for where, r in answers.items():
        assert r.headers["x-content-type-options"] == "nosniff", where
        assert r.headers["x-frame-options"] == "DENY", where
        assert r.headers["referrer-policy"] == "same-origin", where
        assert "frame-ancestors 'none'" in r.headers["content-security-policy"], where
        assert len(r.headers.get_list("x-frame-options")) == 1, where
    for where in (f"/tasks/{tid}", "/api/tasks"):
        assert answers[where].headers["cache-control"] == "no-store", where
    assert "no-store" not in answers["/board"].headers.get("cache-control", "")
