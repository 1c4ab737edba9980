"""The county's pages (administrators, and auditors where read-only): the overdue board, the
completion matrix, the history, the review queue, the audit log, recording an event."""

from __future__ import annotations

from datetime import date
from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from duban.engine import actions, catalogue, read, sheets
from duban.engine.read import Filters
from duban.errors import DubanError
from duban.web import listing
from duban.web.auth import check_csrf, require
from duban.web.deps import app_of, now_of, render
from duban.web.listing import TASK_COLUMNS, choices, export, one_page, pager, paging
from duban.web.params import ExportFormat, PageFilters, PageNo

router = APIRouter(include_in_schema=False)
STAFF = ("admin", "auditor")
# reviewing: administrators, and institutions for the submissions their plan sends them
REVIEWERS = ("admin", "institution")


def _task_list(
    request: Request,
    f: Filters,
    page_no: int,
    format: str | None,
    *,
    title: str,
    template: str,
    **query: Any,
) -> Response:
    """A filtered, paged list of tasks for the county (the board, the history), or its export."""
    who = require(request, STAFF)
    app = app_of(request)
    fetch, offset = paging(page_no, listing.PAGE_ROWS, format)
    rows = read.tasks(
        app.store,
        who,
        now=now_of(request),
        tz=app.settings.tz,
        calendar=app.calendar,
        filters=f,
        limit=fetch,
        offset=offset,
        **query,
    )
    return export(request, format, title, TASK_COLUMNS, rows) or render(
        request,
        template,
        f=f,
        **one_page(request, page_no, rows),
        **choices(request, who),
    )


@router.get("/board", response_class=HTMLResponse)
def board(
    request: Request, f: PageFilters, page_no: PageNo = 1, format: ExportFormat = None
) -> Response:
    """Overdue tasks, the longest overdue first."""
    return _task_list(
        request, f, page_no, format, title="overdue", template="board.html.j2", overdue_only=True
    )


@router.get("/matrix", response_class=HTMLResponse)
def matrix(
    request: Request, f: PageFilters, page_no: PageNo = 1, format: ExportFormat = None
) -> Response:
    who = require(request, STAFF)
    app, now = app_of(request), now_of(request)
    lists = choices(request, who)
    if not f.obligation:
        f = Filters(**{**f.__dict__, "obligation": catalogue.first_duty_with_tasks(app.store, now)})
    fetch, offset = paging(page_no, listing.MATRIX_ORGS, format)
    data = sheets.matrix(
        app.store, who, now=now, tz=app.settings.tz, filters=f, limit=fetch - 1, offset=offset
    )
    cells, periods = data["cells"], data["periods"]
    # one row per institution: (code, name, [Cell (task id, outcome, due) or None per period])
    grid = [(org, name, [cells.get((org, p)) for p in periods]) for org, name in data["orgs"]]
    if format:
        rows = [
            {
                "org": org,
                "org_name": name,
                **{p: c.outcome if c else "" for p, c in zip(periods, row, strict=True)},
            }
            for org, name, row in grid
        ]
        columns = [("org", "机构代码 org"), ("org_name", "机构 institution")] + [
            (p, p) for p in periods
        ]
        return export(request, format, "matrix", columns, rows) or Response(status_code=400)
    return render(
        request,
        "matrix.html.j2",
        data=data,
        grid=grid,
        f=f,
        pager=pager(request, page_no, data["has_next"]),
        **lists,
    )


@router.get("/history", response_class=HTMLResponse)
def history(
    request: Request, f: PageFilters, page_no: PageNo = 1, format: ExportFormat = None
) -> Response:
    """Every task, the newest due first: what was done, on time or late."""
    return _task_list(
        request, f, page_no, format, title="history", template="history.html.j2", newest_first=True
    )


@router.get("/review", response_class=HTMLResponse)
def review_queue(request: Request, page_no: PageNo = 1, format: ExportFormat = None) -> Response:
    who = require(request, REVIEWERS)
    app = app_of(request)
    fetch, offset = paging(page_no, listing.PAGE_ROWS, format)
    rows = read.tasks(
        app.store,
        who,
        now=now_of(request),
        tz=app.settings.tz,
        calendar=app.calendar,
        states=("submitted",),
        limit=fetch,
        offset=offset,
        review=True,  # an institution reviews what its plan sends it (permissions)
    )
    return export(request, format, "review", TASK_COLUMNS, rows) or render(
        request, "review.html.j2", **one_page(request, page_no, rows)
    )


@router.get("/audit", response_class=HTMLResponse)
def audit_page(request: Request, format: ExportFormat = None) -> Response:
    require(request, STAFF)
    app = app_of(request)
    status = catalogue.audit_status(app.store)
    rows = catalogue.recent_audit(app.store, tz=app.settings.tz)
    columns = [
        (k, k) for k in ("seq", "at_local", "actor", "action", "entity", "entity_id", "hash")
    ]
    return export(request, format, "audit", columns, rows) or render(
        request, "audit.html.j2", status=status, rows=rows
    )


@router.get("/events/new", response_class=HTMLResponse)
def event_form(request: Request) -> Response:
    who = require(request, ("admin",))
    store = app_of(request).store
    with store.read() as session:
        kinds = actions.known_event_kinds(session)
    orgs = catalogue.organizations(store, who, at_most=listing.ORG_CHOICES)
    return render(request, "event.html.j2", kinds=kinds, orgs=orgs)


@router.post("/events")
async def event_record(request: Request) -> Response:
    who = require(request, ("admin",))
    app = app_of(request)
    form = await request.form()
    check_csrf(request, str(form.get("csrf", "")))
    try:
        occurred = date.fromisoformat(str(form.get("occurred_on", "")))
    except ValueError as exc:
        raise DubanError("the date is not a date; use YYYY-MM-DD") from exc
    org = str(form.get("org", ""))[:64]
    result = actions.record_event(
        app.store,
        kind=str(form.get("kind", ""))[:64],
        org=org,
        occurred_on=occurred,
        now=now_of(request),
        tz=app.settings.tz,
        calendar=app.calendar,
        actor=who.actor,
        note=str(form.get("note", "")) or None,
    )
    return RedirectResponse(f"/history?org={quote(org)}&ev={result.event_id}", status_code=303)
