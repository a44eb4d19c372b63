"""Design-review charts: pure "chart data" functions, then drawing functions that return a matplotlib Figure.

The data functions take a :class:`~routecalc.results.Comparison` and return plain arrays, so tests can check
the numbers behind every chart (frontier points, stacked segments, shares, CDFs) without looking at pixels.
The drawing functions build a ``matplotlib.figure.Figure`` directly (no pyplot, no global figure state);
:func:`figure_bytes` renders one to PNG or SVG deterministically. matplotlib is imported only inside the
drawing functions, so importing this module (and ``routecalc --help``) stays fast.
"""

from __future__ import annotations

import io
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

import numpy as np

from routecalc.engine.mc import HIST_REL_ERROR
from routecalc.format import count, money, pct, seconds
from routecalc.results import Comparison, weighted

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

# Okabe-Ito colour-blind-safe palette (yellow last: weak on white), plus markers and hatches for greyscale.
OKABE_ITO = ("#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#000000", "#F0E442")
LINE_COLOURS = OKABE_ITO[:7]  # 7 colours x 8 markers / line styles: unique up to 56 policies
MARKERS = ("o", "s", "^", "D", "v", "P", "X", "h")
LINESTYLES = ("-", "--", "-.", ":", (0, (5, 1, 1, 1, 1, 1)), (0, (8, 2)), (0, (1, 1)), (0, (3, 1, 1, 1)))
HATCHES = ("", "//", "..", "xx", "\\\\", "oo", "--", "++", "**", "||")
STATUS_COLOURS = {"ok": "#BFE6D8", "tight": "#F5CF7A", "miss": "#D55E00", "none": "#EEEEEE"}  # tints of Okabe-Ito
GREY = "#555555"

TIGHT_QUALITY_PP = 1.0  # a met quality threshold with less than this margin (percentage points) is "tight"
TIGHT_LATENCY = 0.9  # a met budget with P95 above this share of it (or a 95 % CI reaching over it) is "tight"
LOG_COST_SPREAD = 20  # cost axis turns logarithmic when the dearest policy costs this many times the cheapest
HUMAN = "human review"
FAILED = "failed (no answer)"
VALIDATOR = "validator"

ChartFormat = Literal["png", "svg"]


# ---------------------------------------------------------------------------------------------------------
# Chart data (pure)


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


def _chain_index(c: Comparison, name: str) -> int:
    return c.problem.chains.names.index(name)


@dataclass(frozen=True)
class CostBreakdown:
    """Monthly cost per policy split two ways: by task category and by what is paid for (models, validator, human).

    Each row of ``by_category`` and of ``by_component`` sums to the policy's monthly cost.
    """

    policies: tuple[str, ...]
    categories: tuple[str, ...]
    by_category: np.ndarray  # (P, C) currency per month
    components: tuple[str, ...]  # model names, then "validator" / "human review" when any policy pays for them
    by_component: np.ndarray  # (P, K) currency per month
    totals: np.ndarray  # (P,) PolicyResult.monthly_cost


def cost_breakdown(c: Comparison) -> CostBreakdown:
    """Stacked-bar data of the monthly cost chart, from the expected-value engine's arrays."""
    ev, tt, vol = c.ev, c.problem.tasks, c.requests_per_month
    ix = [_chain_index(c, p.name) for p in c.policies]
    by_category = ev.cost[ix] * tt.share[None, :] * vol
    parts = [weighted(ev.token_cost[ix], tt.share) * vol]  # (P, M)
    names = list(c.problem.models.names)
    for label, arr in ((VALIDATOR, ev.gate_cost), (HUMAN, ev.human_cost)):
        parts.append((weighted(arr[ix], tt.share) * vol)[:, None])
        names.append(label)
    by_component = np.concatenate(parts, axis=1)
    used = by_component.max(axis=0) > 0
    return CostBreakdown(
        policies=tuple(p.name for p in c.policies),
        categories=tuple(tt.names),
        by_category=by_category,
        components=tuple(n for n, u in zip(names, used, strict=True) if u),
        by_component=by_component[:, used],
        totals=np.array([p.monthly_cost for p in c.policies]),
    )


