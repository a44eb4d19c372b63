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

from pydantic import ValidationError

from routecalc import limits
from routecalc.errors import MAX_PROBLEMS, InputError, Problem, WorksheetError, field_path
from routecalc.gcpause import gc_paused
from routecalc.limits import short_repr
from routecalc.worksheet.checks import cross_checks, section
from routecalc.worksheet.operations import operations_problems
from routecalc.worksheet.overlay import apply_overlay
from routecalc.worksheet.schema import (
    ROUTE_TAGS,
    SCHEMA_VERSION,
    ClassifierSpec,
    ModelSpec,
    PolicySpec,
    TaskSpec,
    Worksheet,
)
from routecalc.worksheet.strict_yaml import parse_yaml
from routecalc.worksheet.tasks_csv import tasks_from_csv


def _bounded(msg: str, limit: int = 300) -> str:
    """Pydantic's message, cut: it may quote a pattern or a choice list, never the whole input."""
    return msg if len(msg) <= limit else msg[: limit - 3] + "..."


def _pydantic_problems(err: ValidationError, prefix: tuple = ()) -> tuple[list[Problem], int]:
    """Problems for the first ``MAX_PROBLEMS`` of pydantic's errors, and how many more there are."""
    problems = []
    n = err.error_count()
    for e in err.errors(include_url=False)[:MAX_PROBLEMS]:
        loc = prefix + tuple(
            x for x in e["loc"] if not (isinstance(x, str) and (x.startswith("function-") or x in ROUTE_TAGS))
        )
        if loc and loc[-1] == "rate":  # a probability written as a number: report it where it was written
            loc = loc[:-1]
        msg = re.sub(r" or instance of \w+", "", e["msg"].removeprefix("Value error, "))
        if e["type"] == "missing":
            msg = "required field is missing"
        elif e["type"] == "extra_forbidden":
            msg = "unknown key (typo?)"
        elif e["type"] not in ("value_error", "assertion_error") and "input" in e:
            msg = f"{_bounded(msg)} (got {short_repr(e['input'])})"
        problems.append(Problem(field_path(loc), _bounded(msg)))
    return problems, max(n - MAX_PROBLEMS, 0)


@gc_paused()
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
    unlisted = 0
    try:
        worksheet = Worksheet.model_validate(data)
    except ValidationError as err:
        listed, unlisted = _pydantic_problems(err)
        problems += listed
    if worksheet is not None:  # every item is valid: the sections are the worksheet's own (not validated again)
        models, tasks, policies, classifiers = (
            list(enumerate(items))
            for items in (worksheet.models, worksheet.tasks, worksheet.policies, worksheet.classifiers)
        )
    else:  # each item on its own, so cross checks run on the valid ones
        models, _ = section(data, "models", ModelSpec)
        tasks, _ = section(data, "tasks", TaskSpec)
        policies, _ = section(data, "policies", PolicySpec)
        classifiers, _ = section(data, "classifiers", ClassifierSpec)
    problems += cross_checks(data, models, tasks, policies, classifiers)
    problems += operations_problems(data)
    if problems or worksheet is None:
        raise WorksheetError(source, problems, unlisted)
    return worksheet


def load_worksheet(path: str | Path, overlays: Iterable[str | Path] = ()) -> Worksheet:
    """Read, overlay (what-if scenarios) and validate a worksheet file (YAML).

    When the worksheet with its overlays fails validation, each problem says which overlay brought it in (the
    first after which it appears), so a broken scenario is not mistaken for a broken worksheet.
    """
    path = Path(path)
    return _overlaid(read_yaml(path), str(path), path.parent, overlays)


def load_worksheet_text(
    text: str, source: str = "<stdin>", base_dir: str | Path = ".", overlays: Iterable[str | Path] = ()
) -> Worksheet:
    """``load_worksheet`` for YAML already read (e.g. from stdin): ``source`` names it in messages, ``base_dir``
    is where a relative ``tasks: file.csv`` is looked for."""
    if len(text.encode("utf-8")) > limits.MAX_WORKSHEET_BYTES:
        raise InputError(f"{source}: a worksheet may have at most {limits.MAX_WORKSHEET_BYTES // limits.MIB} MiB")
    return _overlaid(parse_yaml(text, source), source, Path(base_dir), overlays)


def _overlaid(base: Any, source: str, base_dir: Path, overlays: Iterable[str | Path]) -> Worksheet:
    steps: list[tuple[str, Any]] = []
    data = base
    for overlay in overlays:
        data = apply_overlay(data, read_yaml(Path(overlay)), str(overlay))
        steps.append((str(overlay), data))
    try:
        return validate_worksheet(data, source, base_dir=base_dir)
    except WorksheetError as err:
        if not steps:
            raise
        raise _attributed(err, base, steps, source, base_dir) from None


def _problems(data: Any, source: str, base_dir: Path) -> set[Problem]:
    try:
        validate_worksheet(data, source, base_dir=base_dir)
    except WorksheetError as err:
        return set(err.problems)
    return set()


def _attributed(
    err: WorksheetError, base: Any, steps: list[tuple[str, Any]], source: str, base_dir: Path
) -> WorksheetError:
    """The error with each problem tagged by the overlay that introduced it (validation re-run, error path only)."""
    seen = _problems(base, source, base_dir)
    origin: dict[Problem, str] = {}
    for name, data in steps:
        now = _problems(data, source, base_dir)
        for p in now - seen:
            origin.setdefault(p, name)
        seen = now
    listed = err.problems[:-1] if err.unlisted else err.problems  # without the "and N more" line
    problems = [Problem(p.path, f"{p.message} (after scenario {origin[p]})") if p in origin else p for p in listed]
    names = sorted(set(origin.values()), key=[n for n, _ in steps].index)
    label = f"{err.source} with scenario {', '.join(names)}" if names else err.source
    return WorksheetError(label, problems, err.unlisted)


def read_text(path: Path, error: type[InputError] = InputError, what: str = "file") -> str:
    """A worksheet-sized input file as UTF-8 text: a regular file of at most 16 MiB (``limits``), read with a
    bound; missing, unreadable, too large or not a file is ``error`` (an InputError), never a traceback or a hang."""
    return limits.read_text(path, limits.MAX_WORKSHEET_BYTES, error, what)


def read_yaml(path: Path) -> Any:
    """Parse a YAML file strictly; a missing file or bad YAML is an InputError, not a traceback."""
    return parse_yaml(read_text(path), str(path))


def file_sha256(path: str | Path, limit: int = limits.MAX_PRICE_MAP_BYTES) -> str:
    """Hex SHA-256 of a file's bytes (provenance for reports and exports); bounded like every input read."""
    return hashlib.sha256(limits.read_bytes(path, limit)).hexdigest()
