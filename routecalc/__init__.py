"""routecalc: estimate what an LLM routing policy costs, how fast it answers and how often it is right.

    >>> import routecalc
    >>> ws = routecalc.load_worksheet("worksheets/support-triage.yaml")
    >>> result = routecalc.compare(ws, samples=100_000, seed=0)
    >>> result.winner

Names are imported on first use (PEP 562), so ``routecalc --help`` does not pay for numpy or pydantic.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from routecalc._version import __version__

_EXPORTS = {
    "RoutingProblem": "routecalc.chains",
    "compile_worksheet": "routecalc.chains",
    "Metrics": "routecalc.engine",
    "MonteCarlo": "routecalc.engine",
    "expected_values": "routecalc.engine",
    "simulate": "routecalc.engine",
    "ExportError": "routecalc.errors",
    "InputError": "routecalc.errors",
    "OutputExistsError": "routecalc.errors",
    "PolicyError": "routecalc.errors",
    "PriceSourceError": "routecalc.errors",
    "Problem": "routecalc.errors",
    "RoutecalcError": "routecalc.errors",
    "WorksheetError": "routecalc.errors",
    "Comparison": "routecalc.results",
    "PolicyResult": "routecalc.results",
    "compare": "routecalc.results",
    "Worksheet": "routecalc.worksheet",
    "load_worksheet": "routecalc.worksheet",
    "validate_worksheet": "routecalc.worksheet",
}

__all__ = [
    "Comparison",
    "ExportError",
    "InputError",
    "Metrics",
    "MonteCarlo",
    "OutputExistsError",
    "PolicyError",
    "PolicyResult",
    "PriceSourceError",
    "Problem",
    "RoutecalcError",
    "RoutingProblem",
    "Worksheet",
    "WorksheetError",
    "__version__",
    "compare",
    "compile_worksheet",
    "expected_values",
    "load_worksheet",
    "simulate",
    "validate_worksheet",
]

if TYPE_CHECKING:
    from routecalc.chains import RoutingProblem, compile_worksheet
    from routecalc.engine import Metrics, MonteCarlo, expected_values, simulate
    from routecalc.errors import (
        ExportError,
        InputError,
        OutputExistsError,
        PolicyError,
        PriceSourceError,
        Problem,
        RoutecalcError,
        WorksheetError,
    )
    from routecalc.results import Comparison, PolicyResult, compare
    from routecalc.worksheet import Worksheet, load_worksheet, validate_worksheet


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'routecalc' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
