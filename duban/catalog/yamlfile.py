"""Reading YAML with line numbers, so every error can name the file, line and field.

`load_yaml` returns the plain data and a `LineIndex` that maps a field path such as
`("obligations", 3, "due", "days")` to the line it stands on. A path that is not in the file
(a missing field) resolves to the line of its nearest ancestor.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from duban.errors import PlanError, Problem

PathKey = tuple[str | int, ...]


class _Loader(yaml.SafeLoader):
    """SafeLoader with YAML 1.2 booleans: only true/false are booleans, so keys and values
    such as `on`, `off`, `yes`, `no` stay strings (`due: {kind: date, on: 2022-05-31}`)."""


_BOOL = "tag:yaml.org,2002:bool"
_Loader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != _BOOL]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_Loader.add_implicit_resolver(
    _BOOL, re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF")
)


@dataclass(frozen=True)
class LineIndex:
    file: str
    lines: dict[PathKey, int]

    def line(self, path: Sequence[str | int]) -> int | None:
        key = tuple(path)
        while key:
            if key in self.lines:
                return self.lines[key]
            key = key[:-1]
        return self.lines.get((), None)

    def problem(self, path: Sequence[str | int], message: str) -> Problem:
        return Problem(
            file=self.file,
            line=self.line(path),
            field=".".join(str(p) for p in path),
            message=message,
        )


def _index(
    node: yaml.Node, path: PathKey, out: dict[PathKey, int], dupes: list[Problem], file: str
) -> None:
    out[path] = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        seen: set[str] = set()
        for key_node, value_node in node.value:
            key = str(key_node.value)
            if key in seen:
                dupes.append(
                    Problem(
                        file=file,
                        line=key_node.start_mark.line + 1,
                        field=".".join(str(p) for p in (*path, key)),
                        message=f"the key {key!r} appears twice; keep one",
                    )
                )
            seen.add(key)
            _index(value_node, (*path, key), out, dupes, file)
            out[(*path, key)] = key_node.start_mark.line + 1
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            _index(item, (*path, i), out, dupes, file)


def load_yaml(path: Path) -> tuple[Any, LineIndex]:
    """Parse one YAML file; raise PlanError naming the line of a syntax error or duplicate key."""
    file = str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise PlanError(
            [
                Problem(
                    file=file, line=None, field="", message=f"cannot read the file: {exc.strerror}"
                )
            ]
        ) from exc
    try:
        node = yaml.compose(text, Loader=_Loader)
        data = yaml.load(text, Loader=_Loader)  # a SafeLoader subclass: no arbitrary objects
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        line = mark.line + 1 if mark is not None else None
        raise PlanError(
            [
                Problem(
                    file=file,
                    line=line,
                    field="",
                    message=f"YAML syntax error: {exc.problem}; fix the "
                    "indentation or quoting on that line",
                )
            ]
        ) from exc
    lines: dict[PathKey, int] = {}
    dupes: list[Problem] = []
    if node is not None:
        _index(node, (), lines, dupes, file)
    if dupes:
        raise PlanError(dupes)
    return data, LineIndex(file, lines)


def validation_problems(exc: ValidationError, index: LineIndex) -> list[Problem]:
    """Translate pydantic's errors into problems that name file, line and field."""
    problems = []
    for err in exc.errors():
        loc = [p for p in err["loc"] if not (isinstance(p, str) and p.startswith("function-"))]
        # pydantic puts the tag of a discriminated union into loc; drop it from the field path
        field_path: list[str | int] = [p for p in loc if isinstance(p, int | str)]
        message = err["msg"]
        if err["type"] == "extra_forbidden":
            message = "unknown field; remove it or check its spelling"
        elif err["type"] == "missing":
            message = "this field is required"
        problems.append(index.problem(_strip_tags(field_path, index), message))
    return problems


def _strip_tags(path: list[str | int], index: LineIndex) -> list[str | int]:
    """Remove discriminator tags (e.g. 'quarterly') that pydantic inserts into error paths."""
    out: list[str | int] = []
    for part in path:
        candidate = [*out, part]
        if (
            isinstance(part, str)
            and tuple(candidate) not in index.lines
            and out
            and tuple(out) in index.lines
            and _is_tag(part)
        ):
            continue
        out.append(part)
    return out


def _is_tag(part: str) -> bool:
    return part.islower() and " " not in part and "[" not in part


#: the loader duban reads plan files with (YAML 1.2 booleans), for code that parses plan text
PLAN_LOADER = _Loader
