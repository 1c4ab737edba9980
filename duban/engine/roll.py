"""`duban plan roll CODE --to YEAR`: next year's draft from the plan as the database holds it.

The draft starts from the text of the version applied: `plans.source_text`, stored by
`duban init` and `duban plan apply` since migration 0011. A plan applied before has its text
taken from its file (`plans.source_file`) only if that file is still the very version applied
(the same SHA-256); otherwise rolling is refused, saying how to store the text. The text is
rolled by duban.catalog.roll; nothing is written to the database.
"""

from __future__ import annotations

import hashlib
from datetime import date
from pathlib import Path

from sqlalchemy import select

from duban.catalog.roll import Rolled, roll_text
from duban.errors import NotFound, RollRefused
from duban.store.db import Store
from duban.store.models import Plan


def applied_text(store: Store, code: str) -> tuple[str, str, str | None]:
    """(text, where it came from, version) of plan `code` as applied."""
    with store.read() as session:
        plan = session.scalar(select(Plan).where(Plan.code == code))
        if plan is None:
            known = ", ".join(session.scalars(select(Plan.code).order_by(Plan.code)))
            raise NotFound("plan", code, f"the database holds: {known or 'no plan'}")
    if plan.source_text is not None:
        return plan.source_text, f"{code} as applied ({plan.source_file})", plan.file_sha256
    path = Path(plan.source_file)
    try:
        raw = path.read_bytes()
    except OSError:
        raw = b""
    if raw and hashlib.sha256(raw).hexdigest() == plan.file_sha256:
        return raw.decode("utf-8"), str(path), plan.file_sha256
    raise RollRefused(
        f"the database holds no text of plan {code} (applied before duban kept plan texts) and "
        f"{path} is {'not the version applied' if raw else 'not readable'} (SHA-256 "
        f"{(plan.file_sha256 or '?')[:12]}…): put that version back at {path} and roll again, "
        "or run `duban init` with it configured, which stores its text"
    )


def roll_plan(store: Store, code: str, *, to_year: int, today: date) -> Rolled:
    """Next year's draft of plan `code`, starting in `to_year` (duban.catalog.roll)."""
    text, source, version = applied_text(store, code)
    banner = (
        f"# 草稿：由 `duban plan roll {code} --to {to_year}` 于 {today.isoformat()} 自方案 {code}"
        f"（版本 {(version or '?')[:12]}）生成。\n"
        f"# Draft: rolled from plan {code} (version {(version or '?')[:12]}) to {to_year} on "
        f"{today.isoformat()}. The plan id, the window and the dated deadlines moved by the\n"
        "# year difference; duty ids are kept, so each duty continues last year's duty of the "
        "same id.\n"
        "# Confirm every line marked 待确认 / to confirm (document number, issue day, titles) "
        "and read each note,\n"
        "# then: duban plan check FILE; duban plan diff FILE; duban plan apply FILE. "
        "Remove these four lines.\n"
    )
    return roll_text(text, file=source, to_year=to_year, banner=banner)
