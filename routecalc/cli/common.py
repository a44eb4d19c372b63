"""What every command shares: the app and its sub-apps, the error-to-exit-code group, option types and small
parsers."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer
from typer.core import TyperGroup

from routecalc.cli.support import (
    _lit,
    err_console,
)
from routecalc.contract import OUTPUTS
from routecalc.errors import RoutecalcError, WorksheetError
from routecalc.limits import MAX_SEED


class _Group(TyperGroup):
    """The one place that turns a RoutecalcError into a red message and its exit code: 1 a check failed
    (CheckFailed) or another error, 2 invalid input (InputError), 3 refused to overwrite (OutputExistsError)."""

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        args = hoist(args, GLOBAL_FLAGS)
        return super().parse_args(ctx, optional_value(args, "--uncertainty", str(UNCERTAINTY_DRAWS)))

    def invoke(self, ctx: Any) -> Any:
        try:
            return super().invoke(ctx)
        except WorksheetError as exc:
            err_console.print(
                f"[bold red]error:[/] {_lit(exc.source)}: {len(exc.problems)} problem(s)", markup=True, highlight=False
            )
            for p in exc.problems:
                err_console.print(
                    f"  [red]✗[/] [bold]{_lit(p.path or '(top)')}[/]: {_lit(p.message)}", markup=True, highlight=False
                )
            raise typer.Exit(exc.exit_code) from None
        except RoutecalcError as exc:
            err_console.print(f"[bold red]error:[/] {_lit(exc, keep_newlines=True)}", markup=True, highlight=False)
            raise typer.Exit(exc.exit_code) from None


UNCERTAINTY_DRAWS = 1_000  # --uncertainty without N (routecalc.decide.uncertainty.DEFAULT_DRAWS)


GLOBAL_FLAGS = ("-q", "--quiet", "-v", "--verbose")


def hoist(args: list[str], flags: Sequence[str]) -> list[str]:
    """Root flags given after the command (``routecalc compare W -q``) moved before it, where the root command
    reads them; words after ``--`` are left alone."""
    cut = args.index("--") if "--" in args else len(args)
    found = [a for a in args[:cut] if a in flags]
    return found + [a for a in args[:cut] if a not in flags] + args[cut:]


def optional_value(args: list[str], flag: str, default: str) -> list[str]:
    """Let ``flag`` be given without its value (typer options always take one): where the next word is not a
    whole number, insert ``default``. ``--flag=N`` and words after ``--`` are left alone."""
    out: list[str] = []
    for i, word in enumerate(args):
        if word == "--":
            return out + args[i:]
        out.append(word)
        nxt = args[i + 1] if i + 1 < len(args) else ""
        if word == flag and not nxt.lstrip("+-").isdigit():
            out.append(default)
    return out


app = typer.Typer(
    cls=_Group,
    help="Estimate the cost, latency and quality of LLM routing policies before you ship them.",
    epilog="Exit codes: 0 ok · 1 a check failed (compare --expect, --require-winner, --max-monthly-cost) or another "
    "error · 2 invalid input (worksheet, file, option) · 3 refused to overwrite a file routecalc did not write "
    "(--force).",
    no_args_is_help=True,
    add_completion=True,
    pretty_exceptions_enable=False,
    rich_markup_mode="rich",
)
prices_app = typer.Typer(
    help="Read model prices and context windows from a LiteLLM price map (model_prices_and_context_window.json).",
    no_args_is_help=True,
    rich_markup_mode="rich",
)
app.add_typer(prices_app, name="prices")
calibrate_app = typer.Typer(
    help="Fill a worksheet's numbers from data: per-prompt eval results (evals), request logs (logs).",
    no_args_is_help=True,
    rich_markup_mode="rich",
)
app.add_typer(calibrate_app, name="calibrate")


class Format(StrEnum):
    table = "table"
    json = "json"
    csv = "csv"
    xlsx = "xlsx"


class ReportFormat(StrEnum):
    html = "html"
    md = "md"
    both = "both"


class Target(StrEnum):
    litellm = "litellm"
    portkey = "portkey"
    json = "json"


class ShowFormat(StrEnum):
    table = "table"
    json = "json"


class SimulateFormat(StrEnum):
    table = "table"
    json = "json"
    csv = "csv"


class JointMode(StrEnum):
    table = "table"
    correlation = "correlation"
    independent = "independent"


class EvalLayout(StrEnum):
    auto = "auto"
    long = "long"
    wide = "wide"


class EvalFormat(StrEnum):
    auto = "auto"
    csv = "csv"
    tsv = "tsv"
    jsonl = "jsonl"
    parquet = "parquet"


class LogShape(StrEnum):
    auto = "auto"
    litellm = "litellm"
    openai = "openai"
    generic = "generic"


class RankBy(StrEnum):
    cost = "cost"
    savings = "savings"
    quality = "quality"


class DiffFormat(StrEnum):
    table = "table"
    json = "json"
    md = "md"


class Objective(StrEnum):
    cost = "cost"
    cost_risk = "cost+risk"
    latency = "latency"


WorksheetArg = Annotated[
    Path,
    typer.Argument(
        help="Worksheet YAML file (see README: The worksheet); '-' reads it from stdin, example:NAME a shipped "
        "example (routecalc examples).",
        show_default=False,
    ),
]


def _samples(value: str | int) -> int:
    from routecalc.errors import InputError
    from routecalc.limits import parse_samples

    try:
        return parse_samples(str(value))
    except InputError as exc:
        raise typer.BadParameter(str(exc).removeprefix("--samples: ")) from None


SamplesOpt = Annotated[
    int,
    typer.Option(
        "--samples",
        "-n",
        parser=_samples,
        metavar="N",
        help="Monte Carlo requests to simulate (latency percentiles): 1,000 to 2.1e9; 200000, 2e5, 1e8 all work.",
    ),
]
SeedOpt = Annotated[
    int,
    typer.Option("--seed", "-s", min=0, max=MAX_SEED, help="Monte Carlo seed (0 to 2^63-1): same seed, same numbers."),
]
ScenarioOpt = Annotated[
    list[Path] | None,
    typer.Option("--scenario", help="What-if overlay YAML merged onto the worksheet (repeatable, in order)."),
]
TodayOpt = Annotated[
    str | None,
    typer.Option("--today", help="Date for review-age warnings, YYYY-MM-DD (default: today).", show_default=False),
]
UncertaintyOpt = Annotated[
    int | None,
    typer.Option(
        "--uncertainty",
        metavar="[N]",
        show_default=False,
        help=(
            "Also draw N parameter sets (1,000 if N is left out) from the posteriors of the eval counts "
            "({passed, of}, ...) and show 90 % intervals of cost, savings and quality, the probability that each "
            "policy meets every target and that it is the winner, and which eval set is too small. "
            "Seeded by --seed."
        ),
    ),
]
ForceOpt = Annotated[bool, typer.Option("--force", help="Overwrite an existing output file.")]
ObjectiveOpt = Annotated[
    Objective,
    typer.Option(
        "--objective",
        help="Winner rule among policies meeting every target: least spend (cost), spend + operational risk "
        "of bad and failed answers (cost+risk), or mean latency (latency).",
    ),
]
OutFileOpt = Annotated[
    Path | None, typer.Option("--out", "-o", help="Write here instead of stdout.", show_default=False)
]
FromOpt = Annotated[
    Path | None,
    typer.Option(
        "--from",
        help="A LiteLLM-format price map JSON (e.g. a newer download). Default: the copy bundled with litellm.",
        show_default=False,
    ),
]
RateOpt = Annotated[
    float | None,
    typer.Option(
        "--rate",
        help="Exchange rate for a non-USD worksheet: 1 USD = RATE worksheet currency (LiteLLM prices are USD).",
        show_default=False,
    ),
]


def _today(value: str | None) -> dt.date:
    from routecalc.errors import InputError

    if value is None:
        return dt.date.today()
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise InputError(f"--today: not a date (YYYY-MM-DD): {value!r}") from None


def _check_draws(draws: int | None) -> None:
    if draws is not None:
        from routecalc.decide.uncertainty import check_draws

        check_draws(draws, "--uncertainty")


def _uncertainty(ws: Any, result: Any, draws: int | None, seed: int) -> Any:
    """``--uncertainty N``: the posterior draws of the comparison (None without the option)."""
    if draws is None:
        return None
    from routecalc.decide.uncertainty import analyse

    return analyse(ws, result, draws, seed)


def _swing(text: str) -> float:
    from routecalc.decide.sensitivity import parse_swing

    return parse_swing(text)


SCHEMA_KINDS = ["worksheet", *OUTPUTS]  # the worksheet's schema, then one per JSON output kind
SchemaKind = StrEnum("SchemaKind", {k: k for k in SCHEMA_KINDS})  # type: ignore[misc]
