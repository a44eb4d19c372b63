"""One exception hierarchy: everything routecalc raises on purpose derives from RoutecalcError.

The CLI turns any RoutecalcError into a red message and the error's ``exit_code``; anything else is a bug.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Problem:
    """One thing wrong with an input, located by a field path such as ``tasks[3].traffic_share``."""

    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}" if self.path else self.message


class RoutecalcError(Exception):
    """Base class of every error routecalc reports to a user."""

    exit_code = 1


class InputError(RoutecalcError):
    """The user's input (worksheet, price file, option) is unusable; exit code 2."""

    exit_code = 2


class WorksheetError(InputError):
    """A worksheet failed validation; carries every problem found, not just the first."""

    def __init__(self, source: str, problems: list[Problem]):
        self.source = source
        self.problems = list(problems)
        n = len(self.problems)
        lines = "\n".join(f"  - {p}" for p in self.problems)
        super().__init__(f"{source}: {n} problem{'s' if n != 1 else ''}\n{lines}")


class PolicyError(InputError):
    """A policy named on the command line does not exist or cannot be used for the request."""


class PriceSourceError(InputError):
    """A price map could not be found or read."""


class ExportError(RoutecalcError):
    """An export would produce a config the target router cannot load (cycle, unknown group, ...)."""


class OutputExistsError(RoutecalcError):
    """Refusing to replace a file routecalc did not create (use --force)."""

    exit_code = 3
