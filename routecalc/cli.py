"""The ``routecalc`` command line: parse options, call the library, render. Nothing is computed here.

Heavy modules (numpy, pydantic, matplotlib) are imported inside the commands that use them, so
``routecalc --help`` starts fast; litellm is never imported (its price map is read from disk).
"""

from __future__ import annotations

import datetime as dt
import sys
from collections.abc import Sequence
from dataclasses import replace
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.text import Text
from typer.core import TyperGroup

from routecalc.cli_support import (
    STDIN,
    STRONGEST_NAME,
    _done,
    _editable,
    _emit,
    _emit_rich,
    _label,
    _lit,
    _load,
    _note,
    _path,
    _progress,
    _read_ws,
    _sha256,
    _state,
    _stdin_text,
    _warn,
    console,
    err_console,
)
from routecalc.contract import OUTPUTS
from routecalc.errors import RoutecalcError, WorksheetError
from routecalc.format import printable
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


@app.command()
def compare(
    worksheet: WorksheetArg,
    samples: SamplesOpt = 200_000,
    seed: SeedOpt = 0,
    fmt: Annotated[
        Format, typer.Option("--format", "-f", help="Output format (xlsx: a workbook, needs --out).")
    ] = Format.table,
    scenario: ScenarioOpt = None,
    today: TodayOpt = None,
    uncertainty: UncertaintyOpt = None,
    objective: ObjectiveOpt = Objective.cost,
    expect: Annotated[
        str | None,
        typer.Option(
            "--expect", metavar="POLICY", help="CI check: exit 1 unless POLICY is the winner.", show_default=False
        ),
    ] = None,
    require_winner: Annotated[
        bool, typer.Option("--require-winner", help="CI check: exit 1 when no policy meets every target.")
    ] = False,
    max_monthly_cost: Annotated[
        float | None,
        typer.Option(
            "--max-monthly-cost",
            metavar="X",
            help="CI check: exit 1 when the winner (or the --expect policy) costs more than X per month "
            "(worksheet currency).",
            show_default=False,
        ),
    ] = None,
    out: Annotated[
        Path | None,
        typer.Option("--out", "-o", help="Write the output here instead of stdout.", show_default=False),
    ] = None,
    force: ForceOpt = False,
) -> None:
    """Compare every policy in WORKSHEET side by side, plus the all-to-strongest baseline.

    Shows cost per request and per month, the cost change vs the baseline (+ costs more, - saves), quality,
    P50/P95/P99 latency, escalation and fallback rates, which policies meet every category's targets, and the
    winner. With --uncertainty: how sure that is, given the eval counts behind the pass rates. With --expect,
    --require-winner or --max-monthly-cost: the output is shown in full, then exit code 1 if a check fails.
    """
    from routecalc.decide.whatif import pattern_effects
    from routecalc.errors import CheckFailed, InputError
    from routecalc.gate import Checks, run_checks
    from routecalc.outputs import check_new_file
    from routecalc.report import tables
    from routecalc.report.patterns import render_patterns
    from routecalc.results import compare as run_compare

    _check_draws(uncertainty)
    if fmt is Format.xlsx and out is None:
        raise InputError("--format xlsx writes a binary workbook: give --out FILE.xlsx")
    if out is not None:
        check_new_file(out, force)  # refuse before spending time on the estimate
    checks = Checks(expect=expect, require_winner=require_winner, max_monthly_cost=max_monthly_cost)
    ws = _load(worksheet, scenario or ())
    checks.validate([p.name for p in ws.policies] + [STRONGEST_NAME])
    result = run_compare(
        ws, samples=samples, seed=seed, today=_today(today), objective=objective.value, progress=_progress()
    )
    risk = _uncertainty(ws, result, uncertainty, seed)
    effects = pattern_effects(ws, result)
    verdicts = run_checks(result, checks)
    if fmt is Format.json:
        _emit(tables.comparison_json(result, risk, effects, verdicts) + "\n", out)
    elif fmt is Format.csv:
        _emit(tables.comparison_csv(result, risk), out)
    elif fmt is Format.xlsx:
        _emit(tables.comparison_xlsx(result, risk), out)
    else:
        parts = [tables.render_comparison(result), *render_patterns(effects, result.currency)]
        if risk is not None:
            from routecalc.report.risk import render_uncertainty

            parts.append(render_uncertainty(result, risk))
        _emit_rich(parts, out)
    if not _state.quiet:  # failed checks are the error message below
        for v in verdicts:
            if v.ok:
                err_console.print(f"[green]✓[/] check {v.check}: {_lit(v.message)}", markup=True, highlight=False)
    failed = [f"{v.check}: {v.message}" for v in verdicts if not v.ok]
    if failed:
        raise CheckFailed(failed)


@app.command()
def validate(
    worksheet: WorksheetArg,
    scenario: ScenarioOpt = None,
    fmt: Annotated[ShowFormat, typer.Option("--format", "-f", help="Output format.")] = ShowFormat.table,
) -> None:
    """Check WORKSHEET and list every problem with its field path (exit code 2 if any).

    Schema and cross-field checks run together, so one run lists everything to fix. --format json prints the
    verdict, the problems and the warnings as the validate JSON output (routecalc schema --output validate).
    """
    from routecalc.contract import dumps
    from routecalc.validation import validation

    v = validation(_label(worksheet), lambda: _read_ws(worksheet, scenario or ()))
    if fmt is ShowFormat.json:
        sys.stdout.write(dumps("validate", v.to_dict()) + "\n")
        if v.error is not None:
            raise v.error  # exit code 2 (the message repeats the problems on stderr)
        return
    if v.error is not None:
        raise v.error
    assert v.worksheet is not None
    ws = v.worksheet
    console.print(
        f"[green]✓[/] {_lit(_label(worksheet))}: valid — {len(ws.tasks)} categories, {len(ws.models)} models, "
        f"{len(ws.policies)} policies",
        markup=True,
        highlight=False,
    )
    _warn(v.sheet_warnings, stderr=True)
    _warn(v.window_warnings)


