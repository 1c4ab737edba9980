"""The web UI (server-rendered Jinja2 pages, zh-CN first) and the JSON API under /api.

`create_app(app, clock)` builds the FastAPI application. The clock is read once per request
and passed down as `now`; tests give a fixed one. Every handler starts with `require(...)`,
which authenticates (session cookie or bearer token) and checks the role; queries are scoped
to the principal's organization in duban.web.views.
"""

from __future__ import annotations

import hmac
import logging
import secrets
import time
from collections.abc import Callable
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import quote, urlencode

from fastapi import APIRouter, FastAPI, Query, Request, Security
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse, Response
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile

from duban.bootstrap import App
from duban.catalog.expand import planned_tasks
from duban.domain.tasks import Action
from duban.engine import actions, evidence, feeds, permissions, users
from duban.engine.users import Principal
from duban.errors import (
    AccessError,
    AuthError,
    DubanError,
    InvalidText,
    NotFound,
    StateError,
    StorageError,
    Throttled,
    UploadError,
    UploadTooLarge,
)
from duban.store.models import Evidence
from duban.web import errors, exports, views
from duban.web.api_models import (
    BEARER,
    ActionResult,
    Health,
    Me,
    StoredOut,
    Uploaded,
    upload_body,
)
from duban.web.auth import COOKIE, Denied, check_csrf, require
from duban.web.deps import page_templates, render
from duban.web.i18n import LANGS
from duban.web.params import (
    API_MAX_LIMIT,
    MAX_OFFSET,
    PERIOD,
    QUARTER_OR_EMPTY,
    Code,
    EvidenceId,
    ExportFormat,
    OptionalCode,
    PageFilters,
    PageNo,
    ReasonBody,
    RequiredReason,
    State,
    TaskId,
    Token,
    Year,
)
from duban.web.params import errors as error_responses
from duban.web.views import Filters

log = logging.getLogger(__name__)
HERE = Path(__file__).parent
Clock = Callable[[], datetime]
STAFF = ("admin", "auditor")
MAX_FILES = 10
LOGIN_COOKIE = "duban_login"
DEVICE_COOKIE = "duban_device"  # a browser that signed in before: see users.sign_in
PAGE_ROWS = 100  # tasks on a page of the board, the history and the review queue
MATRIX_ORGS = 50  # institutions on a page of the completion matrix
ORG_CHOICES = 500  # past this many organizations, a filter asks for a code, not a list
CHOICES_SECONDS = 30.0  # how long the county's filter lists are kept
EXPORT_ROWS = 500_000
NEXT_MAX = 2000  # a sign-in's `next` path
KIND_MAX = 32  # an evidence kind's code
ERROR_MAX = 500  # a message carried back to the task page in `?error=`
NAME_MAX, PASSWORD_MAX = 100, 1024  # argon2 hashes any length; a megabyte password is a DoS


