"""`/`: each role's first screen. The administrator sees where the county stands (numbers and
charts, each a link to exactly the tasks behind it), an institution its own deadlines and
rate next to the county's, an auditor completion by quarter, late submissions and the audit
chain. The numbers come from duban.engine.homes; this module only lays them out."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import date
from typing import Annotated
from urllib.parse import urlencode

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, Response

from duban.domain.due import local_date
from duban.engine import catalogue, homes
from duban.engine.stats import Rate, Scope, Window
from duban.web.auth import require
from duban.web.charts import Bar, columns, hbars
from duban.web.deps import app_of, lang_of, now_of, render
from duban.web.i18n import translate
from duban.web.params import PERIOD_OR_EMPTY, OptionalCode, Year

router = APIRouter()


def href(scope: Scope) -> str:
    """The board for an overdue set (it lists only overdue tasks), else the history."""
    query = scope.query()
    if query.get("outcome") == "overdue":
        del query["outcome"]
        return "/board?" + urlencode(query)
    return "/history?" + urlencode(query)


def words(request: Request) -> Callable[[str], str]:
    lang = lang_of(request)
    return lambda key: translate(key, lang)


def rate_bar(label: str, rate: Rate) -> Bar:
    return Bar(label=label, value=rate.rate, text=rate.percent, href=href(rate.counted.scope))


@router.get("/", response_class=HTMLResponse, include_in_schema=False)
def home(
    request: Request,
    plan: OptionalCode = None,
    tag: OptionalCode = None,
    period: Annotated[
        str | None, Query(pattern=PERIOD_OR_EMPTY, description="YYYY or YYYY-Qn")
    ] = None,
    year: Year = None,
) -> Response:
    who = require(request)
    if who.role == "admin":
        return admin_home(request, plan=plan or None, tag=tag or None, period=period or None)
    if who.role == "auditor":
        return auditor_home(request, year)
    return institution_home(request)


def admin_home(
    request: Request, *, plan: str | None, tag: str | None, period: str | None
) -> Response:
    app, now = app_of(request), now_of(request)
    home = homes.admin_home(
        app.store,
        now=now,
        tz=app.settings.tz,
        calendar=app.calendar,
        plan=plan,
        tag=tag,
        period=period,
        cache=request.app.state.homes,
    )
    t = words(request)
    # a column has room for "100%" on a phone, not for "100.0%"
    months = [
        replace(rate_bar(f"{m.month}月", r), text="—" if r.rate is None else f"{r.rate:.0%}")
        for m, r in home.by_month
    ]
    return render(
        request,
        "home_admin.html.j2",
        home=home,
        announcements=app.announcements(now),
        href=href,
        f={"plan": plan, "tag": tag, "period": period},
        plans=homes.plan_choices(app.store),
        report_quarter=(
            home.current.key
            if "-Q" in home.current.key
            else Window.quarter_of(min(local_date(now, app.settings.tz), home.current.last)).key
        ),
        tags=catalogue.tags(app.store),
        org_chart=hbars([rate_bar(o.name, o.rate) for o in home.by_org], title=t("chart_by_org")),
        month_chart=columns(months, title=t("chart_by_month")),
        duty_chart=hbars(
            [
                Bar(label=title, value=c.n, text=str(c.n), href=href(c.scope))
                for _, title, c in home.by_duty
            ],
            title=t("chart_by_duty"),
            rates=False,
        ),
    )


def institution_home(request: Request) -> Response:
    app, now = app_of(request), now_of(request)
    who = require(request, ("institution",))
    t = words(request)
    home = homes.institution_home(
        app.store, who, now=now, tz=app.settings.tz, calendar=app.calendar
    )
    return render(
        request,
        "home_institution.html.j2",
        home=home,
        today=local_date(now, app.settings.tz),
        chart=hbars(
            # an institution has no board: its bars point at the table under the chart
            [
                replace(rate_bar(t("our_org"), home.own), href="#rates"),
                replace(rate_bar(t("county"), home.county), href="#rates"),
            ],
            title=t("on_time_rate"),
        ),
    )


def auditor_home(request: Request, year: int | None) -> Response:
    app, now = app_of(request), now_of(request)
    require(request, ("auditor",))
    today: date = local_date(now, app.settings.tz)
    t = words(request)
    home = homes.auditor_home(app.store, now=now, tz=app.settings.tz, year=year or today.year)
    return render(
        request,
        "home_auditor.html.j2",
        home=home,
        href=href,
        status=catalogue.audit_status(app.store),
        chart=columns(
            [
                replace(
                    rate_bar(f"Q{w.key[-1]}", r), text="—" if r.rate is None else f"{r.rate:.0%}"
                )
                for w, r, _ in home.quarters
            ],
            title=t("chart_by_quarter"),
        ),
    )
