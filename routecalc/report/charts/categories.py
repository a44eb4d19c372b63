"""Chart 5, per-category targets: the winner (or the baseline) category by category, each target ok, tight or missed."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from routecalc.format import money, pct, seconds
from routecalc.report.charts.common import STATUS_COLOURS, focus_policy, new_figure, with_chart_rc
from routecalc.results import Comparison

if TYPE_CHECKING:
    from matplotlib.figure import Figure


TIGHT_QUALITY_PP = 1.0  # a met quality threshold with less than this margin (percentage points) is "tight"
TIGHT_LATENCY = 0.9  # a met budget with P95 above this share of it (or a 95 % CI reaching over it) is "tight"


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


@with_chart_rc
def category_figure(c: Comparison) -> Figure:
    """Chart 5: the winner (or the baseline when there is none), category by category: cost, quality vs
    threshold, P95 vs budget, each cell coloured ok / tight / miss."""
    from matplotlib.patches import Patch, Rectangle

    name = focus_policy(c)
    rows = category_view(c, name)
    cur = c.currency
    which = "winner" if name == c.winner else ("baseline, no winner" if name == c.baseline else "no winner")
    fig = new_figure(c, f"Per-category view of {name} ({which})", (11, 1.3 + 0.36 * (len(rows) + 1)))
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
