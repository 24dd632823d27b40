"""Loading scenario files: YAML in, validated `Scenario` out, errors that point at the key.

An error names the file, the line, the key path and the rule, e.g.
``busy.yaml:12: phones.+919811000002: a phone has at most one of ...``.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from legato.core.errors import describe_errors
from legato.scenario.model import Scenario

SUFFIXES = (".yaml", ".yml")


@dataclass(frozen=True)
class Problem:
    path: str  # key path, e.g. config.flow.0.dial.to
    rule: str
    line: int | None = None


class ScenarioError(Exception):
    """A scenario file that is not valid format v1."""

    def __init__(self, file: str, problems: list[Problem]) -> None:
        self.file = file
        self.problems = problems
        super().__init__("\n".join(self.lines()))

    def lines(self) -> list[str]:
        out = []
        for p in self.problems:
            where = f"{self.file}:{p.line}" if p.line else self.file
            out.append(f"{where}: {p.path or '(top level)'}: {p.rule}")
        return out


def iter_files(paths: Iterable[str | Path]) -> Iterator[Path]:
    """Every scenario file named, directories walked in sorted order."""
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            yield from sorted(p for p in path.rglob("*") if p.suffix in SUFFIXES)
        else:
            yield path


def load_paths(paths: Iterable[str | Path]) -> Iterator[tuple[Path, Scenario | ScenarioError]]:
    for file in iter_files(paths):
        try:
            yield file, load_scenario(file)
        except ScenarioError as error:
            yield file, error


def load_scenario(file: str | Path) -> Scenario:
    name = str(file)
    try:
        text = Path(file).read_text(encoding="utf-8")
    except OSError as error:
        raise ScenarioError(name, [Problem("", f"cannot read the file: {error.strerror}")]) \
            from None
    return parse_scenario(text, name)


def parse_scenario(text: str, name: str = "<scenario>") -> Scenario:
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        line = None if mark is None else mark.line + 1
        raise ScenarioError(name, [Problem("", f"not valid YAML: {error}", line)]) from None
    if not isinstance(data, dict):
        raise ScenarioError(name, [Problem("", "a scenario is a mapping of keys (name, "
                                           "service, number, ...)", 1)])
    try:
        return Scenario.model_validate(data)
    except ValidationError as error:
        raise ScenarioError(name, _problems(error, node)) from None


def _problems(error: ValidationError, root: yaml.Node | None) -> list[Problem]:
    return [
        Problem(".".join(str(p) for p in loc), rule.replace("the format", "scenario format v1"),
                _line(root, loc))
        for loc, rule in describe_errors(error.errors())
    ]


def _line(node: yaml.Node | None, loc: list[Any]) -> int | None:
    """The line of the deepest YAML node the key path reaches."""
    if node is None:
        return None
    line = node.start_mark.line + 1
    for part in loc:
        child = None
        if isinstance(node, yaml.MappingNode):
            for key, value in node.value:
                if key.value == str(part):
                    child, line = value, key.start_mark.line + 1
                    break
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) \
                and part < len(node.value):
            child = node.value[part]
            line = child.start_mark.line + 1
        if child is None:
            break
        node = child
    return line