@dataclass(frozen=True)
class RoutingShares:
    """Who answers the requests under each policy; each row of ``shares`` sums to 1.

    ``labels`` are the models that answer under some policy, then "human review" and "failed (no answer)".
    Escalation (rejected by at least one gate) and fallback (abandoned at least one step) are rates of requests.
    """

    policies: tuple[str, ...]
    labels: tuple[str, ...]
    shares: np.ndarray  # (P, K)
    escalation: np.ndarray  # (P,)
    fallback: np.ndarray  # (P,)


def routing_shares(c: Comparison) -> RoutingShares:
    """Routing-distribution data: the numbers to compare later with production monitoring."""
    ev, tt = c.ev, c.problem.tasks
    ix = [_chain_index(c, p.name) for p in c.policies]
    answered = weighted(ev.answered[ix], tt.share)  # (P, M)
    used = answered.max(axis=0) > 0
    labels = [m for m, u in zip(c.problem.models.names, used, strict=True) if u]
    shares = np.concatenate(
        [answered[:, used], weighted(ev.human[ix], tt.share)[:, None], weighted(ev.failed[ix], tt.share)[:, None]],
        axis=1,
    )
    return RoutingShares(
        policies=tuple(p.name for p in c.policies),
        labels=(*labels, HUMAN, FAILED),
        shares=shares,
        escalation=weighted(ev.escalation[ix], tt.share),
        fallback=weighted(ev.fallback[ix], tt.share),
    )


def latency_cdf(c: Comparison, policy: str) -> tuple[np.ndarray, np.ndarray]:
    """CDF of end-to-end latency over all traffic under one policy, from the Monte Carlo histograms.

    Returns the histogram edges (seconds, ``B + 1``) and the CDF at each edge (starts at 0, ends at 1).
    Categories are mixed by traffic share (not by how many requests MC happened to draw), as the P50/P95/P99
    in the comparison are; interpolating log-linearly between edges gives those percentiles back.
    """
    mc, share = c.mc, c.problem.tasks.share
    p = _chain_index(c, policy)
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


def focus_policy(c: Comparison) -> str:
    """The policy the per-category view describes: the winner, else the baseline, else the first policy."""
    return c.winner or c.baseline or c.policies[0].name


@dataclass(frozen=True)
class CategoryRow:
    """One category under one policy, with a status per target: ok, tight (met with little margin), miss, none."""

    category: str
    share: float
    monthly_cost: float
    quality: float
    threshold: float
    quality_margin_pp: float  # quality - threshold in percentage points (negative = miss)
    quality_status: str
    p95_s: float
    p95_ci_s: tuple[float, float]
    budget_s: float | None
    latency_status: str

    @property
    def at_risk(self) -> bool:
        return self.quality_status in ("tight", "miss") or self.latency_status in ("tight", "miss")


def category_view(c: Comparison, policy: str) -> list[CategoryRow]:
    """Per-category cost, quality vs threshold and P95 vs budget for one policy, with a status for each."""
    p = c.policy(policy)
    rows = []
    for cat in p.categories:
        margin = (cat.quality - cat.threshold) * 100
        q_status = "miss" if not cat.quality_ok else ("tight" if margin < TIGHT_QUALITY_PP else "ok")
        if cat.budget_s is None:
            l_status = "none"
        elif not cat.latency_ok:
            l_status = "miss"
        elif cat.p95_s > TIGHT_LATENCY * cat.budget_s or cat.p95_ci_s[1] > cat.budget_s:
            l_status = "tight"
        else:
            l_status = "ok"
        rows.append(
            CategoryRow(
                category=cat.category,
                share=cat.share,
                monthly_cost=cat.cost_per_request * cat.share * c.requests_per_month,
                quality=cat.quality,
                threshold=cat.threshold,
                quality_margin_pp=margin,
                quality_status=q_status,
                p95_s=cat.p95_s,
                p95_ci_s=cat.p95_ci_s,
                budget_s=cat.budget_s,
                latency_status=l_status,
            )
        )
    return rows


# ---------------------------------------------------------------------------------------------------------
# Takeaways: the one line under each chart


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


