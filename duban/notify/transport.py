"""Where messages go: an SMTP server (through yagmail) or a folder of .eml files.

Outcomes are classified here, at the boundary:
- `TransientError`: this message may go later (a 4xx reply, a connection dropped mid-message);
- `Unavailable` (a `TransientError`): nothing can go now (the server cannot be reached, the
  login is refused, the mail folder is full or read-only); the whole batch waits;
- `PermanentError`: the server refused this message for good (5xx reply); the others go on.
The password never appears in an error message or a log line.

Every connection is closed by the code that opened it, on every path (sent, refused, login
refused): an unclosed yagmail client says QUIT from its `__del__`, that is at whatever moment
and in whatever thread the garbage collector runs, and waits there for the server's answer.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import smtplib
from dataclasses import dataclass
from email.message import Message
from pathlib import Path
from typing import Protocol
from urllib.parse import parse_qs, unquote, urlsplit

import yagmail

from duban.errors import DubanError
from duban.notify.wire import wire_bytes

PERMANENT_FROM = 500
DEFAULT_PORTS = {"smtp": 25, "smtps": 465}
TIMEOUT_SECONDS = 30  # each socket operation; a server slower than this is a dropped connection
CLOSE_TIMEOUT_SECONDS = 5  # QUIT is a courtesy: never wait long for its answer


class DeliveryError(DubanError):
    """A message could not be handed over."""


class TransientError(DeliveryError):
    """Try this message again later (4xx reply, connection dropped mid-message, timeout)."""


class Unavailable(TransientError):
    """Nothing can be handed over now (server unreachable, login refused, mail folder full or
    read-only): every message of the batch is retried later, counted toward the give-up."""


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


def _answer(exc: smtplib.SMTPException) -> tuple[int, str] | None:
    answer: bytes | str
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        code, answer = next(iter(exc.recipients.values()))
    elif isinstance(exc, smtplib.SMTPResponseException):
        code, answer = exc.smtp_code, exc.smtp_error
    else:
        return None
    text = answer.decode(errors="replace") if isinstance(answer, bytes) else str(answer)
    return code, text


def _classify(exc: Exception) -> DeliveryError:
    """A reply to one message: 5xx permanent, 4xx transient; anything else a dropped link."""
    answer = _answer(exc) if isinstance(exc, smtplib.SMTPException) else None
    if answer is None:
        return TransientError(f"connection problem: {type(exc).__name__}: {exc}")
    code, text = answer
    cls = PermanentError if code >= PERMANENT_FROM else TransientError
    return cls(f"{code} {text}")


def _unavailable(where: str, exc: Exception) -> Unavailable:
    answer = _answer(exc) if isinstance(exc, smtplib.SMTPException) else None
    said = f"{answer[0]} {answer[1]}" if answer else f"{type(exc).__name__}: {exc}"
    login = isinstance(exc, smtplib.SMTPAuthenticationError | smtplib.SMTPNotSupportedError)
    return Unavailable(f"cannot {'log in to' if login else 'reach'} {where}: {said}")


class SmtpTransport:
    """One SMTP connection (opened by yagmail: TLS, STARTTLS, login or an open relay),
    reused for a batch of messages, closed by `close()` (and on every failure)."""

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
                # never None with a user: yagmail would ask a keyring, then the terminal
                password=self.config.password or "",
                host=self.config.host,
                port=self.config.port,
                smtp_ssl=self.config.ssl,
                smtp_starttls=self.config.starttls,
                smtp_skip_login=self.config.user is None,
                soft_email_validation=False,
                timeout=TIMEOUT_SECONDS,
            )
            try:
                client.login()
            except (smtplib.SMTPException, OSError) as exc:
                _close_client(client)
                # never chain: the cause may hold the password
                raise _unavailable(self.describe(), exc) from None
            self._client = client
        return self._client

    def send(self, message: Message) -> None:
        client = self._connect()
        try:
            client.smtp.sendmail(self.mail_from, [str(message["To"])], wire_bytes(message))
        except (smtplib.SMTPException, OSError) as exc:
            error = _classify(exc)
            if isinstance(error, TransientError) and _answer_less(exc):
                self.close()  # the connection is gone; the next message reconnects
            raise error from None

    def close(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            _close_client(client)


def _answer_less(exc: Exception) -> bool:
    return not isinstance(exc, smtplib.SMTPResponseException | smtplib.SMTPRecipientsRefused)


def _close_client(client: yagmail.SMTP) -> None:
    """QUIT briefly, then close the socket whatever the server does; never raises."""
    client.is_closed = True  # its __del__ must never talk to the server
    smtp = client.smtp
    if smtp is None:
        return
    try:
        if smtp.sock is not None:
            smtp.sock.settimeout(CLOSE_TIMEOUT_SECONDS)
        smtp.quit()
    except (smtplib.SMTPException, OSError):
        pass
    finally:
        smtp.close()


class EmlFolderTransport:
    """The embedded default: each message becomes `<folder>/<key-hash>.eml`, so a new user
    sees exactly what would be sent. Writing the same message twice overwrites it. A folder
    that is full, read-only or not a folder is `Unavailable`: retried, never a crash."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def describe(self) -> str:
        return f"eml files in {self.folder}"

    def send(self, message: Message) -> None:
        name = hashlib.sha256(str(message["Message-ID"]).encode()).hexdigest()[:24]
        tmp = self.folder / f".{name}.tmp"
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            tmp.write_bytes(wire_bytes(message))
            tmp.replace(self.folder / f"{name}.eml")
        except OSError as exc:
            _discard(tmp)
            raise Unavailable(_folder_problem(self.folder, exc)) from None

    def close(self) -> None:
        return None


def _discard(path: Path) -> None:
    with contextlib.suppress(OSError):  # the folder itself is the problem
        path.unlink(missing_ok=True)


def _folder_problem(folder: Path, exc: OSError) -> str:
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        why = "the disk is full"
    elif exc.errno in (errno.EROFS, errno.EACCES, errno.EPERM):
        why = "it is read-only or not writable by this user"
    else:
        why = exc.strerror or type(exc).__name__
    return f"cannot write to the mail folder {folder} (mail_dir): {why}"
