"""Pages every role reaches, each scoped to what the principal may see: My tasks, a task and
its evidence, the actions on it, the plan's forms, the year calendar, the Annex 5 sheet, and
the iCalendar feed (by its token)."""

from __future__ import annotations

import logging
from datetime import date
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlencode

from fastapi import APIRouter, Query, Request
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from duban.catalog.expand import planned_tasks
from duban.domain.tasks import Action
from duban.engine import catalogue, evidence, feeds, read, sheets
from duban.errors import AccessError, DubanError, InvalidText, NotFound, UploadError
from duban.store.models import Evidence
from duban.web import exports, listing, work
from duban.web.auth import check_csrf, require
from duban.web.deps import app_of, now_of, render
from duban.web.listing import attachment, download_as, export
from duban.web.params import (
    QUARTER_OR_EMPTY,
    Code,
    EvidenceId,
    ExportFormat,
    OptionalCode,
    TaskId,
    Token,
    Year,
)
from duban.web.routes.signin import NEXT_MAX, safe_next

log = logging.getLogger(__name__)
router = APIRouter(include_in_schema=False)
ERROR_MAX = 500  # a message carried back to the task page in `?error=`
VERBS = {
    "submit": Action.SUBMIT,
    "accept": Action.ACCEPT,
    "reject": Action.REJECT,
    "waive": Action.WAIVE,
}


def _detail(request: Request, task_id: int) -> dict[str, Any]:
    """The task as the principal may see it (403 or 404 otherwise)."""
    app = app_of(request)
    return read.task_detail(
        app.store,
        require(request),
        task_id,
        now=now_of(request),
        tz=app.settings.tz,
        calendar=app.calendar,
    )


def _back_with_error(task_id: int, exc: Exception) -> Response:
    return RedirectResponse(
        f"/tasks/{task_id}?" + urlencode({"error": str(exc)[:ERROR_MAX]}), status_code=303
    )


@router.get("/my", response_class=HTMLResponse)
def my(request: Request) -> Response:
    who = require(request, ("institution",))
    app = app_of(request)
    rows = read.my_tasks(
        app.store, who, now=now_of(request), tz=app.settings.tz, calendar=app.calendar
    )
    return render(request, "my.html.j2", rows=rows)


@router.get("/calendar", response_class=HTMLResponse)
def year_calendar(
    request: Request, year: Year = None, org: OptionalCode = None, format: ExportFormat = None
) -> Response:
    who = require(request)
    app = app_of(request)
    year = year or now_of(request).astimezone(app.settings.tz).year
    if request.app.state.catalog is None:
        request.app.state.catalog = app.catalog()
    catalog = request.app.state.catalog
    org = who.org_code if who.role == "institution" else org or None
    grouped: dict[tuple[date, str, str], list[str]] = {}
    for t in planned_tasks(catalog, app.calendar, org=org, year=year):
        grouped.setdefault((t.due, t.obligation, t.period.key), []).append(t.org)
    titles = {o.domain.code: o.domain.title for o in catalog.obligations}
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
    return export(request, format, f"calendar-{year}", columns, rows) or render(
        request, "calendar.html.j2", months=months, year=year
    )


@router.get("/score", response_class=HTMLResponse)
def score(
    request: Request,
    org: OptionalCode = None,
    quarter: Annotated[str | None, Query(pattern=QUARTER_OR_EMPTY)] = None,
    format: ExportFormat = None,
) -> Response:
    who = require(request)
    app, now = app_of(request), now_of(request)
    orgs = catalogue.organizations(app.store, who, at_most=listing.ORG_CHOICES)
    org = who.org_code if who.role == "institution" else org or (orgs[0].code if orgs else "")
    quarter = quarter or sheets.quarter_of(now.astimezone(app.settings.tz).date())
    sheet = sheets.score_sheet(
        app.store, who, org=org or "", quarter=quarter, now=now, tz=app.settings.tz
    )
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
    return export(request, format, f"annex5-{org}-{quarter}", columns, rows) or render(
        request,
        "score.html.j2",
        sheet=sheet,
        orgs=orgs,
        org=org,
        quarter=quarter,
        forms=[o for o in catalogue.obligations(app.store) if o.spec.get("form")],
    )


