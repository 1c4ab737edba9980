"""What every router needs from the application, passed by the request: the wired `App`, the
clock (read once per request as `now`), and the page renderer. `create_app` puts them on
`app.state`; routers never build their own."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates
from jinja2 import Environment, FileSystemLoader

from duban.bootstrap import App
from duban.engine.users import Principal
from duban.web.auth import Denied, NotSignedIn, csrf_token, require
from duban.web.cells import matrix_row
from duban.web.i18n import LANGS, translate

TEMPLATES = Path(__file__).parent / "templates"


def page_templates() -> Jinja2Templates:
    """The page templates, every one autoescaped: they end in .html.j2, which Starlette's own
    environment does not count as HTML, so it wrote every stored and reflected value raw.
    They ship in the package and do not change while it runs, so Jinja does not stat each
    template file on every page to see whether it changed (a tenth of the board's time)."""
    env = Environment(loader=FileSystemLoader(TEMPLATES), autoescape=True, auto_reload=False)
    env.globals["matrix_row"] = matrix_row
    return Jinja2Templates(env=env)


def app_of(request: Request) -> App:
    app: App = request.app.state.app
    return app


def now_of(request: Request) -> datetime:
    """The request's moment: the application's clock (a fixed one in tests, a running-on one
    in `duban demo`)."""
    moment: datetime = request.app.state.clock()
    return moment


def lang_of(request: Request) -> str:
    lang = request.cookies.get("lang", "zh")
    return lang if lang in LANGS else "zh"


def render(
    request: Request,
    template: str,
    status_code: int = 200,
    headers: dict[str, str] | None = None,
    **context: Any,
) -> HTMLResponse:
    """A page: the template with who is signed in, their CSRF token and language."""
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
        max_mb=app_of(request).settings.upload_max_mb,
    )
    templates: Jinja2Templates = request.app.state.templates
    return templates.TemplateResponse(
        request, template, context, status_code=status_code, headers=headers
    )
