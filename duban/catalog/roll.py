"""Next year's draft of a plan, from the text of this year's (`duban plan roll`).

The draft is this year's file, edited in place so its comments, notes and layout stay:
- the plan's id moves by the year difference (`xf-2022-…` → `xf-2023-…`, `xf22-…` →
  `xf23-…`; an id without its start year gets `-YEAR` appended), so applying the draft makes
  a new plan, never an amendment of this one;
- the plan's window, its issue day, every dated deadline (`due: {kind: date, on: …}`), every
  duty's own window and every RRULE's `dtstart` and `UNTIL` move by the same number of years
  (29 February becomes the 28th);
- duty ids are kept: each duty of the new plan continues this year's duty of the same id;
- what only the editor can know is marked `# 待确认 / to confirm` at the end of its line: the
  plan's document number, issue day and titles, and each duty's own document number.
The result is parsed again and compared with the expected plan, so a draft that would read
differently from what it shows is never written. Pure: text in, text out.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date
from typing import Any

import yaml
from pydantic import ValidationError

from duban.catalog import schema as s
from duban.catalog.yamlfile import PLAN_LOADER
from duban.errors import RollRefused

MARK = "# 待确认 / to confirm"
_UNTIL = re.compile(r"(UNTIL=)(\d{4})(\d{4})")


@dataclass(frozen=True, kw_only=True)
class Rolled:
    text: str
    source: str  # the rolled plan's id
    plan: str  # the draft's plan id
    years: int
    valid_from: date
    valid_until: date
    marked: tuple[str, ...]  # the fields marked to confirm, as paths
    overlap: tuple[date, date] | None  # days both windows cover: periods owed twice


def shift(day: date, years: int) -> date:
    """The same day `years` later (29 February becomes the 28th in a common year)."""
    try:
        return day.replace(year=day.year + years)
    except ValueError:
        return day.replace(year=day.year + years, day=28)


def next_code(code: str, start_year: int, years: int) -> str:
    """The plan id moved by `years`: its four-digit start year, else its two-digit one, else
    the new start year appended."""
    new = start_year + years
    if str(start_year) in code:
        return code.replace(str(start_year), str(new))
    short = re.compile(rf"(?<!\d){start_year % 100:02d}(?!\d)")
    if short.search(code):
        return short.sub(f"{new % 100:02d}", code)
    return f"{code}-{new}"


def _child(node: yaml.Node | None, key: str) -> yaml.Node | None:
    if not isinstance(node, yaml.MappingNode):
        return None
    found: yaml.Node | None = next((v for k, v in node.value if k.value == key), None)
    return found


def _at(node: yaml.Node | None, *keys: str) -> yaml.Node | None:
    for key in keys:
        node = _child(node, key)
    return node


class _Edits:
    def __init__(self, text: str) -> None:
        self.text = text
        self.edits: list[tuple[int, int, str]] = []
        self.marked_lines: set[int] = set()
        self.marked: list[str] = []

    def replace(self, node: yaml.Node | None, value: str) -> None:
        if not isinstance(node, yaml.ScalarNode):
            return
        quote = node.style if node.style in ("'", '"') else ""
        self.edits.append((node.start_mark.index, node.end_mark.index, f"{quote}{value}{quote}"))

    def mark(self, node: yaml.Node | None, path: str) -> None:
        if not isinstance(node, yaml.ScalarNode):
            return
        # a block scalar (| or >) may carry a comment on its indicator's line only
        mark = node.start_mark if node.style in ("|", ">") else node.end_mark
        self.marked.append(path)
        if mark.line in self.marked_lines:
            return
        self.marked_lines.add(mark.line)
        end = self.text.find("\n", mark.index)
        end = len(self.text) if end < 0 else end
        if end > 0 and self.text[end - 1] == "\r":
            end -= 1
        if node.style not in ("|", ">") and self.text[mark.index : end].lstrip().startswith("#"):
            end = mark.index  # before the line's own comment, where the editor looks first
        self.edits.append((end, end, f"  {MARK}"))

    def result(self) -> str:
        out = self.text
        for start, end, value in sorted(self.edits, key=lambda e: (e[0], e[1]), reverse=True):
            out = out[:start] + value + out[end:]
        return out


def _parsed(text: str, file: str) -> s.PlanFile:
    try:
        return s.PlanFile.model_validate(yaml.load(text, Loader=PLAN_LOADER))
    except (yaml.YAMLError, ValidationError) as exc:
        raise RollRefused(
            f"{file}: the stored plan text does not read as a plan ({exc}); roll a file that "
            "passes `duban plan check`"
        ) from exc


def _rolled_rule(rule: str, years: int) -> str:
    return _UNTIL.sub(lambda m: f"{m[1]}{int(m[2]) + years:04d}{m[3]}", rule)


def _expected(plan: s.PlanFile, code: str, years: int) -> dict[str, Any]:
    """The plan the draft must read as: this one with the shifts applied."""
    data = plan.model_dump(mode="python", by_alias=True)
    header = data["plan"]
    header["id"] = code
    header["issued"] = shift(header["issued"], years)
    header["valid"] = {k: shift(v, years) for k, v in header["valid"].items()}
    for ob in data["obligations"]:
        if ob["due"]["kind"] == "date":
            ob["due"]["on"] = shift(ob["due"]["on"], years)
        if ob.get("valid"):
            ob["valid"] = {k: shift(v, years) for k, v in ob["valid"].items()}
        rec = ob["recurrence"]
        if rec["kind"] == "rrule":
            rec["rule"] = _rolled_rule(rec["rule"], years)
            if rec.get("dtstart"):
                rec["dtstart"] = shift(rec["dtstart"], years)
    return data


def roll_text(text: str, *, file: str, to_year: int, banner: str = "") -> Rolled:
    """Next year's draft of the plan in `text`, starting in `to_year` (see the module
    docstring); RollRefused when the year would not move the plan."""
    plan = _parsed(text, file)
    header = plan.plan
    years = to_year - header.valid.start.year
    if years <= 0:
        raise RollRefused(
            f"plan {header.id} starts in {header.valid.start.year}; --to must be a later year "
            f"(e.g. --to {header.valid.start.year + 1})"
        )
    code = next_code(header.id, header.valid.start.year, years)
    root = yaml.compose(text, Loader=PLAN_LOADER)
    edits = _Edits(text)
    head = _child(root, "plan")
    edits.replace(_child(head, "id"), code)
    for key in ("from", "until"):
        edits.replace(
            _at(head, "valid", key), shift(getattr(header.valid, _FIELD[key]), years).isoformat()
        )
    edits.replace(_child(head, "issued"), shift(header.issued, years).isoformat())
    for key in ("document", "issued", "title", "title_en"):
        edits.mark(_child(head, key), f"plan.{key}")
    nodes = _child(root, "obligations")
    for i, (ob, node) in enumerate(
        zip(plan.obligations, getattr(nodes, "value", []), strict=False)
    ):
        if isinstance(ob.due, s.DateSpec):
            edits.replace(_at(node, "due", "on"), shift(ob.due.on, years).isoformat())
        if ob.valid is not None:
            for key in ("from", "until"):
                day = getattr(ob.valid, _FIELD[key])
                edits.replace(_at(node, "valid", key), shift(day, years).isoformat())
        if isinstance(ob.recurrence, s.RRule):
            edits.replace(_at(node, "recurrence", "rule"), _rolled_rule(ob.recurrence.rule, years))
            if ob.recurrence.dtstart is not None:
                edits.replace(
                    _at(node, "recurrence", "dtstart"),
                    shift(ob.recurrence.dtstart, years).isoformat(),
                )
        edits.mark(_at(node, "source", "document"), f"obligations.{i}.source.document")
    out = (banner + edits.result()) if banner else edits.result()
    got = _parsed(out, file).model_dump(mode="python", by_alias=True)
    if got != _expected(plan, code, years):
        raise RollRefused(
            f"{file}: the draft would not read as the rolled plan (a layout duban cannot edit "
            "in place); write next year's file by hand from this one"
        )
    start, until = shift(header.valid.start, years), shift(header.valid.until, years)
    overlap = (start, header.valid.until) if start <= header.valid.until else None
    return Rolled(
        text=out,
        source=header.id,
        plan=code,
        years=years,
        valid_from=start,
        valid_until=until,
        marked=tuple(edits.marked),
        overlap=overlap,
    )


_FIELD = {"from": "start", "until": "until"}
