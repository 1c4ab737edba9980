"""What a person does to a task through the web (pages and API alike): act on it, or add
evidence. Each checks the engine's permission rules (duban.engine.permissions) against the
task as the principal may see it, then calls the engine's action."""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path
from typing import Any

from starlette.datastructures import UploadFile

from duban.bootstrap import App
from duban.domain.tasks import Action
from duban.engine import actions, evidence, permissions, read
from duban.engine.users import Principal
from duban.errors import Denied, DubanError, StateError, UploadTooLarge

MAX_FILES = 10
KIND_MAX = 32  # an evidence kind's code
SLACK_BYTES = 1024 * 1024  # multipart framing and form fields beside the files


def act(
    app: App,
    who: Principal,
    task_id: int,
    action: Action,
    reason: str | None,
    now: datetime,
    occurred_on: date | None = None,
) -> str:
    """Apply `action` if the rules let `who` do it; returns the task's new state. A
    submission carries `occurred_on` when the duty records an event (duban.engine.reported)."""
    task = read.task_detail(
        app.store, who, task_id, now=now, tz=app.settings.tz, calendar=app.calendar
    )
    if action is Action.SUBMIT:
        if not permissions.may_submit(who, org_id=task["org_id"]):
            raise Denied("only the institution (or an administrator) submits")
    elif action is Action.WAIVE:
        if not permissions.may_waive(who):
            raise Denied("only an administrator waives")
    elif not permissions.may_review(who, receiver_org_id=task["receiver_org_id"]):
        raise Denied("only an administrator or the receiving institution reviews")
    if action is Action.SUBMIT:
        return actions.submit(
            app.store,
            task_id=task_id,
            actor=who.actor,
            now=now,
            tz=app.settings.tz,
            calendar=app.calendar,
            reason=reason or None,
            occurred_on=occurred_on,
        ).state.value
    return actions.transition(
        app.store,
        task_id=task_id,
        action=action,
        actor=who.actor,
        now=now,
        reason=reason or None,
        occurred_on=occurred_on,
    ).value


def form_date(value: object, label: str) -> date | None:
    """A date a page's form carries (`<input type=date>`: YYYY-MM-DD), empty meaning none."""
    text = str(value or "").strip()
    if not text:
        return None
    try:
        if len(text) != len("2022-06-30"):
            raise ValueError(text)
        return date.fromisoformat(text)
    except ValueError:
        raise DubanError(f"{label}: {text[:20]!r} is not a date; use YYYY-MM-DD") from None


def check_length(app: App, content_length: str | None) -> None:
    """Refuse an upload by its Content-Length before reading a byte of it."""
    length = content_length or ""
    if not (length.isascii() and length.isdigit() and len(length) <= 15):
        raise DubanError("uploads need a Content-Length (a whole number of bytes)")
    if int(length) > max_bytes(app) * MAX_FILES + SLACK_BYTES:
        raise UploadTooLarge(
            f"the upload is larger than {app.settings.upload_max_mb} MiB per file allows"
        )


def max_bytes(app: App) -> int:
    return app.settings.upload_max_mb * 1024 * 1024


def has_upload(form: Any) -> bool:
    """Does the form carry at least one file or a written note?"""
    note = form.get("note")
    return bool(_files(form)) or (isinstance(note, str) and bool(note.strip()))


def _files(form: Any) -> list[UploadFile]:
    return [f for f in form.getlist("files") if isinstance(f, UploadFile) and f.filename]


def upload(
    app: App, who: Principal, task_id: int, form: Any, now: datetime
) -> list[evidence.Stored]:
    """Store the form's files (and its note) as evidence of the task, if `who` may add them
    now: the task open or rejected, the kind one the duty asks for (or `other`)."""
    task = read.task_detail(
        app.store, who, task_id, now=now, tz=app.settings.tz, calendar=app.calendar
    )
    if not permissions.may_add_evidence(who, org_id=task["org_id"]):
        raise Denied("only the institution (or an administrator) adds evidence")
    if task["state"] not in ("open", "rejected"):
        raise StateError(
            f"task {task_id} is {task['state']}: evidence is added while a task is open or rejected"
        )
    kind = str(form.get("kind") or "other")[:KIND_MAX]
    if kind not in {*task["required"], "other"}:
        raise StateError(
            f"evidence kind {kind!r} is not one this duty asks for; send one of "
            f"{', '.join([*task['required'], 'other'])}"
        )
    files = _files(form)
    if len(files) > MAX_FILES:
        raise DubanError(f"at most {MAX_FILES} files at once")
    folder = Path(app.settings.evidence_dir).resolve()
    stored = [
        evidence.store_upload(
            app.store,
            folder=folder,
            task_id=task_id,
            filename=item.filename or "upload",
            stream=item.file,
            max_bytes=max_bytes(app),
            actor=who.actor,
            now=now,
            kind=kind,
        )
        for item in files
    ]
    note = str(form.get("note") or "").strip()
    if note:
        actions.add_note(app.store, task_id=task_id, note=note, actor=who.actor, now=now)
    return stored
