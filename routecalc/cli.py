"""The ``routecalc`` command line: parse options, call the library, render. Nothing is computed here.

Heavy modules (numpy, pydantic, matplotlib, litellm) are imported inside the commands that use them, so
``routecalc --help`` starts fast.
"""

from __future__ import annotations

import datetime as dt
import sys
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from typer.core import TyperGroup

from routecalc.errors import RoutecalcError, WorksheetError

console = Console()
err_console = Console(stderr=True)


class _Group(TyperGroup):
    """The one place that turns a RoutecalcError into a red message and its exit code."""

    def invoke(self, ctx: Any) -> Any:
        try:
            return super().invoke(ctx)
        except WorksheetError as exc:
            err_console.print(
                f"[bold red]error:[/] {escape(exc.source)}: {len(exc.problems)} problem(s)", highlight=False
            )
            for p in exc.problems:
                err_console.print(
                    f"  [red]✗[/] [bold]{escape(p.path or '(top)')}[/]: {escape(p.message)}", highlight=False
                )
            raise typer.Exit(exc.exit_code) from None
        except RoutecalcError as exc:
            err_console.print(f"[bold red]error:[/] {escape(str(exc))}", highlight=False)
            raise typer.Exit(exc.exit_code) from None


app = typer.Typer(
    cls=_Group,
    help="Estimate the cost, latency and quality of LLM routing policies before you ship them.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode="rich",
)


class Format(StrEnum):
    table = "table"
    json = "json"
    csv = "csv"


WorksheetArg = Annotated[
    Path, typer.Argument(help="Worksheet YAML file (see README: Worksheet format).", show_default=False)
]
SamplesOpt = Annotated[
    int,
    typer.Option("--samples", "-n", min=1_000, help="Monte Carlo requests to simulate (latency percentiles)."),
]
SeedOpt = Annotated[int, typer.Option("--seed", "-s", help="Monte Carlo seed: same seed, same numbers.")]
ScenarioOpt = Annotated[
    list[Path] | None,
    typer.Option("--scenario", help="What-if overlay YAML merged onto the worksheet (repeatable, in order)."),
]
TodayOpt = Annotated[
    str | None,
    typer.Option("--today", help="Date for review-age warnings, YYYY-MM-DD (default: today).", show_default=False),
]


def _today(value: str | None) -> dt.date:
    from routecalc.errors import InputError

    if value is None:
        return dt.date.today()
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise InputError(f"--today: not a date (YYYY-MM-DD): {value!r}") from None


@app.command()
def compare(
    worksheet: WorksheetArg,
    samples: SamplesOpt = 200_000,
    seed: SeedOpt = 0,
    fmt: Annotated[Format, typer.Option("--format", "-f", help="Output format.")] = Format.table,
    scenario: ScenarioOpt = None,
    today: TodayOpt = None,
) -> None:
    """Compare every policy in WORKSHEET side by side, plus the all-to-strongest baseline.

    Shows cost per request and per month, savings vs the baseline, quality, P50/P95/P99 latency,
    escalation and fallback rates, which policies meet every category's targets, and the winner.
    """
    from routecalc.report import tables
    from routecalc.results import compare as run_compare
    from routecalc.worksheet import load_worksheet

    ws = load_worksheet(worksheet, scenario or ())
    result = run_compare(ws, samples=samples, seed=seed, today=_today(today))
    if fmt is Format.json:
        sys.stdout.write(tables.comparison_json(result) + "\n")
    elif fmt is Format.csv:
        sys.stdout.write(tables.comparison_csv(result))
    else:
        console.print(tables.render_comparison(result))


@app.command()
def validate(
    worksheet: WorksheetArg,
    scenario: ScenarioOpt = None,
) -> None:
    """Check WORKSHEET and list every problem with its field path (exit code 2 if any)."""
    from routecalc.worksheet import load_worksheet

    ws = load_worksheet(worksheet, scenario or ())
    console.print(
        f"[green]✓[/] {escape(str(worksheet))}: valid — {len(ws.tasks)} categories, {len(ws.models)} models, "
        f"{len(ws.policies)} policies",
        highlight=False,
    )


@app.command()
def schema(
    out: Annotated[Path | None, typer.Option("--out", "-o", help="Write to this file instead of stdout.")] = None,
    force: Annotated[bool, typer.Option("--force", help="Overwrite an existing file.")] = False,
) -> None:
    """Print the worksheet JSON Schema (for editor validation, e.g. yaml-language-server)."""
    import json

    from routecalc.outputs import check_new_file, write_atomic
    from routecalc.worksheet import json_schema

    text = json.dumps(json_schema(), indent=2) + "\n"
    if out is None:
        sys.stdout.write(text)
        return
    check_new_file(out, force)
    write_atomic(out, text)
    console.print(f"wrote {out}")


@app.callback(invoke_without_command=True)
def _root(
    version: Annotated[bool, typer.Option("--version", help="Show the version and exit.")] = False,
) -> None:
    """Estimate the cost, latency and quality of LLM routing policies before you ship them."""
    if version:
        from routecalc._version import __version__

        console.print(f"routecalc {__version__}")
        raise typer.Exit()


from routecalc._cli_prices import diff as _diff, prices_app as _prices_app  # noqa: E402, I001

app.add_typer(_prices_app, name="prices")
app.command("diff")(_diff)


from routecalc._cli_report import report as _report  # noqa: E402

app.command("report")(_report)


from routecalc._cli_export import export as _export  # noqa: E402

app.command("export")(_export)


def main() -> None:
    """Console-script entry point."""
    app()
