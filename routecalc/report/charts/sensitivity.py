"""The tornado chart of ``routecalc sensitivity``: pure chart data, then a drawing function returning a Figure.

matplotlib is imported only inside :func:`tornado_figure` (see :mod:`routecalc.report.charts`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from routecalc.decide.sensitivity import Sensitivity
from routecalc.format import count, money, pct
from routecalc.report.charts.common import GREY, OKABE_ITO, money_axis, style_axes, with_chart_rc

if TYPE_CHECKING:
    from matplotlib.figure import Figure

SLUG = "sensitivity-tornado"
TITLE = "Sensitivity: what moves the chosen policy"
LOW_COLOUR, HIGH_COLOUR = OKABE_ITO[0], OKABE_ITO[1]


@dataclass(frozen=True)
class Tornado:
    """The ``top`` inputs in ranking order: effect of the low and the high end of each swing, against today.

    ``cost_low``/``cost_high`` in currency per month, ``quality_low``/``quality_high`` in percentage points.
    """

    labels: tuple[str, ...]
    low_values: tuple[str, ...]  # the input's value at each end, with its unit
    high_values: tuple[str, ...]
    cost_low: np.ndarray
    cost_high: np.ndarray
    quality_low: np.ndarray
    quality_high: np.ndarray


def tornado(s: Sensitivity, top: int | None = None) -> Tornado:
    """The tornado's bars: the ``top`` highest-ranked swings (default: those the tables show)."""
    rows = s.swings[:top] if top is not None else s.shown
    cost = np.array([s.effect(w, "cost") for w in rows]).reshape(-1, 2)
    quality = np.array([s.effect(w, "quality") for w in rows]).reshape(-1, 2) * 100
    base = (s.winner, s.winner)
    return Tornado(
        labels=tuple(w.input.label + (" (changes the winner)" if w.winner != base else "") for w in rows),
        low_values=tuple(w.input.short(w.low, s.currency) for w in rows),
        high_values=tuple(w.input.short(w.high, s.currency) for w in rows),
        cost_low=cost[:, 0],
        cost_high=cost[:, 1],
        quality_low=quality[:, 0],
        quality_high=quality[:, 1],
    )


@with_chart_rc
def tornado_figure(s: Sensitivity, top: int | None = None) -> Figure:
    """Two panels sharing the inputs (highest-ranked at the top): change in the chosen policy's monthly cost and
    in its quality when each input alone moves down (blue) or up (orange) by the swing."""
    from matplotlib.figure import Figure
    from matplotlib.patches import Patch

    t = tornado(s, top)
    n = len(t.labels)
    fig = Figure(figsize=(11, 1.6 + 0.42 * max(n, 1)), layout="constrained", facecolor="white")
    fig.suptitle(f"{TITLE} — {s.worksheet}", fontsize=13, fontweight="bold", x=0.01, ha="left")
    fig.supxlabel(
        f"{s.policy} · each input alone ±{s.swing:.0%} (clipped to its valid range) · expected values · "
        f"{count(s.requests_per_month)} requests/month · money in {s.currency} · routecalc",
        fontsize=8.5,
        color=GREY,
        x=0.01,
        ha="left",
    )
    ax_cost, ax_q = fig.subplots(1, 2, sharey=True, width_ratios=(3, 2))
    y = np.arange(n)[::-1]
    for ax, lo, hi in ((ax_cost, t.cost_low, t.cost_high), (ax_q, t.quality_low, t.quality_high)):
        ax.barh(y, lo, color=LOW_COLOUR, height=0.7, hatch="//", edgecolor="white", linewidth=0)
        ax.barh(y, hi, color=HIGH_COLOUR, height=0.7)
        ax.axvline(0, color="#333333", linewidth=0.9)
        style_axes(ax)
    ax_cost.set_yticks(
        y, [f"{lab}\n{a} / {b}" for lab, a, b in zip(t.labels, t.low_values, t.high_values, strict=True)]
    )
    ax_cost.tick_params(axis="y", labelsize=8)
    ax_cost.set_xlabel(f"change in monthly cost ({s.currency}/month) vs {money(s.monthly_cost, s.currency, '/mo')}")
    money_axis(ax_cost, s.currency)
    ax_q.set_xlabel(f"change in quality (percentage points) vs {pct(s.quality, 2)}")
    for ax in (ax_cost, ax_q):
        lim = max(float(np.abs(ax.get_xlim()).max()), 1e-9)
        ax.set_xlim(-lim, lim)  # symmetric: left of 0 is less, right is more
    legend = [
        Patch(facecolor=LOW_COLOUR, hatch="//", edgecolor="white", label=f"input −{s.swing:.0%}"),
        Patch(facecolor=HIGH_COLOUR, label=f"input +{s.swing:.0%}"),
    ]
    ax_q.legend(handles=legend, loc="lower right", fontsize=8.5, frameon=False)
    return fig