def takeaway_cost_breakdown(c: Comparison) -> str:
    data = cost_breakdown(c)
    name = focus_policy(c)
    i = data.policies.index(name)
    total = data.totals[i]
    if total <= 0:
        return f"{name} costs nothing per month under this worksheet."
    cat = int(np.argmax(data.by_category[i]))
    comp = int(np.argmax(data.by_component[i]))
    cur = c.currency
    return (
        f"{name} costs {money(total, cur, '/month')}: {data.categories[cat]} is the largest category "
        f"({money(data.by_category[i, cat], cur, '/month')}, {data.by_category[i, cat] / total:.0%}) and "
        f"{data.components[comp]} the largest item ({money(data.by_component[i, comp], cur, '/month')}, "
        f"{data.by_component[i, comp] / total:.0%})."
    )


def takeaway_routing(c: Comparison) -> str:
    data = routing_shares(c)
    name = focus_policy(c)
    i = data.policies.index(name)
    top = int(np.argmax(data.shares[i]))
    return (
        f"Under {name}, {data.labels[top]} answers {pct(data.shares[i, top])} of requests; "
        f"escalation {pct(data.escalation[i])}, fallback {pct(data.fallback[i], 2)}: "
        "compare these with production monitoring after launch."
    )


def takeaway_categories(c: Comparison) -> str:
    name = focus_policy(c)
    rows = category_view(c, name)
    who = name if name == c.winner else f"{name} (no winner; shown: {'baseline' if name == c.baseline else 'first'})"
    misses = [r.category for r in rows if "miss" in (r.quality_status, r.latency_status)]
    if misses:
        return f"{who} misses a target in {', '.join(misses)}."
    tight = [r for r in rows if r.at_risk]
    if not tight:
        return f"{who} meets every target with room to spare (≥ {TIGHT_QUALITY_PP:g} pp quality margin, P95 ≤ 90 % of budget)."
    parts = []
    for r in tight:
        bits = []
        if r.quality_status == "tight":
            bits.append(f"quality {r.quality_margin_pp:+.2f} pp over its threshold")
        if r.latency_status == "tight":
            bits.append(f"P95 {seconds(r.p95_s)} vs budget {seconds(r.budget_s)}")
        parts.append(f"{r.category} ({', '.join(bits)})")
    return f"{who} meets every target; at risk: {'; '.join(parts)}."


# ---------------------------------------------------------------------------------------------------------
# Drawing


@contextmanager
def _deterministic() -> Iterator[None]:
    """Fixed SVG ids and no dates in file metadata: same inputs, byte-identical files."""
    import matplotlib

    with matplotlib.rc_context({"svg.hashsalt": "routecalc", "svg.fonttype": "path", "font.family": "DejaVu Sans"}):
        yield


def figure_bytes(fig: Figure, fmt: ChartFormat = "png", dpi: int = 150) -> bytes:
    """Render a figure to PNG or SVG bytes (no dates in the metadata, fixed SVG ids)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    FigureCanvasAgg(fig)
    buf = io.BytesIO()
    metadata = {"Date": None} if fmt == "svg" else {"Software": None}
    with _deterministic():
        fig.savefig(buf, format=fmt, dpi=dpi, metadata=metadata, facecolor="white")
    return buf.getvalue()


def _subtitle(c: Comparison) -> str:
    return (
        f"{c.worksheet} · {count(c.requests_per_month)} requests/month · money in {c.currency} · "
        f"Monte Carlo: {count(c.samples)} requests, seed {c.seed} · routecalc"
    )


def _figure(c: Comparison, title: str, size: tuple[float, float]) -> Figure:
    """A blank figure with the worksheet name in the title and volume and currency in a footer."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=size, layout="constrained", facecolor="white")
    fig.suptitle(f"{title} — {c.worksheet}", fontsize=13, fontweight="bold", x=0.01, ha="left")
    fig.supxlabel(_subtitle(c), fontsize=8.5, color=GREY, x=0.01, ha="left")
    return fig


def _below(ax: Axes, points: float = 40) -> dict:
    """Legend placement under an axes' tick labels and x label, a fixed distance whatever the figure height."""
    from matplotlib.transforms import offset_copy

    return {
        "loc": "upper center",
        "bbox_to_anchor": (0.5, 0.0),
        "bbox_transform": offset_copy(ax.transAxes, fig=ax.figure, y=-points, units="points"),
    }


