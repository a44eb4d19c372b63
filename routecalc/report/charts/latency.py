"""Chart 2, latency: the end-to-end CDF per policy (P50/P95/P99 marked) and each category's P95 against its budget."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from routecalc.format import seconds
from routecalc.report.charts.categories import category_view
from routecalc.report.charts.common import (
    GREY,
    chain_index,
    focus_policy,
    new_figure,
    policy_styles,
    style_axes,
    with_chart_rc,
)
from routecalc.results import Comparison

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure


def latency_cdf(c: Comparison, policy: str) -> tuple[np.ndarray, np.ndarray]:
    """CDF of end-to-end latency over all traffic under one policy, from the Monte Carlo histograms.

    Returns the histogram edges (seconds, ``B + 1``) and the CDF at each edge (starts at 0, ends at 1).
    Categories are mixed by traffic share (not by how many requests MC happened to draw), as the P50/P95/P99
    in the comparison are; interpolating log-linearly between edges gives those percentiles back.
    """
    mc, share = c.mc, c.problem.tasks.share
    p = chain_index(c, policy)
    with np.errstate(invalid="ignore", divide="ignore"):
        w = np.where(mc.n > 0, share / np.maximum(mc.n, 1), 0.0)
    mixed = (mc.hist[p] * w[:, None]).sum(0)
    cdf = np.concatenate([[0.0], np.cumsum(mixed)])
    total = cdf[-1]
    return c.mc.edges, (cdf / total if total > 0 else cdf)


def cdf_quantile(edges: np.ndarray, cdf: np.ndarray, q: float) -> float:
    """The latency (seconds) where a CDF from :func:`latency_cdf` reaches ``q``, log-linear inside a bin."""
    i = int(np.searchsorted(cdf, q, side="left"))
    if i == 0:
        return float(edges[0])
    if i >= len(cdf):
        return float(edges[-1])
    lo, hi = cdf[i - 1], cdf[i]
    frac = (q - lo) / (hi - lo) if hi > lo else 0.5
    return float(np.exp(np.log(edges[i - 1]) + frac * (np.log(edges[i]) - np.log(edges[i - 1]))))


def takeaway_latency(c: Comparison) -> str:
    p = c.policy(focus_policy(c))
    rows = [r for r in category_view(c, p.name) if r.budget_s is not None]
    text = f"{p.name}: P50 {seconds(p.p50_s)}, P95 {seconds(p.p95_s)}, P99 {seconds(p.p99_s)} over all traffic"
    if rows:
        r = max(rows, key=lambda r: r.p95_s / (r.budget_s or 1))
        verb = "over" if r.latency_status == "miss" else "within"
        text += (
            f"; closest to its budget: {r.category} at P95 {seconds(r.p95_s)} vs {seconds(r.budget_s)} "
            f"({r.p95_s / r.budget_s:.0%} of budget, {verb})"  # type: ignore[operator]
        )
    return text + "."


@with_chart_rc
def latency_figure(c: Comparison) -> Figure:
    """Chart 2: latency CDF per policy (P50/P95/P99 marked) and each category's P95 against its budget."""
    from matplotlib.ticker import FuncFormatter, LogLocator, PercentFormatter

    styles = policy_styles(c)
    fig = new_figure(c, "Latency: end-to-end distribution (Monte Carlo) and P95 budgets", (11, 6.2))
    left, right = fig.subplots(1, 2, width_ratios=[1.25, 1])
    for ax in (left, right):
        style_axes(ax)
    lo_x, hi_x = np.inf, 0.0
    for p in c.policies:
        edges, cdf = latency_cdf(c, p.name)
        keep = (cdf > 0.0005) & (cdf < 0.9995)
        keep |= np.roll(keep, 1) | np.roll(keep, -1)
        if not keep.any():
            continue
        colour, marker, ls = styles[p.name]
        left.plot(edges[keep], cdf[keep], color=colour, linestyle=ls, linewidth=1.8, label=p.name)
        qs = [(0.5, p.p50_s), (0.95, p.p95_s), (0.99, p.p99_s)]
        left.scatter([x for _, x in qs], [q for q, _ in qs], marker=marker, s=36, color=colour, zorder=3)
        lo_x, hi_x = min(lo_x, edges[keep][0]), max(hi_x, edges[keep][-1])
    for q, label in ((0.5, "P50"), (0.95, "P95"), (0.99, "P99")):
        left.axhline(q, color="#BBBBBB", linewidth=0.8, zorder=0)
        left.text(1.005, q, label, transform=left.get_yaxis_transform(), fontsize=8, va="center", color=GREY)
    left.set_xscale("log")
    if np.isfinite(lo_x):
        left.set_xlim(lo_x, hi_x)
    left.set_ylim(0, 1.01)
    sec = FuncFormatter(lambda v, _pos: f"{v:g} s")
    left.xaxis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
    left.xaxis.set_major_formatter(sec)
    left.xaxis.set_minor_formatter(FuncFormatter(lambda v, _pos: ""))
    left.yaxis.set_major_formatter(PercentFormatter(1.0, decimals=0))
    left.set_xlabel("End-to-end latency (seconds, log scale; failed requests included)", fontsize=10)
    left.set_ylabel("Share of requests answered within (CDF, %)", fontsize=10)
    left.set_title("All traffic: markers at P50 / P95 / P99", fontsize=10.5, loc="left")
    left.legend(fontsize=8.5, loc="lower right", frameon=True, framealpha=0.9)

    _category_p95_panel(c, right, styles)
    return fig


