"""Signing in and out, and the language switch: the only pages open to everyone."""

from __future__ import annotations

import hmac
import secrets
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from duban.engine import users
from duban.errors import AuthError, Throttled
from duban.web.auth import COOKIE, check_csrf, require
from duban.web.deps import app_of, now_of, render
from duban.web.i18n import LANGS

router = APIRouter(include_in_schema=False)

LOGIN_COOKIE = "duban_login"
DEVICE_COOKIE = "duban_device"  # a browser that signed in before: see users.sign_in
NEXT_MAX = 2000  # a sign-in's `next` path
NAME_MAX, PASSWORD_MAX = 100, 1024  # argon2 hashes any length; a megabyte password is a DoS


def safe_next(target: str | None) -> str:
    """Only same-site paths: never an open redirect."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return ""
    return target


@router.get("/login", response_class=HTMLResponse)
def login_form(
    request: Request, next: Annotated[str | None, Query(max_length=NEXT_MAX)] = None
) -> Response:
    return login_page(request, next=safe_next(next))


def login_page(request: Request, status_code: int = 200, **context: Any) -> Response:
    """The sign-in form, with a fresh double-submit token against login CSRF."""
    token = secrets.token_urlsafe(24)
    response = render(
        request, "login.html.j2", status_code=status_code, login_csrf=token, **context
    )
    response.set_cookie(LOGIN_COOKIE, token, max_age=3600, httponly=True, samesite="strict")
    return response


@router.post("/login")
async def login(request: Request) -> Response:
    app = app_of(request)
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
    now = now_of(request)
    try:
        token, _, device = await run_in_threadpool(
            lambda: users.sign_in(
                app.store,
                name=name,
                password=password,
                address=address,
                now=now,
                device_token=request.cookies.get(DEVICE_COOKIE),
            )
        )
    except Throttled:
        return login_page(request, status_code=429, error="throttled", next=target, name=name)
    except AuthError:
        return login_page(request, status_code=401, error="wrong", next=target, name=name)
    secure = request.url.scheme == "https" or app.settings.base_url.startswith("https:")
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


@router.post("/logout")
async def logout(request: Request) -> Response:
    form = await request.form()
    require(request)
    check_csrf(request, str(form.get("csrf", "")))
    token = request.cookies.get(COOKIE)
    if token:
        users.sign_out(app_of(request).store, token)
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(COOKIE)
    return response


@router.get("/lang/{code}")
def set_lang(code: str, next: Annotated[str | None, Query(max_length=NEXT_MAX)] = None) -> Response:
    response = RedirectResponse(safe_next(next) or "/", status_code=303)
    response.set_cookie(
        "lang", code if code in LANGS else "zh", max_age=365 * 86400, samesite="lax"
    )
    return response