@router.get("/obligations/{code}/form.xlsx")
def blank_form(request: Request, code: Code, plan: OptionalCode = None) -> Response:
    """The plan's blank form for the duty (e.g. Annex 4), for anyone signed in: of `plan`'s
    duty, or of the latest plan holding that duty id."""
    require(request)
    form = catalogue.obligation_form(app_of(request).store, code, plan or None)
    return attachment(exports.form_xlsx(form), exports.XLSX_TYPE, f"{form['title']}.xlsx")


@router.get("/tasks/{task_id}/form.xlsx")
def task_form(request: Request, task_id: TaskId) -> Response:
    """The same form with the institution and the month of the task filled in."""
    task = _detail(request, task_id)
    form = catalogue.obligation_form(app_of(request).store, task["obligation"], task["plan"])
    start = date.fromisoformat(task["period_start"])
    body = exports.form_xlsx(
        form, org=task["org_name"], year=str(start.year), month=str(start.month)
    )
    filename = f"{form['title']}-{task['org']}-{task['period']}.xlsx"
    return attachment(body, exports.XLSX_TYPE, filename)


@router.get("/tasks/{task_id}", response_class=HTMLResponse)
def task_page(
    request: Request,
    task_id: TaskId,
    error: Annotated[str | None, Query(max_length=ERROR_MAX)] = None,
) -> Response:
    task = _detail(request, task_id)
    app = app_of(request)
    timeline = read.timeline(app.store, require(request), task_id, tz=app.settings.tz)
    return render(request, "task.html.j2", task=task, timeline=timeline, error=error)


@router.post("/tasks/{task_id}/evidence")
async def evidence_form(request: Request, task_id: TaskId) -> Response:
    who = require(request)
    app = app_of(request)
    work.check_length(app, request.headers.get("content-length"))
    form = await request.form(max_files=work.MAX_FILES + 1)
    check_csrf(request, str(form.get("csrf", "")))
    try:
        stored = await run_in_threadpool(work.upload, app, who, task_id, form, now_of(request))
    except (UploadError, InvalidText) as exc:
        return _back_with_error(task_id, exc)
    log.info("%s uploaded %d files to task %d", who.actor, len(stored), task_id)
    return RedirectResponse(f"/tasks/{task_id}", status_code=303)


@router.post("/tasks/{task_id}/{verb}")
async def task_action(
    request: Request, task_id: TaskId, verb: Literal["submit", "accept", "reject", "waive"]
) -> Response:
    who = require(request)
    form = await request.form()
    check_csrf(request, str(form.get("csrf", "")))
    reason = str(form.get("reason") or "").strip()
    try:
        # the submit form's date field, for a duty that records an event (会议召开日期)
        occurred_on = work.form_date(form.get("occurred_on"), "occurred_on")
        await run_in_threadpool(
            work.act,
            app_of(request),
            who,
            task_id,
            VERBS[verb],
            reason,
            now_of(request),
            occurred_on,
        )
    except (AccessError, NotFound):
        raise
    except DubanError as exc:
        return _back_with_error(task_id, exc)
    back = str(form.get("back") or "")[:NEXT_MAX]
    return RedirectResponse(safe_next(back) or f"/tasks/{task_id}", status_code=303)


@router.get("/evidence/{evidence_id}")
def evidence_file(request: Request, evidence_id: EvidenceId) -> Response:
    app = app_of(request)
    with app.store.read() as session:
        ev = session.get(Evidence, evidence_id)
        if ev is None or ev.sha256 is None:
            raise NotFound("evidence", evidence_id)
        task_id = ev.task_id
        sha, name, kind = ev.sha256, ev.filename or "evidence", ev.media_type
    _detail(request, task_id)  # the scope check: only who may see the task gets its files
    path = evidence.evidence_path(Path(app.settings.evidence_dir).resolve(), sha)
    return FileResponse(
        path, media_type=kind or "application/octet-stream", headers=download_as(name)
    )


@router.get("/ics/{token}.ics")
def ics(request: Request, token: Token) -> Response:
    app = app_of(request)
    org = feeds.org_for_token(app.store, token)
    if org is None:
        raise NotFound("calendar feed", "this token")
    body = feeds.ics_feed(
        app.store,
        org,
        now=now_of(request),
        base_url=app.settings.base_url,
        calendar=app.calendar,
    )
    return Response(body, media_type="text/calendar; charset=utf-8")
