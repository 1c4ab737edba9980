"""SQLAlchemy 2 typed models: the only description of duban's tables.

Timestamps are stored in UTC (`UtcDateTime` refuses naive values and gives back aware ones on
both SQLite and PostgreSQL); dates that are calendar days in the plan's time zone (period
bounds, due dates) are stored as dates.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any, ClassVar

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    SmallInteger,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
    text,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

# Named constraints, so Alembic migrations behave the same on SQLite and PostgreSQL.
NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class UtcDateTime(TypeDecorator[datetime]):
    """An aware datetime stored as UTC; naive input is a programming error."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value.isoformat()} given; duban stores aware UTC")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


# Big integers on PostgreSQL, and INTEGER PRIMARY KEY (rowid) on SQLite.
BigId = BigInteger().with_variant(Integer(), "sqlite")


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map: ClassVar[dict[Any, Any]] = {
        datetime: UtcDateTime(),
        dict[str, Any]: JSON(),
    }


class Organization(Base):
    __tablename__ = "organizations"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    code: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    name_en: Mapped[str | None] = mapped_column(String(200))
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("organizations.id"))
    contacts: Mapped[dict[str, Any]] = mapped_column(default=dict)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    joined: Mapped[date | None] = mapped_column(Date)  # nothing due before it is owed


class OrgTag(Base):
    __tablename__ = "org_tags"

    org_id: Mapped[int] = mapped_column(ForeignKey("organizations.id"), primary_key=True)
    tag: Mapped[str] = mapped_column(String(64), primary_key=True)

    __table_args__ = (Index("ix_org_tags_tag", "tag", "org_id"),)


class Plan(Base):
    __tablename__ = "plans"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    code: Mapped[str] = mapped_column(String(64), unique=True)
    title: Mapped[str] = mapped_column(Text)
    document: Mapped[str] = mapped_column(String(200))
    valid_from: Mapped[date] = mapped_column(Date)
    valid_until: Mapped[date] = mapped_column(Date)
    source_file: Mapped[str] = mapped_column(Text)
    content_hash: Mapped[str] = mapped_column(String(64))
    events: Mapped[dict[str, Any]] = mapped_column(default=dict)
    loaded_at: Mapped[datetime]
    file_sha256: Mapped[str | None] = mapped_column(String(64))  # the version applied
    # the applied file's text, what `duban plan roll` starts from (migration 0011; None for a
    # version applied before it, until `duban init` meets the same file again)
    source_text: Mapped[str | None] = mapped_column(Text)
    # set by `duban plan withdraw` (its duties are inactive); cleared by `duban plan apply`
    withdrawn_at: Mapped[datetime | None]
    withdrawn_reason: Mapped[str | None] = mapped_column(Text)


class ObligationRow(Base):
    """A duty of one plan. A duty is its plan and its id (`code`): next year's plan may reuse
    this year's ids, each plan keeping its own rows, tasks and history (migration 0011)."""

    __tablename__ = "obligations"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    code: Mapped[str] = mapped_column(String(64), index=True)
    plan_id: Mapped[int] = mapped_column(ForeignKey("plans.id"))
    title: Mapped[str] = mapped_column(Text)
    event_kind: Mapped[str | None] = mapped_column(String(64))
    spec: Mapped[dict[str, Any]]
    content_hash: Mapped[str] = mapped_column(String(64))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    # who receives and reviews submissions (the plan's submit_to); None: the administrators
    receiver_org_id: Mapped[int | None] = mapped_column(ForeignKey("organizations.id"))
    # set by `duban plan apply`: periods due before the day a version was applied are not
    # created under it (None: owed from adoption on)
    effective_from: Mapped[date | None] = mapped_column(Date)

    __table_args__ = (UniqueConstraint("plan_id", "code", name="uq_obligations_plan_id_code"),)


class ObligationVersion(Base):
    """Every version of an obligation's spec that was ever stored: a task names the one it
    was created under (`tasks.spec_hash`), so an amendment never rewrites its rule."""

    __tablename__ = "obligation_versions"

    obligation_id: Mapped[int] = mapped_column(ForeignKey("obligations.id"), primary_key=True)
    content_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    spec: Mapped[dict[str, Any]]
    plan_version: Mapped[str | None] = mapped_column(String(64))
    stored_at: Mapped[datetime]


