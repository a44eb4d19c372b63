"""Chart 1, cost vs quality: every policy as a point, the Pareto frontier, the threshold line, the winner."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from routecalc.format import money, pct
from routecalc.report.charts.common import (
    GREY,
    legend_below,
    money_axis,
    new_figure,
    policy_styles,
    style_axes,
    with_chart_rc,
)
from routecalc.results import Comparison

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure


LOG_COST_SPREAD = 20  # cost axis turns logarithmic when the dearest policy costs this many times the cheapest


def pareto_frontier(points: Sequence[tuple[float, float]]) -> list[int]:
    """Indices of the non-dominated points when cost is minimised and quality maximised, by rising cost.

    A point is dominated when another is no more expensive and no worse, and strictly better in one of the two.
    Exact duplicates do not dominate each other, so both stay on the frontier.
    """
    pts = [(float(c), float(q)) for c, q in points]
    keep = []
    for i, (ci, qi) in enumerate(pts):
        dominated = any(cj <= ci and qj >= qi and (cj < ci or qj > qi) for j, (cj, qj) in enumerate(pts) if j != i)
        if not dominated:
            keep.append(i)
    return sorted(keep, key=lambda i: (pts[i][0], -pts[i][1], i))


def weighted_threshold(c: Comparison) -> float:
    """Traffic-weighted quality threshold: the overall quality a policy needs if every category just met its own."""
    tt = c.problem.tasks
    return float(tt.threshold @ tt.share)


@dataclass(frozen=True)
class CostQuality:
    """Cost vs quality chart data: one point per policy (baseline and all-to-strongest included)."""

    policies: tuple[str, ...]
    monthly_cost: np.ndarray  # (P,) currency per month
    quality: np.ndarray  # (P,) share of requests answered well
    meets_targets: np.ndarray  # (P,) bool
    frontier: list[int]  # indices into policies, by rising cost
    threshold: float  # traffic-weighted quality threshold
    winner: int | None
    baseline: int | None


def cost_quality(c: Comparison) -> CostQuality:
    """Points, Pareto frontier, threshold line and winner of the cost vs quality chart."""
    names = tuple(p.name for p in c.policies)
    cost = np.array([p.monthly_cost for p in c.policies])
    quality = np.array([p.quality for p in c.policies])
    return CostQuality(
        policies=names,
        monthly_cost=cost,
        quality=quality,
        meets_targets=np.array([p.meets_targets for p in c.policies]),
        frontier=pareto_frontier(list(zip(cost, quality, strict=True))),
        threshold=weighted_threshold(c),
        winner=names.index(c.winner) if c.winner in names else None,
        baseline=names.index(c.baseline) if c.baseline in names else None,
    )


def takeaway_cost_quality(c: Comparison) -> str:
    data = cost_quality(c)
    front = ", ".join(data.policies[i] for i in data.frontier)
    cur = c.currency
    w = c.winner_result
    if w is None:
        return f"No policy meets every category's targets. Cost/quality frontier: {front}."
    lead = f"{w.name} is the {c.winner_rule} ({money(w.monthly_cost, cur, '/month')}, "
    lead += f"{pct(w.quality, 2)} good answers)"
    on = "on" if c.policies.index(w) in data.frontier else "not on"
    return f"{lead}; it is {on} the cost/quality frontier ({front})."


def label_clusters(
    x: np.ndarray, y: np.ndarray, xlim: tuple[float, float], ylim: tuple[float, float], near: float = 0.04
) -> list[list[int]]:
    """Group points closer than ``near`` (share of the axis span, both axes) so each group gets one label."""
    xs = (np.asarray(x) - xlim[0]) / ((xlim[1] - xlim[0]) or 1)
    ys = (np.asarray(y) - ylim[0]) / ((ylim[1] - ylim[0]) or 1)
    groups: list[list[int]] = []
    for i in np.argsort(xs, kind="stable"):
        for g in groups:
            if abs(xs[g[0]] - xs[i]) < near and abs(ys[g[0]] - ys[i]) < near:
                g.append(int(i))
                break
        else:
            groups.append([int(i)])
    return groups


@with_chart_rc
def cost_quality_figure(c: Comparison, achievable: AchievableFrontier | None = None) -> Figure:
    """Chart 1: every policy as a point (monthly cost, quality), the Pareto frontier, threshold line and winner;
    with ``achievable``, also the frontier over every candidate route (``routecalc optimize``)."""
    data = cost_quality(c)
    styles = policy_styles(c)
    fig = new_figure(c, "Cost vs quality: which policies are worth considering", (10, 6))
    ax = fig.add_subplot()
    style_axes(ax)
    fx = data.monthly_cost[data.frontier]
    fy = data.quality[data.frontier]
    ax.plot(fx, fy, color=GREY, linestyle="--", linewidth=1.5, zorder=1, label="cost/quality frontier (Pareto)")
    ax.axhline(
        data.threshold,
        color="#D55E00",
        linestyle=":",
        linewidth=1.8,
        zorder=1,
        label=f"traffic-weighted quality threshold ({pct(data.threshold, 2)}); targets are per category",
    )
    for i, p in enumerate(c.policies):
        colour, marker, _ = styles[p.name]
        ok = bool(data.meets_targets[i])
        ax.scatter(
            data.monthly_cost[i],
            data.quality[i],
            s=90,
            marker=marker,
            facecolors=colour if ok else "white",
            edgecolors=colour,
            linewidths=2,
            zorder=3,
            label=f"{c.label(p)}: {money(p.monthly_cost, c.currency, '/mo')}, {pct(p.quality, 2)}"
            + ("" if ok else " — misses a target"),
        )
    lo = min(float(data.quality.min()), data.threshold)
    hi = max(float(data.quality.max()), data.threshold)
    pad = max((hi - lo) * 0.25, 0.002)
    ylim = (lo - pad, min(hi + pad, 1.0005))
    cost = data.monthly_cost
    log_x = bool(len(cost) > 1 and cost.min() > 0 and cost.max() / cost.min() > LOG_COST_SPREAD)
    if log_x:
        xlim = (float(cost.min()) / 1.5, float(cost.max()) * 2.5)
        where = np.log10(cost), (np.log10(xlim[0]), np.log10(xlim[1]))
    else:
        xmax = float(cost.max()) if len(cost) else 1.0
        xlim = (0.0, xmax * 1.15 if xmax > 0 else 1.0)
        where = cost, xlim
    if data.winner is not None:
        wx, wy = data.monthly_cost[data.winner], data.quality[data.winner]
        ax.scatter(wx, wy, s=420, facecolors="none", edgecolors="black", linewidths=1.8, zorder=4)
    frontier = set(data.frontier)
    for members in label_clusters(where[0], data.quality, where[1], ylim):
        i = members[0]
        names = [("winner: " if j == data.winner else "") + data.policies[j] for j in members]
        below = i in frontier  # the frontier line leaves its points up and to the right: label below it
        ax.annotate(
            " / ".join(names),
            (data.monthly_cost[i], data.quality[i]),
            xytext=(12, -6 if below else 6),
            textcoords="offset points",
            va="top" if below else "bottom",
            fontsize=9.5,
            fontweight="bold" if data.winner in members else "normal",
            color="#222222",
        )
    if achievable is not None:
        ylim = draw_achievable_frontier(ax, achievable, xlim, ylim)
    ax.set_ylim(*ylim)
    from matplotlib.ticker import LogLocator, NullFormatter, PercentFormatter

    if log_x:
        ax.set_xscale("log")
        ax.xaxis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
        ax.xaxis.set_minor_formatter(NullFormatter())
    ax.set_xlim(*xlim)

    ax.yaxis.set_major_formatter(PercentFormatter(1.0, decimals=1))
    money_axis(ax, c.currency)
    scale = ", log scale" if log_x else ""
    ax.set_xlabel(f"Monthly cost ({c.currency} per month{scale}; tokens + validators + human review)", fontsize=10)
    ax.set_ylabel("Quality (share of requests answered well, %)", fontsize=10)
    ax.legend(
        **legend_below(ax),
        ncols=2,
        fontsize=8.5,
        frameon=False,
        title="filled = meets every category target · open = misses one",
        title_fontsize=8.5,
    )
    return fig


def add_interval_bars(fig: Figure, c: Comparison, cost: np.ndarray, quality: np.ndarray, note: str) -> None:
    """Whiskers on chart 1 (:func:`cost_quality_figure`): each policy's interval of monthly cost and of quality.

    ``cost`` and ``quality`` are ``(P, 2)`` (low, high), policies in ``c.policies`` order. Draws the intervals
    themselves (not offsets from the point, which need not lie inside them), widens the axes to show them and
    writes ``note`` (what the whiskers are) in the corner.
    """
    ax = fig.axes[0]
    styles = policy_styles(c)
    for i, p in enumerate(c.policies):
        colour = styles[p.name][0]
        x, y = p.monthly_cost, p.quality
        line = {"color": colour, "linewidth": 1.3, "alpha": 0.85, "zorder": 2, "solid_capstyle": "butt"}
        ax.plot(cost[i], [y, y], marker="|", markersize=7, **line)
        ax.plot([x, x], quality[i], marker="_", markersize=7, **line)
    lo, hi = ax.get_ylim()
    pad = 0.05 * (hi - lo)
    ax.set_ylim(min(lo, float(quality.min()) - pad), min(max(hi, float(quality.max()) + pad), 1.0005))
    left, right = ax.get_xlim()
    if ax.get_xscale() == "log":
        ax.set_xlim(min(left, float(cost.min()) / 1.2), max(right, float(cost.max()) * 1.2))
    else:
        ax.set_xlim(left, max(right, float(cost.max()) * 1.05))
    ax.text(0.99, 0.015, note, transform=ax.transAxes, ha="right", va="bottom", fontsize=8, color=GREY)


@dataclass(frozen=True)
class AchievableFrontier:
    """The frontier of whole policies over every candidate route: monthly cost (currency per month) and
    traffic-weighted quality ``(F,)`` by rising cost; ``label`` for the legend."""

    monthly_cost: np.ndarray
    quality: np.ndarray
    label: str


def draw_achievable_frontier(
    ax: Axes, f: AchievableFrontier, xlim: tuple[float, float], ylim: tuple[float, float]
) -> tuple[float, float]:
    """The optimizer's frontier as a step line (a policy at each corner) within the chart's cost range; returns
    the y limits, raised if the frontier reaches above them."""
    x, y = np.asarray(f.monthly_cost), np.asarray(f.quality)
    inside = (x >= xlim[0]) & (x <= xlim[1])
    if inside.sum() < 2:
        return ylim
    ax.step(x[inside], y[inside], where="post", color="#009E73", linewidth=1.6, alpha=0.9, zorder=2, label=f.label)
    return ylim[0], max(ylim[1], float(min(y[inside].max() + 0.002, 1.0005)))
