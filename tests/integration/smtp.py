"""A real SMTP server on loopback (aiosmtpd) in its own process, recording what it receives.

It runs in a separate process so that nothing the code under test does can block it: a
client left unclosed in the test process sends QUIT from its `__del__` whenever the garbage
collector runs, and if that ran in a server thread of the same process it would wait there
for an answer that thread could never give (issue 9, finding 7).

The test steers it through files in its folder: `control.json` (written here: recipients to
refuse, how many DATA commands to answer 451, a delay before answering DATA) and reads back
`state.json` (connections open, DATA commands begun, QUITs) and one `.eml` per message.

    python -m tests.integration.smtp PORT FOLDER     # what SmtpServer.start() runs
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import weakref
from collections.abc import Callable
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
START_TIMEOUT = 20.0
POLL = 0.02


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _write_json(path: Path, data: dict[str, Any]) -> None:
    tmp = path.with_suffix(f".{os.getpid()}.{threading.get_ident()}.tmp")
    tmp.write_text(json.dumps(data))
    tmp.replace(path)


def _read_json(path: Path) -> dict[str, Any]:
    try:
        return dict(json.loads(path.read_text()))
    except FileNotFoundError:
        return {}


def wait_until(check: Callable[[], bool], timeout: float, what: str) -> None:
    """Poll `check` until it holds; fail naming `what` after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(POLL)


class _Refusals(dict[str, str]):
    """recipient → reply (e.g. "550 5.1.1 no such user"); every change reaches the server."""

    def __init__(self, save: Callable[[], None]) -> None:
        super().__init__()
        self._save = save

    def __setitem__(self, key: str, value: str) -> None:
        super().__setitem__(key, value)
        self._save()

    def __delitem__(self, key: str) -> None:
        super().__delitem__(key)
        self._save()


class Recorder:
    """The test's view of the server: what it received, and how it should answer."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        (folder / "messages").mkdir(parents=True, exist_ok=True)
        self.refuse = _Refusals(self._save)
        self._tempfail = 0
        self._tempfail_serial = 0
        self._delay = 0.0
        self._save()

    def _save(self) -> None:
        _write_json(
            self.folder / "control.json",
            {
                "refuse": dict(self.refuse),
                "tempfail_data": self._tempfail,
                "tempfail_serial": self._tempfail_serial,
                "delay": self._delay,
            },
        )

    @property
    def tempfail_data(self) -> int:
        """Answer the next N DATA commands with 451."""
        return self._tempfail

    @tempfail_data.setter
    def tempfail_data(self, n: int) -> None:
        self._tempfail, self._tempfail_serial = n, self._tempfail_serial + 1
        self._save()

    @property
    def delay(self) -> float:
        """Seconds to wait before answering each DATA (a slow server)."""
        return self._delay

    @delay.setter
    def delay(self, seconds: float) -> None:
        self._delay = seconds
        self._save()

    @property
    def messages(self) -> list[EmailMessage]:
        """Every message accepted so far, in order."""
        out = []
        for path in sorted((self.folder / "messages").glob("*.eml")):
            msg = message_from_bytes(path.read_bytes(), policy=policy.default)
            assert isinstance(msg, EmailMessage)
            out.append(msg)
        return out

    def count(self) -> int:
        return len(list((self.folder / "messages").glob("*.eml")))

    def clear(self) -> None:
        for path in (self.folder / "messages").glob("*.eml"):
            path.unlink()

    def to(self, address: str) -> list[EmailMessage]:
        return [m for m in self.messages if m["To"] == address]

    def state(self) -> dict[str, int]:
        """{"open": connections open now, "data": DATA commands begun, "quit": QUITs}."""
        return {"open": 0, "data": 0, "quit": 0, **_read_json(self.folder / "state.json")}


class SmtpServer:
    """Start, stop and restart (on the same port) the server process."""

    def __init__(self, folder: Path | None = None) -> None:
        self.port = free_port()
        self.folder = folder or Path(tempfile.mkdtemp(prefix="duban-smtp-"))
        if folder is None:  # ours: removed with this object
            weakref.finalize(self, shutil.rmtree, self.folder, True)
        self.recorder = Recorder(self.folder)
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"smtp://127.0.0.1:{self.port}"

    def start(self) -> None:
        self._process = subprocess.Popen(
            [sys.executable, "-m", "tests.integration.smtp", str(self.port), str(self.folder)],
            cwd=ROOT,
        )
        wait_until(self._listening, START_TIMEOUT, f"the SMTP server on port {self.port}")

    def _listening(self) -> bool:
        if self._process is not None and self._process.poll() is not None:
            raise AssertionError(f"the SMTP server exited with {self._process.returncode}")
        return (self.folder / "ready").exists()

    def stop(self) -> None:
        process, self._process = self._process, None
        if process is None:
            return
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)
        (self.folder / "ready").unlink(missing_ok=True)


# ---------------------------------------------------------------- the server process


def _serve(port: int, folder: Path) -> None:
    from aiosmtpd.controller import Controller
    from aiosmtpd.smtp import SMTP

    state = {"open": 0, "data": 0, "quit": 0, **_read_json(folder / "state.json")}
    state["open"] = 0
    seen = {"serial": -1, "tempfail": 0}

    def bump(key: str, by: int = 1) -> None:
        state[key] += by
        _write_json(folder / "state.json", state)

    def control() -> dict[str, Any]:
        data = _read_json(folder / "control.json")
        if data.get("tempfail_serial", 0) != seen["serial"]:
            seen["serial"] = data.get("tempfail_serial", 0)
            seen["tempfail"] = data.get("tempfail_data", 0)
        return data

    class Handler:
        async def handle_RCPT(
            self, server: Any, session: Any, envelope: Any, address: str, options: Any
        ) -> str:
            refuse = control().get("refuse", {})
            if address in refuse:
                return str(refuse[address])
            envelope.rcpt_tos.append(address)
            return "250 OK"

        async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
            bump("data")
            delay = float(control().get("delay", 0.0))
            if delay:
                await asyncio.sleep(delay)
            if seen["tempfail"] > 0:
                seen["tempfail"] -= 1
                return "451 4.3.0 mailbox busy, try again later"
            messages = folder / "messages"
            name = f"{time.time_ns():020d}-{os.getpid()}"
            (messages / f".{name}.tmp").write_bytes(envelope.content)
            (messages / f".{name}.tmp").replace(messages / f"{name}.eml")
            return "250 OK"

        async def handle_QUIT(self, server: Any, session: Any, envelope: Any) -> str:
            bump("quit")
            return "221 Bye"

    class Counting(SMTP):  # type: ignore[misc]
        def connection_made(self, transport: Any) -> None:
            bump("open")
            super().connection_made(transport)

        def connection_lost(self, error: Exception | None) -> None:
            bump("open", -1)
            super().connection_lost(error)

    class Server(Controller):  # type: ignore[misc]
        def factory(self) -> SMTP:
            return Counting(self.handler, **self.SMTP_kwargs)

    controller = Server(Handler(), hostname="127.0.0.1", port=port)
    controller.start()
    _write_json(folder / "state.json", state)
    (folder / "ready").write_text(str(os.getpid()))
    stopped = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopped.set())
    while not stopped.wait(0.2):
        pass
    controller.stop()


if __name__ == "__main__":
    _serve(int(sys.argv[1]), Path(sys.argv[2]))