class Event(Base):
    """Something that happened and starts a deadline chain (e.g. a maternal death)."""

    __tablename__ = "events"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    kind: Mapped[str] = mapped_column(String(64))
    org_id: Mapped[int] = mapped_column(ForeignKey("organizations.id"))
    occurred_on: Mapped[date] = mapped_column(Date)
    note: Mapped[str | None] = mapped_column(Text)
    recorded_by: Mapped[str] = mapped_column(String(100))
    recorded_at: Mapped[datetime]


class Task(Base):
    """One obligation × one organization × one period (or event). Never deleted."""

    __tablename__ = "tasks"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    obligation_id: Mapped[int] = mapped_column(ForeignKey("obligations.id"))
    org_id: Mapped[int] = mapped_column(ForeignKey("organizations.id"))
    period_key: Mapped[str] = mapped_column(String(32))
    period_start: Mapped[date] = mapped_column(Date)
    period_end: Mapped[date] = mapped_column(Date)
    due_date: Mapped[date] = mapped_column(Date)
    due_at: Mapped[datetime]
    opens_at: Mapped[datetime]
    state: Mapped[str] = mapped_column(String(16), default="open")
    event_id: Mapped[int | None] = mapped_column(ForeignKey("events.id"))
    submitted_at: Mapped[datetime | None]
    first_submitted_at: Mapped[datetime | None]
    reviewed_at: Mapped[datetime | None]
    reason: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    plan_version: Mapped[str | None] = mapped_column(String(64))  # the plan file's SHA-256
    spec_hash: Mapped[str | None] = mapped_column(String(64))  # its obligation_versions row

    __table_args__ = (
        UniqueConstraint("obligation_id", "org_id", "period_key", name="uq_tasks_key"),
        Index("ix_tasks_state_due", "state", "due_at"),
        Index("ix_tasks_org_due", "org_id", "due_at"),
        Index("ix_tasks_obligation_due", "obligation_id", "due_date"),
        # the overdue board: owed tasks, oldest due first, a page at a time
        Index(
            "ix_tasks_pending_due",
            "due_at",
            "id",
            postgresql_where=text("state IN ('open', 'rejected')"),
            sqlite_where=text("state IN ('open', 'rejected')"),
        ),
        # the board filtered by duty
        Index(
            "ix_tasks_pending_obligation_due",
            "obligation_id",
            "due_at",
            "id",
            postgresql_where=text("state IN ('open', 'rejected')"),
            sqlite_where=text("state IN ('open', 'rejected')"),
        ),
        # the completion history: newest due first, a page at a time
        Index("ix_tasks_due", "due_date", "id"),
        # the home pages and the circular: owed tasks counted by due day, institution and
        # duty from the index alone (migration 0008)
        Index(
            "ix_tasks_pending_due_org",
            "due_at",
            "due_date",
            "org_id",
            "obligation_id",
            postgresql_where=text("state IN ('open', 'rejected')"),
            sqlite_where=text("state IN ('open', 'rejected')"),
        ),
    )


class Evidence(Base):
    """A file or note attached to a task; content is stored elsewhere under its SHA-256."""

    __tablename__ = "evidence"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    task_id: Mapped[int] = mapped_column(ForeignKey("tasks.id"), index=True)
    kind: Mapped[str] = mapped_column(String(32))
    sha256: Mapped[str | None] = mapped_column(String(64))
    filename: Mapped[str | None] = mapped_column(String(255))
    media_type: Mapped[str | None] = mapped_column(String(100))
    size: Mapped[int | None] = mapped_column(BigInteger)
    note: Mapped[str | None] = mapped_column(Text)
    uploaded_by: Mapped[str] = mapped_column(String(100))
    uploaded_at: Mapped[datetime]


class AuditEvent(Base):
    """Append-only; each row carries the hash of the one before it (see duban.store.audit)."""

    __tablename__ = "audit_events"

    seq: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=False)
    at: Mapped[datetime]
    actor: Mapped[str] = mapped_column(String(100))
    action: Mapped[str] = mapped_column(String(64))
    entity: Mapped[str] = mapped_column(String(32))
    entity_id: Mapped[str] = mapped_column(String(64))
    payload: Mapped[str] = mapped_column(Text)  # canonical JSON, hashed as stored
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64), unique=True)

    __table_args__ = (Index("ix_audit_entity", "entity", "entity_id"),)


