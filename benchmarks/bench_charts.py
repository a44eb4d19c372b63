"""Rendering the report's five charts to PNG + SVG: one savefig per format (each lays the figure out again) vs
``render_figure`` (one layout, then the SVG rendered from it), side by side in the same run.

    python benchmarks/bench_charts.py [--runs 3]

Counts constrained-layout passes and Figure.draw calls, and prints CPU seconds (process time, best of runs)
as a Markdown table.
"""

from __future__ import annotations

import argparse
import io
import time
from collections.abc import Callable
from pathlib import Path

import routecalc
from routecalc.report import charts

ROOT = Path(__file__).resolve().parent.parent


def two_savefigs(fig: object) -> None:
    """What report did before: savefig(png) then savefig(svg) on the same figure."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    FigureCanvasAgg(fig)
    with charts.chart_rc():
        for fmt, meta in (("png", {"Software": None}), ("svg", {"Date": None})):
            fig.savefig(io.BytesIO(), format=fmt, dpi=150, metadata=meta, facecolor="white")  # type: ignore[attr-defined]


def counted(render: Callable[[object], object], c: routecalc.Comparison) -> tuple[float, int, int]:
    from matplotlib.figure import Figure
    from matplotlib.layout_engine import ConstrainedLayoutEngine

    n = {"layout": 0, "draw": 0}
    execute, draw = ConstrainedLayoutEngine.execute, Figure.draw

    def count_execute(self, fig):  # type: ignore[no-untyped-def]
        n["layout"] += 1
        return execute(self, fig)

    def count_draw(self, renderer):  # type: ignore[no-untyped-def]
        n["draw"] += 1
        return draw(self, renderer)

    figs = [spec.draw(c) for spec in charts.CHARTS]  # type: ignore[operator]
    ConstrainedLayoutEngine.execute, Figure.draw = count_execute, count_draw  # type: ignore[method-assign]
    try:
        t0 = time.process_time()
        for fig in figs:
            render(fig)
        return time.process_time() - t0, n["layout"], n["draw"]
    finally:
        ConstrainedLayoutEngine.execute, Figure.draw = execute, draw  # type: ignore[method-assign]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    ws = routecalc.load_worksheet(ROOT / "worksheets/support-triage.yaml")
    c = routecalc.compare(ws, samples=200_000, seed=0)
    methods = {"savefig per format (before)": two_savefigs, "render_figure (one layout)": charts.render_figure}
    counted(charts.render_figure, c)  # warm-up: fonts, imports
    print("| 5 charts, PNG + SVG | layout passes | Figure.draw calls | CPU time, best of runs |")
    print("|---|---|---|---|")
    for name, render in methods.items():
        runs = [counted(render, c) for _ in range(args.runs)]
        best = min(r[0] for r in runs)
        shown = ", ".join(f"{r[0]:.2f}" for r in runs)
        print(f"| {name} | {runs[0][1]} | {runs[0][2]} | {best:.2f} s (of {args.runs}: {shown}) |")


if __name__ == "__main__":
    main()