@app.command()
def report(
    worksheet: WorksheetArg,
    out: Annotated[
        Path | None,
        typer.Option(
            "--out",
            "-o",
            help="Directory to write into (default: ./routecalc-report/<worksheet name>/).",
            show_default=False,
        ),
    ] = None,
    samples: SamplesOpt = 200_000,
    seed: SeedOpt = 0,
    fmt: Annotated[
        ReportFormat, typer.Option("--format", "-f", help="report.html, report.md (with PNGs beside it), or both.")
    ] = ReportFormat.both,
    scenario: ScenarioOpt = None,
    today: TodayOpt = None,
    force: Annotated[
        bool, typer.Option("--force", help="Replace files in the directory that routecalc did not write.")
    ] = False,
    uncertainty: UncertaintyOpt = None,
    objective: ObjectiveOpt = Objective.cost,
    sensitivity: Annotated[
        bool,
        typer.Option(
            "--sensitivity",
            help="Add a Sensitivity section: a tornado chart of every input moved by ±--swing, and break-evens.",
        ),
    ] = False,
    swing: Annotated[str, typer.Option("--swing", help="With --sensitivity: relative move of each input.")] = "20%",
    month: Annotated[
        bool,
        typer.Option(
            "--month/--no-month",
            help="With an operations section: add 'A month, not a mean' (the winner, else the baseline, simulated "
            "over 30 days with its time effects, as routecalc simulate).",
        ),
    ] = True,
) -> None:
    """Write a design-review report for WORKSHEET: five charts and a self-contained HTML page and/or Markdown.

    Charts (PNG and SVG): cost vs quality with the Pareto frontier, latency CDF and P95 budgets, monthly cost
    by category and model, routing distribution, and the winner's per-category targets. The report adds the
    recommendation, the side-by-side table, every assumption, warnings and provenance. --today sets the
    report date (review-age warnings count to it). --uncertainty adds error bars to the cost vs quality chart
    and a Risk section: how sure the decision is, given the eval counts.
    """
    from routecalc.decide.whatif import pattern_effects
    from routecalc.outputs import write_files
    from routecalc.report.build import HTML_NAME, MD_NAME, build_report, default_out_dir
    from routecalc.report.tables import verdict
    from routecalc.results import compare as run_compare

    _check_draws(uncertainty)
    fraction = _swing(swing) if sensitivity else None
    ws = _load(worksheet, scenario or ())
    day = _today(today)
    result = run_compare(ws, samples=samples, seed=seed, today=day, objective=objective.value, progress=_progress())
    risk = _uncertainty(ws, result, uncertainty, seed)
    effects = pattern_effects(ws, result)
    simulated = None
    focus = result.winner or result.baseline
    if month and ws.operations is not None and focus in {p.name for p in ws.policies}:
        from routecalc.month import simulate_month

        simulated = simulate_month(ws, focus, seed=seed, problem=result.problem)
    swings = None
    if fraction is not None:
        from routecalc.decide.sensitivity import analyse

        swings = analyse(ws, result, swing=fraction)
    source = None if str(worksheet) == STDIN else _path(worksheet)
    files = build_report(
        ws,
        result,
        source,
        fmt.value,
        generated=day,
        scenarios=[_path(s) for s in scenario or ()],
        uncertainty=risk,
        patterns=effects,
        sensitivity=swings,
        month=simulated,
    )
    out_dir = out if out is not None else default_out_dir(source or Path("stdin"))
    write_files(out_dir, files, force=force)
    n_charts = sum(name.endswith(".png") for name in files)
    main_files = [name for name in (HTML_NAME, MD_NAME) if name in files]
    console.print(
        f"wrote {len(files)} files to {printable(str(out_dir))}: {', '.join(main_files)} and {n_charts} charts "
        "(PNG + SVG)",
        highlight=False,
    )
    for name in main_files:
        console.print(f"  {printable(str(out_dir / name))}", highlight=False)
    console.print(Text.from_markup(verdict(result), emoji=False), highlight=False)
    if risk is not None:
        from routecalc.report.risk import risk_sentences

        console.print(Text(risk_sentences(result, risk)[0][0]), highlight=False)
    if result.winner is None:
        for p in result.policies:
            console.print(
                f"  [red]✗[/] {_lit(p.name)}: nearest miss {_lit(p.nearest_miss or '')}", markup=True, highlight=False
            )


@app.command()
def export(
    worksheet: WorksheetArg,
    target: Annotated[
        Target,
        typer.Option("--target", "-t", help="litellm (proxy config.yaml), portkey (gateway config JSON) or json."),
    ],
    policy: Annotated[
        str, typer.Option("--policy", "-p", help="Policy name, or 'winner' (cheapest meeting every target).")
    ] = "winner",
    out: OutFileOpt = None,
    force: ForceOpt = False,
    samples: SamplesOpt = 200_000,
    seed: SeedOpt = 0,
    scenario: ScenarioOpt = None,
) -> None:
    """Export a policy of WORKSHEET as a router config (validated: no unknown groups, no cycles, short chains).

    The estimate runs first (for 'winner' and for the expected metrics in the file). Without --out the config
    goes to stdout; warnings (e.g. quality gates the router cannot enforce) always go to stderr.
    """
    from routecalc.export import export_policy
    from routecalc.export.plan import Source
    from routecalc.outputs import check_new_file, write_atomic
    from routecalc.results import compare as run_compare
    from routecalc.worksheet import file_sha256

    if out is not None:
        check_new_file(out, force)  # refuse before spending time on the estimate
    scenarios = scenario or ()
    ws = _load(worksheet, scenarios)
    source = Source(_label(worksheet), _sha256(worksheet), tuple((str(s), file_sha256(_path(s))) for s in scenarios))
    result = export_policy(
        ws, run_compare(ws, samples=samples, seed=seed, progress=_progress()), policy, target.value, source
    )
    _warn(result.warnings, stderr=True)
    if out is None:
        sys.stdout.write(result.text)
        return
    write_atomic(out, result.text)
    _done(f"wrote {printable(str(out))} ({result.target}, policy {result.policy})")


