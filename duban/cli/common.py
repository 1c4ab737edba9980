"""What every `duban` command shares: the consoles, `--now` and `--actor`, and how an error
ends a command (a PlanError exits 2, any other DubanError 1, with its message)."""

from __future__ import annotations

import getpass
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime
from typing import Annotated, NoReturn

import typer
from rich.console import Console
from rich.markup import escape

from duban.bootstrap import App
from duban.domain.due import start_of_day
from duban.errors import DubanError, PlanError

out = Console(markup=False, highlight=False)  # user data is never markup
err = Console(stderr=True)

NowOption = Annotated[
    str | None,
    typer.Option("--now", help="Act as of this moment (ISO date or datetime; naive = local time)."),
]
ActorOption = Annotated[str | None, typer.Option("--actor", help="Who is acting (audit trail).")]


def fail(message: str, code: int = 1) -> NoReturn:
    err.print(f"[bold red]error:[/] {escape(message)}", highlight=False)
    raise typer.Exit(code)


@contextmanager
def errors() -> Iterator[None]:
    try:
        yield
    except PlanError as exc:
        fail(str(exc), 2)
    except DubanError as exc:
        fail(str(exc))


def parse_moment(text: str | None, ctx: App) -> datetime:
    """`None` is the wall clock; a date is its local midnight; a naive time is local time."""
    if text is None:
        return datetime.now(UTC)
    try:
        if len(text) == len("2022-07-05"):
            return start_of_day(date.fromisoformat(text), ctx.tz)
        moment = datetime.fromisoformat(text)
    except ValueError:
        fail(
            f"cannot read {text!r} as a date or datetime; use e.g. 2022-07-05 or "
            "2022-07-05T09:30+08:00",
            2,
        )
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=ctx.tz)
    return moment.astimezone(UTC)


def actor_name(given: str | None) -> str:
    return given or f"cli:{getpass.getuser()}"