def _style(ax: Axes) -> None:
    ax.spines[["top", "right"]].set_visible(False)
    ax.tick_params(labelsize=9)
    ax.grid(True, color="#E5E5E5", linewidth=0.8)
    ax.set_axisbelow(True)


def _money_axis(ax: Axes, currency: str, axis: str = "x") -> None:
    from matplotlib.ticker import FuncFormatter

    fmt = FuncFormatter(lambda v, _pos: "0" if v == 0 else money(v, currency))
    (ax.xaxis if axis == "x" else ax.yaxis).set_major_formatter(fmt)


def _policy_styles(c: Comparison) -> dict[str, tuple[str, str, object]]:
    """Colour, marker and line style per policy, the same in every chart."""
    return {
        p.name: (LINE_COLOURS[i % len(LINE_COLOURS)], MARKERS[i % len(MARKERS)], LINESTYLES[i % len(LINESTYLES)])
        for i, p in enumerate(c.policies)
    }


FIXED_SEGMENTS = {HUMAN: ("#999999", ".."), FAILED: ("#333333", "xx"), VALIDATOR: ("#BBBBBB", "//")}


def _model_styles(c: Comparison) -> dict[str, tuple[str, str]]:
    """Colour and hatch per model, by catalogue order, so a model looks the same in every chart."""
    styles = {
        m: (OKABE_ITO[i % len(OKABE_ITO)], HATCHES[i % len(HATCHES)]) for i, m in enumerate(c.problem.models.names)
    }
    return {**styles, **FIXED_SEGMENTS}


def _category_styles(c: Comparison) -> dict[str, tuple[str, str]]:
    """Colour and hatch per category: samples of cividis (colour-blind-safe), distinct from the model colours."""
    from matplotlib import colormaps

    names = c.problem.tasks.names
    cmap = colormaps["cividis"]
    n = max(len(names) - 1, 1)
    return {
        name: (matplotlib_hex(cmap(0.05 + 0.9 * i / n)), HATCHES[(i + 1) % len(HATCHES)])
        for i, name in enumerate(names)
    }


def matplotlib_hex(rgba: tuple[float, ...]) -> str:
    return "#" + "".join(f"{round(v * 255):02X}" for v in rgba[:3])


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


def cost_quality_figure(c: Comparison, achievable: AchievableFrontier | None = None) -> Figure:
    """Chart 1: every policy as a point (monthly cost, quality), the Pareto frontier, threshold line and winner;
    with ``achievable``, also the frontier over every candidate route (``routecalc optimize``)."""
    data = cost_quality(c)
    styles = _policy_styles(c)
    fig = _figure(c, "Cost vs quality: which policies are worth considering", (10, 6))
    ax = fig.add_subplot()
    _style(ax)
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
    _money_axis(ax, c.currency)
    scale = ", log scale" if log_x else ""
    ax.set_xlabel(f"Monthly cost ({c.currency} per month{scale}; tokens + validators + human review)", fontsize=10)
    ax.set_ylabel("Quality (share of requests answered well, %)", fontsize=10)
    ax.legend(
        **_below(ax),
        ncols=2,
        fontsize=8.5,
        frameon=False,
        title="filled = meets every category target · open = misses one",
        title_fontsize=8.5,
    )
    return fig


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


def latency_figure(c: Comparison) -> Figure:
    """Chart 2: latency CDF per policy (P50/P95/P99 marked) and each category's P95 against its budget."""
    from matplotlib.ticker import FuncFormatter, LogLocator, PercentFormatter

    styles = _policy_styles(c)
    fig = _figure(c, "Latency: end-to-end distribution (Monte Carlo) and P95 budgets", (11, 6.2))
    left, right = fig.subplots(1, 2, width_ratios=[1.25, 1])
    for ax in (left, right):
        _style(ax)
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


def _stacked(
    ax: Axes, names: Sequence[str], labels: Sequence[str], values: np.ndarray, styles: dict[str, tuple[str, str]]
) -> None:
    y = np.arange(len(names))
    left = np.zeros(len(names))
    for k, label in enumerate(labels):
        colour, hatch = styles[label]
        ax.barh(
            y,
            values[:, k],
            left=left,
            height=0.62,
            color=colour,
            hatch=hatch,
            edgecolor="white",
            linewidth=0.6,
            label=label,
        )
        left += values[:, k]
    ax.set_yticks(y, names)
    ax.set_ylim(len(names) - 0.5, -0.5)


