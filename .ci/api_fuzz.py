"""Schemathesis against the real API, once per role (issue 9): `.ci/run` calls this.

It builds a county database in a temporary folder (the bundled plans, tasks as of a day in the
county plan's year), creates one user and API token per role, serves `duban web` on a free
loopback port, waits on /api/health, and runs `schemathesis run` against /openapi.json with
that role's token. A 5xx, a response that breaks the schema, or a request the schema calls
valid that is refused fails the build. Each role's run is bounded in examples and in time.
Usage: python .ci/api_fuzz.py [--max-examples N] [--max-time SECONDS]
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
AS_OF = "2022-10-06"
ROLES = [
    ("fz-admin", "admin", None),
    ("fz-audit", "auditor", None),
    ("fz-inst", "institution", "xf-zyy"),
]
CONFIG = """\
# The upload's files must be PDF, JPEG, PNG or Office documents whose bytes prove it; a schema
# cannot say what a file's first bytes are, so 415 for generated file content is expected.
[[operations]]
include-path = "/api/tasks/{task_id}/evidence"
checks.positive_data_acceptance.expected-statuses = ["2xx", "401", "403", "404", "409", "415"]
"""


def duban(env: dict[str, str], *args: str, stdin: str | None = None) -> str:
    done = subprocess.run(
        [str(BIN / "duban"), *args],
        env=env,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    if done.returncode != 0:
        sys.exit(f"duban {' '.join(args)} failed:\n{done.stdout}\n{done.stderr}")
    return done.stdout


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_healthy(base: str, server: subprocess.Popen[bytes], seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if server.poll() is not None:
            sys.exit("duban web exited before it answered /api/health")
        try:
            with urllib.request.urlopen(base + "/api/health", timeout=2) as r:
                if r.status == 200:
                    return
        except OSError:
            time.sleep(0.1)
    sys.exit(f"{base}/api/health did not answer within {seconds:.0f} s")


def a_task_of(env: dict[str, str], org: str | None) -> int:
    rows = json.loads(
        duban(env, "tasks", *(["--org", org] if org else []), "--json", "--limit", "1")
    )
    return int(rows[0]["id"])


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--max-examples", type=int, default=40)
    parser.add_argument("--max-time", type=int, default=60, help="seconds per role")
    options = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="duban-fuzz-") as tmp:
        env = {
            **os.environ,
            "DUBAN_DATABASE_URL": f"sqlite:///{tmp}/fuzz.db",
            "DUBAN_EVIDENCE_DIR": f"{tmp}/evidence",
            "DUBAN_MAIL_DIR": f"{tmp}/mail",
            "DUBAN_CONFIG": f"{tmp}/none.toml",
        }
        duban(env, "init", "--now", "2022-01-01", "--adopted", "2022-01-01")
        duban(env, "tick", "--now", AS_OF)
        tokens = {}
        for name, role, org in ROLES:
            duban(
                env,
                "user",
                "add",
                name,
                "--role",
                role,
                *(["--org", org] if org else []),
                "--password-stdin",
                stdin="fuzzing-password-1\n",
            )
            tokens[role] = (duban(env, "user", "token", name).strip(), org)
        config = Path(tmp) / "schemathesis.toml"
        config.write_text(CONFIG)
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        server = subprocess.Popen(
            [str(BIN / "duban"), "web", "--host", "127.0.0.1", "--port", str(port)],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=open(Path(tmp) / "web.log", "wb"),  # noqa: SIM115 (closed with the folder)
        )
        failed = []
        try:
            wait_healthy(base, server)
            for role, (token, org) in tokens.items():
                task = a_task_of(env, org)
                print(f"== schemathesis as {role} (task {task} for the id parameters)", flush=True)
                run = subprocess.run(
                    [
                        str(BIN / "schemathesis"),
                        "--config-file",
                        str(config),
                        "run",
                        f"{base}/openapi.json",
                        "--checks",
                        "all",
                        "--exclude-checks",
                        "use_after_free,ensure_resource_availability",
                        "-H",
                        f"Authorization: Bearer {token}",
                        "--max-examples",
                        str(options.max_examples),
                        "--max-time",
                        str(options.max_time),
                        "--request-timeout",
                        "20",
                        "--seed",
                        "9",
                        "--workers",
                        "1",
                        "--no-color",
                    ],
                    timeout=options.max_time * 3 + 120,
                    check=False,
                    cwd=tmp,  # its example database and reports stay out of the checkout
                )
                if run.returncode != 0:
                    failed.append(role)
        finally:
            server.terminate()
            try:
                server.wait(timeout=15)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait()
        if failed:
            print((Path(tmp) / "web.log").read_text()[-4000:])
            print(f"schemathesis failed for: {', '.join(failed)}")
            return 1
    print("schemathesis: every role passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
