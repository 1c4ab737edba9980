"""Every error duban raises on purpose. The tree is the documentation.

DubanError
├── CalendarError                 working-day data
│   └── CalendarYearMissing       a date in a year the calendar does not cover
├── PlanError                     plan, organization or calendar files that do not validate
│   └── NoticeError               a holiday notice text (国务院办公厅 notice) not read completely
├── RollRefused                   `duban plan roll` cannot write next year's draft
├── StateError                    a task transition the state machine does not allow
├── NotFound                      an id that names nothing
├── InvalidText                   user-written text too long, or with characters refused
├── UploadError                   an evidence file refused: empty, of a kind not accepted
│   └── UploadTooLarge            … larger than the limit
├── StorageError                  a folder duban writes to is full or cannot be written
│   └── StorageFull               … because the disk is full
├── AccessError                   who is asking may not do this
│   ├── NotSignedIn               no valid session or token
│   ├── Denied                    the role or organization does not allow it
│   ├── BadCsrf                   a state-changing request without the session's CSRF token
│   └── AuthError                 sign-in refused: wrong name or password, or disabled
│       └── Throttled             … too many failed sign-ins; the password was not checked
├── StoreError                    the database cannot be reached
├── SchemaMismatch                the database's schema is not the one this duban works on
│   ├── NotInitialised            … there is no schema yet: run `duban init`
│   ├── SchemaBehind              … an older one: run `duban init` to upgrade it
│   └── SchemaAhead               … a newer one, written by a later release: upgrade duban
└── SchedulerBusy                 another scheduler (`duban run`, Prefect) holds the lease
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path


class DubanError(Exception):
    """Base of every error duban raises on purpose; its message is meant for the user."""


class CalendarError(DubanError):
    """Working-day data is missing or inconsistent."""


class CalendarYearMissing(CalendarError):
    """Raised when working-day arithmetic needs a year the calendar data does not cover.

    A weekday guess would silently move a legal deadline, so duban refuses instead.
    """

    def __init__(self, year: int, calendar_dir: str | Path | None = None) -> None:
        self.year = year
        where = (
            f"add {Path(calendar_dir) / f'{year}.yaml'} (the calendar_dir setting)"
            if calendar_dir
            else f"add {year}.yaml to a folder named by the calendar_dir setting "
            "(DUBAN_CALENDAR_DIR)"
        )
        super().__init__(
            f"the working-day calendar does not cover {year}: {where} with that year's "
            "official holidays and swapped workdays (国务院办公厅 notice; "
            "`duban calendar import NOTICE.txt` writes it), then retry"
        )


@dataclass(frozen=True, kw_only=True)
class Problem:
    """One thing wrong with an input file, located as precisely as the file allows."""

    file: str
    line: int | None
    field: str
    message: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file
        field = f" [{self.field}]" if self.field else ""
        return f"{where}{field}: {self.message}"


class PlanError(DubanError):
    """Raised when plan, organization or calendar files do not validate.

    It carries every problem found, not only the first, so a user fixes a file in one pass.
    Nothing from a load that raised this was written anywhere.
    """

    def __init__(self, problems: Sequence[Problem]) -> None:
        self.problems = tuple(problems)
        lines = "\n".join(f"  {p}" for p in self.problems)
        count = len(self.problems)
        noun = "problem" if count == 1 else "problems"
        super().__init__(f"{count} {noun}; nothing was loaded:\n{lines}")


class NoticeError(PlanError):
    """Raised when the text of a State Council holiday notice cannot be read completely.

    Each problem names the text's file and line and quotes the line as written
    ("FILE:LINE: could not read: <the line> — <why>"). No part of the year is returned: a
    calendar half read from its notice would move deadlines silently.
    """

    def __init__(self, problems: Sequence[Problem]) -> None:
        self.problems = tuple(problems)
        lines = "\n".join(f"  {p}" for p in self.problems)
        count = len(self.problems)
        noun = "problem" if count == 1 else "problems"
        # Not PlanError's wording, which speaks of loading files: here a text was read.
        DubanError.__init__(
            self,
            f"the notice text could not be read completely ({count} {noun}); "
            f"nothing was imported:\n{lines}",
        )


class RollRefused(DubanError):
    """Raised when `duban plan roll` cannot write next year's draft: the year does not move the
    plan, the applied text is neither stored nor on disk as applied, or the output file exists
    (without --force). The message says what to do; nothing was written."""


class StateError(DubanError):
    """Raised for a task transition the state machine does not allow."""


class NotFound(DubanError):
    """Raised when an id, code or name names nothing."""

    def __init__(self, what: str, key: object, hint: str = "") -> None:
        self.what = what
        self.key = key
        super().__init__(
            f"no {what} by the id of {key!r} was found" + (f"; {hint}" if hint else "")
        )


class InvalidText(DubanError):
    """Raised for text a person wrote (a reason, a note, a file name) that is longer than its
    cap or holds control characters or lone surrogates. Raised before anything is written."""

    def __init__(self, field: str, problem: str) -> None:
        self.field = field
        super().__init__(f"{field}: {problem}")


class StorageError(DubanError):
    """Raised when a folder duban writes to (evidence, mail) cannot be written: read-only,
    missing permissions, or gone. Transient: nothing was recorded; retry once it is fixed."""


class StorageFull(StorageError):
    """Raised when the disk holding a folder duban writes to is full."""


class UploadError(DubanError):
    """An upload refused: empty, of a kind not accepted, or misnamed. Nothing was stored."""


class UploadTooLarge(UploadError):
    """An upload larger than the configured limit (upload_max_mb per file)."""


class AccessError(DubanError):
    """Raised when who is asking may not do what they ask; the web answers 401/403/429."""


class NotSignedIn(AccessError):
    """No valid session or token: pages redirect to sign-in, the API answers 401."""


class Denied(AccessError):
    """Signed in, but the role or organization does not allow this: 403."""


class BadCsrf(AccessError):
    """A state-changing request without the session's CSRF token: 403."""


class AuthError(AccessError):
    """Sign-in refused: wrong name or password, or the account is disabled."""


class Throttled(AuthError):
    """Too many failed sign-ins for this name, address or device; the password was not
    checked. Answers 429."""


class StoreError(DubanError):
    """The database could not be reached (transient: the scheduler retries it)."""


class SchemaMismatch(DubanError):
    """Raised before anything is read or written when the database's schema (its Alembic
    revision) is not the one this release's code works on. Not transient: retrying cannot
    help, so the scheduler does not retry it (unlike StoreError)."""


class NotInitialised(SchemaMismatch):
    """The database holds no duban schema yet: `duban init` creates it."""


class SchemaBehind(SchemaMismatch):
    """The database was written by an earlier release: `duban init` upgrades it (under the
    scheduler lease, so no running scheduler of the old release sees it change)."""


class SchemaAhead(SchemaMismatch):
    """The database is at a revision this release does not know: a later release upgraded
    it, and this one must not write to it. Install the later release."""


class SchedulerBusy(DubanError):
    """Raised when another scheduler (`duban run`, Prefect flows, or a `duban init` at work)
    holds the lease on this database; nothing was changed."""
