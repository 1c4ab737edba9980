"""`/report?quarter=2022-Q3`: the quarterly circular (督办通报) as a printable page, or with
`&format=docx` as an editable Word document. For the county (administrators, auditors)."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Literal
from urllib.parse import quote

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, Response

from duban.domain.due import local_date
from duban.engine.circular import circular
from duban.engine.stats import Window
from duban.errors import DubanError
from duban.web.auth import require
from duban.web.deps import app_of, now_of, render
from duban.web.params import QUARTER_OR_EMPTY
from duban.web.report_docx import DOCX_TYPE, chinese_date, circular_docx, intro, sections

router = APIRouter()
STAFF = ("admin", "auditor")


def region_of(request: Request) -> str:
    """The county's name from the organizations file (read once; the calendar page shares
    it), or nothing when the files cannot be read."""
    state = request.app.state
    if getattr(state, "catalog", None) is None:
        try:
            state.catalog = app_of(request).catalog()
        except DubanError:
            return ""
    return str(state.catalog.region)


@router.get("/report", response_class=HTMLResponse, include_in_schema=False)
def report(
    request: Request,
    quarter: Annotated[str | None, Query(pattern=QUARTER_OR_EMPTY, description="YYYY-Qn")] = None,
    format: Annotated[Literal["docx"] | None, Query(description="download as Word")] = None,
) -> Response:
    """The circular of `quarter` (the last whole quarter by default) as of now."""
    require(request, STAFF)
    app, now = app_of(request), now_of(request)
    today = local_date(now, app.settings.tz)
    quarter = quarter or Window.quarter_of(Window.quarter_of(today).first - timedelta(days=1)).key
    c = circular(app.store, quarter=quarter, now=now, tz=app.settings.tz, region=region_of(request))
    if format == "docx":
        body = circular_docx(c, base_url=app.settings.base_url)
        name = f"{c.title}.docx"
        return Response(
            body,
            media_type=DOCX_TYPE,
            headers={"Content-Disposition": f"attachment; filename*=UTF-8''{quote(name)}"},
        )
    return render(
        request,
        "report.html.j2",
        c=c,
        quarter=quarter,
        intro=intro(c),
        sections=sections(c),
        issued=chinese_date(c.issued),
    )
