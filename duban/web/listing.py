"""Lists as pages and as downloads: paging, the pager's links, CSV/XLSX exports, the filter
forms' choices. Shared by every router that shows a list."""

from __future__ import annotations

import time
from typing import Any
from urllib.parse import quote, urlencode

from fastapi import Request
from fastapi.responses import Response

from duban.engine import catalogue
from duban.engine.users import Principal
from duban.web import exports
from duban.web.deps import app_of, now_of
from duban.web.params import MAX_OFFSET

PAGE_ROWS = 100  # tasks on a page of the board, the history and the review queue
MATRIX_ORGS = 50  # institutions on a page of the completion matrix
ORG_CHOICES = 500  # past this many organizations, a filter asks for a code, not a list
CHOICES_SECONDS = 30.0  # how long the county's filter lists are kept
EXPORT_ROWS = 500_000

TASK_COLUMNS = [
    ("id", "任务 task"),
    ("org", "机构代码 org"),
    ("org_name", "机构 institution"),
    ("obligation", "职责代码 duty"),
    ("title", "职责 title"),
    ("clause", "条款 clause"),
    ("period", "周期 period"),
    ("due", "截止 due"),
    ("provisional", "暂定 provisional (no holiday notice yet)"),
    ("state", "状态 state"),
    ("overdue_days", "逾期天数 days overdue"),
    ("late", "逾期提交 late"),
    ("submitted_at", "提交时间 submitted (UTC)"),
    ("reason", "原因 reason"),
]


def paging(number: int, size: int, fmt: str | None) -> tuple[int, int]:
    """(rows to fetch, offset): a page fetches one row more than it shows, to know whether a
    next page exists; an export is one page of EXPORT_ROWS."""
    if fmt:
        return EXPORT_ROWS, 0
    return size + 1, min((number - 1) * size, MAX_OFFSET)


def one_page(request: Request, number: int, rows: list[dict[str, Any]]) -> dict[str, Any]:
    """The PAGE_ROWS rows a page shows, and its pager (`rows` holds one more if any)."""
    return {"rows": rows[:PAGE_ROWS], "pager": pager(request, number, len(rows) > PAGE_ROWS)}


def pager(request: Request, number: int, more: bool) -> dict[str, Any]:
    def link(n: int) -> str:
        params = [(k, v) for k, v in request.query_params.multi_items() if k != "page"]
        return "?" + urlencode([*params, ("page", str(n))])

    return {
        "page": number,
        "prev": link(number - 1) if number > 1 else None,
        "next": link(number + 1) if more else None,
    }


def export(
    request: Request,
    fmt: str | None,
    title: str,
    columns: list[tuple[str, str]],
    rows: list[dict[str, Any]],
) -> Response | None:
    """The rows as a CSV or XLSX download, or None when no format was asked for."""
    stamp = now_of(request).astimezone(app_of(request).settings.tz).strftime("%Y%m%d")
    if fmt == "csv":
        body, kind = exports.to_csv(columns, rows), exports.CSV_TYPE
    elif fmt == "xlsx":
        body, kind = exports.to_xlsx(title, columns, rows), exports.XLSX_TYPE
    else:
        return None
    return attachment(body, kind, f"duban-{title}-{stamp}.{fmt}")


def attachment(body: bytes, media_type: str, filename: str) -> Response:
    return Response(body, media_type=media_type, headers=download_as(filename))


def download_as(filename: str) -> dict[str, str]:
    """A download, never shown inline, under its name (RFC 6266, UTF-8 and percent-encoded)."""
    return {"Content-Disposition": f"attachment; filename*=UTF-8''{quote(filename)}"}


def choices(request: Request, who: Principal) -> dict[str, Any]:
    """The filters' lists. They change only when the catalog is synced, so the county's are
    kept for CHOICES_SECONDS (monotonic time: a cache, not a business moment)."""
    store = app_of(request).store

    def fresh() -> dict[str, Any]:
        return {
            "orgs": catalogue.organizations(store, who, at_most=ORG_CHOICES),
            "obligations": catalogue.duty_choices(store),
            "tags": catalogue.tags(store),
        }

    if who.role == "institution":
        return fresh()
    remembered: dict[str, tuple[float, dict[str, Any]]] = request.app.state.choices
    hit = remembered.get("staff")
    if hit is not None and time.monotonic() - hit[0] < CHOICES_SECONDS:
        return hit[1]
    lists = fresh()
    remembered["staff"] = (time.monotonic(), lists)
    return lists
