"""Reading a worksheet: strict YAML (duplicate keys refused), a CSV task table, what-if overlays, validation.

``load_worksheet`` reads, overlays and validates; ``validate_worksheet`` reports *every* problem at once with
a field path such as ``tasks[3].traffic_share``.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from routecalc.errors import InputError, Problem, WorksheetError
from routecalc.worksheet.checks import cross_checks, section
from routecalc.worksheet.operations import operations_problems
from routecalc.worksheet.overlay import apply_overlay
from routecalc.worksheet.schema import SCHEMA_VERSION, ModelSpec, PolicySpec, TaskSpec, Worksheet
from routecalc.worksheet.tasks_csv import tasks_from_csv


class _UniqueKeyLoader(yaml.SafeLoader):
    """SafeLoader that refuses duplicate mapping keys instead of silently keeping the last one."""


def _construct_mapping(loader: _UniqueKeyLoader, node: yaml.MappingNode, deep: bool = False) -> dict:
    seen: dict[Any, int] = {}
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)
        if key in seen:
            raise yaml.constructor.ConstructorError(
                None,
                None,
                f"duplicate key {key!r} (first on line {seen[key] + 1})",
                key_node.start_mark,
            )
        seen[key] = key_node.start_mark.line
    return yaml.SafeLoader.construct_mapping(loader, node, deep=deep)


_UniqueKeyLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def parse_yaml(text: str, source: str) -> Any:
    """``yaml.safe_load`` semantics, but duplicate keys are an error; raises WorksheetError."""
    try:
        return yaml.load(text, Loader=_UniqueKeyLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise WorksheetError(source, [Problem(where, f"not valid YAML: {problem}")]) from None


def field_path(loc: Iterable[Any]) -> str:
    """``('tasks', 3, 'traffic_share')`` -> ``tasks[3].traffic_share``."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _pydantic_problems(err: ValidationError, prefix: tuple = ()) -> list[Problem]:
    problems = []
    for e in err.errors(include_url=False):
        loc = prefix + tuple(x for x in e["loc"] if not (isinstance(x, str) and x.startswith("function-")))
        if loc and loc[-1] == "rate":  # a probability written as a number: report it where it was written
            loc = loc[:-1]
        msg = re.sub(r" or instance of \w+", "", e["msg"].removeprefix("Value error, "))
        if e["type"] == "missing":
            msg = "required field is missing"
        elif e["type"] == "extra_forbidden":
            msg = "unknown key (typo?)"
        elif e["type"] not in ("value_error", "assertion_error") and "input" in e:
            msg = f"{msg} (got {_short(e['input'])})"
        problems.append(Problem(field_path(loc), msg))
    return problems


def validate_worksheet(data: Any, source: str = "worksheet", base_dir: Path | None = None) -> Worksheet:
    """Validate parsed worksheet data; raise WorksheetError listing every problem with its field path."""
    if not isinstance(data, dict):
        raise WorksheetError(source, [Problem("", "a worksheet is a YAML mapping (models:, tasks:, ...)")])
    problems: list[Problem] = []
    if isinstance(data.get("tasks"), str):
        csv_path = Path(data["tasks"])
        if not csv_path.is_absolute() and base_dir is not None:
            csv_path = base_dir / csv_path
        tasks, csv_problems = tasks_from_csv(csv_path)
        problems += csv_problems
        data = {**data, "tasks": tasks}
    if data.get("schema_version", SCHEMA_VERSION) != SCHEMA_VERSION:
        raise WorksheetError(
            source,
            [Problem("schema_version", f"this routecalc reads schema_version {SCHEMA_VERSION}")],
        )
    worksheet = None
    try:
        worksheet = Worksheet.model_validate(data)
    except ValidationError as err:
        problems += _pydantic_problems(err)
    models, _ = section(data, "models", ModelSpec)
    tasks, tasks_ok = section(data, "tasks", TaskSpec)
    policies, _ = section(data, "policies", PolicySpec)
    problems += cross_checks(data, models, tasks, policies, tasks_ok)
    problems += operations_problems(data)
    if problems or worksheet is None:
        raise WorksheetError(source, problems)
    return worksheet


def load_worksheet(path: str | Path, overlays: Iterable[str | Path] = ()) -> Worksheet:
    """Read, overlay (what-if scenarios) and validate a worksheet file (YAML)."""
    path = Path(path)
    data = read_yaml(path)
    for overlay in overlays:
        data = apply_overlay(data, read_yaml(Path(overlay)))
    return validate_worksheet(data, str(path), base_dir=path.parent)


def read_text(path: Path, error: type[InputError] = InputError, what: str = "file") -> str:
    """A user's input file as text; missing or unreadable is ``error`` (an InputError), never a traceback."""
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise error(f"{path}: no such {what}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise error(f"{path}: cannot read ({exc})") from None


def read_yaml(path: Path) -> Any:
    """Parse a YAML file strictly; a missing file or bad YAML is an InputError, not a traceback."""
    return parse_yaml(read_text(path), str(path))


def file_sha256(path: str | Path) -> str:
    """Hex SHA-256 of a file's bytes (provenance for reports and exports)."""
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()
