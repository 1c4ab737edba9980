"""Errors at the web boundary: each failure is mapped once to its status and shown as the API's
one error body (`ErrorBody`) or as an HTML page, never as a bare 500.

| raised                                   | status |
|------------------------------------------|--------|
| a parameter FastAPI refused              | 422 (API) / 400 (page), naming the parameter |
| NotSignedIn                              | 401 (API) / redirect to sign-in (page) |
| Throttled                                | 429 |
| Denied, BadCsrf                          | 403 |
| AuthError                                | 401 |
| NotFound                                 | 404 |
| StateError                               | 409 |
| UploadTooLarge                           | 413 |
| UploadError (a kind not accepted)        | 415 |
| InvalidText                              | 422, naming the field |
| CalendarError (a year with no calendar)  | 422 |
| StorageError / StorageFull               | 503 / 507 |
| any other DubanError                     | 400 |
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any
from urllib.parse import urlencode

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, RedirectResponse, Response
from starlette.exceptions import HTTPException

from duban.errors import (
    AccessError,
    BadCsrf,
    CalendarError,
    Denied,
    DubanError,
    InvalidText,
    NotFound,
    NotSignedIn,
    StateError,
    StorageError,
    StorageFull,
    Throttled,
    UploadError,
    UploadTooLarge,
)

log = logging.getLogger(__name__)
#: how much of a refused value an error message repeats (it is hostile until proven otherwise)
ECHO_MAX = 80
Renderer = Callable[..., Response]


def wants_json(request: Request) -> bool:
    return request.url.path.startswith(("/api/", "/ics/"))


def status_of(exc: Exception) -> int:
    """The HTTP status for an error raised by the engine or the auth layer."""
    for kind, status in (
        (NotSignedIn, 401),
        (Throttled, 429),
        (Denied, 403),
        (BadCsrf, 403),
        (AccessError, 401),
        (NotFound, 404),
        (StateError, 409),
        (UploadTooLarge, 413),
        (UploadError, 415),
        (InvalidText, 422),
        (CalendarError, 422),
        (StorageFull, 507),
        (StorageError, 503),
    ):
        if isinstance(exc, kind):
            return status
    return 400


TITLES = {401: "error", 403: "forbidden", 404: "not_found"}


def _field_errors(exc: RequestValidationError) -> list[dict[str, Any]]:
    found = []
    for e in exc.errors():
        loc = [p if isinstance(p, int) else str(p) for p in e.get("loc", ())]
        found.append({"loc": loc, "msg": str(e.get("msg", "")), "type": str(e.get("type", ""))})
    return found


def _describe(errors: list[dict[str, Any]]) -> str:
    """'query parameter year: Input should be less than or equal to 2100; …'"""
    parts = []
    for e in errors:
        where = [str(p) for p in e["loc"]]
        place = {"query": "query parameter", "path": "path parameter", "body": "field"}.get(
            where[0] if where else "", "value"
        )
        name = ".".join(where[1:]) or "(body)"
        parts.append(f"{place} {name}: {e['msg']}")
    return "; ".join(parts) or "the request is not valid"


def install(web: FastAPI, page: Renderer) -> None:
    """Register the handlers on `web`; `page(request, template, status_code, **context)`
    renders the HTML error page."""

    def answer(
        request: Request,
        status: int,
        detail: str,
        errors: Any = None,
        headers: dict[str, str] | None = None,
    ) -> Response:
        if wants_json(request):
            body: dict[str, Any] = {"detail": detail}
            if errors is not None:
                body["errors"] = errors
            if status == 401:
                headers = {**(headers or {}), "WWW-Authenticate": "Bearer"}
            return JSONResponse(body, status_code=status, headers=headers)
        return page(
            request,
            "error.html.j2",
            status_code=status,
            title=TITLES.get(status, "error"),
            message=detail,
            headers=headers,
        )

    @web.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> Response:
        errors = _field_errors(exc)
        status = 422 if wants_json(request) else 400
        return answer(request, status, _describe(errors), errors)

    @web.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException) -> Response:
        # a 405 keeps its Allow header (RFC 9110 §15.5.6)
        return answer(request, exc.status_code, str(exc.detail), headers=dict(exc.headers or {}))

    @web.exception_handler(NotSignedIn)
    async def not_signed_in(request: Request, exc: NotSignedIn) -> Response:
        if wants_json(request):
            return answer(request, 401, str(exc))
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        return RedirectResponse("/login?" + urlencode({"next": target}), status_code=303)

    @web.exception_handler(DubanError)
    async def refused(request: Request, exc: Exception) -> Response:
        status = status_of(exc)
        if status >= 500:
            log.error("%s %s: %s", request.method, request.url.path, exc)
        errors = None
        if isinstance(exc, InvalidText):
            errors = [{"loc": ["body", exc.field], "msg": str(exc), "type": "invalid_text"}]
        return answer(request, status, str(exc), errors)
