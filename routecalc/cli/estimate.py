"""compare, validate, report, export and optimize: a worksheet's policies estimated, checked, drawn and shipped."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.text import Text

from routecalc.cli.common import (
    ForceOpt,
    Format,
    Objective,
    ObjectiveOpt,
    OutFileOpt,
    ReportFormat,
    SamplesOpt,
    ScenarioOpt,
    SeedOpt,
    ShowFormat,
    Target,
    TodayOpt,
    UncertaintyOpt,
    WorksheetArg,
    _check_draws,
    _swing,
    _today,
    _uncertainty,
    app,
)
from routecalc.cli.support import (
    STDIN,
    STRONGEST_NAME,
    _done,
    _editable,
    _emit,
    _emit_rich,
    _label,
    _lit,
    _load,
    _path,
    _progress,
    _read_ws,
    _sha256,
    _state,
    _warn,
    console,
    err_console,
)
from routecalc.errors import RoutecalcError
from routecalc.format import printable


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
