"""A county site for the browser tests: three users added with the real CLI and `duban web`
served as the real console script on a free port, ready when /api/health answers."""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from tests.e2e.test_cli import DUBAN
from tests.integration.smtp import free_port

PASSWORD = "correct horse battery"
USERS = [("admin", "admin", None), ("h1user", "institution", "h1"), ("audit", "auditor", None)]
START_TIMEOUT = 30.0


def add_users(work: Path, env: dict[str, str]) -> None:
    """An administrator, an institution's user (h1) and an auditor, all with PASSWORD."""
    for name, role, org in USERS:
        done = subprocess.run(
            [DUBAN, "user", "add", name, "--role", role, "--password-stdin"]
            + (["--org", org] if org else []),
            cwd=work,
            env={**os.environ, **env},
            input=PASSWORD + "\n",
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert done.returncode == 0, done.stderr


@contextmanager
def served(work: Path, env: dict[str, str]) -> Iterator[str]:
    """`duban web` on the site; yields its base URL, stops it on leaving."""
    port = free_port()
    log = work / "web.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [DUBAN, "web", "--port", str(port)],
            cwd=work,
            env={**os.environ, **env},
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                if httpx.get(f"{base}/api/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        else:
            raise RuntimeError(f"duban web did not start:\n{log.read_text(errors='replace')}")
        yield base
    finally:
        proc.terminate()
        proc.wait(timeout=10)
