"""Chart 3, monthly cost breakdown: stacked bars per policy, by task category and by what is paid for."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from routecalc.format import money
from routecalc.report.charts.common import (
    HUMAN,
    VALIDATOR,
    category_styles,
    chain_index,
    focus_policy,
    legend_below,
    model_styles,
    money_axis,
    new_figure,
    stacked_bars,
    style_axes,
    with_chart_rc,
)
from routecalc.results import Comparison, weighted

if TYPE_CHECKING:
    from matplotlib.figure import Figure


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
    ix = [chain_index(c, p.name) for p in c.policies]
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


@with_chart_rc
def cost_breakdown_figure(c: Comparison) -> Figure:
    """Chart 3: monthly cost per policy as stacked bars, by task category and by model (what you pay for)."""
    data = cost_breakdown(c)
    fig = new_figure(c, "Monthly cost breakdown: where the money goes", (11, 1.9 + 0.5 * len(data.policies) + 1.2))
    left, right = fig.subplots(1, 2, sharey=True)
    names = [c.label(p) for p in c.policies]
    stacked_bars(left, names, data.categories, data.by_category, category_styles(c))
    stacked_bars(right, names, data.components, data.by_component, model_styles(c))
    xmax = float(data.totals.max()) * 1.22 if len(data.totals) and data.totals.max() > 0 else 1.0
    for ax, title in ((left, "by task category"), (right, "by model (and validator / human review)")):
        style_axes(ax)
        ax.grid(True, axis="x", color="#E5E5E5")
        ax.grid(False, axis="y")
        ax.set_xlim(0, xmax)
        money_axis(ax, c.currency)
        ax.set_title(title, fontsize=10.5, loc="left")
        ax.set_xlabel(f"Monthly cost ({c.currency} per month)", fontsize=10)
        for i, total in enumerate(data.totals):
            ax.text(total, i, " " + money(total, c.currency, "/mo"), va="center", fontsize=8.5)
        ax.legend(**legend_below(ax), ncols=3, fontsize=8.5, frameon=False)
    return fig
