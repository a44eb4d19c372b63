"""``routecalc validate``: a worksheet's verdict as data, every problem with its field path and every warning.

The CLI renders it as lines or as the ``validate`` JSON output (``routecalc schema --output validate``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from routecalc.errors import InputError, Problem, WorksheetError
from routecalc.worksheet import Worksheet, worksheet_warnings


@dataclass(frozen=True)
class Validation:
    """Valid or not; ``problems`` (all of them, up to errors.MAX_PROBLEMS), ``warnings`` (plausibility and
    context-window warnings, only for a valid worksheet), and the worksheet when valid."""

    source: str
    problems: list[Problem] = field(default_factory=list)
    unlisted: int = 0
    sheet_warnings: list[str] = field(default_factory=list)  # plausibility (worksheet_warnings)
    window_warnings: list[str] = field(default_factory=list)  # prompts longer than a model's context window
    worksheet: Worksheet | None = None
    error: InputError | None = None  # what to raise for exit code 2 (None when valid)

    @property
    def warnings(self) -> list[str]:
        return [*self.sheet_warnings, *self.window_warnings]

    @property
    def valid(self) -> bool:
        return self.worksheet is not None and not self.problems

    def to_dict(self) -> dict[str, Any]:
        ws = self.worksheet
        return {
            "worksheet": self.source,
            "valid": self.valid,
            "problems": [{"path": p.path, "message": p.message} for p in self.problems],
            "unlisted_problems": self.unlisted,
            "warnings": self.warnings,
            "summary": None
            if ws is None
            else {
                "name": ws.name,
                "categories": len(ws.tasks),
                "models": len(ws.models),
                "policies": len(ws.policies),
            },
        }


def validation(source: str, load: Any) -> Validation:
    """Run ``load()`` (which reads and validates a worksheet) and collect its verdict: a WorksheetError's every
    problem, another InputError (missing file, bad YAML) as one problem, or the valid worksheet's warnings."""
    from routecalc.routes import window_warnings

    try:
        ws = load()
    except WorksheetError as exc:
        listed = exc.problems[:-1] if exc.unlisted else exc.problems
        return Validation(exc.source, list(listed), exc.unlisted, error=exc)
    except InputError as exc:
        return Validation(source, [Problem("", str(exc))], error=exc)
    return Validation(source, sheet_warnings=worksheet_warnings(ws), window_warnings=window_warnings(ws), worksheet=ws)