@app.command()
def optimize(
    worksheet: WorksheetArg,
    max_chain: Annotated[
        int, typer.Option("--max-chain", "-k", min=1, max=8, help="Longest cascade / fallback chain to consider.")
    ] = 3,
    objective: Annotated[
        Objective,
        typer.Option("--objective", help="What to minimise: spend (cost), spend + operational risk, mean latency."),
    ] = Objective.cost,
    min_quality: Annotated[
        float | None,
        typer.Option(
            "--min-quality",
            help="Global mode: least objective with traffic-weighted quality >= this fraction (e.g. 0.96).",
            show_default=False,
        ),
    ] = None,
    budget: Annotated[
        float | None,
        typer.Option(
            "--budget",
            help="Global mode: best traffic-weighted quality within this monthly spend (worksheet currency); "
            "also prints the budget-exact randomised mix.",
            show_default=False,
        ),
    ] = None,
    no_floors: Annotated[
        bool,
        typer.Option("--no-floors", help="Global modes: drop the per-category quality thresholds (trade freely)."),
    ] = False,
    name: Annotated[str, typer.Option("--name", help="Name of the new policy.")] = "optimized",
    out: Annotated[
        Path | None,
        typer.Option(
            "--out", "-o", help="Write the worksheet plus the new policy here (comments kept).", show_default=False
        ),
    ] = None,
    force: ForceOpt = False,
    fmt: Annotated[ShowFormat, typer.Option("--format", "-f", help="Output format.")] = ShowFormat.table,
    samples: SamplesOpt = 200_000,
    seed: SeedOpt = 0,
    verify_max: Annotated[
        int,
        typer.Option("--verify-max", min=1, help="Routes per category checked against the P95 budget by Monte Carlo."),
    ] = 64,
) -> None:
    """Find the best route per category over every model in WORKSHEET's catalog, and write it as a policy.

    Enumerates every single model, cascade and fallback chain of up to --max-chain models (and cascades with
    same-tier fallbacks), scores them with the expected-value engine, keeps those meeting every target and
    constraint (P95 budgets checked by Monte Carlo, like compare) and picks the best by --objective. Prints the
    route per category with its margins, the policy as YAML, and the cost-vs-quality frontier.
    """
    from routecalc.decide.optimize import optimize as run_optimize
    from routecalc.decide.policy import worksheet_with_policy
    from routecalc.errors import RoutecalcError
    from routecalc.outputs import check_new_file, write_atomic
    from routecalc.report.optimize import optimization_json, render_optimization

    if out is not None:
        check_new_file(out, force)  # refuse before spending time on the search
    ws = _load(worksheet)
    result = run_optimize(
        ws,
        objective=objective.value,
        max_chain=max_chain,
        min_quality=min_quality,
        budget=budget,
        floors=not no_floors,
        samples=samples,
        seed=seed,
        verify_max=verify_max,
        name=name,
        source=_label(worksheet),
    )
    text = (
        worksheet_with_policy(_editable(worksheet, "optimize --out"), result.policy, out)
        if out is not None and result.policy
        else None
    )
    if fmt is ShowFormat.json:
        sys.stdout.write(optimization_json(result) + "\n")
    else:
        console.print(render_optimization(result))
    if out is None:
        return
    if text is None:
        raise RoutecalcError(f"no policy meets every target, so nothing was written to {out}")
    write_atomic(out, text)
    (err_console if fmt is ShowFormat.json else console).print(
        f"wrote {printable(str(out))}: {printable(str(worksheet))} plus policy {printable(name)}", highlight=False
    )


@prices_app.command("show")
def prices_show(
    models: Annotated[
        list[str] | None,
        typer.Argument(help="Model keys or parts of them (e.g. gpt-4.1-mini, anthropic/claude).", show_default=False),
    ] = None,
    from_: FromOpt = None,
    fmt: Annotated[ShowFormat, typer.Option("--format", "-f", help="Output format.")] = ShowFormat.table,
) -> None:
    """Show prices (USD per 1M tokens) and context windows from the price map for MODEL... .

    A MODEL that is not a key lists the keys containing it. Without MODEL, shows where the map is and its size.
    """
    from routecalc.errors import InputError
    from routecalc.prices import SHOW_FIELDS, load_price_map, map_keys, price_source, search
    from routecalc.report.prices import extra_price_table, price_table

    path, label = price_source(from_)
    pm = load_price_map(path)
    if not models:
        console.print(
            f"{printable(label)}: {printable(str(path))}\n{len(pm):,} models. Show some with: routecalc prices show "
            "MODEL...",
            highlight=False,
        )
        return
    rows, missing, notes = search(pm, models)
    for note in notes:
        err_console.print(f"[yellow]note:[/] {_lit(note)}", markup=True, highlight=False)
    if not rows:
        raise InputError(f"not in the price map ({label}): {', '.join(missing)}")
    if fmt is ShowFormat.json:
        from routecalc.contract import dumps

        shown = lambda e: [*SHOW_FIELDS, *(key for f, key in map_keys(e).items() if f.startswith("long_context."))]
        out = {k: {f: e[f] for f in shown(e) if f in e} for k, e in rows.items()}
        sys.stdout.write(dumps("prices", {"source": str(path), "currency": "USD", "models": out}) + "\n")
    else:
        console.print(price_table(rows, label))
        extra = extra_price_table(rows)
        if extra is not None:
            console.print(extra)
    _warn([f"{q!r} is not in the price map" for q in missing], stderr=True)


@prices_app.command("update")
def prices_update(
    worksheet: WorksheetArg,
    from_: FromOpt = None,
    out: Annotated[
        Path | None, typer.Option("--out", "-o", help="Write the updated worksheet here.", show_default=False)
    ] = None,
    in_place: Annotated[bool, typer.Option("--in-place", help="Rewrite WORKSHEET itself (atomically).")] = False,
    force: Annotated[bool, typer.Option("--force", help="Overwrite an existing --out file.")] = False,
    rate: RateOpt = None,
    today: Annotated[
        str | None,
        typer.Option("--today", help="Date recorded in prices_from, YYYY-MM-DD (default: today).", show_default=False),
    ] = None,
) -> None:
    """Refresh WORKSHEET's prices and context windows from a LiteLLM price map; show what changes first.

    Without --out or --in-place this is a dry run: nothing is written. Only the changed values are edited;
    comments and layout stay as they are; prices_from records the map, its version and the date. A model
    missing from the map keeps its prices (with a warning); one marked price_source: manual keeps its prices
    (shown as overridden). Map fields the estimate does not use are listed.
    """
    from routecalc.errors import InputError
    from routecalc.examples import is_example
    from routecalc.outputs import check_new_file, write_atomic
    from routecalc.prices import (
        is_bundled,
        load_price_map,
        missing_summary,
        plan_update,
        price_source,
        source_record,
        unused_summary,
    )
    from routecalc.report.prices import changes_table

    if out is not None and in_place:
        raise InputError("give either --out W2 or --in-place, not both")
    if in_place and is_example(str(worksheet)):
        raise InputError("--in-place would rewrite a shipped example: give --out W2")
    file = _editable(worksheet, "prices update")
    ws = _load(file)
    path, label = price_source(from_)
    target = out if out is not None else (file if in_place else None)
    record = source_record(from_, _today(today))
    update = plan_update(file, ws, load_price_map(path), rate, target, record)
    missing = missing_summary(update.changes, label, is_bundled(from_))
    if missing:
        console.print(f"[bold yellow]{_lit(missing)}[/]", markup=True, highlight=False)
    console.print(changes_table(update.changes, ws.currency, ws.price_unit, label))
    _warn(update.warnings)
    unused = unused_summary(update.changes)
    if unused:
        console.print(f"[cyan]note:[/] {_lit(unused)}", markup=True, highlight=False)
    if target is None:
        console.print(
            f"dry run: {update.n_values} value(s) would change (and prices_from: {record['source']} {record['version']}, "
            f"{record['date'].isoformat()}); nothing written. Use --out W2 (or --in-place) to write.",
            highlight=False,
        )
        return
    if out is not None:
        check_new_file(out, force)
    write_atomic(target, update.text)
    _done(
        f"wrote {printable(str(target))} ({update.n_values} value(s) changed; prices_from: {record['source']} "
        f"{record['version']}, {record['date'].isoformat()})"
    )


