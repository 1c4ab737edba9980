"""The web UI (server-rendered Jinja2 pages, zh-CN first) and the JSON API under /api.

`create_app(app, clock)` wires the FastAPI application: what the routers need goes on
`app.state` (the App, the clock, the templates; see duban.web.deps), the error handlers map
each error class to its status once (duban.web.errors), and the routers each serve one kind of
user: signin (everyone), county (administrators and auditors), tasks (every role, scoped),
api (scripts). The clock is read once per request and passed down as `now`; tests give a fixed
one. Every handler starts with `require(...)`, which authenticates (session cookie or bearer
token) and checks the role; queries are scoped to the principal's organization in SQL.
"""

from __future__ import annotations

import socket
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from fastapi import FastAPI
from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from uvicorn.protocols.http.h11_impl import H11Protocol

from duban.bootstrap import App
from duban.engine.homes import AdminHome
from duban.engine.snapshots import SnapshotCache
from duban.errors import DubanError
from duban.web import errors
from duban.web.deps import page_templates, render
from duban.web.routes import api, county, home, report, signin, tasks

Clock = Callable[[], datetime]
CSP = (
    "default-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
    "frame-ancestors 'none'"
)


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
    web.state.templates = page_templates()
    web.state.catalog = None  # the plans as files, for the year calendar (loaded once)
    web.state.choices = {}  # the filter forms' lists, kept briefly (duban.web.listing)
    web.state.homes = SnapshotCache[AdminHome](64)  # administrators' homes, per DB snapshot
    errors.install(web, render)

    web.add_middleware(SecurityHeaders)
    web.include_router(home.router)  # `/`: each role's home page
    web.include_router(report.router)  # `/report`: the quarterly circular
    for router in (signin.router, county.router, tasks.router, api.health, api.router):
        web.include_router(router)
    return web


class SecurityHeaders:
    """Every response's security headers, and no-store for private paths. A plain ASGI
    middleware: Starlette's BaseHTTPMiddleware (`@app.middleware`) runs each response
    through an extra task and memory stream, a few percent of every page."""

    HEADERS = (
        ("x-content-type-options", "nosniff"),
        ("x-frame-options", "DENY"),
        ("referrer-policy", "same-origin"),
        ("content-security-policy", CSP),
    )
    PRIVATE = ("/api/", "/tasks/", "/evidence/")

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        private = scope["path"].startswith(self.PRIVATE)

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in self.HEADERS:
                    if name not in headers:  # a route may set its own
                        headers.append(name, value)
                if private and "cache-control" not in headers:
                    headers.append("cache-control", "no-store")
            await send(message)

        await self.app(scope, receive, with_headers)


def from_settings() -> FastAPI:
    """The app built from the environment and duban.toml (as the CLI builds it): what each
    worker process of a multi-process server calls (`duban web --workers N`). A database at
    another schema than this release's is refused here, at the worker's start."""
    app = App()
    app.store.require_schema()
    return create_app(app)


def server_options(app: App, host: str, port: int) -> dict[str, Any]:
    """uvicorn's options, the same for one process or several."""
    trusted = app.settings.trusted_proxies
    return {
        "host": host,
        "port": port,
        "log_level": "warning",
        # X-Forwarded-For decides the address the sign-in throttle counts, so it is read only
        # from the proxies named in `trusted_proxies` (none by default)
        "proxy_headers": bool(trusted),
        "forwarded_allow_ips": ",".join(trusted) if trusted else "",
    }


class NoDelayHttp(H11Protocol):
    """uvicorn's HTTP/1.1 protocol with TCP_NODELAY on every connection. With several
    workers uvicorn binds the listening socket itself with protocol number 0, so asyncio does
    not set TCP_NODELAY on the connections it accepts (it checks for IPPROTO_TCP), and Nagle's
    algorithm against delayed ACKs added about 40 ms to every keep-alive request."""

    def connection_made(self, transport: Any) -> None:
        sock = transport.get_extra_info("socket")
        if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        super().connection_made(transport)


def serve_workers(app: App, host: str, port: int, workers: int) -> None:
    """Serve with `workers` processes (each builds its own App from the same settings), so
    page rendering uses every core; one process when workers is 1."""
    import uvicorn

    if workers <= 1:
        WebServer(app, host, port).run()
        return
    uvicorn.run(
        "duban.web.app:from_settings",
        factory=True,
        workers=workers,
        http=NoDelayHttp,
        **server_options(app, host, port),
    )


class WebServer:
    """uvicorn in the foreground, stoppable from another thread (see duban.scheduler.run)."""

    def __init__(self, app: App, host: str, port: int, clock: Clock | None = None) -> None:
        import uvicorn

        config = uvicorn.Config(create_app(app, clock), **server_options(app, host, port))
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
