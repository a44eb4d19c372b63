"""Chart 4, routing distribution: who answers under each policy, and how often requests escalate or fall back."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from routecalc.format import pct
from routecalc.report.charts.common import (
    FAILED,
    HUMAN,
    chain_index,
    focus_policy,
    legend_below,
    model_styles,
    new_figure,
    stacked_bars,
    style_axes,
    with_chart_rc,
)
from routecalc.results import Comparison, weighted

if TYPE_CHECKING:
    from matplotlib.figure import Figure


@dataclass(frozen=True)
class RoutingShares:
    """Who answers the requests under each policy; each row of ``shares`` sums to 1.

    ``labels`` are the models that answer under some policy, then "human review" and "failed (no answer)".
    Escalation (rejected by at least one gate) and fallback (abandoned a step on provider errors, where some step
    falls back to another) are rates of requests; a policy with no such step has no fallback rate (0 here, marked
    "none": its provider failures are given up and counted in "failed").
    """

    policies: tuple[str, ...]
    labels: tuple[str, ...]
    shares: np.ndarray  # (P, K)
    escalation: np.ndarray  # (P,)
    fallback: np.ndarray  # (P,) 0 where no step falls back
    fallback_route: tuple[bool, ...] = ()


def routing_shares(c: Comparison) -> RoutingShares:
    """Routing-distribution data: the numbers to compare later with production monitoring."""
    ev, tt = c.ev, c.problem.tasks
    ix = [chain_index(c, p.name) for p in c.policies]
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
        fallback=np.where([p.fallback_route for p in c.policies], weighted(ev.fallback[ix], tt.share), 0.0),
        fallback_route=tuple(p.fallback_route for p in c.policies),
    )


def takeaway_routing(c: Comparison) -> str:
    data = routing_shares(c)
    name = focus_policy(c)
    i = data.policies.index(name)
    top = int(np.argmax(data.shares[i]))
    return (
        f"Under {name}, {data.labels[top]} answers {pct(data.shares[i, top])} of requests; "
        f"escalation {pct(data.escalation[i])}, "
        + (f"fallback {pct(data.fallback[i], 2)}" if data.fallback_route[i] else "no fallback step")
        + ": "
        "compare these with production monitoring after launch."
    )


@with_chart_rc
def routing_figure(c: Comparison) -> Figure:
    """Chart 4: per policy, the share of requests answered by each model (plus human review and failures),
    and the escalation and fallback rates."""
    from matplotlib.ticker import PercentFormatter

    data = routing_shares(c)
    height = 1.9 + 0.5 * len(data.policies) + 1.2
    fig = new_figure(c, "Routing distribution: who answers, how often requests escalate or fall back", (11, height))
    left, right = fig.subplots(1, 2, sharey=True, width_ratios=[1.5, 1])
    names = [c.label(p) for p in c.policies]
    stacked_bars(left, names, data.labels, data.shares, model_styles(c))
    style_axes(left)
    left.grid(False, axis="y")
    left.set_xlim(0, 1)
    left.xaxis.set_major_formatter(PercentFormatter(1.0, decimals=0))
    left.set_xlabel("Share of requests (%)", fontsize=10)
    left.set_title("Answered by (stacks sum to 100 %)", fontsize=10.5, loc="left")
    left.legend(**legend_below(left), ncols=3, fontsize=8.5, frameon=False)
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

    style_axes(right)
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
        label="fallback (provider error → next step; none: no step falls back)",
    )
    top = max(float(data.escalation.max(initial=0)), float(data.fallback.max(initial=0)), 0.01)
    right.set_xlim(0, top * 1.45)
    for i in range(len(names)):
        right.text(data.escalation[i], i - h / 2, " " + pct(data.escalation[i]), va="center", fontsize=8)
        text = pct(data.fallback[i], 2) if data.fallback_route[i] else "none"
        right.text(data.fallback[i], i + h / 2, " " + text, va="center", fontsize=8)
    right.xaxis.set_major_formatter(PercentFormatter(1.0, decimals=0))
    right.set_xlabel("Share of requests (%)", fontsize=10)
    right.set_title("Escalation and fallback rates", fontsize=10.5, loc="left")
    right.legend(**legend_below(right), ncols=1, fontsize=8.5, frameon=False)
    return fig
