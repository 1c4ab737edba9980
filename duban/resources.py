"""Where the bundled plans, calendar and templates are.

In an installed wheel they live in `duban/_bundled/` (see pyproject's force-include); in a
source checkout they are the repository's top-level folders, read in place.
"""

from __future__ import annotations

from pathlib import Path

_PACKAGE = Path(__file__).resolve().parent


def bundled(name: str) -> Path:
    """The bundled folder `name` (obligations, calendar or notifications)."""
    installed = _PACKAGE / "_bundled" / name
    if installed.is_dir():
        return installed
    checkout = _PACKAGE.parent / name
    if checkout.is_dir():
        return checkout
    raise FileNotFoundError(
        f"bundled folder {name!r} is missing from this duban installation "
        f"(looked in {installed} and {checkout}); reinstall duban"
    )


def bundled_plans() -> list[Path]:
    return sorted(bundled("obligations").glob("*.yaml"))


def bundled_orgs() -> list[Path]:
    return sorted((bundled("obligations") / "organizations").glob("*.yaml"))