@calibrate_app.command("evals")
def calibrate_evals(
    file: Annotated[
        Path, typer.Argument(help="Eval results: CSV, TSV, JSONL or Parquet (README: Eval files).", show_default=False)
    ],
    worksheet: Annotated[
        Path | None,
        typer.Option(
            "--worksheet", "-w", help="Update this worksheet (dry run unless --out or --in-place).", show_default=False
        ),
    ] = None,
    out: Annotated[
        Path | None, typer.Option("--out", "-o", help="Write the worksheet here (atomically).", show_default=False)
    ] = None,
    in_place: Annotated[bool, typer.Option("--in-place", help="Rewrite the -w worksheet itself.")] = False,
    model_map: Annotated[
        str | None,
        typer.Option(
            "--model-map", help="Eval model name = catalog model name, comma-separated: a=b,c=d.", show_default=False
        ),
    ] = None,
    columns: Annotated[
        str | None,
        typer.Option(
            "--columns",
            help="Column names for roles, comma-separated: prompt_id=id,category=subject,passed=correct ...",
            show_default=False,
        ),
    ] = None,
    layout: Annotated[
        EvalLayout, typer.Option("--layout", help="long (a model column) or wide (a column per model).")
    ] = EvalLayout.auto,
    fmt: Annotated[
        EvalFormat, typer.Option("--format", help="File format (default: from the extension).")
    ] = EvalFormat.auto,
    pass_threshold: Annotated[
        float | None,
        typer.Option("--pass-threshold", help="Read the score column: score >= X passes.", show_default=False),
    ] = None,
    strict: Annotated[bool, typer.Option("--strict", help="Any bad row is an error (exit 2).")] = False,
    joint: Annotated[
        JointMode,
        typer.Option(
            "--joint",
            help="How to write each category's joint pass/fail: the outcome table, one fitted latent-difficulty "
            "correlation, or nothing (independent).",
        ),
    ] = JointMode.table,
    force: ForceOpt = False,
) -> None:
    """Calibrate a worksheet from per-prompt eval results: pass rates with counts, joint outcome tables, token bands
    and latency per model.

    With -w, updates that worksheet and shows what changes (a dry run unless --out or --in-place). Without -w,
    writes a new worksheet (to --out, or stdout) with every guess marked. Bad rows are reported with line numbers.
    """
    from routecalc.data import calibrate_yaml as cy
    from routecalc.data.calibrate import MIN_PROMPTS, calibrate, with_joint
    from routecalc.data.evals import EvalOptions, parse_mapping, read_evals
    from routecalc.errors import InputError
    from routecalc.examples import is_example
    from routecalc.outputs import check_new_file, write_atomic
    from routecalc.report.calibrate import changes_table
    from routecalc.worksheet import load_worksheet

    if in_place and worksheet is None:
        raise InputError("--in-place needs -w WORKSHEET")
    if in_place and out is not None:
        raise InputError("give either --out or --in-place, not both")
    if out is not None:
        check_new_file(out, force)
    if in_place and worksheet is not None and is_example(str(worksheet)):
        raise InputError("--in-place would rewrite a shipped example: give --out W2")
    if worksheet is not None:
        worksheet = _editable(worksheet, "calibrate evals -w")
    ws = load_worksheet(worksheet) if worksheet is not None else None
    mapping = cy.model_mapping(None, parse_mapping(model_map, "--model-map"), ws)
    options = EvalOptions(
        columns=parse_mapping(columns, "--columns"),
        layout=layout.value,
        fmt=fmt.value,
        models=list(mapping) if mapping is not None else None,
        pass_threshold=pass_threshold,
    )
    data = read_evals(file, options)
    report = data.report
    if strict and report.bad_rows:
        raise InputError(f"{file}: {report.bad_rows:,} bad row(s) (--strict):\n  " + "\n  ".join(report.lines()))
    cal = with_joint(calibrate(data, mapping), joint.value)
    to_stdout = worksheet is None and out is None  # the YAML goes to stdout: everything else to stderr
    say = err_console if to_stdout else console
    say.print(
        f"read {printable(str(file))}: {report.records:,} rows, {data.n_prompts:,} prompts, "
        f"{len(data.categories)} categories, models {printable(', '.join(data.models))}",
        highlight=False,
    )
    _warn(report.lines(), stderr=to_stdout)
    if cal.small:
        listed = ", ".join(f"{printable(n)} ({c})" for n, c in cal.small)
        _warn([f"{len(cal.small)} categories have fewer than {MIN_PROMPTS} prompts: {listed}"], stderr=to_stdout)
    left = [(c.name, c.left_out) for c in cal.categories if c.left_out]
    if left:
        listed = ", ".join(f"{n} ({k})" for n, k in left)
        _warn([f"prompts left out of outcome tables (some model has no outcome on them): {listed}"], stderr=to_stdout)
    if ws is None:
        text = cy.checked_new_worksheet(cal, f"Calibrated from {file.name}")
        if out is None:
            sys.stdout.write(text)
        else:
            write_atomic(out, text)
            _done(f"wrote {printable(str(out))}")
        say.print(
            "Prices are placeholders (0) and every line marked GUESS is a guess: fill them in before trusting costs.",
            highlight=False,
        )
        return
    assert worksheet is not None
    update = cy.plan_update(worksheet, ws, cal)
    console.print(changes_table(update))
    _warn([f"not in the worksheet (skipped): {', '.join(update.skipped)}"] if update.skipped else [])
    target = out if out is not None else (worksheet if in_place else None)
    if target is None:
        console.print(
            f"dry run: {update.n_changes} change(s); nothing written. Use --out W2 (or --in-place) to write.",
            highlight=False,
        )
        return
    write_atomic(target, update.text)
    _done(f"wrote {printable(str(target))} ({update.n_changes} change(s))")


