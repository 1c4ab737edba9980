"""`duban prefect …`: scale out on Prefect 3 (the optional extra `duban[prefect]`).

Prefect is imported inside the commands, so `duban` works without the extra installed.
"""

from __future__ import annotations

from typing import Annotated, NoReturn

import typer
from rich.console import Console
from rich.markup import escape

from duban.bootstrap import App
from duban.errors import DubanError

prefect_app = typer.Typer(
    help="Scale out on Prefect 3: publish the duties as deployments (needs duban[prefect]).",
    no_args_is_help=True,
)
out = Console(markup=False, highlight=False)
err = Console(stderr=True)

INSTALL_HINT = "Prefect is not installed; install the extra: pip install 'duban[prefect]'"


def _fail(message: str, code: int = 1) -> NoReturn:
    err.print(f"[bold red]error:[/] {escape(message)}", highlight=False)
    raise typer.Exit(code)


@prefect_app.command("deploy")
def deploy(
    pool: Annotated[
        str,
        typer.Option("--pool", help="The Prefect work pool (a process pool, created if missing)."),
    ] = "duban",
) -> None:
    """Create or update one deployment per duty, plus reconcile, sweep and deliver.

    Reads the catalog from the database (run `duban init` first) and the Prefect server from
    PREFECT_API_URL. Idempotent: a second run changes nothing; a changed plan updates only
    the deployments it changed, in place; a duty that left its plan is paused.
    """
    try:
        from prefect.settings import PREFECT_API_URL

        from flows.deployments import apply, wanted_deployments
    except ImportError:
        _fail(INSTALL_HINT)
    from prefect import get_client

    if not PREFECT_API_URL.value():
        _fail(
            "PREFECT_API_URL is not set: point it at your Prefect server, e.g. "
            "PREFECT_API_URL=http://prefect.example.org:4200/api (without it Prefect would "
            "deploy to a throw-away local server)"
        )
    ctx = App()
    try:
        ctx.store.require_schema()
        wanted = wanted_deployments(ctx)
        with get_client(sync_client=True) as client:
            report = apply(client, wanted, pool)
    except DubanError as exc:
        _fail(str(exc))
    finally:
        ctx.store.dispose()
    if report.pool_created:
        out.print(f"work pool {pool!r} created (process); start workers with:")
        out.print(f"  prefect worker start --pool {pool}")
    for name in report.created:
        out.print(f"created  {name}")
    for name, fields in report.updated.items():
        out.print(f"updated  {name}: {', '.join(fields)}")
    for name in report.paused:
        out.print(f"paused   {name} (the duty left its plan)")
    out.print(
        f"{len(wanted)} deployments in pool {pool!r}: {len(report.created)} created, "
        f"{len(report.updated)} updated, {len(report.unchanged)} unchanged, "
        f"{len(report.paused)} paused"
    )
