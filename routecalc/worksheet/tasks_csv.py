"""A task table in CSV: one row per category, ``pass_rate.<model>``, ``validator.<field>``, ``constraints.<field>``."""

from __future__ import annotations

import csv
import datetime as dt
from pathlib import Path
from typing import Any

from routecalc.errors import Problem

_CSV_NUMBER = {
    "traffic_share",
    "quality_threshold",
    "latency_budget_s",
    "cached_share",
    "cost_bad_answer",
    "cost_failed",
}


def _csv_number(text: str) -> float | int:
    value = float(text)
    return int(value) if value.is_integer() and "." not in text and "e" not in text.lower() else value


def tasks_from_csv(path: Path) -> tuple[list[dict], list[Problem]]:
    """Read a task table: one row per category; ``pass_rate.<model>``, ``validator.<field>`` and
    ``constraints.<field>`` columns (model lists separated by ``;``).

    Token bands come as ``tokens_in`` (fixed) or ``tokens_in_p50`` + ``tokens_in_p95`` (same for out).
    """
    problems: list[Problem] = []
    tasks: list[dict] = []
    try:
        with path.open(newline="", encoding="utf-8") as fh:
            rows = list(csv.DictReader(fh))
    except OSError as exc:
        return [], [Problem("tasks", f"cannot read task table {path}: {exc.strerror}")]
    if not rows:
        return [], [Problem("tasks", f"task table {path} has no rows")]
    columns = set(rows[0])
    for col in ("name", "traffic_share", "quality_threshold"):
        if col not in columns:
            problems.append(Problem("tasks", f"task table {path.name} is missing column {col!r}"))
    for i, row in enumerate(rows):
        task: dict[str, Any] = {}
        for col, raw in row.items():
            if col is None or raw is None or raw.strip() == "":
                continue
            raw = raw.strip()
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
                    problems.append(Problem(f"tasks[{i}].{col}", f"unknown column {col!r} in {path.name}"))
            except ValueError:
                problems.append(Problem(f"tasks[{i}].{col}", f"not a number/date: {raw!r} ({path.name})"))
        task.setdefault("pass_rates", {})
        tasks.append(task)
    return tasks, problems