LogFileArg = Annotated[
    Path,
    typer.Argument(help="Request log: CSV, TSV, JSONL or Parquet (README: Request logs).", show_default=False),
]
LogShapeOpt = Annotated[
    LogShape,
    typer.Option("--shape", help="litellm (spend logs), openai (usage export) or generic; default: from the columns."),
]
LogFormatOpt = Annotated[EvalFormat, typer.Option("--format", help="File format (default: from the extension).")]
CategoryFromOpt = Annotated[
    str | None,
    typer.Option(
        "--category-from",
        help="Where the category is: a column, or a path into one (metadata.tags[0], request_tags[0], "
        "metadata.spend_logs_metadata.category).",
        show_default=False,
    ),
]
CategoryMapOpt = Annotated[
    str | None,
    typer.Option("--category-map", help="Logged value = category name, comma-separated: a=b,c=d.", show_default=False),
]
LogColumnsOpt = Annotated[
    str | None,
    typer.Option(
        "--columns",
        help="Paths for roles, comma-separated: timestamp=ts,model=deployment,cost=usd ... (README: Request logs).",
        show_default=False,
    ),
]
LogModelMapOpt = Annotated[
    str | None,
    typer.Option("--model-map", help="Logged model name = catalog model name: a=b,c=d.", show_default=False),
]
MaxSkewOpt = Annotated[
    float,
    typer.Option("--max-skew", min=0, help="Seconds a row's timestamp may fall behind an earlier row's."),
]
StrictOpt = Annotated[bool, typer.Option("--strict", help="Any bad row is an error (exit 2).")]


def _read_log(
    file: Path,
    ws: Any,
    shape: LogShape,
    fmt: EvalFormat,
    category_from: str | None,
    category_map: str | None,
    columns: str | None,
    model_map: str | None,
    max_skew: float,
    strict: bool,
) -> Any:
    """Read a request log with the CLI's options (model names mapped to ``ws``'s catalog when given)."""
    from routecalc.data.evals import parse_mapping
    from routecalc.data.logcal import catalog_aliases
    from routecalc.data.logs import LogOptions, read_logs
    from routecalc.errors import InputError

    roles = parse_mapping(columns, "--columns")
    if category_from is not None:
        roles["category"] = category_from
    names = parse_mapping(model_map, "--model-map")
    data = read_logs(
        file,
        LogOptions(
            fmt=fmt.value,
            shape=shape.value,
            columns=roles,
            category_map=parse_mapping(category_map, "--category-map") or None,
            model_map=catalog_aliases(ws.models, names) if ws is not None else names or None,
            max_skew_s=max_skew,
        ),
    )
    if strict and data.report.bad_rows:
        raise InputError(
            f"{file}: {data.report.bad_rows:,} bad row(s) (--strict):\n  " + "\n  ".join(data.report.lines())
        )
    return data


@calibrate_app.command("logs")
def calibrate_logs(
    file: LogFileArg,
    worksheet: Annotated[
        Path | None,
        typer.Option("--worksheet", "-w", help="Update this worksheet (dry run unless --out).", show_default=False),
    ] = None,
    out: Annotated[
        Path | None, typer.Option("--out", "-o", help="Write the worksheet here (atomically).", show_default=False)
    ] = None,
    strict: StrictOpt = False,
    shape: LogShapeOpt = LogShape.auto,
    fmt: LogFormatOpt = EvalFormat.auto,
    category_from: CategoryFromOpt = None,
    category_map: CategoryMapOpt = None,
    columns: LogColumnsOpt = None,
    model_map: LogModelMapOpt = None,
    max_skew: MaxSkewOpt = 600.0,
    force: ForceOpt = False,
) -> None:
    """Calibrate a worksheet from request logs: volume and traffic profile, shares and token bands per category,
    failure rates by error type and latency per model.

    With -w, shows what changes in that worksheet (a dry run unless --out W2). Without -w, writes a starter
    worksheet (to --out, or stdout) with every guess marked. Bad rows are reported with line numbers.
    """
    from routecalc.data import logcal_yaml as ly
    from routecalc.data.logcal import calibrate_logs as derive
    from routecalc.outputs import check_new_file, write_atomic
    from routecalc.report import logs as rl

    if out is not None:
        check_new_file(out, force)
    if worksheet is not None:
        worksheet = _editable(worksheet, "calibrate logs -w")
    ws = _load(worksheet) if worksheet is not None else None
    data = _read_log(file, ws, shape, fmt, category_from, category_map, columns, model_map, max_skew, strict)
    cal = derive(data)
    to_stdout = worksheet is None and out is None  # the YAML goes to stdout: everything else to stderr
    say = err_console if to_stdout else console
    for item in rl.calibration_summary(cal):
        say.print(printable(item) if isinstance(item, str) else item, highlight=False)
    _warn(data.report.lines() + rl.notes(cal), stderr=to_stdout)
    if ws is None:
        text = ly.checked_starter(cal, f"Calibrated from {file.name}")
        if out is None:
            sys.stdout.write(text)
        else:
            write_atomic(out, text)
            _done(f"wrote {printable(str(out))}")
        say.print(
            "Pass rates, quality thresholds and policies are not in a log: every line marked GUESS is a guess.",
            highlight=False,
        )
        return
    assert worksheet is not None
    update = ly.plan_update(worksheet, ws, cal)
    console.print(rl.changes_table(update))
    skipped = []
    if update.skipped_categories:
        skipped.append(f"categories not in the worksheet (skipped): {', '.join(update.skipped_categories)}")
    if update.skipped_models:
        skipped.append(
            f"models not in the worksheet (skipped; --model-map maps names): {', '.join(update.skipped_models)}"
        )
    if update.zeroed:
        skipped.append(f"worksheet categories without calls in the log get share 0: {', '.join(update.zeroed)}")
    _warn(skipped)
    if out is None:
        console.print(
            f"dry run: {update.n_changes} change(s); nothing written. Use --out W2 to write the updated worksheet.",
            highlight=False,
        )
        return
    write_atomic(out, update.text)
    _done(f"wrote {printable(str(out))} ({update.n_changes} change(s))")


