"""``routecalc report``: the design-review report (charts, HTML, Markdown) from one worksheet.

Registered on the main app at the end of :mod:`routecalc.cli`. Heavy modules (numpy, matplotlib) are imported
inside the command, so ``routecalc --help`` does not load them.
"""

from __future__ import annotations

import re
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from routecalc.cli import SamplesOpt, ScenarioOpt, SeedOpt, TodayOpt, WorksheetArg, _today, console

DEFAULT_ROOT = Path("routecalc-report")


class ReportFormat(StrEnum):
    html = "html"
    md = "md"
    both = "both"


def default_out_dir(worksheet: Path) -> Path:
    """``./routecalc-report/<worksheet file name without extension>/`` (safe characters only)."""
    slug = re.sub(r"[^A-Za-z0-9._-]+", "-", worksheet.stem).strip("-.") or "worksheet"
    return DEFAULT_ROOT / slug


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
) -> None:
    """Write a design-review report for WORKSHEET: five charts and a self-contained HTML page and/or Markdown.

    Charts (PNG and SVG): cost vs quality with the Pareto frontier, latency CDF and P95 budgets, monthly cost
    by category and model, routing distribution, and the winner's per-category targets. The report adds the
    recommendation, the side-by-side table, every assumption, warnings and provenance. --today sets the
    report date (review-age warnings count to it).
    """
    from routecalc.outputs import write_files
    from routecalc.report.build import HTML_NAME, MD_NAME, build_report
    from routecalc.report.tables import verdict
    from routecalc.results import compare as run_compare
    from routecalc.worksheet import load_worksheet

    ws = load_worksheet(worksheet, scenario or ())
    day = _today(today)
    result = run_compare(ws, samples=samples, seed=seed, today=day)
    files = build_report(ws, result, worksheet, fmt.value, generated=day, scenarios=scenario or ())
    out_dir = out if out is not None else default_out_dir(worksheet)
    write_files(out_dir, files, force=force)
    n_charts = sum(name.endswith(".png") for name in files)
    main = [name for name in (HTML_NAME, MD_NAME) if name in files]
    console.print(
        f"wrote {len(files)} files to {out_dir}: {', '.join(main)} and {n_charts} charts (PNG + SVG)",
        highlight=False,
    )
    for name in main:
        console.print(f"  {out_dir / name}", highlight=False)
    console.print(verdict(result), highlight=False)
    if result.winner is None:
        for p in result.policies:
            console.print(f"  [red]✗[/] {escape(p.name)}: nearest miss {escape(p.nearest_miss or '')}", highlight=False)