class Materialization(Base):
    """Marks an obligation-period as fully materialized for one roster of organizations.

    Written in the same transaction as the tasks it records, so it never claims more than
    exists; a changed plan or roster changes the fingerprint and the period is re-checked.
    """

    __tablename__ = "materializations"

    obligation_id: Mapped[int] = mapped_column(ForeignKey("obligations.id"), primary_key=True)
    period_key: Mapped[str] = mapped_column(String(32), primary_key=True)
    fingerprint: Mapped[str] = mapped_column(String(64))
    tasks_created: Mapped[int] = mapped_column(BigInteger)
    at: Mapped[datetime]


class Meta(Base):
    __tablename__ = "meta"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(Text)


class SchedulerLease(Base):
    """Who may run the scheduler on this database, until when (renewed while alive)."""

    __tablename__ = "scheduler_lease"

    name: Mapped[str] = mapped_column(String(32), primary_key=True)
    holder: Mapped[str] = mapped_column(String(200))
    expires_at: Mapped[datetime]


class OrgContact(Base):
    """A role contact of an organization (duty, head), kept relational for set-based sweeps."""

    __tablename__ = "org_contacts"

    org_id: Mapped[int] = mapped_column(ForeignKey("organizations.id"), primary_key=True)
    role: Mapped[str] = mapped_column(String(16), primary_key=True)
    email: Mapped[str] = mapped_column(String(254))
    label: Mapped[str] = mapped_column(String(100))


class LadderMark(Base):
    """One ladder step reached for one task and one recipient: the step is never repeated.

    `day` is the local day the sweep reached it; the outbox turns a day's marks into messages,
    reading them by (day, kind). Marks are only ever inserted by selecting from tasks, and a
    trigger refuses to delete a task (migration 0005), so `task_id` names a task without a
    foreign key, whose per-row check made a catch-up sweep 1.5 times slower on PostgreSQL.
    """

    __tablename__ = "ladder_marks"

    task_id: Mapped[int] = mapped_column(BigId, primary_key=True)
    step: Mapped[str] = mapped_column(String(48), primary_key=True)
    recipient: Mapped[str] = mapped_column(String(254), primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))  # reminder | overdue | escalation
    day: Mapped[date] = mapped_column(Date)

    __table_args__ = (Index("ix_ladder_marks_day_kind", "day", "kind", "recipient"),)


class Outbox(Base):
    """Every message to send, unique on its key; never deleted. Rendered at delivery."""

    __tablename__ = "outbox"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    key: Mapped[str] = mapped_column(String(400), unique=True)
    kind: Mapped[str] = mapped_column(String(16))
    recipient: Mapped[str] = mapped_column(String(254))
    day: Mapped[date] = mapped_column(Date)
    task_id: Mapped[int | None] = mapped_column(ForeignKey("tasks.id"))
    step: Mapped[str | None] = mapped_column(String(48))
    state: Mapped[str] = mapped_column(String(16), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime]
    claimed_at: Mapped[datetime | None]
    last_error: Mapped[str | None] = mapped_column(Text)
    subject: Mapped[str | None] = mapped_column(Text)
    message_id: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[datetime]
    sent_at: Mapped[datetime | None]

    __table_args__ = (Index("ix_outbox_state_next", "state", "next_attempt_at"),)


class RecipientPref(Base):
    __tablename__ = "recipient_prefs"

    email: Mapped[str] = mapped_column(String(254), primary_key=True)
    digest_only: Mapped[bool] = mapped_column(Boolean, default=False)


class FeedToken(Base):
    """The unguessable token of an organization's iCalendar feed URL."""

    __tablename__ = "feed_tokens"

    org_id: Mapped[int] = mapped_column(ForeignKey("organizations.id"), primary_key=True)
    token: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime]