@app.command()
def backtest(
    file: LogFileArg,
    worksheet: Annotated[
        Path, typer.Option("--worksheet", "-w", help="The worksheet whose estimate is checked.", show_default=False)
    ],
    policy: Annotated[str, typer.Option("--policy", "-p", help="The policy that served the logged traffic.")],
    invoice: Annotated[
        float | None,
        typer.Option(
            "--invoice", min=0, help="What the bill says the period cost (worksheet currency).", show_default=False
        ),
    ] = None,
    requests: Annotated[
        float | None,
        typer.Option(
            "--requests",
            min=0,
            help="Requests in the logged period (default: the log's calls / the policy's calls per request).",
            show_default=False,
        ),
    ] = None,
    fmt: Annotated[ShowFormat, typer.Option("--format", "-f", help="Output format.")] = ShowFormat.table,
    strict: StrictOpt = False,
    shape: LogShapeOpt = LogShape.auto,
    log_format: LogFormatOpt = EvalFormat.auto,
    category_from: CategoryFromOpt = None,
    category_map: CategoryMapOpt = None,
    columns: LogColumnsOpt = None,
    model_map: LogModelMapOpt = None,
    max_skew: MaxSkewOpt = 600.0,
    seed: SeedOpt = 0,
) -> None:
    """Check WORKSHEET's estimate against a logged period: calls, tokens and spend per model and category, failure
    rates and latency per model, and the total against the logs or an --invoice, each with its relative error.
    """
    from routecalc.data.backtest import backtest as run_backtest
    from routecalc.report.logs import backtest_json, backtest_tables

    ws = _load(worksheet)
    ws.policy(policy)
    data = _read_log(file, ws, shape, log_format, category_from, category_map, columns, model_map, max_skew, strict)
    _warn(data.report.lines(), stderr=True)
    result = run_backtest(ws, policy, data, requests=requests, invoice=invoice, seed=seed)
    if fmt is ShowFormat.json:
        sys.stdout.write(backtest_json(result) + "\n")
        return
    for item in backtest_tables(result):
        console.print(printable(item) if isinstance(item, str) else item, highlight=False)
    _warn(result.notes)


@app.command()
def replay(
    file: Annotated[Path, typer.Argument(help="Per-prompt eval results (README: Eval files).", show_default=False)],
    worksheet: Annotated[Path, typer.Option("--worksheet", "-w", help="The worksheet to replay.", show_default=False)],
    model_map: Annotated[
        str | None,
        typer.Option("--model-map", help="Eval model name = catalog model name: a=b,c=d.", show_default=False),
    ] = None,
    columns: Annotated[
        str | None, typer.Option("--columns", help="Column names for roles (as calibrate).", show_default=False)
    ] = None,
    layout: Annotated[EvalLayout, typer.Option("--layout", help="long or wide.")] = EvalLayout.auto,
    pass_threshold: Annotated[
        float | None, typer.Option("--pass-threshold", help="score >= X passes.", show_default=False)
    ] = None,
    bootstrap: Annotated[int, typer.Option("--bootstrap", help="Bootstrap resamples for the 95% intervals.")] = 1000,
    repeats: Annotated[
        int | None,
        typer.Option(
            "--repeats",
            min=1,
            max=1000,
            help="Replays per prompt (default: 200,000 replays in all).",
            show_default=False,
        ),
    ] = None,
    seed: SeedOpt = 0,
    fmt: Annotated[ShowFormat, typer.Option("--format", "-f", help="Output format.")] = ShowFormat.table,
    strict: Annotated[bool, typer.Option("--strict", help="Any bad row is an error (exit 2).")] = False,
) -> None:
    """Replay every policy of WORKSHEET on the prompts of FILE (their real outcomes per model), next to the
    worksheet's estimate, with 95 % bootstrap intervals; plus the oracle, zero router, AIQ and savings captured.
    """
    from routecalc.chains import compile_worksheet
    from routecalc.data import calibrate_yaml as cy
    from routecalc.data.evals import EvalOptions, parse_mapping, read_evals
    from routecalc.data.replay import replay as run_replay
    from routecalc.engine.ev import expected_values
    from routecalc.errors import InputError
    from routecalc.report.replay import render_replay, replay_json

    ws = _read_ws(worksheet)
    mapping = cy.model_mapping(None, parse_mapping(model_map, "--model-map"), ws)
    assert mapping is not None
    data = read_evals(
        file,
        EvalOptions(
            columns=parse_mapping(columns, "--columns"),
            layout=layout.value,
            models=list(mapping),
            pass_threshold=pass_threshold,
        ),
    )
    if strict and data.report.bad_rows:
        raise InputError(
            f"{file}: {data.report.bad_rows:,} bad row(s) (--strict):\n  " + "\n  ".join(data.report.lines())
        )
    _warn(data.report.lines(), stderr=True)
    problem = compile_worksheet(ws)
    result = run_replay(
        problem, expected_values(problem), data, mapping, seed=seed, bootstrap=bootstrap, repeats=repeats
    )
    result = replace(result, worksheet=ws.name)
    if fmt is ShowFormat.json:
        sys.stdout.write(replay_json(result) + "\n")
    else:
        console.print(render_replay(result))


@app.command()
def diff(
    old: Annotated[Path, typer.Argument(help="The worksheet as it was (last month's).", show_default=False)],
    new: Annotated[
        Path | None,
        typer.Argument(
            help="The worksheet as it is now. Default: OLD with --prices/--scenario applied.", show_default=False
        ),
    ] = None,
    prices: Annotated[
        Path | None,
        typer.Option(
            "--prices",
            help="Re-price NEW (or OLD) from this LiteLLM price map; 'bundled' = the installed litellm's copy.",
            show_default=False,
        ),
    ] = None,
    rate: RateOpt = None,
    scenario: ScenarioOpt = None,
    samples: SamplesOpt = 200_000,
    seed: SeedOpt = 0,
    fmt: Annotated[DiffFormat, typer.Option("--format", "-f", help="Output format.")] = DiffFormat.table,
    today: TodayOpt = None,
) -> None:
    """Re-estimate: what moving from OLD to NEW (or to new prices) does to each policy and to the winner.

    Per policy: monthly cost, savings, quality and P95 before and after; whether the winner flips and which
    inputs moved it most; stale categories; changed prices. Both sides use the same Monte Carlo seed and
    samples, so differences are not sampling noise.
    """
    from routecalc.diff import diff_comparisons
    from routecalc.errors import InputError
    from routecalc.prices import reprice
    from routecalc.report.diff import diff_json, diff_markdown, render_diff
    from routecalc.results import compare as run_compare

    if new is None and prices is None and not scenario:
        raise InputError("nothing to compare: give NEW, --prices FILE or --scenario FILE")
    day = _today(today)
    old_ws = _load(old)
    new_ws = _load(new or old, scenario or ())
    parts = [str(new)] if new is not None else []
    parts += [f"scenario {s}" for s in scenario or ()]
    notes: list[str] = []
    if prices is not None:
        new_ws, notes, label = reprice(new_ws, prices, rate, today=day)
        parts.append(f"prices from {label}")
    before = run_compare(old_ws, samples=samples, seed=seed, today=day, progress=_progress("before"))
    after = run_compare(new_ws, samples=samples, seed=seed, today=day, progress=_progress("after"))
    d = diff_comparisons(
        before, after, old_ws, new_ws, day, old_label=_label(old), new_label=" + ".join(parts), warnings=notes
    )
    if fmt is DiffFormat.json:
        sys.stdout.write(diff_json(d) + "\n")
    elif fmt is DiffFormat.md:
        sys.stdout.write(diff_markdown(d))
    else:
        console.print(render_diff(d, width=console.width))


