"""Builds a database the way an earlier release would: run by tests/releases.py in a process
whose `duban` package is that release's (PYTHONPATH), so only its own code writes the rows.

It runs that release's console commands in this one process (its Typer app; one process per
release keeps the tests quick), against the mini plan, and leaves tasks in every state: open
(overdue, and some due before the first init), submitted, accepted, rejected, waived, and an
event's chain. Settings come from the environment (DUBAN_DATABASE_URL, DUBAN_PLAN_FILES, …).
Usage: python old_release_driver.py FIRST_INIT LAST_TICK [--adopted DAY]
"""

from __future__ import annotations

import contextlib
import io
import json
import sys


def duban(*args: str) -> str:
    from duban.cli.main import app

    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        try:
            code = app(list(args), standalone_mode=False)
        except SystemExit as exc:
            code = exc.code
    if code not in (0, None):
        raise SystemExit(f"duban {' '.join(args)} exited {code}: {out.getvalue()}")
    return out.getvalue()


def main() -> None:
    first_init, last_tick, *more = sys.argv[1:]
    duban("init", "--now", first_init, *more)
    duban("tick", "--now", first_init)
    duban(
        "event", "add", "maternal-death", "--org", "h2", "--on", "2022-06-01", "--now", "2022-06-02"
    )
    duban("tick", "--now", last_tick)
    listed = json.loads(duban("tasks", "--json", "--as-of", last_tick))
    task = {(t["org"], t["obligation"], t["period"]): t["id"] for t in listed}

    def act(key: tuple[str, str, str], *steps: tuple[str, ...]) -> None:
        for step in steps:
            duban("task", *step[:1], str(task[key]), *step[1:], "--now", last_tick)

    note = ("submit", "--note", "演练记录")
    act(("h1", "report", "2022-04"), note, ("reject", "--reason", "表格不全"))
    act(("h1", "drill", "2022-Q2"), note, ("accept",))
    act(("h2", "report", "2022-05"), note)
    act(("office", "report", "2022-06"), ("waive", "--reason", "本月无此项工作"))


if __name__ == "__main__":
    main()
