"""The schema of plan files (obligations/*.yaml) and organization files, in pydantic.

Every model forbids unknown fields, so a misspelt key is an error that names its line,
never a silently ignored setting.
"""

from __future__ import annotations

import re
from datetime import date
from enum import StrEnum
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from duban.domain.due import month_day_problem

CODE = r"^[a-z0-9][a-z0-9-]*$"
CODE_RE = re.compile(CODE)


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True, frozen=True)


class EvidenceKind(StrEnum):
    """What an institution uploads to show a duty was done."""

    MINUTES = "minutes"  # 会议纪要
    SIGN_IN_SHEET = "sign_in_sheet"  # 签到表
    PHOTOS = "photos"  # 照片
    REPORT = "report"  # 报告、总结
    PLAN = "plan"  # 计划、方案
    FORM = "form"  # 报表
    COURSEWARE = "courseware"  # 课件、培训材料
    REVIEW_RECORD = "review_record"  # 评审记录
    LEDGER = "ledger"  # 台账
    ARTICLE_LIST = "article_list"  # 作品清单、链接
    DOCUMENT = "document"  # 制度、流程文件
    NOTICE = "notice"  # 通报
    OTHER = "other"


# --- recurrence -------------------------------------------------------------------------


class Monthly(Strict):
    kind: Literal["monthly"]


class Bimonthly(Strict):
    kind: Literal["bimonthly"]


class Quarterly(Strict):
    kind: Literal["quarterly"]


class HalfYearly(Strict):
    kind: Literal["half_yearly"]


class Yearly(Strict):
    kind: Literal["yearly"]


class RRule(Strict):
    """Any RFC 5545 recurrence, e.g. `FREQ=MONTHLY;INTERVAL=2;BYMONTHDAY=1`."""

    kind: Literal["rrule"]
    rule: str
    dtstart: date | None = None  # defaults to the validity window's start


class Once(Strict):
    kind: Literal["once"]


class OnEvent(Strict):
    kind: Literal["event"]
    event: str = Field(pattern=CODE)


RecurrenceSpec = Annotated[
    Monthly | Bimonthly | Quarterly | HalfYearly | Yearly | RRule | Once | OnEvent,
    Field(discriminator="kind"),
]


# --- due rules --------------------------------------------------------------------------


class Shift(StrEnum):
    NONE = "none"
    NEXT_WORKING_DAY = "next_working_day"


class DueBase(Strict):
    shift: Shift = Shift.NONE


class EndOfPeriodSpec(DueBase):
    kind: Literal["end_of_period"]


class EndOfQuarterSpec(DueBase):
    kind: Literal["end_of_quarter"]


class EndOfFirstMonthSpec(DueBase):
    kind: Literal["end_of_first_month"]


class DayOfNextMonthSpec(DueBase):
    kind: Literal["day_of_next_month"]
    day: int = Field(ge=1, le=28)


class DateSpec(DueBase):
    kind: Literal["date"]
    on: date


class MonthDaySpec(DueBase):
    """Every year on month-day ("每年6月30日前" → month: 6, day: 30); see due.MonthDay."""

    kind: Literal["month_day"]
    month: int = Field(ge=1, le=12)
    day: int = Field(ge=1, le=31)

    @model_validator(mode="after")
    def _every_year(self) -> MonthDaySpec:
        problem = month_day_problem(self.month, self.day)
        if problem is not None:
            raise ValueError(problem)
        return self


class WorkingDaysAfterSpec(DueBase):
    kind: Literal["working_days_after"]
    days: int = Field(ge=1, le=366)


class DaysAfterSpec(DueBase):
    kind: Literal["days_after"]
    days: int = Field(ge=0, le=3660)


class MonthsAfterSpec(DueBase):
    kind: Literal["months_after"]
    months: int = Field(ge=1, le=120)


DueSpec = Annotated[
    EndOfPeriodSpec
    | EndOfQuarterSpec
    | EndOfFirstMonthSpec
    | DayOfNextMonthSpec
    | DateSpec
    | MonthDaySpec
    | WorkingDaysAfterSpec
    | DaysAfterSpec
    | MonthsAfterSpec,
    Field(discriminator="kind"),
]
EVENT_DUE_KINDS = frozenset({"working_days_after", "days_after", "months_after"})


