"""A rendered notification as the bytes that go on the wire, written once.

`compose` writes the same message as `duban.notify.render.to_email` (multipart/alternative:
the plain-text part, then the HTML part, both UTF-8 in base64; the Subject in RFC 2047
encoded words; Message-ID derived from the outbox key) straight into its wire form (CRLF line
ends). It does not build MIME objects and then walk them with `email.generator`, which re-folds
every header through `email.header.Header`: delivery writes thousands of these a minute, and
that walk cost more than the SMTP exchange that follows. The result is still an
`email.message.Message`, with the headers a transport or a test reads.
"""

from __future__ import annotations

import base64
import secrets
from email.message import Message
from email.utils import formatdate
from typing import Any

from duban.notify.render import Rendered, message_id

CRLF = "\r\n"
WORD_BYTES = 42  # UTF-8 bytes per encoded word: "Subject: =?utf-8?b?…?=" stays under 78


class Composed(Message):
    """Headers as a `Message`, the body only in wire form (`bytes(msg)`, `msg.as_bytes()`)."""

    wire: bytes = b""

    def as_bytes(self, unixfrom: bool = False, policy: Any = None) -> bytes:
        return self.wire

    def __bytes__(self) -> bytes:
        return self.wire

    def as_string(self, unixfrom: bool = False, maxheaderlen: int = 0, policy: Any = None) -> str:
        return self.wire.decode("ascii")


def encoded_words(text: str) -> str:
    """An unstructured header value (RFC 2047 §5): ASCII as it is, anything else as base64
    encoded words of whole characters, one per folded line."""
    if text.isascii() and "\n" not in text and "\r" not in text:
        return text
    words: list[bytes] = []
    chunk = b""
    for char in text:
        data = char.encode()
        if len(chunk) + len(data) > WORD_BYTES:
            words.append(chunk)
            chunk = b""
        chunk += data
    words.append(chunk)
    return (CRLF + " ").join(f"=?utf-8?b?{base64.b64encode(w).decode()}?=" for w in words)


def _part(content_type: str, text: str) -> str:
    body = base64.encodebytes(text.encode()).decode().replace("\n", CRLF)
    return (
        f'Content-Type: {content_type}; charset="utf-8"{CRLF}'
        f"MIME-Version: 1.0{CRLF}"
        f"Content-Transfer-Encoding: base64{CRLF}{CRLF}{body}"
    )


def compose(rendered: Rendered, *, mail_from: str, kind: str | None = None) -> Composed:
    """The message for `rendered`, from `mail_from`; `kind` overrides its X-Duban-Kind."""
    for name, value in (("From", mail_from), ("To", rendered.to), ("X-Duban-Key", rendered.key)):
        if not value.isascii() or "\n" in value or "\r" in value:
            raise ValueError(f"the {name} header cannot hold {value!r}")
    boundary = f"=_duban_{secrets.token_hex(12)}"  # '_' never occurs in base64 bodies
    headers = [
        ("Content-Type", f'multipart/alternative;{CRLF} boundary="{boundary}"'),
        ("MIME-Version", "1.0"),
        ("From", mail_from),
        ("To", rendered.to),
        ("Subject", encoded_words(rendered.subject)),
        ("Date", formatdate(localtime=False)),
        ("Message-ID", message_id(rendered.key, mail_from)),
        ("X-Duban-Kind", kind or rendered.kind),
        ("X-Duban-Key", rendered.key),
    ]
    message = Composed()
    for name, value in headers:
        message[name] = value
    head = CRLF.join(f"{name}: {value}" for name, value in headers)
    message.wire = (
        f"{head}{CRLF}{CRLF}"
        f"--{boundary}{CRLF}{_part('text/plain', rendered.text)}{CRLF}"
        f"--{boundary}{CRLF}{_part('text/html', rendered.html)}{CRLF}"
        f"--{boundary}--{CRLF}"
    ).encode()
    return message


def wire_bytes(message: Message) -> bytes:
    """What goes on the wire for `message` (CRLF line ends)."""
    if isinstance(message, Composed):
        return message.wire
    return message.as_bytes(policy=message.policy.clone(linesep=CRLF))
