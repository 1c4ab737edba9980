"""Every value a request carries, typed and bounded at the edge, before any handler runs.

Query parameters, path ids and JSON bodies are declared here once, with their limits, so a bad
value gets a 4xx that names the parameter (FastAPI validates them; duban.web.errors shapes
the answer) and the OpenAPI schema says what is accepted. Pages submit empty filter fields
(`?org=&year=`): an empty value means "no filter".
"""

from __future__ import annotations

from datetime import date
from typing import Annotated, Literal

from fastapi import Depends, Path, Query
from pydantic import BaseModel, Field, field_validator

from duban.domain.text import REASON_MAX, clean_text
from duban.engine.read import Filters
from duban.errors import InvalidText

#: ids are positive and fit a signed 64-bit column; offsets and pages stop well before that
MAX_ID = 2**63 - 1
MAX_OFFSET = 10_000_000
MAX_PAGE = 100_000
API_MAX_LIMIT = 50_000
#: the years a plan, a filter or a calendar may name
FIRST_YEAR, LAST_YEAR = 2000, 2100
CODE = r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$"
CODE_OR_EMPTY = r"^([A-Za-z0-9][A-Za-z0-9_.:-]{0,63})?$"
#: a duty: its id (across the plans that hold it) or PLAN/ID, PLAN:ID (duban.engine.duties)
DUTY_OR_EMPTY = r"^([A-Za-z0-9][A-Za-z0-9_.-]{0,63}([/:][A-Za-z0-9][A-Za-z0-9_.-]{0,63})?)?$"
PERIOD = r"^([A-Za-z0-9][A-Za-z0-9-]{0,31})?$"
YEAR_OR_EMPTY = r"^((20\d\d)|2100)?$"
QUARTER = r"^20\d\d-Q[1-4]$"
QUARTER_OR_EMPTY = r"^(20\d\d-Q[1-4])?$"
State = Literal["open", "submitted", "accepted", "rejected", "waived"]
Format = Literal["csv", "xlsx"]
#: duban.engine.outcomes.FILTERS: one outcome of a task as of now, or `counted` (on time,
#: late or overdue: what an on-time rate is computed over)
OutcomeName = Literal["on_time", "late", "overdue", "waiting", "waived", "withdrawn", "counted"]
#: the home pages' period: a year or a quarter of due days
PERIOD_OR_EMPTY = r"^(20\d\d(-Q[1-4])?)?$"

TaskId = Annotated[int, Path(ge=1, le=MAX_ID, description="a task's id")]
EvidenceId = Annotated[int, Path(ge=1, le=MAX_ID, description="a piece of evidence's id")]
Code = Annotated[str, Path(pattern=CODE, description="a duty's code")]
Token = Annotated[str, Path(max_length=128)]  # any other value is simply an unknown feed
ExportFormat = Annotated[Format | None, Query(description="download as CSV or XLSX")]
PageNo = Annotated[int, Query(alias="page", ge=1, le=MAX_PAGE)]
Year = Annotated[int | None, Query(ge=FIRST_YEAR, le=LAST_YEAR)]
OptionalCode = Annotated[str | None, Query(pattern=CODE_OR_EMPTY)]
OptionalDuty = Annotated[
    str | None,
    Query(pattern=DUTY_OR_EMPTY, description="a duty's id (every plan's) or PLAN/ID"),
]


def page_filters(
    org: OptionalCode = None,
    obligation: OptionalDuty = None,
    period: Annotated[str | None, Query(pattern=PERIOD)] = None,
    tag: OptionalCode = None,
    state: Annotated[State | Literal[""] | None, Query()] = None,
    year: Annotated[str | None, Query(pattern=YEAR_OR_EMPTY, description="YYYY")] = None,
    plan: OptionalCode = None,
    due_from: Annotated[date | Literal[""] | None, Query(description="YYYY-MM-DD")] = None,
    due_to: Annotated[date | Literal[""] | None, Query(description="YYYY-MM-DD")] = None,
    outcome: Annotated[OutcomeName | Literal[""] | None, Query()] = None,
) -> Filters:
    """The pages' filters, as the filter form submits them (empty means none)."""
    return Filters(
        org=org or None,
        obligation=obligation or None,
        period=period or None,
        tag=tag or None,
        state=state or None,
        year=int(year) if year else None,
        plan=plan or None,
        due_from=due_from or None,
        due_to=due_to or None,
        outcome=outcome or None,
    )


PageFilters = Annotated[Filters, Depends(page_filters)]


class FieldError(BaseModel):
    """One value that was refused."""

    loc: list[str | int] = Field(description="where: ('query', 'year'), ('body', 'reason'), …")
    msg: str
    type: str


class ErrorBody(BaseModel):
    """Every 4xx answer of the API: what went wrong, in words meant for a person, and for a
    refused value, which one (`errors`)."""

    detail: str
    errors: list[FieldError] | None = None


#: text a person writes: no control characters but tab, line feed and carriage return
PLAIN_TEXT = r"^[^\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]*$"


def _clean_reason(value: object) -> object:
    """Refuse what clean_text refuses, naming the field; the value itself is cleaned (and a
    blank one refused, 409) where the action is taken, as for the pages and the CLI."""
    if isinstance(value, str):
        try:
            clean_text(value, field="reason", max_length=REASON_MAX)
        except InvalidText as exc:
            raise ValueError(str(exc)) from exc
    return value


class ReasonBody(BaseModel):
    """An optional remark (submit, accept): plain text, at most REASON_MAX characters."""

    reason: str | None = Field(default=None, max_length=REASON_MAX, pattern=PLAIN_TEXT)

    _clean = field_validator("reason", mode="before")(_clean_reason)


class SubmitBody(ReasonBody):
    """A submission: an optional remark, and the date of the event the duty records
    (`records_event`: e.g. the day the meeting was held), required for such a duty."""

    # not bounded here: a date the duty does not take (in the future, before the period,
    # on a duty that records none) is refused by the engine's rule, 409 like any other
    occurred_on: date | None = Field(
        default=None,
        description="the day the event the duty records happened (YYYY-MM-DD): required "
        "when the task's records_event is set, refused otherwise (409); not in the future, "
        "not before the task's period starts",
    )


class RequiredReason(BaseModel):
    """The reason a rejection or a waiver needs: the institution and the auditors read it.
    Plain text, at most REASON_MAX characters; blank is refused when the action is tried."""

    reason: str = Field(min_length=1, max_length=REASON_MAX, pattern=PLAIN_TEXT)

    _clean = field_validator("reason", mode="before")(_clean_reason)


_ERROR_TEXT = {
    400: "a request duban cannot act on (named in `detail`)",
    401: "not signed in: no valid session cookie or bearer token",
    403: "signed in, but this role or organization may not do this",
    404: "no such task, evidence or duty (or not one you may see)",
    409: "the task's state does not allow this action now",
    413: "the upload is larger than the limit",
    415: "the file's content is not a kind of evidence duban accepts",
    422: "a parameter or a field is out of bounds or not of its type (named in `errors`)",
    503: "storage cannot be written just now; nothing was stored, retry later",
    507: "the evidence disk is full; nothing was stored",
}


def errors(*codes: int) -> dict[int | str, dict[str, object]]:
    """The OpenAPI `responses` of a route: each listed error status with the one error body.
    401 and 422 are always possible (every API route authenticates and validates)."""
    return {
        code: {"model": ErrorBody, "description": _ERROR_TEXT[code]}
        for code in sorted({401, 422, *codes})
    }