def _category_p95_panel(c: Comparison, ax: Axes, styles: dict[str, tuple[str, str, object]]) -> None:
    """Per category (one row each): every policy's P95 with its 95 % CI, and the category's budget as a bar."""
    from matplotlib.ticker import FuncFormatter, LogLocator

    cats = list(c.problem.tasks.names)
    n_pol = len(c.policies)
    band = 0.56
    offsets = np.linspace(-band / 2, band / 2, n_pol) if n_pol > 1 else np.zeros(1)
    for k in range(len(cats)):
        if k % 2 == 0:
            ax.axhspan(k - 0.5, k + 0.5, color="#F3F3F3", zorder=0, linewidth=0)
    values = []
    for j, p in enumerate(c.policies):
        colour, marker, _ = styles[p.name]
        ys = np.arange(len(cats)) + offsets[j]
        x = np.array([cat.p95_s for cat in p.categories])
        lo = np.array([cat.p95_ci_s[0] for cat in p.categories])
        hi = np.array([cat.p95_ci_s[1] for cat in p.categories])
        values += [*lo, *hi]
        ok = [cat.latency_ok for cat in p.categories]
        ax.errorbar(x, ys, xerr=np.maximum([x - lo, hi - x], 0), fmt="none", ecolor=colour, elinewidth=1, zorder=2)
        ax.scatter(
            x,
            ys,
            marker=marker,
            s=34,
            facecolors=[colour if o else "white" for o in ok],
            edgecolors=colour,
            linewidths=1.5,
            zorder=3,
            label=p.name,
        )
    first = c.policies[0].categories
    budgets = [cat.budget_s for cat in first if cat.budget_s is not None]
    for k, cat in enumerate(first):
        if cat.budget_s is not None:
            ax.plot(
                [cat.budget_s, cat.budget_s],
                [k - 0.42, k + 0.42],
                color="#D55E00",
                linewidth=2.5,
                solid_capstyle="butt",
                zorder=4,
            )
            ax.annotate(
                f"budget {cat.budget_s:g} s",
                (cat.budget_s, k - 0.42),
                xytext=(3, 0),
                textcoords="offset points",
                fontsize=8,
                color="#D55E00",
                va="center",
            )
    finite = [v for v in [*values, *budgets] if np.isfinite(v) and v > 0]
    if finite:
        ax.set_xlim(min(finite) / 1.25, max(finite) * 1.9)
    ax.set_yticks(
        range(len(cats)),
        [n if b.budget_s is not None else f"{n}\n(no budget)" for n, b in zip(cats, first, strict=True)],
    )
    ax.set_ylim(len(cats) - 0.5, -0.5)
    ax.grid(False, axis="y")
    ax.set_xscale("log")
    ax.xaxis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _pos: f"{v:g} s"))
    ax.xaxis.set_minor_formatter(FuncFormatter(lambda v, _pos: ""))
    ax.set_xlabel("P95 latency (seconds, log scale; whiskers: 95 % CI)", fontsize=10)
    ax.set_title("P95 by category vs budget (open = over)", fontsize=10.5, loc="left")
