"""Design-review charts: pure "chart data" functions, then drawing functions that return a matplotlib Figure.

One module per chart (``cost_quality``, ``latency``, ``cost_breakdown``, ``routing``, ``categories``), each with
its data function, its one-line takeaway and its figure; ``common`` holds the palette, styling and rendering they
share. The data functions take a :class:`~routecalc.results.Comparison` and return plain arrays, so tests can
check the numbers behind every chart (frontier points, stacked segments, shares, CDFs) without looking at pixels.
The drawing functions build a ``matplotlib.figure.Figure`` directly (no pyplot, no global figure state);
:func:`render_figure` renders one to PNG and SVG from a single layout, deterministically. matplotlib is imported
only inside the drawing functions, so importing this package (and ``routecalc --help``) stays fast.
"""

from __future__ import annotations

from dataclasses import dataclass

from routecalc.engine.histogram import HIST_REL_ERROR
from routecalc.report.charts.categories import (
    TIGHT_LATENCY,
    TIGHT_QUALITY_PP,
    CategoryRow,
    category_figure,
    category_view,
    takeaway_categories,
)
from routecalc.report.charts.common import (
    FAILED,
    HUMAN,
    VALIDATOR,
    ChartFormat,
    chart_rc,
    figure_bytes,
    focus_policy,
    render_figure,
)
from routecalc.report.charts.cost_breakdown import (
    CostBreakdown,
    cost_breakdown,
    cost_breakdown_figure,
    takeaway_cost_breakdown,
)
from routecalc.report.charts.cost_quality import (
    LOG_COST_SPREAD,
    AchievableFrontier,
    CostQuality,
    add_interval_bars,
    cost_quality,
    cost_quality_figure,
    draw_achievable_frontier,
    label_clusters,
    pareto_frontier,
    takeaway_cost_quality,
    weighted_threshold,
)
from routecalc.report.charts.latency import cdf_quantile, latency_cdf, latency_figure, takeaway_latency
from routecalc.report.charts.routing import RoutingShares, routing_figure, routing_shares, takeaway_routing


@dataclass(frozen=True)
class ChartSpec:
    """One chart of the report: file stem, title, drawing function and takeaway function."""

    slug: str
    title: str
    draw: object
    takeaway: object


CHARTS: tuple[ChartSpec, ...] = (
    ChartSpec("cost-vs-quality", "Cost vs quality", cost_quality_figure, takeaway_cost_quality),
    ChartSpec("latency-distribution", "Latency distribution and P95 budgets", latency_figure, takeaway_latency),
    ChartSpec("monthly-cost-breakdown", "Monthly cost breakdown", cost_breakdown_figure, takeaway_cost_breakdown),
    ChartSpec("routing-distribution", "Routing distribution", routing_figure, takeaway_routing),
    ChartSpec("category-targets", "Per-category targets", category_figure, takeaway_categories),
)

__all__ = [
    "CHARTS",
    "FAILED",
    "HIST_REL_ERROR",
    "HUMAN",
    "LOG_COST_SPREAD",
    "TIGHT_LATENCY",
    "TIGHT_QUALITY_PP",
    "VALIDATOR",
    "AchievableFrontier",
    "CategoryRow",
    "ChartFormat",
    "ChartSpec",
    "CostBreakdown",
    "CostQuality",
    "RoutingShares",
    "add_interval_bars",
    "category_figure",
    "category_view",
    "cdf_quantile",
    "chart_rc",
    "cost_breakdown",
    "cost_breakdown_figure",
    "cost_quality",
    "cost_quality_figure",
    "draw_achievable_frontier",
    "figure_bytes",
    "focus_policy",
    "label_clusters",
    "latency_cdf",
    "latency_figure",
    "pareto_frontier",
    "render_figure",
    "routing_figure",
    "routing_shares",
    "takeaway_categories",
    "takeaway_cost_breakdown",
    "takeaway_cost_quality",
    "takeaway_latency",
    "takeaway_routing",
    "weighted_threshold",
]