@app.command()
def sensitivity(
    worksheet: WorksheetArg,
    policy: Annotated[
        str | None,
        typer.Option("--policy", "-p", help="Policy to analyse (default: the winner).", show_default=False),
    ] = None,
    swing: Annotated[
        str, typer.Option("--swing", help="Relative move of each input, down and up: 20% or 0.2 (at most 100%).")
    ] = "20%",
    fmt: Annotated[ShowFormat, typer.Option("--format", "-f", help="Output format.")] = ShowFormat.table,
    top: Annotated[int, typer.Option("--top", min=1, help="Inputs shown, and searched for break-even values.")] = 10,
    by: Annotated[RankBy, typer.Option("--by", help="Rank inputs by their effect on this.")] = RankBy.cost,
    samples: SamplesOpt = 200_000,
    seed: SeedOpt = 0,
    scenario: ScenarioOpt = None,
) -> None:
    """Which inputs move the decision: swing each input of WORKSHEET alone and find where the decision flips.

    Every price, pass rate (and joint-outcome parameter), traffic share, token band, validator rate, failure rate
    and latency moves by ±SWING; the chosen policy's monthly cost, savings and quality are re-estimated (expected
    values) and the inputs ranked by effect. For the top inputs, the break-even value at which the policy stops
    beating the runner-up or the baseline (or starts to), found by root finding on the expected-value engine.
    """
    from routecalc.decide.sensitivity import analyse
    from routecalc.report.sensitivity import render_sensitivity, sensitivity_json
    from routecalc.results import compare as run_compare

    fraction = _swing(swing)  # refuse a bad option before spending time on the estimate
    ws = _load(worksheet, scenario or ())
    result = run_compare(ws, samples=samples, seed=seed, progress=_progress())
    s = analyse(ws, result, policy, fraction, top, by.value)
    if fmt is ShowFormat.json:
        sys.stdout.write(sensitivity_json(s) + "\n")
    else:
        console.print(render_sensitivity(s))


@app.command()
def simulate(
    worksheet: WorksheetArg,
    policy: Annotated[
        str, typer.Option("--policy", "-p", help="Policy name, or 'winner' (cheapest meeting every target).")
    ] = "winner",
    days: Annotated[
        int, typer.Option("--days", min=1, max=366, help="Days to simulate (day 1 starts at 00:00 UTC).")
    ] = 30,
    seed: SeedOpt = 0,
    fmt: Annotated[
        SimulateFormat, typer.Option("--format", "-f", help="Output format (csv: a row per day).")
    ] = SimulateFormat.table,
    out: Annotated[
        Path | None,
        typer.Option(
            "--out",
            "-o",
            help="Also write the month as a report section into this directory: month.html, month.md, charts.",
            show_default=False,
        ),
    ] = None,
    start: Annotated[
        str | None,
        typer.Option(
            "--start", help="Date of day 1, YYYY-MM-DD (sets weekdays; default: a Monday).", show_default=False
        ),
    ] = None,
    bucket_s: Annotated[
        float,
        typer.Option("--bucket-s", help="Time bucket in seconds (arrival rates, load measurement); divides an hour."),
    ] = 60.0,
    compare_effects: Annotated[
        bool,
        typer.Option(
            "--compare/--no-compare",
            help="Also simulate the month with each time effect switched off (what each one changes).",
        ),
    ] = True,
    samples: SamplesOpt = 200_000,
    scenario: ScenarioOpt = None,
    force: Annotated[
        bool, typer.Option("--force", help="Replace files in --out that routecalc did not write.")
    ] = False,
) -> None:
    """Simulate a month of WORKSHEET's traffic, request by request in arrival order, with its time effects.

    Traffic follows volume.profile (hours, weekdays, growth, spike days); the worksheet's operations section adds
    outages, circuit breakers, rate limits at peak, budget pacing and load-adaptive routing. Shows a row per day
    (requests, spend against the budget, quality, failures, P95/P99, breaker-open minutes, spill and downgrade
    shares), month totals, and what each effect did against the same month without it. --samples only matters
    for --policy winner (the comparison that picks it).
    """
    from routecalc.errors import InputError, PolicyError
    from routecalc.month import simulate_month
    from routecalc.report.timeline import month_csv, month_json, render_month

    day1 = None
    if start is not None:
        try:
            day1 = dt.date.fromisoformat(start)
        except ValueError:
            raise InputError(f"--start: not a date (YYYY-MM-DD): {start!r}") from None
    if out is not None:
        from routecalc.outputs import check_files
        from routecalc.report.timeline import MONTH_FILES

        check_files(out, MONTH_FILES, force)  # refuse before the simulation, not after it
    ws = _load(worksheet, scenario or ())
    name = policy
    if policy == "winner":
        from routecalc.results import compare as run_compare

        name = run_compare(ws, samples=samples, seed=seed, progress=_progress()).winner or ""
        if not name:
            raise PolicyError("no policy meets every target, so there is no winner: give --policy NAME")
    result = simulate_month(ws, name, days, seed, bucket_s, day1, compare_effects)
    if fmt is SimulateFormat.json:
        sys.stdout.write(month_json(result) + "\n")
    elif fmt is SimulateFormat.csv:
        sys.stdout.write(month_csv(result))
    else:
        if ws.operations is None:
            _warn(["the worksheet has no operations section: only traffic over time is simulated"])
        console.print(render_month(result))
    if out is not None:
        from routecalc.outputs import write_files
        from routecalc.report.timeline import month_files

        files = month_files(result)
        write_files(out, files, force=force)
        n_charts = sum(name.endswith(".png") for name in files)
        message = f"wrote {printable(str(out))}: month.html, month.md and {n_charts} charts (PNG + SVG)"
        if fmt is SimulateFormat.table:
            _done(message)
        else:
            _note(message)