# --- people to tell ---------------------------------------------------------------------


class Notify(StrEnum):
    DUTY = "duty"  # the institution's duty contact
    HEAD = "head"  # the institution's head
    PARENT = "parent"  # the parent organization's duty contact
    COUNTY_OFFICE = "county-office"  # every organization tagged county-office
    MCH_SECTION = "mch-section"  # every organization tagged mch-section (妇幼健康股)


class Reminders(Strict):
    before_working_days: list[Annotated[int, Field(ge=0, le=60)]] = [7, 1, 0]
    to: Notify = Notify.DUTY


class EscalationStep(Strict):
    after_working_days: int = Field(ge=1, le=250)
    notify: Notify


DEFAULT_ESCALATION = (
    EscalationStep(after_working_days=1, notify=Notify.HEAD),
    EscalationStep(after_working_days=5, notify=Notify.COUNTY_OFFICE),
    EscalationStep(after_working_days=15, notify=Notify.COUNTY_OFFICE),
)


# --- obligations and plans --------------------------------------------------------------


class Window(Strict):
    start: date = Field(alias="from")
    until: date

    @model_validator(mode="after")
    def _ordered(self) -> Window:
        if self.until < self.start:
            raise ValueError(f"'until' ({self.until}) is before 'from' ({self.start})")
        return self


class Source(Strict):
    clause: str = Field(min_length=1)  # e.g. 二（四）7
    quote: str = Field(min_length=1)  # the words that create the duty
    document: str | None = None  # defaults to the plan's document number


class SelectorSpec(Strict):
    """One of: `tags` (organizations carrying all of them), `org`, or `event_org: true`.

    With `tags`, `except_tags` leaves out organizations carrying any of those tags (e.g. the
    MCH hospital, which hosts the centre a report goes to, does not report to itself).
    """

    tags: list[str] | None = None
    except_tags: list[str] = []
    org: str | None = None
    event_org: bool = False

    @model_validator(mode="after")
    def _one(self) -> SelectorSpec:
        given = sum([bool(self.tags), self.org is not None, self.event_org])
        if given != 1:
            raise ValueError("give exactly one of tags, org or event_org")
        if self.except_tags and not self.tags:
            raise ValueError("except_tags narrows a tags selector; give tags too")
        return self


class Target(Strict):
    """A number the text sets for the duty (e.g. 不少于30篇 a year): shown on every task."""

    count: int = Field(ge=1)
    unit: str  # e.g. 篇, 次
    per: str | None = None  # e.g. 方案年度 (the plan year)


class Rhythm(StrEnum):
    """Where the duty's rhythm comes from."""

    TEXT = "text"  # the text fixes it (每季度, 每月5号前, a date, a deadline after an event)
    CHOSEN = "chosen"  # the text has none; chosen so a continuous duty can be checked


class Score(Strict):
    """The obligation's share of the Annex 5 quarterly self-assessment sheet."""

    item: int = Field(ge=1)  # the row number (序号) in Annex 5
    points: float = Field(gt=0)
    criterion: str = Field(min_length=1)  # the 自评依据 words this obligation evidences


class FormSpec(Strict):
    """A blank form the plan attaches to the duty (e.g. Annex 4), which duban offers as XLSX.

    The header may name {org}, {year} and {month}: blank on the template, filled in when an
    institution downloads the form from one of its tasks.
    """

    title: str = Field(min_length=1)
    header: str | None = None
    columns: list[str] = Field(min_length=1, max_length=60)
    rows: int = Field(default=20, ge=1, le=500)
    footer: list[str] = []

    @model_validator(mode="after")
    def _known_fields(self) -> FormSpec:
        if self.header is not None:
            try:
                self.header.format(org="", year="", month="")
            except (KeyError, IndexError, ValueError) as exc:
                raise ValueError(
                    f"the header may name only {{org}}, {{year}} and {{month}} ({exc!r})"
                ) from exc
        return self


