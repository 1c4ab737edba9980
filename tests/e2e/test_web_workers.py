"""`duban web --workers 2`: two server processes answer from one settings file, and both
stop on SIGTERM."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
import urllib.request
from pathlib import Path

from tests.e2e.test_cli import DUBAN, MINI, duban
from tests.integration.smtp import free_port


def test_two_worker_processes_serve_the_same_app(tmp_path: Path) -> None:
    env = {**MINI, "DUBAN_DATABASE_URL": f"sqlite:///{tmp_path}/w.db"}
    duban("init", "--now", "2022-07-01", "--adopted", "2022-04-01", cwd=tmp_path, env=env)
    port = free_port()
    server = subprocess.Popen(
        [DUBAN, "web", "--port", str(port), "--workers", "2"],
        cwd=tmp_path,
        env={**os.environ, **env},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 60
        answered: set[int] = set()
        while time.monotonic() < deadline and len(answered) < 1:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/health", timeout=2) as r:
                    assert json.load(r) == {"status": "ok"}
                    answered.add(r.status)
            except OSError:
                time.sleep(0.1)
        assert answered == {200}
        children = subprocess.run(
            ["pgrep", "-P", str(server.pid)], capture_output=True, text=True, check=False
        ).stdout.split()
        assert len(children) >= 2, children  # the two workers (uvicorn's supervisor is the parent)
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(timeout=20)
        finally:
            if server.poll() is None:
                os.killpg(server.pid, signal.SIGKILL)
                server.wait()
            if server.stderr:
                server.stderr.close()
