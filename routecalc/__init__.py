"""routecalc: estimate what an LLM routing policy costs, how fast it answers and how often it is right.

>>> import routecalc
>>> ws = routecalc.load_worksheet("worksheets/support-triage.yaml")
>>> result = routecalc.compare(ws, samples=100_000, seed=0)
>>> result.winner
"""

from routecalc._version import __version__
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