class RecordsEvent(Strict):
    """The duty's submission records an event: the institution enters its date (the day the
    meeting was held) and duban records the event for that institution, which starts the
    duties counted from it (`recurrence: {kind: event, event: KIND}`)."""

    kind: str = Field(pattern=CODE)  # an event kind declared under the plan's `events:`
    label: str = Field(min_length=1, max_length=100)  # the date field's label, Chinese first
    label_en: str | None = Field(default=None, max_length=100)


class ObligationSpec(Strict):
    id: str = Field(pattern=CODE)
    title: str = Field(min_length=1)
    title_en: str | None = None
    source: Source
    responsible: list[SelectorSpec] = Field(min_length=1)
    recurrence: RecurrenceSpec
    due: DueSpec
    evidence: list[EvidenceKind] = Field(min_length=1)
    target: Target | None = None
    valid: Window | None = None  # defaults to the plan's window
    reminders: Reminders | None = None  # defaults to the plan's defaults
    escalation: list[EscalationStep] | None = None
    score: list[Score] = []
    form: FormSpec | None = None  # a blank form the plan gives for the duty
    # the organization the text says receives the submission; its users review it
    submit_to: str | None = Field(default=None, pattern=CODE)
    rhythm: Rhythm | None = None  # whether the text fixes the rhythm or it was chosen
    # submitting a task of this duty records this event, on the date the institution enters
    records_event: RecordsEvent | None = None
    # for county staff, Chinese first: what the evidence must show, how the deadline was read
    note: str | None = None

    @model_validator(mode="after")
    def _due_fits_recurrence(self) -> ObligationSpec:
        is_event = self.recurrence.kind == "event"
        if is_event != (self.due.kind in EVENT_DUE_KINDS):
            if is_event:
                raise ValueError(
                    f"an event duty needs a due rule counted from the event "
                    f"({', '.join(sorted(EVENT_DUE_KINDS))}), not {self.due.kind}"
                )
            raise ValueError(
                f"due rule {self.due.kind} counts from an event; use it with recurrence kind: event"
            )
        if self.recurrence.kind == "once" and self.due.kind != "date":
            raise ValueError("a one-off duty (recurrence kind: once) needs due kind: date")
        if (
            self.records_event is not None
            and is_event
            and (self.records_event.kind == getattr(self.recurrence, "event", None))
        ):
            raise ValueError(
                "a duty cannot record the event it is counted from "
                f"({self.records_event.kind}): each submission would start the duty again"
            )
        if any(s.event_org for s in self.responsible) and not is_event:
            raise ValueError("event_org only makes sense for recurrence kind: event")
        return self


class Defaults(Strict):
    reminders: Reminders = Reminders()
    escalation: list[EscalationStep] = list(DEFAULT_ESCALATION)


class EventKind(Strict):
    title: str
    title_en: str | None = None


class PlanHeader(Strict):
    id: str = Field(pattern=CODE)
    title: str
    title_en: str | None = None
    document: str  # 文号, e.g. 信卫健字〔2022〕41号
    issuer: str
    issued: date
    valid: Window
    timezone: str = "Asia/Shanghai"


class PlanFile(Strict):
    plan: PlanHeader
    defaults: Defaults = Defaults()
    events: dict[str, EventKind] = {}
    obligations: list[ObligationSpec] = Field(min_length=1)

    @field_validator("events")
    @classmethod
    def _event_codes(cls, value: dict[str, EventKind]) -> dict[str, EventKind]:
        for code in value:
            if not CODE_RE.match(code):
                raise ValueError(f"event kind {code!r} must be lower-case letters, digits, '-'")
        return value


# --- organizations ----------------------------------------------------------------------


class Contact(Strict):
    role: str  # a role, never a person's name
    email: str = Field(pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


class OrgSpec(Strict):
    id: str = Field(pattern=CODE)
    name: str
    name_en: str | None = None
    parent: str | None = None
    tags: list[str] = []
    contacts: dict[Literal["duty", "head"], Contact] = {}
    # the day the organization started using duban: nothing that fell due before it is owed
    joined: date | None = None


class OrgFile(Strict):
    region: str  # e.g. 江西省赣州市信丰县
    tags: dict[str, str]  # the tag vocabulary: tag → what it means
    organizations: list[OrgSpec] = Field(min_length=1)