def cost_breakdown_figure(c: Comparison) -> Figure:
    """Chart 3: monthly cost per policy as stacked bars, by task category and by model (what you pay for)."""
    data = cost_breakdown(c)
    fig = _figure(c, "Monthly cost breakdown: where the money goes", (11, 1.9 + 0.5 * len(data.policies) + 1.2))
    left, right = fig.subplots(1, 2, sharey=True)
    names = [c.label(p) for p in c.policies]
    _stacked(left, names, data.categories, data.by_category, _category_styles(c))
    _stacked(right, names, data.components, data.by_component, _model_styles(c))
    xmax = float(data.totals.max()) * 1.22 if len(data.totals) and data.totals.max() > 0 else 1.0
    for ax, title in ((left, "by task category"), (right, "by model (and validator / human review)")):
        _style(ax)
        ax.grid(True, axis="x", color="#E5E5E5")
        ax.grid(False, axis="y")
        ax.set_xlim(0, xmax)
        _money_axis(ax, c.currency)
        ax.set_title(title, fontsize=10.5, loc="left")
        ax.set_xlabel(f"Monthly cost ({c.currency} per month)", fontsize=10)
        for i, total in enumerate(data.totals):
            ax.text(total, i, " " + money(total, c.currency, "/mo"), va="center", fontsize=8.5)
        ax.legend(**_below(ax), ncols=3, fontsize=8.5, frameon=False)
    return fig


def routing_figure(c: Comparison) -> Figure:
    """Chart 4: per policy, the share of requests answered by each model (plus human review and failures),
    and the escalation and fallback rates."""
    from matplotlib.ticker import PercentFormatter

    data = routing_shares(c)
    height = 1.9 + 0.5 * len(data.policies) + 1.2
    fig = _figure(c, "Routing distribution: who answers, how often requests escalate or fall back", (11, height))
    left, right = fig.subplots(1, 2, sharey=True, width_ratios=[1.5, 1])
    names = [c.label(p) for p in c.policies]
    _stacked(left, names, data.labels, data.shares, _model_styles(c))
    _style(left)
    left.grid(False, axis="y")
    left.set_xlim(0, 1)
    left.xaxis.set_major_formatter(PercentFormatter(1.0, decimals=0))
    left.set_xlabel("Share of requests (%)", fontsize=10)
    left.set_title("Answered by (stacks sum to 100 %)", fontsize=10.5, loc="left")
    left.legend(**_below(left), ncols=3, fontsize=8.5, frameon=False)
    for i in range(len(names)):
        k = int(np.argmax(data.shares[i]))
        start = data.shares[i, :k].sum()
        if data.shares[i, k] >= 0.12:
            left.text(
                start + data.shares[i, k] / 2,
                i,
                pct(data.shares[i, k], 0),
                ha="center",
                va="center",
                fontsize=8.5,
                color="white",
                fontweight="bold",
                bbox={"facecolor": "black", "alpha": 0.55, "pad": 1.5, "linewidth": 0},
            )

    _style(right)
    right.grid(False, axis="y")
    y = np.arange(len(names))
    h = 0.3
    right.barh(y - h / 2, data.escalation, height=h, color="#444444", label="escalation (rejected by a gate)")
    right.barh(
        y + h / 2,
        data.fallback,
        height=h,
        color="white",
        hatch="////",
        edgecolor="#444444",
        linewidth=1,
        label="fallback (step abandoned)",
    )
    top = max(float(data.escalation.max(initial=0)), float(data.fallback.max(initial=0)), 0.01)
    right.set_xlim(0, top * 1.45)
    for i in range(len(names)):
        right.text(data.escalation[i], i - h / 2, " " + pct(data.escalation[i]), va="center", fontsize=8)
        right.text(data.fallback[i], i + h / 2, " " + pct(data.fallback[i], 2), va="center", fontsize=8)
    right.xaxis.set_major_formatter(PercentFormatter(1.0, decimals=0))
    right.set_xlabel("Share of requests (%)", fontsize=10)
    right.set_title("Escalation and fallback rates", fontsize=10.5, loc="left")
    right.legend(**_below(right), ncols=1, fontsize=8.5, frameon=False)
    return fig


