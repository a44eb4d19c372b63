"""One exception hierarchy: everything routecalc raises on purpose derives from RoutecalcError.

The CLI turns any RoutecalcError into a red message and the error's ``exit_code``; anything else is a bug.
Exit codes: 0 ok, 1 a check the user asked for failed (CheckFailed) or another error, 2 invalid input
(InputError), 3 refused to overwrite a file routecalc did not write (OutputExistsError).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Problem:
    """One thing wrong with an input, located by a field path such as ``tasks[3].traffic_share``."""

    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}" if self.path else self.message


def field_path(loc: Iterable[Any]) -> str:
    """``('tasks', 3, 'traffic_share')`` -> ``tasks[3].traffic_share`` (the path a Problem is located by)."""
    out = ""
    for part in loc:
        if isinstance(part, int) and not isinstance(part, bool):
            out += f"[{part}]" if part.bit_length() <= 64 else "[<huge integer>]"
            continue
        if isinstance(part, str):
            text = part
        elif isinstance(part, bool | float) or part is None:
            text = repr(part)  # a YAML key such as ``yes`` or ``~`` (not a string)
        else:
            text = f"<{type(part).__name__}>"
        text = text if len(text) <= 40 else text[:37] + "..."
        if not text.isprintable():
            text = repr(text)[1:-1]  # control characters shown escaped, never sent to a terminal
        out += ("." if out else "") + text
    return out


class RoutecalcError(Exception):
    """Base class of every error routecalc reports to a user."""

    exit_code = 1


class InputError(RoutecalcError):
    """The user's input (worksheet, price file, option) is unusable; exit code 2."""

    exit_code = 2


MAX_PROBLEMS = 200  # problems kept (and shown) per error; past this, one line says how many more there are


class WorksheetError(InputError):
    """A worksheet failed validation; carries every problem found (up to ``MAX_PROBLEMS``), not just the first."""

    def __init__(self, source: str, problems: list[Problem], unlisted: int = 0):
        self.source = source
        self.problems = list(problems[:MAX_PROBLEMS])
        more = unlisted + max(len(problems) - MAX_PROBLEMS, 0)
        self.unlisted = more  # the last problem says how many were left out
        if more:
            self.problems.append(Problem("", f"... and {more:,} more problem(s) not listed: fix these first"))
        n = len(self.problems)
        lines = "\n".join(f"  - {p}" for p in self.problems)
        super().__init__(f"{source}: {n} problem{'s' if n != 1 else ''}\n{lines}")


class PolicyError(InputError):
    """A policy named on the command line does not exist or cannot be used for the request."""


class PriceSourceError(InputError):
    """A price map could not be found or read."""


class ExportError(InputError):
    """The worksheet cannot be exported as asked: the config would not load or would misroute (a name collision,
    a provider the target lacks, no winner to export, ...). Bad input for this export: exit code 2."""


class OutputExistsError(RoutecalcError):
    """Refusing to replace a file routecalc did not create (use --force)."""

    exit_code = 3


class CheckFailed(RoutecalcError):
    """A check the user asked for did not pass (``compare --expect``, ``--require-winner``,
    ``--max-monthly-cost``): the output was produced in full, and the message says which check failed and why.
    Exit code 1, so a CI job fails on it while bad input (2) stays distinguishable."""

    exit_code = 1

    def __init__(self, failures: list[str]):
        self.failures = list(failures)
        n = len(self.failures)
        super().__init__(f"{n} check{'s' if n != 1 else ''} failed:\n" + "\n".join(f"  - {f}" for f in self.failures))
