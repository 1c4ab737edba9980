"""Renders notifications from the Jinja2 templates in notifications/.

Each kind has `<kind>.subject.j2`, `<kind>.txt.j2` and `<kind>.html.j2`; the HTML is
autoescaped. Messages are bilingual: Chinese first, English second.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from email.header import Header
from email.message import Message
from email.mime.multipart import MIMEMultipart
from email.mime.text import MIMEText
from email.utils import formatdate
from functools import cache
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

from duban.resources import bundled

EVIDENCE_NAMES = {
    "minutes": ("会议纪要", "minutes"),
    "sign_in_sheet": ("签到表", "sign-in sheet"),
    "photos": ("照片", "photos"),
    "report": ("报告/总结", "report"),
    "plan": ("计划/方案", "plan"),
    "form": ("报表", "form"),
    "courseware": ("课件/培训材料", "courseware"),
    "review_record": ("评审记录", "review record"),
    "ledger": ("台账", "ledger"),
    "article_list": ("作品清单", "list of articles"),
    "document": ("制度/流程文件", "document"),
    "notice": ("通报", "notice"),
    "other": ("其他材料", "other material"),
    "note": ("说明", "note"),
}


def evidence_name(kind: str) -> str:
    zh, en = EVIDENCE_NAMES.get(kind, (kind, kind))
    return f"{zh} / {en}"


@dataclass(frozen=True, kw_only=True)
class Rendered:
    to: str
    subject: str
    text: str
    html: str
    kind: str
    key: str


@cache
def environment(folder: Path | None = None) -> Environment:
    env = Environment(
        loader=FileSystemLoader(str(folder or bundled("notifications"))),
        autoescape=select_autoescape(enabled_extensions=("html.j2",)),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters["evidence"] = evidence_name
    return env


def render(
    kind: str, context: dict[str, Any], *, to: str, key: str, folder: Path | None = None
) -> Rendered:
    env = environment(folder)
    subject = env.get_template(f"{kind}.subject.j2").render(context)
    return Rendered(
        to=to,
        subject=" ".join(subject.split()),
        kind=kind,
        key=key,
        text=env.get_template(f"{kind}.txt.j2").render(context),
        html=env.get_template(f"{kind}.html.j2").render(context),
    )


def message_id(key: str, mail_from: str) -> str:
    """Stable per outbox key: a resend after a crash carries the same Message-ID."""
    domain = mail_from.rsplit("@", 1)[-1] or "duban.invalid"
    return f"<{hashlib.sha256(key.encode()).hexdigest()[:32]}@{domain}>"


def to_email(rendered: Rendered, *, mail_from: str) -> Message:
    """A multipart/alternative message: the plain-text part first, then the HTML part.

    Built with the compat32 MIME classes, which are several times faster than EmailMessage's
    header registry; `Header` splits a long Chinese subject inside encoded words, so no space
    is lost when a client decodes it.
    """
    msg = MIMEMultipart("alternative")
    msg["From"] = mail_from
    msg["To"] = rendered.to
    msg["Subject"] = Header(rendered.subject, "utf-8")  # type: ignore[assignment]
    msg["Date"] = formatdate(localtime=False)
    msg["Message-ID"] = message_id(rendered.key, mail_from)
    msg["X-Duban-Kind"] = rendered.kind
    msg["X-Duban-Key"] = rendered.key
    msg.attach(MIMEText(rendered.text, "plain", "utf-8"))
    msg.attach(MIMEText(rendered.html, "html", "utf-8"))
    return msg
