"""Where messages go: an SMTP server (through yagmail) or a folder of .eml files.

SMTP replies are classified here, at the boundary: a 4xx reply or a dropped connection is
`TransientError` (retry later); a 5xx reply is `PermanentError` (this message failed, the
others go on). The password never appears in an error message or a log line.
"""

from __future__ import annotations

import hashlib
import smtplib
from dataclasses import dataclass
from email.message import Message
from pathlib import Path
from typing import Protocol
from urllib.parse import parse_qs, unquote, urlsplit

import yagmail

from duban.errors import DubanError

PERMANENT_FROM = 500
DEFAULT_PORTS = {"smtp": 25, "smtps": 465}


class DeliveryError(DubanError):
    """A message could not be handed over."""


class TransientError(DeliveryError):
    """Try again later (4xx reply, refused or dropped connection, timeout)."""


class PermanentError(DeliveryError):
    """The server refused this message for good (5xx reply)."""


@dataclass(frozen=True, kw_only=True)
class SmtpConfig:
    host: str
    port: int
    ssl: bool
    starttls: bool
    user: str | None
    password: str | None

    @classmethod
    def parse(cls, url: str) -> SmtpConfig:
        """`smtp://[user:pass@]host[:port][?starttls=true]` or `smtps://…` (implicit TLS)."""
        parts = urlsplit(url)
        if parts.scheme not in DEFAULT_PORTS or not parts.hostname:
            raise DubanError(
                "DUBAN_SMTP_URL must look like smtp://user:pass@host:587?starttls="
                "true, smtps://user:pass@host:465 or smtp://127.0.0.1:2525 "
                f"(got a URL with scheme {parts.scheme!r})"
            )
        query = parse_qs(parts.query)
        starttls = query.get("starttls", ["false"])[0].lower() in ("1", "true", "yes")
        return cls(
            host=parts.hostname,
            port=parts.port or DEFAULT_PORTS[parts.scheme],
            ssl=parts.scheme == "smtps",
            starttls=starttls,
            user=unquote(parts.username) if parts.username else None,
            password=unquote(parts.password) if parts.password else None,
        )

    def describe(self) -> str:
        who = f"{self.user}@" if self.user else ""
        mode = "TLS" if self.ssl else "STARTTLS" if self.starttls else "plain"
        return f"smtp {who}{self.host}:{self.port} ({mode})"


class Transport(Protocol):
    def send(self, message: Message) -> None: ...
    def close(self) -> None: ...
    def describe(self) -> str: ...


def _classify(exc: Exception) -> DeliveryError:
    answer: bytes | str
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        code, answer = next(iter(exc.recipients.values()))
    elif isinstance(exc, smtplib.SMTPResponseException):
        code, answer = exc.smtp_code, exc.smtp_error
    else:
        return TransientError(f"connection problem: {type(exc).__name__}: {exc}")
    text = answer.decode(errors="replace") if isinstance(answer, bytes) else str(answer)
    cls = PermanentError if code >= PERMANENT_FROM else TransientError
    return cls(f"{code} {text}")


class SmtpTransport:
    """One SMTP connection (opened by yagmail: TLS, STARTTLS, login or an open relay),
    reused for a batch of messages."""

    def __init__(self, config: SmtpConfig, mail_from: str) -> None:
        self.config = config
        self.mail_from = mail_from
        self._client: yagmail.SMTP | None = None

    def describe(self) -> str:
        return self.config.describe()

    def _connect(self) -> yagmail.SMTP:
        if self._client is None:
            client = yagmail.SMTP(
                user=self.config.user or self.mail_from,
                password=self.config.password,
                host=self.config.host,
                port=self.config.port,
                smtp_ssl=self.config.ssl,
                smtp_starttls=self.config.starttls,
                smtp_skip_login=self.config.user is None,
                soft_email_validation=False,
                timeout=30,
            )
            try:
                client.login()
            except (smtplib.SMTPException, OSError) as exc:
                raise _classify(exc) from None  # never chain: the cause may hold the password
            self._client = client
        return self._client

    def send(self, message: Message) -> None:
        client = self._connect()
        try:
            client.smtp.send_message(message, from_addr=self.mail_from)
        except (TimeoutError, smtplib.SMTPException, OSError) as exc:
            error = _classify(exc)
            if isinstance(error, TransientError) and not isinstance(
                exc, smtplib.SMTPResponseException | smtplib.SMTPRecipientsRefused
            ):
                self.close()  # the connection is gone; the next message reconnects
            raise error from None

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None


class EmlFolderTransport:
    """The embedded default: each message becomes `<folder>/<key-hash>.eml`, so a new user
    sees exactly what would be sent. Writing the same message twice overwrites it."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def describe(self) -> str:
        return f"eml files in {self.folder}"

    def send(self, message: Message) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        name = hashlib.sha256(str(message["Message-ID"]).encode()).hexdigest()[:24]
        tmp = self.folder / f".{name}.tmp"
        tmp.write_bytes(bytes(message))
        tmp.replace(self.folder / f"{name}.eml")

    def close(self) -> None:
        return None
