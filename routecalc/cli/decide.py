"""sensitivity and simulate: what would change the answer, and a month request by request."""

from __future__ import annotations

import datetime as dt
import sys
from pathlib import Path
from typing import Annotated

import typer

from routecalc.cli.common import (
    Objective,
    ObjectiveOpt,
    RankBy,
    SamplesOpt,
    ScenarioOpt,
    SeedOpt,
    ShowFormat,
    SimulateFormat,
    WorksheetArg,
    _swing,
    app,
)
from routecalc.cli.support import (
    _done,
    _load,
    _note,
    _progress,
    _warn,
    console,
)
from routecalc.format import printable


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
    objective: ObjectiveOpt = Objective.cost,
) -> None:
    """Simulate a month of WORKSHEET's traffic, request by request in arrival order, with its time effects.

    Traffic follows volume.profile (hours, weekdays, growth, spike days); the worksheet's operations section adds
    outages, circuit breakers, rate limits at peak, budget pacing and load-adaptive routing. Shows a row per day
    (requests, spend against the budget, quality, failures, P95/P99, breaker-open minutes, spill and downgrade
    shares), month totals, and what each effect did against the same month without it. --samples and
    --objective only matter for --policy winner (the comparison that picks it, as compare and report do).
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

        picked = run_compare(ws, samples=samples, seed=seed, objective=objective.value, progress=_progress())
        name = picked.winner or ""
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
