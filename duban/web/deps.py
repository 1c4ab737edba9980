"""What every router needs from the application, passed by the request: the wired `App`, the
clock (read once per request as `now`), and the page renderer. `create_app` puts them on
`app.state`; routers never build their own."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates
from jinja2 import Environment, FileSystemLoader
from markupsafe import Markup, escape

from duban.bootstrap import App
from duban.engine.users import Principal
from duban.web.auth import Denied, NotSignedIn, csrf_token, require
from duban.web.i18n import LANGS, translate

TEMPLATES = Path(__file__).parent / "templates"


def page_templates() -> Jinja2Templates:
    """The page templates, every one autoescaped: they end in .html.j2, which Starlette's own
    environment does not count as HTML, so it wrote every stored and reflected value raw."""
    env = Environment(loader=FileSystemLoader(TEMPLATES), autoescape=True)
    env.globals["matrix_cells"] = matrix_cells
    return Jinja2Templates(env=env)


#: a matrix cell's kinds: fixed words, safe in a class name
CELLS = ("on_time", "late", "overdue", "waiting", "waived", "withdrawn")


def matrix_cells(cells: list[tuple[int, str, str] | None], t: Callable[[str], str]) -> Markup:
    """One institution's row of the completion matrix, each cell a link to its task.

    Written in Python rather than per cell in the template: a page holds 50 institutions ×
    up to 13 periods, and six autoescaped values a cell made escaping a quarter of the page's
    time. Every value is still escaped or checked: the kind must be one of CELLS, the id an
    integer, the due day and the labels are escaped."""
    labels = {c: escape(t(f"cell:{c}")) for c in CELLS}
    out = []
    for cell in cells:
        if cell is None:
            out.append("<td></td>")
            continue
        task_id, kind, due = cell
        label = labels[kind]  # KeyError for anything not a cell kind
        out.append(
            f'<td><a class="cell c-{kind}" data-cell="{kind}" href="/tasks/{int(task_id)}" '
            f'title="{label} {escape(due)}">{label}</a></td>'
        )
    return Markup("".join(out))


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
