"""A task table in CSV: one row per category, ``pass_rate.<model>``, ``validator.<field>``, ``constraints.<field>``."""

from __future__ import annotations

import csv
import datetime as dt
import io
from pathlib import Path
from typing import Any

from routecalc import limits
from routecalc.errors import InputError, Problem, field_path
from routecalc.limits import short_repr

_CSV_NUMBER = {
    "traffic_share",
    "quality_threshold",
    "latency_budget_s",
    "cached_share",
    "cache_write_share",
    "batch_share",
    "cost_bad_answer",
    "cost_failed",
}


def _csv_number(text: str) -> float | int:
    if len(text) > limits.MAX_INT_DIGITS:
        raise ValueError(text)
    value = float(text)
    return int(value) if value.is_integer() and "." not in text and "e" not in text.lower() else value


def _rows(path: Path) -> tuple[list[list[str]], list[int], list[Problem]]:
    """The table's rows with the line each starts on; an unreadable file or a broken line is a Problem."""
    try:
        text = limits.read_text(path, limits.MAX_WORKSHEET_BYTES, what="task table")
    except InputError as exc:
        return [], [], [Problem("tasks", str(exc))]
    reader = csv.reader(io.StringIO(text, newline=""))
    rows: list[list[str]] = []
    lines: list[int] = []
    start = 1
    try:
        for row in reader:
            rows.append(row)
            lines.append(start)
            start = reader.line_num + 1
    except csv.Error as exc:
        limit = csv.field_size_limit()
        why = f"a field longer than {limit:,} characters" if "field larger" in str(exc) else str(exc)
        return [], [], [Problem("tasks", f"task table {path.name}, line {reader.line_num}: cannot read it ({why})")]
    return rows, lines, []


def tasks_from_csv(path: Path) -> tuple[list[dict], list[Problem]]:
    """Read a task table: one row per category; ``pass_rate.<model>``, ``validator.<field>`` and
    ``constraints.<field>`` columns (model lists separated by ``;``).

    Token bands come as ``tokens_in`` (fixed) or ``tokens_in_p50`` + ``tokens_in_p95`` (same for out). The file is
    bounded like a worksheet (UTF-8, at most 16 MiB); a row with more or fewer cells than the header is a problem
    naming its line, as is every cell that is not a number or date where one is needed.
    """
    rows, lines, problems = _rows(path)
    if problems:
        return [], problems
    rows_lines = [(r, n) for r, n in zip(rows, lines, strict=True) if any(cell.strip() for cell in r)]
    if len(rows_lines) < 2:
        return [], [Problem("tasks", f"task table {path.name} has no rows")]
    header = [h.strip() for h in rows_lines[0][0]]
    columns = set(header)
    for col in ("name", "traffic_share", "quality_threshold"):
        if col not in columns:
            problems.append(Problem("tasks", f"task table {path.name} is missing column {col!r}"))
    for col in sorted({h for h in header if header.count(h) > 1}):
        problems.append(Problem("tasks", f"task table {path.name} has column {short_repr(col)} twice"))
    tasks: list[dict] = []
    for i, (row, line) in enumerate(rows_lines[1:]):
        where = f"({path.name} line {line})"
        if len(row) != len(header):
            problems.append(
                Problem(f"tasks[{i}]", f"{len(row)} cells but the header has {len(header)} columns {where}")
            )
        task: dict[str, Any] = {}
        for col, raw in zip(header, row, strict=False):
            raw = raw.strip()
            if raw == "":
                continue
            try:
                if col == "name":
                    task["name"] = raw
                elif col == "last_reviewed":
                    task["last_reviewed"] = dt.date.fromisoformat(raw)
                elif col in _CSV_NUMBER:
                    task[col] = _csv_number(raw)
                elif col.startswith("pass_rate."):
                    task.setdefault("pass_rates", {})[col.removeprefix("pass_rate.")] = _csv_number(raw)
                elif col.startswith("validator."):
                    task.setdefault("validator", {})[col.removeprefix("validator.")] = _csv_number(raw)
                elif col in ("constraints.allowed_models", "constraints.forbidden_models"):
                    names = [n.strip() for n in raw.split(";") if n.strip()]
                    task.setdefault("constraints", {})[col.removeprefix("constraints.")] = names
                elif col.startswith("constraints."):
                    task.setdefault("constraints", {})[col.removeprefix("constraints.")] = _csv_number(raw)
                elif col.startswith(("tokens_in", "tokens_out")):
                    base, _, q = col.partition("_p")
                    if q:
                        band = task.setdefault(base, {})
                        if isinstance(band, dict):
                            band[f"p{q}"] = _csv_number(raw)
                    else:
                        task[col] = _csv_number(raw)
                else:
                    problems.append(
                        Problem(field_path((f"tasks[{i}]", col)), f"unknown column {short_repr(col)} {where}")
                    )
            except ValueError:
                problems.append(
                    Problem(field_path((f"tasks[{i}]", col)), f"not a number/date: {short_repr(raw)} {where}")
                )
        task.setdefault("pass_rates", {})
        tasks.append(task)
    return tasks, problems
