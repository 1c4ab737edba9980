"""`duban demo`: a living year of the county plan, in a folder of its own.

It builds `duban-demo/demo.db` (with its own evidence and mail folders) as the county lived
the 2022 plan up to `--as-of`, prints the demo users' passwords, and serves the web UI and
the scheduler on a clock that starts at 09:00 that day and runs on with real time. It never
opens the configured database: it refuses a folder that holds it, and a folder that it did not
make itself (it rebuilds only a folder carrying its marker file).
"""

from __future__ import annotations

import logging
import shutil
import signal
import socket
import sys
from collections.abc import Callable
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Annotated, NoReturn
from zoneinfo import ZoneInfo

import typer
from pydantic import ValidationError
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from duban.bootstrap import App
from duban.catalog.loader import load_catalog
from duban.demo import DEFAULT_AS_OF, DEFAULT_SEED, DemoReport, DemoUser, build, demo_plan_files
from duban.domain.due import local_date
from duban.errors import DubanError
from duban.settings import Settings

log = logging.getLogger("duban")
DB_NAME = "demo.db"
MARKER = "DUBAN-DEMO.txt"
MARKER_TEXT = (
    "This folder was made by `duban demo` and is rebuilt from scratch on each run.\n"
    "本目录由 duban demo 生成，每次运行都会重建。\n"
)


class OffsetClock:
    """Reads `start` when made, then runs on with real time (the demo's day goes on)."""

    def __init__(self, start: datetime, real: Callable[[], datetime] | None = None) -> None:
        self._real = real or (lambda: datetime.now(UTC))
        self._offset = start - self._real()

    def __call__(self) -> datetime:
        return self._real() + self._offset


def _configured_database() -> str | None:
    """The database `duban run` would use here; None when the configuration does not load."""
    try:
        return Settings().database_url
    except (ValidationError, ValueError, OSError):
        return None


def _sqlite_file(url: str) -> Path | None:
    try:
        parsed = make_url(url)
    except ArgumentError:
        return None
    if parsed.get_backend_name() != "sqlite" or parsed.database in (None, "", ":memory:"):
        return None
    return Path(str(parsed.database)).resolve()


def prepare_folder(folder: Path, configured: str | None) -> Path:
    """Empty the demo folder (only one it made) and return the demo database's path.

    Refuses when the configured database lives in it, or when it exists, is not empty and
    carries no marker: then it is somebody's folder, and nothing in it is touched.
    """
    folder = folder.resolve()
    real = _sqlite_file(configured) if configured else None
    if real is not None and (real == folder or folder in real.parents):
        raise DubanError(
            f"the configured database {real} is inside {folder}; duban demo never touches a "
            "real database: give another folder with --dir"
        )
    if folder.exists():
        if not folder.is_dir():
            raise DubanError(f"{folder} is not a folder; give another one with --dir")
        if any(folder.iterdir()) and not (folder / MARKER).is_file():
            raise DubanError(
                f"{folder} holds files that duban demo did not make; nothing was changed. "
                "Give an empty or new folder with --dir"
            )
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    (folder / MARKER).write_text(MARKER_TEXT, encoding="utf-8")
    return folder / DB_NAME


def demo_settings(folder: Path, host: str, port: int) -> Settings:
    """Everything named explicitly, so no DUBAN_* variable or duban.toml reaches the demo:
    its own database, evidence and mail folders, the county plan only, and no SMTP."""
    plans, orgs = demo_plan_files()
    return Settings(
        database_url=f"sqlite:///{folder / DB_NAME}",
        timezone="Asia/Shanghai",
        plan_files=plans,
        org_files=orgs,
        calendar_dir=None,  # the bundled years only
        smtp_url=None,
        mail_dir=folder / "outbox-mail",
        evidence_dir=folder / "evidence-files",
        base_url=f"http://{host}:{port}",
        web=True,
        web_host=host,
        web_port=port,
    )


def _say(text: str = "") -> None:
    print(text, flush=True)


def _show(report: DemoReport, made: list[DemoUser], url: str, folder: Path, tz: ZoneInfo) -> None:
    when = report.as_of.astimezone(tz).strftime("%Y-%m-%d %H:%M %Z")
    _say(f"duban demo: 信丰县母婴安全质量强化年 as of {when}; the clock runs on from there")
    _say(f"  web UI: {url}")
    _say("  sign in as (passwords made for this run):")
    for u in made:
        _say(f"    {u.name:<8} {u.role:<12} password: {u.password}   {u.sees}")
    _say(
        f"  history: {report.tasks} tasks; of the {report.due_before} due before the day "
        f"{report.on_time} submitted on time, {report.late} late, {report.resubmitted} "
        f"rejected and resubmitted, {report.rejected_open} rejected and not yet resubmitted, "
        f"{report.waived} waived, {report.overdue_open} still open (overdue); "
        f"{report.awaiting_review} awaiting review"
    )
    for code, due in report.death_tasks:
        _say(f"  maternal death chain: {code} due {due}")
    _say(f"  its own database, evidence and mail (.eml files) are in {folder}")


def demo(
    as_of: Annotated[
        str, typer.Option("--as-of", help="The day the demo starts on (inside the plan's year).")
    ] = DEFAULT_AS_OF.isoformat(),
    host: Annotated[str, typer.Option(help="Address to serve the web UI on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to serve the web UI on.")] = 8000,
    folder: Annotated[
        Path, typer.Option("--dir", help="The demo's own folder (rebuilt on each run).")
    ] = Path("duban-demo"),
    seed: Annotated[int, typer.Option(help="The same seed makes the same history.")] = DEFAULT_SEED,
) -> None:
    """A living year: the county plan as of a day inside it, demo users, web UI and scheduler.

    Builds a separate database (never the configured one) with a realistic history, prints
    a password for each demo user, and runs on a clock that starts on that day.
    """
    from duban import scheduler
    from duban.web.app import WebServer

    logging.basicConfig(
        level=logging.INFO,
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    for quiet in ("apscheduler", "alembic", "duban.engine.materialize"):
        logging.getLogger(quiet).setLevel(logging.WARNING)  # a year of history in a few lines
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    try:
        day = date.fromisoformat(as_of)
    except ValueError:
        _fail(f"--as-of {as_of!r} is not a date; use YYYY-MM-DD", 2)
    try:
        settings = demo_settings(folder.resolve(), host, port)
        app = App(settings)
        catalog = load_catalog(settings.plan_files, settings.org_files, app.calendar)
        window = catalog.plans[0].header.valid
        if not window.start <= day <= window.until:
            _fail(f"--as-of {day} is outside the plan's year ({window.start} – {window.until})", 2)
        _check_port(host, port)
        prepare_folder(folder, _configured_database())
        log.info("building the demo database in %s", folder.resolve())
        report, made = build(app, as_of=day, seed=seed, catalog=catalog)
        url = f"http://{host}:{port}/"
        _show(report, made, url, folder.resolve(), app.tz)
        clock = OffsetClock(report.as_of)
        log.info("web UI on %s (demo clock %s)", url, local_date(clock(), app.tz))
        scheduler.run(app, clock, serve=WebServer(app, host, port, clock))
    except DubanError as exc:
        _fail(str(exc))


def _check_port(host: str, port: int) -> None:
    """Say that the port is taken before building a year, not after (the server binds later)."""
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            raise DubanError(
                f"the web UI cannot listen on {host}:{port} ({exc.strerror}); "
                "give another port with --port"
            ) from exc


def _fail(message: str, code: int = 1) -> NoReturn:
    sys.stderr.write(f"error: {message}\n")
    raise typer.Exit(code)