@app.command()
def init(
    models: Annotated[
        str | None,
        typer.Option(
            "--models",
            "-m",
            help="Price-map keys, comma-separated (default: gpt-4.1-nano,gpt-4.1-mini,gpt-4.1).",
            show_default=False,
        ),
    ] = None,
    categories: Annotated[
        int, typer.Option("--categories", "-k", min=1, max=100, help="How many placeholder categories.")
    ] = 3,
    from_litellm: Annotated[
        Path | None,
        typer.Option(
            "--from-litellm",
            help="Start from a LiteLLM proxy config.yaml ('-': stdin): its models, prices, limits and fallbacks.",
            show_default=False,
        ),
    ] = None,
    example: Annotated[
        str | None,
        typer.Option("--example", help="Copy a shipped example instead (routecalc examples).", show_default=False),
    ] = None,
    from_: FromOpt = None,
    out: Annotated[
        Path | None, typer.Option("--out", "-o", help="Write the worksheet here (default: stdout).", show_default=False)
    ] = None,
    force: ForceOpt = False,
) -> None:
    """Write a commented starter worksheet: real prices and context windows from the price map, every guess
    marked GUESS. With --from-litellm, the catalog and a 'today' policy come from your LiteLLM proxy config
    (models, prices, rpm/tpm, timeouts, retries, fallbacks and aliases), so the baseline is what really runs."""
    from routecalc.errors import InputError, PriceSourceError
    from routecalc.outputs import check_new_file

    if out is not None:
        check_new_file(out, force)
    if sum(x is not None for x in (models, from_litellm, example)) > 1:
        raise InputError("give one of --models, --from-litellm, --example")
    if example is not None:
        from routecalc.examples import resolve

        text = resolve(f"example:{example}").read_text(encoding="utf-8")
        _emit(text, out)
        return
    from routecalc import init as starter_mod
    from routecalc.prices import load_price_map, price_source

    try:
        path, label = price_source(from_)
        price_map = load_price_map(path)
    except PriceSourceError as exc:
        if from_ is not None:
            raise
        price_map, label = None, "no price map"
        _warn([f"{exc}; prices are 0 placeholders (pip install 'routecalc[litellm]', or --from FILE)"], stderr=True)
    if from_litellm is not None:
        if str(from_litellm) == STDIN:
            config, source = _stdin_text("LiteLLM config"), "<stdin>"
        else:
            from routecalc.worksheet import read_text

            config, source = read_text(from_litellm), str(from_litellm)
        result = starter_mod.from_litellm(config, source, price_map, label)
    else:
        keys = [k.strip() for k in models.split(",") if k.strip()] if models is not None else None
        result = starter_mod.starter(keys, categories, price_map, label)
    _emit(result.text, out)
    for n in result.notes:
        _warn([n], stderr=True)
    _note("Every line marked GUESS is a placeholder: replace it, then run routecalc validate and routecalc compare.")


@app.command()
def explain(
    worksheet: WorksheetArg,
    policy: Annotated[str, typer.Option("--policy", "-p", help="The policy to work out.", show_default=False)],
    category: Annotated[str, typer.Option("--category", "-c", help="The category to work out.", show_default=False)],
    fmt: Annotated[ShowFormat, typer.Option("--format", "-f", help="Output format.")] = ShowFormat.table,
    scenario: ScenarioOpt = None,
) -> None:
    """Work out one policy in one category by hand: the chain, each step's reach, give-up, pass, accept and
    reject probabilities, and the arithmetic of the expected cost, quality and latency, next to the engine's
    numbers (routers: per lane with its share of the requests)."""
    from routecalc.explain import explain as run_explain
    from routecalc.report.explain import explanation_json, render_explanation

    ws = _load(worksheet, scenario or ())
    e = run_explain(ws, policy, category)
    if fmt is ShowFormat.json:
        sys.stdout.write(explanation_json(e) + "\n")
    else:
        console.print(render_explanation(e, console.width))


@app.command()
def examples(
    fmt: Annotated[ShowFormat, typer.Option("--format", "-f", help="Output format.")] = ShowFormat.table,
) -> None:
    """List the example worksheets shipped with routecalc: run one with routecalc compare example:NAME."""
    from routecalc.contract import dumps
    from routecalc.examples import list_examples

    found = list_examples()
    if fmt is ShowFormat.json:
        rows = [{"name": e.name, "title": e.title, "description": e.description, "path": str(e.path)} for e in found]
        sys.stdout.write(dumps("examples", {"examples": rows}) + "\n")
        return
    from rich.table import Table

    table = Table(box=None, show_header=False, pad_edge=False)
    table.add_column(style="bold", no_wrap=True)
    table.add_column()
    for e in found:
        table.add_row(Text(f"example:{e.name}"), Text(e.description or e.title))
    console.print(table)
    _note("Run one: routecalc compare example:support-triage · copy one: routecalc init --example NAME -o my.yaml")


SCHEMA_KINDS = ["worksheet", *OUTPUTS]  # the worksheet's schema, then one per JSON output kind
SchemaKind = StrEnum("SchemaKind", {k: k for k in SCHEMA_KINDS})  # type: ignore[misc]


@app.command()
def schema(
    output: Annotated[
        SchemaKind,
        typer.Option(
            "--output",
            help="Which schema: the worksheet's (default), or that of a command's JSON output: "
            + ", ".join(SCHEMA_KINDS[1:])
            + ".",
        ),
    ] = SchemaKind.worksheet,
    out: OutFileOpt = None,
    force: ForceOpt = False,
) -> None:
    """Print a JSON Schema: the worksheet's (for editor validation, e.g. yaml-language-server) or, with
    --output KIND, that of a command's --format json output (for CI and notebooks). The same files ship in the
    package: routecalc/schema/."""
    import json

    from routecalc.outputs import check_new_file, write_atomic

    if output.value == "worksheet":
        from routecalc.worksheet import json_schema

        data = json_schema()
    else:
        from routecalc.contract.schemas import output_schema

        data = output_schema(output.value)
    text = json.dumps(data, indent=2, ensure_ascii=False) + "\n"
    if out is None:
        sys.stdout.write(text)
        return
    check_new_file(out, force)
    write_atomic(out, text)
    _done(f"wrote {printable(str(out))}")


def _show_version(value: bool) -> None:
    if value:
        from routecalc._version import __version__

        console.print(f"routecalc {__version__}")
        raise typer.Exit()


@app.callback(invoke_without_command=True)
def _root(
    version: Annotated[
        bool,
        typer.Option("--version", "-V", help="Show the version and exit.", is_eager=True, callback=_show_version),
    ] = False,
    quiet: Annotated[
        bool, typer.Option("--quiet", "-q", help="Results and errors only: no warnings, notes or progress bar.")
    ] = False,
    verbose: Annotated[
        bool, typer.Option("--verbose", "-v", help="Also say what is read and how long each stage takes (stderr).")
    ] = False,
) -> None:
    """Estimate the cost, latency and quality of LLM routing policies before you ship them.

    Exit codes: 0 ok, 1 a check failed (compare --expect, --require-winner, --max-monthly-cost) or another
    error, 2 invalid input (worksheet, file, option), 3 refused to overwrite a file routecalc did not write.
    """
    _state.quiet, _state.verbose = quiet, verbose and not quiet
    _state.stdin_text = _state.stdin_sha256 = None
    _state.warned.clear()


def main() -> None:
    """Console-script entry point."""
    app()
