"""The JSON API under /api (schema at /openapi.json): the same read models and actions as the
pages, for scripts and other systems. Every error is an ErrorBody (duban.web.errors)."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Security
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError
from starlette.concurrency import run_in_threadpool

from duban.domain.tasks import Action
from duban.engine import catalogue, read
from duban.engine.read import Filters
from duban.errors import DubanError, StorageError
from duban.web import work
from duban.web.api_models import BEARER, ActionResult, Health, Me, StoredOut, Uploaded, upload_body
from duban.web.auth import check_csrf, require
from duban.web.deps import app_of, now_of
from duban.web.params import (
    API_MAX_LIMIT,
    MAX_OFFSET,
    PERIOD,
    OptionalCode,
    OptionalDuty,
    ReasonBody,
    RequiredReason,
    State,
    SubmitBody,
    TaskId,
    Year,
)
from duban.web.params import errors as error_responses

health = APIRouter()
router = APIRouter(prefix="/api", dependencies=[Security(BEARER)])
STAFF = ("admin", "auditor")


@health.get("/api/health", tags=["health"], responses=error_responses(503))
def api_health(request: Request) -> Health:
    """Is the service up and its database reachable? No sign-in needed."""
    try:
        with app_of(request).store.read() as session:
            session.execute(text("SELECT 1"))
    except SQLAlchemyError as exc:
        raise StorageError("the database cannot be reached; retry shortly") from exc
    return Health(status="ok")


@router.get("/me", tags=["users"], responses=error_responses())
def api_me(request: Request) -> Me:
    """Who the session or token belongs to."""
    who = require(request)
    return Me(name=who.name, role=who.role, org=who.org_code)


@router.get("/tasks", tags=["tasks"], responses=error_responses())
def api_tasks(
    request: Request,
    org: OptionalCode = None,
    obligation: OptionalDuty = None,
    period: Annotated[str | None, Query(pattern=PERIOD)] = None,
    tag: OptionalCode = None,
    state: State | None = None,
    year: Year = None,
    overdue: bool = False,
    limit: Annotated[int, Query(ge=0, le=API_MAX_LIMIT)] = 1000,
    offset: Annotated[int, Query(ge=0, le=MAX_OFFSET)] = 0,
) -> list[dict[str, Any]]:
    """Tasks you may see, filtered as on the pages, with overdue derived as of now; the oldest
    due first (longest overdue first), `limit` from `offset`."""
    who = require(request)
    app = app_of(request)
    f = Filters(
        org=org or None,
        obligation=obligation or None,
        period=period or None,
        tag=tag or None,
        state=state,
        year=year,
    )
    return read.tasks(
        app.store,
        who,
        now=now_of(request),
        tz=app.settings.tz,
        calendar=app.calendar,
        filters=f,
        overdue_only=overdue,
        limit=limit,
        offset=offset,
    )


@router.get("/tasks/{task_id}", tags=["tasks"], responses=error_responses(403, 404))
def api_task(request: Request, task_id: TaskId) -> dict[str, Any]:
    """One task with its clause, required and missing evidence, and working days left."""
    who = require(request)
    app = app_of(request)
    return read.task_detail(
        app.store, who, task_id, now=now_of(request), tz=app.settings.tz, calendar=app.calendar
    )


@router.get("/tasks/{task_id}/timeline", tags=["audit"], responses=error_responses(403, 404))
def api_timeline(request: Request, task_id: TaskId) -> list[dict[str, Any]]:
    """Who did what to the task and when, from the hash-chained audit trail."""
    who = require(request)
    app = app_of(request)
    return read.timeline(app.store, who, task_id, tz=app.settings.tz)


@router.post(
    "/tasks/{task_id}/evidence",
    tags=["tasks"],
    status_code=201,
    responses=error_responses(400, 403, 404, 409, 413, 415, 503, 507),
    openapi_extra=upload_body(work.MAX_FILES),
)
async def api_evidence(request: Request, task_id: TaskId) -> Uploaded:
    """Upload evidence: files (multipart field `files`, up to 10, each within the size limit,
    PDF, JPEG, PNG or Office documents whose content matches their extension), `kind` (one the
    duty asks for, or `other`), and an optional `note`. 201 when at least one file or a note
    was stored; 400 when the request carries neither."""
    who = require(request)
    check_csrf(request, None)
    app = app_of(request)
    work.check_length(app, request.headers.get("content-length"))
    form = await request.form(max_files=work.MAX_FILES + 1)
    if not work.has_upload(form):
        raise DubanError("nothing to upload: send at least one file (`files`) or a `note`")
    stored = await run_in_threadpool(work.upload, app, who, task_id, form, now_of(request))
    return Uploaded(evidence=[StoredOut(**s.__dict__) for s in stored])


def _perform(
    request: Request,
    task_id: int,
    action: Action,
    reason: str | None,
    occurred_on: date | None = None,
) -> ActionResult:
    who = require(request)
    check_csrf(request, None)
    state = work.act(app_of(request), who, task_id, action, reason, now_of(request), occurred_on)
    return ActionResult(id=task_id, state=state)


ACTION_ERRORS = error_responses(400, 403, 404, 409)


@router.post("/tasks/{task_id}/submit", tags=["tasks"], responses=ACTION_ERRORS)
def api_submit(request: Request, task_id: TaskId, body: SubmitBody | None = None) -> ActionResult:
    """Submit the task's evidence for review (institution or administrator). A duty that
    records an event (the task's `records_event`) needs `occurred_on`, the day it happened:
    its event is recorded and the tasks counted from it are created at once."""
    if body is None:
        return _perform(request, task_id, Action.SUBMIT, None)
    return _perform(request, task_id, Action.SUBMIT, body.reason, body.occurred_on)


@router.post("/tasks/{task_id}/accept", tags=["tasks"], responses=ACTION_ERRORS)
def api_accept(request: Request, task_id: TaskId, body: ReasonBody | None = None) -> ActionResult:
    """Accept submitted evidence (administrator, or the institution the plan sends it to)."""
    return _perform(request, task_id, Action.ACCEPT, body.reason if body else None)


@router.post("/tasks/{task_id}/reject", tags=["tasks"], responses=ACTION_ERRORS)
def api_reject(request: Request, task_id: TaskId, body: RequiredReason) -> ActionResult:
    """Reject submitted evidence with a reason (administrator, or the receiving institution);
    the institution is told."""
    return _perform(request, task_id, Action.REJECT, body.reason)


@router.post("/tasks/{task_id}/waive", tags=["tasks"], responses=ACTION_ERRORS)
def api_waive(request: Request, task_id: TaskId, body: RequiredReason) -> ActionResult:
    """Waive the task with a reason (administrator)."""
    return _perform(request, task_id, Action.WAIVE, body.reason)


@router.get("/audit/verify", tags=["audit"], responses=error_responses(403))
def api_verify(request: Request) -> dict[str, Any]:
    """Recompute the audit chain (as `duban audit verify`)."""
    require(request, STAFF)
    return catalogue.audit_status(app_of(request).store)