def create_app(app: App, clock: Clock | None = None) -> FastAPI:
    web = FastAPI(
        title="duban 督办",
        description="Plans as data, tasks on time, an audit trail you can trust.",
        version="1",
        docs_url="/api/docs",
        redoc_url=None,
    )
    web.state.app = app
    web.state.clock = clock or (lambda: datetime.now(UTC))
    web.state.catalog = None
    web.state.templates = page_templates()
    settings = app.settings
    tz = settings.tz
    max_bytes = settings.upload_max_mb * 1024 * 1024
    files_dir = Path(settings.evidence_dir).resolve()

    def now() -> datetime:
        moment: datetime = web.state.clock()
        return moment

    page = render

    def paging(number: int, size: int, fmt: str | None) -> tuple[int, int]:
        """(rows to fetch, offset): a page fetches one row more than it shows, to know whether
        a next page exists; an export is one page of EXPORT_ROWS."""
        if fmt:
            return EXPORT_ROWS, 0
        return size + 1, min((number - 1) * size, MAX_OFFSET)

    def one_page(request: Request, number: int, rows: list[dict[str, Any]]) -> dict[str, Any]:
        """The PAGE_ROWS rows a page shows, and its pager (`rows` holds one more if any)."""
        return {"rows": rows[:PAGE_ROWS], "pager": pager(request, number, len(rows) > PAGE_ROWS)}

    def pager(request: Request, number: int, more: bool) -> dict[str, Any]:
        def link(n: int) -> str:
            params = [(k, v) for k, v in request.query_params.multi_items() if k != "page"]
            return "?" + urlencode([*params, ("page", str(n))])

        return {
            "page": number,
            "prev": link(number - 1) if number > 1 else None,
            "next": link(number + 1) if more else None,
        }

    def export(
        fmt: str | None, title: str, columns: list[tuple[str, str]], rows: list[dict[str, Any]]
    ) -> Response | None:
        stamp = now().astimezone(tz).strftime("%Y%m%d")
        if fmt == "csv":
            body = exports.to_csv(columns, rows)
            kind = exports.CSV_TYPE
        elif fmt == "xlsx":
            body = exports.to_xlsx(title, columns, rows)
            kind = exports.XLSX_TYPE
        else:
            return None
        return attachment(body, kind, f"duban-{title}-{stamp}.{fmt}")

    def attachment(body: bytes, media_type: str, filename: str) -> Response:
        return Response(body, media_type=media_type, headers=download_as(filename))

    # --- errors: one status per failure, the API's one error body (duban.web.errors) -----

    errors.install(web, page)

    @web.middleware("http")
    async def security_headers(request: Request, call_next: Any) -> Response:
        response: Response = await call_next(request)
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("X-Frame-Options", "DENY")
        response.headers.setdefault("Referrer-Policy", "same-origin")
        response.headers.setdefault(
            "Content-Security-Policy",
            "default-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
            "frame-ancestors 'none'",
        )
        if request.url.path.startswith(("/api/", "/tasks/", "/evidence/")):
            response.headers.setdefault("Cache-Control", "no-store")
        return response

    # --- sign-in ----------------------------------------------------------------------

    @web.get("/login", response_class=HTMLResponse, include_in_schema=False)
    def login_form(
        request: Request, next: Annotated[str | None, Query(max_length=NEXT_MAX)] = None
    ) -> Response:
        return login_page(request, next=safe_next(next))

    def login_page(request: Request, status_code: int = 200, **context: Any) -> Response:
        """The sign-in form, with a fresh double-submit token against login CSRF."""
        token = secrets.token_urlsafe(24)
        response = page(
            request, "login.html.j2", status_code=status_code, login_csrf=token, **context
        )
        response.set_cookie(LOGIN_COOKIE, token, max_age=3600, httponly=True, samesite="strict")
        return response

    @web.post("/login", include_in_schema=False)
    async def login(request: Request) -> Response:
        form = await request.form(max_files=0, max_fields=10, max_part_size=NEXT_MAX * 4)
        name = str(form.get("name", ""))[:NAME_MAX]
        password = str(form.get("password", ""))[:PASSWORD_MAX]
        target = safe_next(str(form.get("next", ""))[:NEXT_MAX])
        address = request.client.host if request.client else "unknown"
        expected = request.cookies.get(LOGIN_COOKIE, "")
        given = str(form.get("login_csrf", ""))
        if not expected or not hmac.compare_digest(expected.encode(), given.encode()):
            # a sign-in form posted from another site, or a stale page: show a fresh form
            return login_page(request, status_code=403, error="stale", next=target, name=name)
        try:
            token, _, device = await run_in_threadpool(
                lambda: users.sign_in(
                    app.store,
                    name=name,
                    password=password,
                    address=address,
                    now=now(),
                    device_token=request.cookies.get(DEVICE_COOKIE),
                )
            )
        except Throttled:
            return login_page(request, status_code=429, error="throttled", next=target, name=name)
        except AuthError:
            return login_page(request, status_code=401, error="wrong", next=target, name=name)
        secure = request.url.scheme == "https" or settings.base_url.startswith("https:")
        response = RedirectResponse(target or "/", status_code=303)
        response.delete_cookie(LOGIN_COOKIE)
        response.set_cookie(
            COOKIE,
            token,
            max_age=int(users.SESSION_LIFETIME.total_seconds()),
            httponly=True,
            samesite="lax",
            secure=secure,
        )
        response.set_cookie(
            DEVICE_COOKIE,
            device,
            max_age=int(users.DEVICE_LIFETIME.total_seconds()),
            httponly=True,
            samesite="strict",
            secure=secure,
        )
        return response

    @web.post("/logout", include_in_schema=False)
    async def logout(request: Request) -> Response:
        form = await request.form()
        require(request)
        check_csrf(request, str(form.get("csrf", "")))
        token = request.cookies.get(COOKIE)
        if token:
            users.sign_out(app.store, token)
        response = RedirectResponse("/login", status_code=303)
        response.delete_cookie(COOKIE)
        return response

    @web.get("/lang/{code}", include_in_schema=False)
    def set_lang(
        code: str, next: Annotated[str | None, Query(max_length=NEXT_MAX)] = None
    ) -> Response:
        response = RedirectResponse(safe_next(next) or "/", status_code=303)
        response.set_cookie(
            "lang", code if code in LANGS else "zh", max_age=365 * 86400, samesite="lax"
        )
        return response

    @web.get("/", include_in_schema=False)
    def home(request: Request) -> Response:
        who = require(request)
        target = {"admin": "/board", "auditor": "/history"}.get(who.role, "/my")
        return RedirectResponse(target, status_code=303)

    # --- administrator and auditor views ----------------------------------------------

    task_columns = [
        ("id", "任务 task"),
        ("org", "机构代码 org"),
        ("org_name", "机构 institution"),
        ("obligation", "职责代码 duty"),
        ("title", "职责 title"),
        ("clause", "条款 clause"),
        ("period", "周期 period"),
        ("due", "截止 due"),
        ("state", "状态 state"),
        ("overdue_days", "逾期天数 days overdue"),
        ("late", "逾期提交 late"),
        ("submitted_at", "提交时间 submitted (UTC)"),
        ("reason", "原因 reason"),
    ]

    remembered: dict[str, tuple[float, dict[str, Any]]] = {}

    def choices(who: Principal) -> dict[str, Any]:
        """The filters' lists. They change only when the catalog is synced, so the county's
        are kept for CHOICES_SECONDS (monotonic time: a cache, not a business moment)."""

        def fresh() -> dict[str, Any]:
            return {
                "orgs": views.organizations(app.store, who, at_most=ORG_CHOICES),
                "obligations": views.duty_choices(app.store),
                "tags": views.tags(app.store),
            }

        if who.role == "institution":
            return fresh()
        hit = remembered.get("staff")
        if hit is not None and time.monotonic() - hit[0] < CHOICES_SECONDS:
            return hit[1]
        lists = fresh()
        remembered["staff"] = (time.monotonic(), lists)
        return lists

    @web.get("/board", response_class=HTMLResponse, include_in_schema=False)
    def board(
        request: Request, f: PageFilters, page_no: PageNo = 1, format: ExportFormat = None
    ) -> Response:
        who = require(request, STAFF)
        fetch, offset = paging(page_no, PAGE_ROWS, format)
        rows = views.overdue_board(
            app.store, who, now=now(), tz=tz, filters=f, limit=fetch, offset=offset
        )
        number = page_no
        return export(format, "overdue", task_columns, rows) or page(
            request,
            "board.html.j2",
            f=f,
            **one_page(request, number, rows),
            **choices(who),
        )

    @web.get("/matrix", response_class=HTMLResponse, include_in_schema=False)
    def matrix(
        request: Request, f: PageFilters, page_no: PageNo = 1, format: ExportFormat = None
    ) -> Response:
        who = require(request, STAFF)
        lists = choices(who)
        if not f.obligation:
            f = Filters(
                **{**f.__dict__, "obligation": views.first_duty_with_tasks(app.store, now())}
            )
        number = page_no
        fetch, offset = paging(page_no, MATRIX_ORGS, format)
        data = views.matrix(
            app.store, who, now=now(), tz=tz, filters=f, limit=fetch - 1, offset=offset
        )
        cells, periods = data["cells"], data["periods"]
        # one row per institution: (code, name, [(task id, status, due) or None per period])
        grid = [
            (
                org,
                name,
                [
                    (c["id"], c["cell"], c["due"]) if (c := cells.get((org, p))) else None
                    for p in periods
                ],
            )
            for org, name in data["orgs"]
        ]
        if format:
            rows = [
                {
                    "org": org,
                    "org_name": name,
                    **{p: c[1] if c else "" for p, c in zip(periods, row, strict=True)},
                }
                for org, name, row in grid
            ]
            columns = [("org", "机构代码 org"), ("org_name", "机构 institution")] + [
                (p, p) for p in periods
            ]
            return export(format, "matrix", columns, rows) or Response(status_code=400)
        return page(
            request,
            "matrix.html.j2",
            data=data,
            grid=grid,
            f=f,
            pager=pager(request, number, data["has_next"]),
            **lists,
        )

    @web.get("/history", response_class=HTMLResponse, include_in_schema=False)
    def history(
        request: Request, f: PageFilters, page_no: PageNo = 1, format: ExportFormat = None
    ) -> Response:
        who = require(request, STAFF)
        number = page_no
        fetch, offset = paging(page_no, PAGE_ROWS, format)
        rows = views.tasks(
            app.store,
            who,
            now=now(),
            tz=tz,
            filters=f,
            limit=fetch,
            offset=offset,
            newest_first=True,
        )
        return export(format, "history", task_columns, rows) or page(
            request,
            "history.html.j2",
            f=f,
            **one_page(request, number, rows),
            **choices(who),
        )

    @web.get("/review", response_class=HTMLResponse, include_in_schema=False)
    def review_queue(
        request: Request, page_no: PageNo = 1, format: ExportFormat = None
    ) -> Response:
        who = require(request, ("admin", "institution"))
        number = page_no
        fetch, offset = paging(page_no, PAGE_ROWS, format)
        rows = views.tasks(
            app.store,
            who,
            now=now(),
            tz=tz,
            states=("submitted",),
            limit=fetch,
            offset=offset,
            review=True,  # an institution reviews what its plan sends it (permissions)
        )
        return export(format, "review", task_columns, rows) or page(
            request,
            "review.html.j2",
            **one_page(request, number, rows),
        )

    @web.get("/audit", response_class=HTMLResponse, include_in_schema=False)
    def audit_page(request: Request, format: ExportFormat = None) -> Response:
        require(request, STAFF)
        status = views.audit_status(app.store)
        rows = views.recent_audit(app.store, tz=tz)
        columns = [
            (k, k) for k in ("seq", "at_local", "actor", "action", "entity", "entity_id", "hash")
        ]
        return export(format, "audit", columns, rows) or page(
            request, "audit.html.j2", status=status, rows=rows
        )

    @web.get("/calendar", response_class=HTMLResponse, include_in_schema=False)
    def year_calendar(
        request: Request, year: Year = None, org: OptionalCode = None, format: ExportFormat = None
    ) -> Response:
        who = require(request)
        year = year or now().astimezone(tz).year
        if web.state.catalog is None:
            web.state.catalog = app.catalog()
        org = who.org_code if who.role == "institution" else org or None
        grouped: dict[tuple[date, str, str], list[str]] = {}
        titles: dict[str, str] = {}
        try:
            for t in planned_tasks(web.state.catalog, app.calendar, org=org, year=year):
                grouped.setdefault((t.due, t.obligation, t.period.key), []).append(t.org)
        except DubanError as exc:
            return page(request, "error.html.j2", status_code=422, title="error", message=str(exc))
        for o in web.state.catalog.obligations:
            titles[o.domain.code] = o.domain.title
        months: dict[int, list[dict[str, Any]]] = {}
        for (due, code, key), who_orgs in sorted(grouped.items()):
            months.setdefault(due.month, []).append(
                {
                    "due": due.isoformat(),
                    "obligation": code,
                    "title": titles.get(code, code),
                    "period": key,
                    "orgs": len(who_orgs),
                }
            )
        rows = [r for m in sorted(months) for r in months[m]]
        columns = [
            ("due", "截止 due"),
            ("obligation", "职责代码 duty"),
            ("title", "职责 title"),
            ("period", "周期 period"),
            ("orgs", "机构数 institutions"),
        ]
        return export(format, f"calendar-{year}", columns, rows) or page(
            request, "calendar.html.j2", months=months, year=year
        )

    @web.get("/score", response_class=HTMLResponse, include_in_schema=False)
    def score(
        request: Request,
        org: OptionalCode = None,
        quarter: Annotated[str | None, Query(pattern=QUARTER_OR_EMPTY)] = None,
        format: ExportFormat = None,
    ) -> Response:
        who = require(request)
        orgs = views.organizations(app.store, who, at_most=ORG_CHOICES)
        org = who.org_code if who.role == "institution" else org or (orgs[0].code if orgs else "")
        quarter = quarter or views.quarter_of(now().astimezone(tz).date())
        sheet = views.score_sheet(app.store, who, org=org or "", quarter=quarter, now=now(), tz=tz)
        rows = [{"item": i["item"], **e} for i in sheet["items"] for e in i["entries"]]
        columns = [
            ("item", "序号 row"),
            ("criterion", "自评依据 criterion"),
            ("obligation", "职责 duty"),
            ("points", "分值 points"),
            ("tasks", "任务数 tasks"),
            ("accepted", "已通过 accepted"),
            ("submitted", "待审核 submitted"),
            ("earned", "得分 earned"),
        ]
        return export(format, f"annex5-{org}-{quarter}", columns, rows) or page(
            request,
            "score.html.j2",
            sheet=sheet,
            orgs=orgs,
            org=org,
            quarter=quarter,
            forms=[o for o in views.obligations(app.store) if o.spec.get("form")],
        )

    @web.get("/events/new", response_class=HTMLResponse, include_in_schema=False)
    def event_form(request: Request) -> Response:
        who = require(request, ("admin",))
        with app.store.read() as session:
            kinds = actions.known_event_kinds(session)
        orgs = views.organizations(app.store, who, at_most=ORG_CHOICES)
        return page(request, "event.html.j2", kinds=kinds, orgs=orgs)

    @web.post("/events", include_in_schema=False)
    async def event_record(request: Request) -> Response:
        who = require(request, ("admin",))
        form = await request.form()
        check_csrf(request, str(form.get("csrf", "")))
        try:
            occurred = date.fromisoformat(str(form.get("occurred_on", "")))
        except ValueError as exc:
            raise DubanError("the date is not a date; use YYYY-MM-DD") from exc
        result = actions.record_event(
            app.store,
            kind=str(form.get("kind", "")),
            org=str(form.get("org", "")),
            occurred_on=occurred,
            now=now(),
            tz=tz,
            calendar=app.calendar,
            actor=who.actor,
            note=str(form.get("note", "")) or None,
        )
        org = str(form.get("org", ""))
        return RedirectResponse(f"/history?org={quote(org)}&ev={result.event_id}", status_code=303)

    # --- institution views --------------------------------------------------------------

    @web.get("/my", response_class=HTMLResponse, include_in_schema=False)
    def my(request: Request) -> Response:
        who = require(request, ("institution",))
        rows = views.my_tasks(app.store, who, now=now(), tz=tz)
        return page(request, "my.html.j2", rows=rows)

    @web.get("/obligations/{code}/form.xlsx", include_in_schema=False)
    def blank_form(request: Request, code: Code) -> Response:
        """The plan's blank form for the duty (e.g. Annex 4), for anyone signed in."""
        require(request)
        form = views.obligation_form(app.store, code)
        return attachment(exports.form_xlsx(form), exports.XLSX_TYPE, f"{form['title']}.xlsx")

    @web.get("/tasks/{task_id}/form.xlsx", include_in_schema=False)
    def task_form(request: Request, task_id: TaskId) -> Response:
        """The same form with the institution and the month of the task filled in."""
        who = require(request)
        task = views.task_detail(app.store, who, task_id, now=now(), tz=tz, calendar=app.calendar)
        form = views.obligation_form(app.store, task["obligation"])
        start = date.fromisoformat(task["period_start"])
        body = exports.form_xlsx(
            form, org=task["org_name"], year=str(start.year), month=str(start.month)
        )
        filename = f"{form['title']}-{task['org']}-{task['period']}.xlsx"
        return attachment(body, exports.XLSX_TYPE, filename)

    @web.get("/tasks/{task_id}", response_class=HTMLResponse, include_in_schema=False)
    def task_page(
        request: Request,
        task_id: TaskId,
        error: Annotated[str | None, Query(max_length=ERROR_MAX)] = None,
    ) -> Response:
        who = require(request)
        task = views.task_detail(app.store, who, task_id, now=now(), tz=tz, calendar=app.calendar)
        timeline = views.timeline(app.store, who, task_id, tz=tz)
        return page(
            request,
            "task.html.j2",
            task=task,
            timeline=timeline,
            error=error,
        )

    def upload(request: Request, who: Principal, task_id: int, form: Any) -> list[evidence.Stored]:
        task = views.task_detail(app.store, who, task_id, now=now(), tz=tz, calendar=app.calendar)
        if not permissions.may_add_evidence(who, org_id=task["org_id"]):
            raise Denied("only the institution (or an administrator) adds evidence")
        if task["state"] not in ("open", "rejected"):
            raise StateError(
                f"task {task_id} is {task['state']}: evidence is added while a task is open "
                "or rejected"
            )
        kind = str(form.get("kind") or "other")[:KIND_MAX]
        if kind not in {*task["required"], "other"}:
            raise StateError(
                f"evidence kind {kind!r} is not one this duty asks for; send one of "
                f"{', '.join([*task['required'], 'other'])}"
            )
        stored: list[evidence.Stored] = []
        files = [f for f in form.getlist("files") if isinstance(f, UploadFile) and f.filename]
        if len(files) > MAX_FILES:
            raise DubanError(f"at most {MAX_FILES} files at once")
        for item in files:
            stored.append(
                evidence.store_upload(
                    app.store,
                    folder=files_dir,
                    task_id=task_id,
                    filename=item.filename or "upload",
                    stream=item.file,
                    max_bytes=max_bytes,
                    actor=who.actor,
                    now=now(),
                    kind=kind,
                )
            )
        note = str(form.get("note") or "").strip()
        if note:
            actions.add_note(app.store, task_id=task_id, note=note, actor=who.actor, now=now())
        return stored

    def bounded(request: Request) -> None:
        length = request.headers.get("content-length", "")
        if not (length.isascii() and length.isdigit() and len(length) <= 15):
            raise DubanError("uploads need a Content-Length (a whole number of bytes)")
        if int(length) > max_bytes * MAX_FILES + 1024 * 1024:
            raise UploadTooLarge(
                f"the upload is larger than {settings.upload_max_mb} MiB per file allows"
            )

    @web.post("/tasks/{task_id}/evidence", include_in_schema=False)
    async def evidence_form(request: Request, task_id: TaskId) -> Response:
        who = require(request)
        bounded(request)
        form = await request.form(max_files=MAX_FILES + 1)
        check_csrf(request, str(form.get("csrf", "")))
        try:
            stored = await run_in_threadpool(upload, request, who, task_id, form)
        except (UploadError, InvalidText) as exc:
            return RedirectResponse(
                f"/tasks/{task_id}?" + urlencode({"error": str(exc)[:ERROR_MAX]}), status_code=303
            )
        log.info("%s uploaded %d files to task %d", who.actor, len(stored), task_id)
        return RedirectResponse(f"/tasks/{task_id}", status_code=303)

    def act(who: Principal, task_id: int, action: Action, reason: str | None) -> str:
        task = views.task_detail(app.store, who, task_id, now=now(), tz=tz, calendar=app.calendar)
        if action is Action.SUBMIT:
            if not permissions.may_submit(who, org_id=task["org_id"]):
                raise Denied("only the institution (or an administrator) submits")
        elif action is Action.WAIVE:
            if not permissions.may_waive(who):
                raise Denied("only an administrator waives")
        elif not permissions.may_review(who, receiver_org_id=task["receiver_org_id"]):
            raise Denied("only an administrator or the receiving institution reviews")
        return actions.transition(
            app.store,
            task_id=task_id,
            action=action,
            actor=who.actor,
            now=now(),
            reason=reason or None,
        ).value

    @web.post("/tasks/{task_id}/{verb}", include_in_schema=False)
    async def task_action(
        request: Request, task_id: TaskId, verb: Literal["submit", "accept", "reject", "waive"]
    ) -> Response:
        who = require(request)
        form = await request.form()
        check_csrf(request, str(form.get("csrf", "")))
        verbs = {
            "submit": Action.SUBMIT,
            "accept": Action.ACCEPT,
            "reject": Action.REJECT,
            "waive": Action.WAIVE,
        }
        if verb not in verbs:
            raise NotFound("action", verb)
        try:
            reason = str(form.get("reason") or "").strip()
            await run_in_threadpool(act, who, task_id, verbs[verb], reason)
        except (AccessError, NotFound):
            raise
        except DubanError as exc:
            return RedirectResponse(
                f"/tasks/{task_id}?" + urlencode({"error": str(exc)[:ERROR_MAX]}), status_code=303
            )
        back = str(form.get("back") or "")[:NEXT_MAX]
        return RedirectResponse(safe_next(back) or f"/tasks/{task_id}", status_code=303)

    @web.get("/evidence/{evidence_id}", include_in_schema=False)
    def evidence_file(request: Request, evidence_id: EvidenceId) -> Response:
        who = require(request)
        with app.store.read() as session:
            ev = session.get(Evidence, evidence_id)
            if ev is None or ev.sha256 is None:
                raise NotFound("evidence", evidence_id)
            task_id = ev.task_id
            sha, name, kind = ev.sha256, ev.filename or "evidence", ev.media_type
        views.task_detail(
            app.store, who, task_id, now=now(), tz=tz, calendar=app.calendar
        )  # scope check
        path = evidence.evidence_path(files_dir, sha)
        return FileResponse(
            path,
            media_type=kind or "application/octet-stream",
            headers=download_as(name),
        )

    @web.get("/ics/{token}.ics", include_in_schema=False)
    def ics(token: Token) -> Response:
        org = feeds.org_for_token(app.store, token)
        if org is None:
            raise NotFound("calendar feed", "this token")
        body = feeds.ics_feed(app.store, org, now=now(), base_url=settings.base_url)
        return Response(body, media_type="text/calendar; charset=utf-8")

    # --- JSON API (schema at /openapi.json; every error is an ErrorBody) ---------------

    api = APIRouter(prefix="/api", dependencies=[Security(BEARER)])

    @web.get("/api/health", tags=["health"], responses=error_responses(503))
    def api_health() -> Health:
        """Is the service up and its database reachable? No sign-in needed."""
        try:
            with app.store.read() as session:
                session.execute(text("SELECT 1"))
        except SQLAlchemyError as exc:
            raise StorageError("the database cannot be reached; retry shortly") from exc
        return Health(status="ok")

    @api.get("/me", tags=["users"], responses=error_responses())
    def api_me(request: Request) -> Me:
        """Who the session or token belongs to."""
        who = require(request)
        return Me(name=who.name, role=who.role, org=who.org_code)

    @api.get("/tasks", tags=["tasks"], responses=error_responses())
    def api_tasks(
        request: Request,
        org: OptionalCode = None,
        obligation: OptionalCode = None,
        period: Annotated[str | None, Query(pattern=PERIOD)] = None,
        tag: OptionalCode = None,
        state: State | None = None,
        year: Year = None,
        overdue: bool = False,
        limit: Annotated[int, Query(ge=0, le=API_MAX_LIMIT)] = 1000,
        offset: Annotated[int, Query(ge=0, le=MAX_OFFSET)] = 0,
    ) -> list[dict[str, Any]]:
        """Tasks you may see, filtered as on the pages, with overdue derived as of now; the
        oldest due first (longest overdue first), `limit` from `offset`."""
        who = require(request)
        f = Filters(
            org=org or None,
            obligation=obligation or None,
            period=period or None,
            tag=tag or None,
            state=state,
            year=year,
        )
        return views.tasks(
            app.store,
            who,
            now=now(),
            tz=tz,
            filters=f,
            overdue_only=overdue,
            limit=limit,
            offset=offset,
        )

    @api.get("/tasks/{task_id}", tags=["tasks"], responses=error_responses(403, 404))
    def api_task(request: Request, task_id: TaskId) -> dict[str, Any]:
        """One task with its clause, required and missing evidence, and working days left."""
        who = require(request)
        return views.task_detail(app.store, who, task_id, now=now(), tz=tz, calendar=app.calendar)

    @api.get("/tasks/{task_id}/timeline", tags=["audit"], responses=error_responses(403, 404))
    def api_timeline(request: Request, task_id: TaskId) -> list[dict[str, Any]]:
        """Who did what to the task and when, from the hash-chained audit trail."""
        who = require(request)
        return views.timeline(app.store, who, task_id, tz=tz)

    @api.post(
        "/tasks/{task_id}/evidence",
        tags=["tasks"],
        status_code=201,
        responses=error_responses(400, 403, 404, 409, 413, 415, 503, 507),
        openapi_extra=upload_body(MAX_FILES),
    )
    async def api_evidence(request: Request, task_id: TaskId) -> Uploaded:
        """Upload evidence: files (multipart field `files`, up to 10, each within the size
        limit, PDF, JPEG, PNG or Office documents whose content matches their extension),
        `kind` (one the duty asks for, or `other`), and an optional `note`. 201 when at least
        one file or a note was stored; 400 when the request carries neither."""
        who = require(request)
        check_csrf(request, None)
        bounded(request)
        form = await request.form(max_files=MAX_FILES + 1)
        if not _has_upload(form):
            raise DubanError("nothing to upload: send at least one file (`files`) or a `note`")
        stored = await run_in_threadpool(upload, request, who, task_id, form)
        return Uploaded(evidence=[StoredOut(**s.__dict__) for s in stored])

    for verb, action, body_type in (
        ("submit", Action.SUBMIT, ReasonBody),
        ("accept", Action.ACCEPT, ReasonBody),
        ("reject", Action.REJECT, RequiredReason),
        ("waive", Action.WAIVE, RequiredReason),
    ):

        def make(action: Action = action, body_type: type[Any] = body_type) -> Any:
            def perform(request: Request, task_id: int, reason: str | None) -> ActionResult:
                who = require(request)
                check_csrf(request, None)
                return ActionResult(id=task_id, state=act(who, task_id, action, reason))

            def optional(
                request: Request, task_id: TaskId, body: ReasonBody | None = None
            ) -> ActionResult:
                return perform(request, task_id, body.reason if body else None)

            def required(request: Request, task_id: TaskId, body: RequiredReason) -> ActionResult:
                return perform(request, task_id, body.reason)

            # reject and waive need a reason, so their body is required
            endpoint = required if body_type is RequiredReason else optional
            endpoint.__doc__ = {
                Action.SUBMIT: "Submit the task's evidence for review "
                "(institution or administrator).",
                Action.ACCEPT: "Accept submitted evidence (administrator).",
                Action.REJECT: "Reject submitted evidence with a reason (administrator); "
                "the institution is told.",
                Action.WAIVE: "Waive the task with a reason (administrator).",
            }[action]
            return endpoint

        api.post(
            f"/tasks/{{task_id}}/{verb}",
            tags=["tasks"],
            name=f"api_{verb}",
            responses=error_responses(400, 403, 404, 409),
        )(make())

    @api.get("/audit/verify", tags=["audit"], responses=error_responses(403))
    def api_verify(request: Request) -> dict[str, Any]:
        """Recompute the audit chain (as `duban audit verify`)."""
        require(request, STAFF)
        return views.audit_status(app.store)

    web.include_router(api)

    return web