def category_figure(c: Comparison) -> Figure:
    """Chart 5: the winner (or the baseline when there is none), category by category: cost, quality vs
    threshold, P95 vs budget, each cell coloured ok / tight / miss."""
    from matplotlib.patches import Patch, Rectangle

    name = focus_policy(c)
    rows = category_view(c, name)
    cur = c.currency
    which = "winner" if name == c.winner else ("baseline, no winner" if name == c.baseline else "no winner")
    fig = _figure(c, f"Per-category view of {name} ({which})", (11, 1.3 + 0.36 * (len(rows) + 1)))
    ax = fig.add_subplot()
    cols = [
        "Category",
        "Traffic",
        "Monthly cost",
        "Quality",
        "Threshold",
        "Margin",
        "P95 latency",
        "Budget",
        "Headroom",
    ]
    longest = max((len(r.category) for r in rows), default=8)
    widths = [max(1.5, 0.11 * longest), 0.85, 1.25, 1.0, 1.0, 1.35, 1.1, 0.9, 1.35]
    xs = np.concatenate([[0], np.cumsum(widths)])
    n = len(rows)
    for j, col in enumerate(cols):
        ax.text(xs[j] + widths[j] / 2, -0.5, col, ha="center", va="center", fontsize=9.5, fontweight="bold")
    status_word = {"ok": "ok", "tight": "tight", "miss": "MISS", "none": ""}
    for i, r in enumerate(rows):
        y = i + 0.5
        if r.budget_s is not None:
            headroom = f"{r.budget_s - r.p95_s:+.2f} s {status_word[r.latency_status]}"
        else:
            headroom = "no budget"
        cells = [
            (r.category, None),
            (pct(r.share), None),
            (money(r.monthly_cost, cur, "/mo"), None),
            (pct(r.quality, 2), r.quality_status),
            (pct(r.threshold, 1), None),
            (f"{r.quality_margin_pp:+.2f} pp {status_word[r.quality_status]}", r.quality_status),
            (seconds(r.p95_s), r.latency_status),
            (seconds(r.budget_s) if r.budget_s is not None else "—", None),
            (headroom, r.latency_status),
        ]
        for j, (text, status) in enumerate(cells):
            face = STATUS_COLOURS[status] if status else ("#F7F7F7" if i % 2 == 0 else "white")
            ax.add_patch(Rectangle((xs[j], i), widths[j], 1, facecolor=face, edgecolor="white", lw=1.5))
            dark = status == "miss"
            ax.text(
                xs[j] + (0.08 if j == 0 else widths[j] / 2),
                y,
                text,
                ha="left" if j == 0 else "center",
                va="center",
                fontsize=9.5,
                color="white" if dark else "black",
                fontweight="bold" if status == "miss" or j == 0 else "normal",
            )
    ax.set_xlim(0, xs[-1])
    ax.set_ylim(n, -1)
    ax.axis("off")
    legend = [
        Patch(facecolor=STATUS_COLOURS["ok"], label="ok: met with margin"),
        Patch(
            facecolor=STATUS_COLOURS["tight"],
            label=f"tight: met, but < {TIGHT_QUALITY_PP:g} pp margin or P95 > {TIGHT_LATENCY:.0%} of budget / CI over it",
        ),
        Patch(facecolor=STATUS_COLOURS["miss"], label="MISS: target not met"),
    ]
    ax.legend(handles=legend, loc="upper center", bbox_to_anchor=(0.5, 0.0), ncols=3, fontsize=8.5, frameon=False)
    return fig


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
    "HIST_REL_ERROR",
    "AchievableFrontier",
    "CategoryRow",
    "ChartSpec",
    "CostBreakdown",
    "CostQuality",
    "RoutingShares",
    "category_view",
    "cdf_quantile",
    "cost_breakdown",
    "cost_quality",
    "figure_bytes",
    "focus_policy",
    "latency_cdf",
    "pareto_frontier",
    "routing_shares",
]
