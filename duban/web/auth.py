"""Who is asking, and may they: sessions, bearer tokens, CSRF, roles. Checked on every request."""

from __future__ import annotations

import hmac
from collections.abc import Iterable
from typing import Any

from fastapi import Request

from duban.engine import users
from duban.engine.users import Principal
from duban.errors import BadCsrf, Denied, NotSignedIn

__all__ = ["BadCsrf", "Denied", "NotSignedIn", "check_csrf", "csrf_token", "require"]

COOKIE = "duban_session"


def _state(request: Request) -> Any:
    return request.app.state


def identify(request: Request) -> tuple[Principal, str | None]:
    """The principal, and the session's CSRF token (None for a bearer token)."""
    cached = getattr(request.state, "principal", None)
    if cached is not None:
        return cached  # type: ignore[no-any-return]
    state = _state(request)
    header = request.headers.get("authorization", "")
    found: tuple[Principal, str | None] | None = None
    if header.lower().startswith("bearer "):
        principal = users.token_principal(state.app.store, header[7:].strip())
        if principal is None:
            raise NotSignedIn("the API token is unknown, revoked, or its user disabled")
        found = (principal, None)
    else:
        token = request.cookies.get(COOKIE)
        if token:
            live = users.session_principal(state.app.store, token, state.clock())
            if live is not None:
                found = live
    if found is None:
        raise NotSignedIn("sign in first")
    request.state.principal = found
    return found


def require(request: Request, roles: Iterable[str] | None = None) -> Principal:
    principal, _ = identify(request)
    if roles is not None and principal.role not in set(roles):
        raise Denied(f"this needs the role {' or '.join(roles)}; you are {principal.role}")
    return principal


def check_csrf(request: Request, submitted: str | None) -> None:
    """Forms send `csrf`; API calls with the session cookie send X-CSRF-Token. Bearer: none."""
    _, expected = identify(request)
    if expected is None:
        return
    given = submitted or request.headers.get("x-csrf-token") or ""
    if not hmac.compare_digest(given.encode(), expected.encode()):
        raise BadCsrf("the form's security token is missing or stale; reload the page")


def csrf_token(request: Request) -> str:
    _, token = identify(request)
    return token or ""