def _has_upload(form: Any) -> bool:
    files = [f for f in form.getlist("files") if isinstance(f, UploadFile) and f.filename]
    note = form.get("note")
    return bool(files) or (isinstance(note, str) and bool(note.strip()))


def download_as(filename: str) -> dict[str, str]:
    """A download, never shown inline, under its name (RFC 6266, UTF-8 and percent-encoded)."""
    return {"Content-Disposition": f"attachment; filename*=UTF-8''{quote(filename)}"}


def safe_next(target: str | None) -> str:
    """Only same-site paths: never an open redirect."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return ""
    return target


class WebServer:
    """uvicorn in the foreground, stoppable from another thread (see duban.scheduler.run)."""

    def __init__(self, app: App, host: str, port: int, clock: Clock | None = None) -> None:
        import uvicorn

        trusted = app.settings.trusted_proxies
        config = uvicorn.Config(
            create_app(app, clock),
            host=host,
            port=port,
            log_level="warning",
            # X-Forwarded-For decides the address the sign-in throttle counts, so it is read
            # only from the proxies named in `trusted_proxies` (none by default)
            proxy_headers=bool(trusted),
            forwarded_allow_ips=",".join(trusted) if trusted else "",
        )
        self._server = uvicorn.Server(config)
        self._where = f"{host}:{port}"

    def run(self) -> None:
        try:
            self._server.run()
        except SystemExit as exc:  # uvicorn exits when it cannot bind
            if not self._server.started:
                raise DubanError(
                    f"the web UI cannot listen on {self._where} (is the port taken?); "
                    "set DUBAN_WEB_PORT, or DUBAN_WEB=false to run without it"
                ) from exc
            raise

    def stop(self) -> None:
        self._server.should_exit = True
