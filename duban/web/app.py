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
from typing import Any
from urllib.parse import quote, urlencode

from fastapi import FastAPI, Request
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile

from duban.bootstrap import App
from duban.catalog.expand import planned_tasks
from duban.domain.tasks import Action
from duban.engine import actions, evidence, feeds, permissions, users
from duban.engine.users import AuthError, Principal
from duban.errors import DubanError, NotFound
from duban.store.models import Evidence
from duban.web import exports, views
from duban.web.auth import COOKIE, BadCsrf, Denied, NotSignedIn, check_csrf, csrf_token, require
from duban.web.i18n import LANGS, translate
from duban.web.views import Filters, Forbidden

log = logging.getLogger(__name__)
HERE = Path(__file__).parent
Clock = Callable[[], datetime]
STAFF = ("admin", "auditor")
MAX_FILES = 10
LOGIN_COOKIE = "duban_login"
PAGE_ROWS = 100  # tasks on a page of the board, the history and the review queue
MATRIX_ORGS = 50  # institutions on a page of the completion matrix
ORG_CHOICES = 500  # past this many organizations, a filter asks for a code, not a list
CHOICES_SECONDS = 30.0  # how long the county's filter lists are kept
EXPORT_ROWS = 500_000


class ReasonBody(BaseModel):
    reason: str | None = None


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
    templates = Jinja2Templates(directory=HERE / "templates")
    settings = app.settings
    tz = settings.tz
    max_bytes = settings.upload_max_mb * 1024 * 1024
    files_dir = Path(settings.evidence_dir).resolve()

    def now() -> datetime:
        moment: datetime = web.state.clock()
        return moment

    def lang_of(request: Request) -> str:
        lang = request.cookies.get("lang", "zh")
        return lang if lang in LANGS else "zh"

    def page(
        request: Request, template: str, status_code: int = 200, **context: Any
    ) -> HTMLResponse:
        lang = lang_of(request)
        try:
            principal: Principal | None = require(request)
            token = csrf_token(request)
        except (NotSignedIn, Denied):
            principal, token = None, ""
        context.update(
            request=request,
            me=principal,
            csrf=token,
            lang=lang,
            t=lambda key: translate(key, lang),
            path=request.url.path,
            query=str(request.url.query),
            max_mb=settings.upload_max_mb,
        )
        return templates.TemplateResponse(request, template, context, status_code=status_code)

    def paging(request: Request, size: int) -> tuple[int, int, int]:
        """(page number, rows to fetch, offset): a page fetches one row more than it shows,
        to know whether a next page exists; an export is one page of EXPORT_ROWS."""
        if request.query_params.get("format"):
            return 1, EXPORT_ROWS, 0
        raw = request.query_params.get("page", "1")
        number = max(1, min(int(raw), 100_000)) if raw.isdigit() else 1
        return number, size + 1, (number - 1) * size

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

    def filters_of(request: Request) -> Filters:
        q = request.query_params
        year = q.get("year")
        return Filters(
            org=q.get("org") or None,
            obligation=q.get("obligation") or None,
            period=q.get("period") or None,
            tag=q.get("tag") or None,
            state=q.get("state") or None,
            year=int(year) if year and year.isdigit() else None,
        )

    def export(
        request: Request, title: str, columns: list[tuple[str, str]], rows: list[dict[str, Any]]
    ) -> Response | None:
        fmt = request.query_params.get("format")
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

    # --- errors -----------------------------------------------------------------------

    def wants_json(request: Request) -> bool:
        return request.url.path.startswith("/api/")

    @web.exception_handler(NotSignedIn)
    async def not_signed_in(request: Request, exc: NotSignedIn) -> Response:
        if wants_json(request) or request.url.path.startswith("/ics/"):
            return JSONResponse(
                {"detail": str(exc)}, status_code=401, headers={"WWW-Authenticate": "Bearer"}
            )
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        return RedirectResponse("/login?" + urlencode({"next": target}), status_code=303)

    @web.exception_handler(Denied)
    @web.exception_handler(Forbidden)
    @web.exception_handler(BadCsrf)
    async def denied(request: Request, exc: Exception) -> Response:
        if wants_json(request):
            return JSONResponse({"detail": str(exc)}, status_code=403)
        return page(request, "error.html.j2", status_code=403, title="forbidden", message=str(exc))

    @web.exception_handler(NotFound)
    async def not_found(request: Request, exc: NotFound) -> Response:
        if wants_json(request):
            return JSONResponse({"detail": str(exc)}, status_code=404)
        return page(request, "error.html.j2", status_code=404, title="not_found", message=str(exc))

    @web.exception_handler(DubanError)
    async def refused(request: Request, exc: DubanError) -> Response:
        if wants_json(request):
            return JSONResponse({"detail": str(exc)}, status_code=422)
        return page(request, "error.html.j2", status_code=422, title="error", message=str(exc))

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
    def login_form(request: Request) -> Response:
        return login_page(request, next=safe_next(request.query_params.get("next")))

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
        form = await request.form()
        name, password = str(form.get("name", "")), str(form.get("password", ""))
        target = safe_next(str(form.get("next", "")))
        address = request.client.host if request.client else "unknown"
        expected = request.cookies.get(LOGIN_COOKIE, "")
        given = str(form.get("login_csrf", ""))
        if not expected or not hmac.compare_digest(expected.encode(), given.encode()):
            # a sign-in form posted from another site, or a stale page: show a fresh form
            return login_page(request, status_code=403, error="stale", next=target, name=name)
        try:
            token, _ = await run_in_threadpool(
                lambda: users.sign_in(
                    app.store, name=name, password=password, address=address, now=now()
                )
            )
        except AuthError as exc:
            return login_page(request, status_code=401, error=str(exc), next=target, name=name)
        response = RedirectResponse(target or "/", status_code=303)
        response.delete_cookie(LOGIN_COOKIE)
        response.set_cookie(
            COOKIE,
            token,
            max_age=int(users.SESSION_LIFETIME.total_seconds()),
            httponly=True,
            samesite="lax",
            secure=request.url.scheme == "https" or settings.base_url.startswith("https:"),
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
    def set_lang(request: Request, code: str) -> Response:
        response = RedirectResponse(
            safe_next(request.query_params.get("next")) or "/", status_code=303
        )
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
    def board(request: Request) -> Response:
        who = require(request, STAFF)
        f = filters_of(request)
        number, fetch, offset = paging(request, PAGE_ROWS)
        rows = views.overdue_board(
            app.store, who, now=now(), tz=tz, filters=f, limit=fetch, offset=offset
        )
        return export(request, "overdue", task_columns, rows) or page(
            request,
            "board.html.j2",
            f=f,
            **one_page(request, number, rows),
            **choices(who),
        )

    @web.get("/matrix", response_class=HTMLResponse, include_in_schema=False)
    def matrix(request: Request) -> Response:
        who = require(request, STAFF)
        f = filters_of(request)
        lists = choices(who)
        if not f.obligation:
            f = Filters(
                **{**f.__dict__, "obligation": views.first_duty_with_tasks(app.store, now())}
            )
        number, fetch, offset = paging(request, MATRIX_ORGS)
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
        if request.query_params.get("format"):
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
            return export(request, "matrix", columns, rows) or Response(status_code=400)
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
    def history(request: Request) -> Response:
        who = require(request, STAFF)
        f = filters_of(request)
        number, fetch, offset = paging(request, PAGE_ROWS)
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
        return export(request, "history", task_columns, rows) or page(
            request,
            "history.html.j2",
            f=f,
            **one_page(request, number, rows),
            **choices(who),
        )

    @web.get("/review", response_class=HTMLResponse, include_in_schema=False)
    def review_queue(request: Request) -> Response:
        who = require(request, ("admin", "institution"))
        number, fetch, offset = paging(request, PAGE_ROWS)
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
        return export(request, "review", task_columns, rows) or page(
            request,
            "review.html.j2",
            **one_page(request, number, rows),
        )

    @web.get("/audit", response_class=HTMLResponse, include_in_schema=False)
    def audit_page(request: Request) -> Response:
        require(request, STAFF)
        status = views.audit_status(app.store)
        rows = views.recent_audit(app.store, tz=tz)
        columns = [
            (k, k) for k in ("seq", "at_local", "actor", "action", "entity", "entity_id", "hash")
        ]
        return export(request, "audit", columns, rows) or page(
            request, "audit.html.j2", status=status, rows=rows
        )

    @web.get("/calendar", response_class=HTMLResponse, include_in_schema=False)
    def year_calendar(request: Request) -> Response:
        who = require(request)
        year = int(request.query_params.get("year") or now().astimezone(tz).year)
        if web.state.catalog is None:
            web.state.catalog = app.catalog()
        org = who.org_code if who.role == "institution" else request.query_params.get("org") or None
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
        return export(request, f"calendar-{year}", columns, rows) or page(
            request, "calendar.html.j2", months=months, year=year
        )

    @web.get("/score", response_class=HTMLResponse, include_in_schema=False)
    def score(request: Request) -> Response:
        who = require(request)
        orgs = views.organizations(app.store, who, at_most=ORG_CHOICES)
        org = (
            who.org_code
            if who.role == "institution"
            else request.query_params.get("org") or (orgs[0].code if orgs else "")
        )
        quarter = request.query_params.get("quarter") or views.quarter_of(
            now().astimezone(tz).date()
        )
        if (
            len(quarter) != 7
            or quarter[4:6] != "-Q"
            or quarter[-1] not in "1234"
            or not quarter[:4].isdigit()
        ):
            raise DubanError(f"quarter {quarter!r} is not like 2022-Q3")
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
        return export(request, f"annex5-{org}-{quarter}", columns, rows) or page(
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
    def blank_form(request: Request, code: str) -> Response:
        """The plan's blank form for the duty (e.g. Annex 4), for anyone signed in."""
        require(request)
        form = views.obligation_form(app.store, code)
        return attachment(exports.form_xlsx(form), exports.XLSX_TYPE, f"{form['title']}.xlsx")

    @web.get("/tasks/{task_id}/form.xlsx", include_in_schema=False)
    def task_form(request: Request, task_id: int) -> Response:
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
    def task_page(request: Request, task_id: int) -> Response:
        who = require(request)
        task = views.task_detail(app.store, who, task_id, now=now(), tz=tz, calendar=app.calendar)
        timeline = views.timeline(app.store, who, task_id, tz=tz)
        return page(
            request,
            "task.html.j2",
            task=task,
            timeline=timeline,
            error=request.query_params.get("error"),
        )

    def upload(request: Request, who: Principal, task_id: int, form: Any) -> list[evidence.Stored]:
        task = views.task_detail(app.store, who, task_id, now=now(), tz=tz, calendar=app.calendar)
        if not permissions.may_add_evidence(who, org_id=task["org_id"]):
            raise Denied("only the institution (or an administrator) adds evidence")
        if task["state"] not in ("open", "rejected"):
            raise DubanError(
                f"task {task_id} is {task['state']}: evidence is added while a task is open "
                "or rejected"
            )
        kind = str(form.get("kind") or "other")
        if kind not in {*task["required"], "other"}:
            raise DubanError(f"evidence kind {kind!r} is not one this duty asks for")
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
        length = request.headers.get("content-length")
        if length is None:
            raise DubanError("uploads need a Content-Length")
        if int(length) > max_bytes * MAX_FILES + 1024 * 1024:
            raise DubanError(
                f"the upload is larger than {settings.upload_max_mb} MiB per file allows"
            )

    @web.post("/tasks/{task_id}/evidence", include_in_schema=False)
    async def evidence_form(request: Request, task_id: int) -> Response:
        who = require(request)
        bounded(request)
        form = await request.form(max_files=MAX_FILES + 1)
        check_csrf(request, str(form.get("csrf", "")))
        try:
            stored = await run_in_threadpool(upload, request, who, task_id, form)
        except evidence.UploadError as exc:
            return RedirectResponse(
                f"/tasks/{task_id}?" + urlencode({"error": str(exc)}), status_code=303
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
    async def task_action(request: Request, task_id: int, verb: str) -> Response:
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
        except (Denied, NotFound):
            raise
        except DubanError as exc:
            return RedirectResponse(
                f"/tasks/{task_id}?" + urlencode({"error": str(exc)}), status_code=303
            )
        back = str(form.get("back") or "")
        return RedirectResponse(safe_next(back) or f"/tasks/{task_id}", status_code=303)

    @web.get("/evidence/{evidence_id}", include_in_schema=False)
    def evidence_file(request: Request, evidence_id: int) -> Response:
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
    def ics(token: str) -> Response:
        org = feeds.org_for_token(app.store, token)
        if org is None:
            raise NotFound("calendar feed", "this token")
        body = feeds.ics_feed(app.store, org, now=now(), base_url=settings.base_url)
        return Response(body, media_type="text/calendar; charset=utf-8")

    # --- JSON API ----------------------------------------------------------------------

    @web.get("/api/me", tags=["users"])
    def api_me(request: Request) -> dict[str, Any]:
        """Who the session or token belongs to."""
        who = require(request)
        return {"name": who.name, "role": who.role, "org": who.org_code}

    @web.get("/api/tasks", tags=["tasks"])
    def api_tasks(
        request: Request,
        org: str | None = None,
        obligation: str | None = None,
        period: str | None = None,
        tag: str | None = None,
        state: str | None = None,
        year: int | None = None,
        overdue: bool = False,
        limit: int = 1000,
        offset: int = 0,
    ) -> list[dict[str, Any]]:
        """Tasks you may see, filtered as on the pages, with overdue derived as of now; the
        oldest due first (longest overdue first), `limit` (at most 50,000) from `offset`."""
        who = require(request)
        f = Filters(org=org, obligation=obligation, period=period, tag=tag, state=state, year=year)
        return views.tasks(
            app.store,
            who,
            now=now(),
            tz=tz,
            filters=f,
            overdue_only=overdue,
            limit=max(0, min(limit, 50_000)),
            offset=max(0, offset),
        )

    @web.get("/api/tasks/{task_id}", tags=["tasks"])
    def api_task(request: Request, task_id: int) -> dict[str, Any]:
        """One task with its clause, required and missing evidence, and working days left."""
        who = require(request)
        return views.task_detail(app.store, who, task_id, now=now(), tz=tz, calendar=app.calendar)

    @web.get("/api/tasks/{task_id}/timeline", tags=["audit"])
    def api_timeline(request: Request, task_id: int) -> list[dict[str, Any]]:
        """Who did what to the task and when, from the hash-chained audit trail."""
        who = require(request)
        return views.timeline(app.store, who, task_id, tz=tz)

    @web.post("/api/tasks/{task_id}/evidence", tags=["tasks"], status_code=201)
    async def api_evidence(request: Request, task_id: int) -> dict[str, Any]:
        """Upload files (multipart field `files`, several allowed; `kind`; optional `note`)."""
        who = require(request)
        check_csrf(request, None)
        bounded(request)
        form = await request.form(max_files=MAX_FILES + 1)
        try:
            stored = await run_in_threadpool(upload, request, who, task_id, form)
        except evidence.UploadError as exc:
            raise DubanError(str(exc)) from exc
        return {"evidence": [s.__dict__ for s in stored]}

    for verb, action in (
        ("submit", Action.SUBMIT),
        ("accept", Action.ACCEPT),
        ("reject", Action.REJECT),
        ("waive", Action.WAIVE),
    ):

        def make(action: Action = action) -> Any:
            def endpoint(
                request: Request, task_id: int, body: ReasonBody | None = None
            ) -> dict[str, Any]:
                who = require(request)
                check_csrf(request, None)
                state = act(who, task_id, action, body.reason if body else None)
                return {"id": task_id, "state": state}

            endpoint.__doc__ = {
                Action.SUBMIT: "Submit the task's evidence for review "
                "(institution or administrator).",
                Action.ACCEPT: "Accept submitted evidence (administrator).",
                Action.REJECT: "Reject submitted evidence with a reason (administrator); "
                "the institution is told.",
                Action.WAIVE: "Waive the task with a reason (administrator).",
            }[action]
            return endpoint

        web.post(f"/api/tasks/{{task_id}}/{verb}", tags=["tasks"], name=f"api_{verb}")(make())

    @web.get("/api/audit/verify", tags=["audit"])
    def api_verify(request: Request) -> dict[str, Any]:
        """Recompute the audit chain (as `duban audit verify`)."""
        require(request, STAFF)
        return views.audit_status(app.store)

    return web


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

        config = uvicorn.Config(create_app(app, clock), host=host, port=port, log_level="warning")
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
