"""The completion matrix's cells, written in Python.

A matrix page holds 50 institutions × up to 13 periods; written in the template, each cell
autoescaped six values, and building those Markup strings was a quarter of the page's CPU
time (py-spy, GIL samples, at 8 clients). Here a cell is made of parts escaped once per
language (the kind's class and label) and of values that are checked, not trusted: the kind
must be an Outcome, the id an integer, and the due day is escaped.
"""

from __future__ import annotations

from functools import cache
from html import escape

from markupsafe import Markup

from duban.domain.tasks import Outcome
from duban.engine.sheets import Cell
from duban.web.i18n import translate


@cache
def _parts(lang: str) -> dict[str, tuple[str, str]]:
    """Per kind: the cell's opening up to the task id, and its label (escaped)."""
    parts = {}
    for kind in Outcome:
        label = escape(translate(f"cell:{kind.value}", lang))
        opening = f'<td><a class="cell c-{kind.value}" data-cell="{kind.value}" href="/tasks/'
        parts[kind.value] = (opening, label)
    return parts


def matrix_row(cells: list[Cell | None], lang: str) -> Markup:
    """One institution's row of cells, each a link to its task titled with its due day."""
    parts = _parts(lang)
    out = []
    for cell in cells:
        if cell is None:
            out.append("<td></td>")
            continue
        task_id, kind, due = cell
        opening, label = parts[kind]  # KeyError for anything that is not an Outcome
        out.append(f'{opening}{int(task_id)}" title="{label} {escape(due)}">{label}</a></td>')
    return Markup("".join(out))