class User(Base):
    """A person who signs in to the web UI or the API. Never deleted: disabled instead."""

    __tablename__ = "users"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    role: Mapped[str] = mapped_column(String(16))  # admin | institution | auditor
    org_id: Mapped[int | None] = mapped_column(ForeignKey("organizations.id"))
    password_hash: Mapped[str | None] = mapped_column(String(200))  # argon2id; None: no sign-in
    disabled: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime]


class WebSession(Base):
    """A signed-in browser. The cookie holds a random token; only its SHA-256 is stored."""

    __tablename__ = "web_sessions"

    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    csrf: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime]
    expires_at: Mapped[datetime]


class ApiToken(Base):
    """A personal API token (`Authorization: Bearer …`), stored as its SHA-256; revocable."""

    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    label: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[datetime]
    revoked_at: Mapped[datetime | None]


class LoginCounter(Base):
    """Failed sign-ins counted per key within a window: a (name, address) pair, an address, a
    name from unknown devices, or one known device. Incremented atomically *before* the
    password is checked (INSERT … ON CONFLICT DO UPDATE … RETURNING), so parallel guesses count.
    """

    __tablename__ = "login_counters"

    key: Mapped[str] = mapped_column(String(200), primary_key=True)
    window_start: Mapped[datetime]
    failures: Mapped[int] = mapped_column(Integer)


class KnownDevice(Base):
    """A browser that signed in to an account before (OWASP's device cookie): while an account
    is locked against unknown clients, the right password from a known device still signs in.
    Only the SHA-256 of the cookie is stored."""

    __tablename__ = "known_devices"

    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    created_at: Mapped[datetime]
    last_seen_at: Mapped[datetime]


class TallyDutyDay(Base):
    """Tasks counted per duty, due day, state and lateness (false unless delivered): the
    county's on-time rates and what it owes, by day, month and quarter, without reading a
    million tasks. Tasks born open are added by the INSERT that creates them (materialize);
    every later change by triggers on `tasks` (migrations 0008, 0009), whoever makes it."""

    __tablename__ = "tally_duty_day"

    due_date: Mapped[date] = mapped_column(Date, primary_key=True)
    obligation_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    state: Mapped[str] = mapped_column(String(16), primary_key=True)
    late: Mapped[bool] = mapped_column(Boolean, primary_key=True)
    n: Mapped[int] = mapped_column(BigInteger)


class TallyOrgMonth(Base):
    """Delivered tasks counted per due month, plan, institution, state and lateness: each
    institution's on-time rate for a quarter or a year from a few rows per institution.
    Kept by the same triggers as TallyDutyDay."""

    __tablename__ = "tally_org_month"

    month: Mapped[date] = mapped_column(Date, primary_key=True)  # the first day of the month
    plan_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    org_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    state: Mapped[str] = mapped_column(String(16), primary_key=True)
    late: Mapped[bool] = mapped_column(Boolean, primary_key=True)
    n: Mapped[int] = mapped_column(BigInteger)


class TallyOrgQuarter(Base):
    """Delivered tasks on time and late per quarter, plan and institution, one row each: the
    ranking of every institution by on-time rate reads one row per institution and plan.
    Kept by the same triggers as TallyDutyDay (migration 0009)."""

    __tablename__ = "tally_org_quarter"

    quarter: Mapped[date] = mapped_column(Date, primary_key=True)  # its first day
    plan_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    org_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    on_time: Mapped[int] = mapped_column(Integer)  # sums of int4 stay integers on PostgreSQL
    late: Mapped[int] = mapped_column(Integer)


class ChangeMark(Base):
    """One row, counting the commits that changed what the administrator's home is computed
    from: tasks (and so the tallies), institutions, their tags, plans and duties. A page kept
    per database snapshot (duban.engine.snapshots) is keyed by it, so a commit that changes
    none of them (a note, an upload, a mail delivered, a sign-in) keeps the page.

    On PostgreSQL, deferred triggers add one at the commit of any transaction that changed
    those tables (migration 0010); materialize, which inserts tasks without a per-row
    trigger, adds one itself as the last statement of each transaction. Either way the row
    is locked only while its transaction commits, so writers are not held up; and since
    each such commit adds one, two snapshots reading the same count see the same tasks."""

    __tablename__ = "change_marks"

    id: Mapped[int] = mapped_column(SmallInteger, primary_key=True)
    n: Mapped[int] = mapped_column(BigInteger)
