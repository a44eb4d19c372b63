"""Render what routing patterns buy (:mod:`routecalc.decide.whatif`) as tables for the terminal and the report
(the classifier value curve is :mod:`routecalc.report.charts.classifier`)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from rich.table import Table

from routecalc.format import money, pct, seconds, signed_money
from routecalc.report.tables import literal

if TYPE_CHECKING:
    from routecalc.decide.whatif import PatternEffects


def classifier_rows(effects: PatternEffects, currency: str) -> list[list[str]]:
    """Per (policy, classifier): its accuracy, monthly cost and quality, and a perfect one's."""
    return [
        [
            f"{v.policy} / {v.classifier} ({', '.join(v.categories)})",
            pct(v.accuracy),
            money(v.monthly_cost, currency, "/mo"),
            money(v.oracle_monthly_cost, currency, "/mo"),
            signed_money(-v.perfect_saves_monthly, currency, "/mo"),
            f"{pct(v.quality, 2)} → {pct(v.oracle_quality, 2)}",
        ]
        for v in effects.classifiers
    ]


CLASSIFIER_HEADER = [
    "Policy / classifier (categories)",
    "Accuracy",
    "Monthly cost",
    "Perfect",
    "Change",
    "Quality there → perfect",
]


def deadline_rows(effects: PatternEffects, currency: str) -> list[list[str]]:
    """Per policy with deadlines: P95/P99 with and without them, the share abandoned and the money wasted."""
    return [
        [
            f"{d.policy} / {d.category}",
            f"{seconds(d.p99_s_without)} → {seconds(d.p99_s)}",
            f"{seconds(d.p95_s_without)} → {seconds(d.p95_s)}",
            pct(d.late, 2),
            money(d.waste_monthly, currency, "/mo"),
            signed_money(d.monthly_cost - d.monthly_cost_without, currency, "/mo"),
            f"{pct(d.quality_without, 2)} → {pct(d.quality, 2)}",
        ]
        for d in effects.deadlines
    ]


DEADLINE_HEADER = ["Policy / category", "P99 without → with", "P95", "Abandoned", "Wasted", "Cost change", "Quality"]


def _table(title: str, header: list[str], rows: list[list[str]]) -> Table:
    table = Table(title=title, title_justify="left", header_style="bold")
    for i, h in enumerate(header):
        table.add_column(h, justify="left" if i == 0 else "right", overflow="fold")
    for r in rows:
        table.add_row(*literal(*r))
    return table


def render_patterns(effects: PatternEffects, currency: str) -> list[Table]:
    """The terminal tables: what a perfect classifier is worth, what the deadlines buy and cost."""
    out = []
    if effects.classifiers:
        out.append(
            _table(
                f"What a perfect classifier is worth ({currency}/month; balanced accuracy; same cost and latency)",
                CLASSIFIER_HEADER,
                classifier_rows(effects, currency),
            )
        )
    if effects.deadlines:
        out.append(
            _table(
                f"What the deadlines buy (per category, vs no deadlines on the same requests; {currency}/month)",
                DEADLINE_HEADER,
                deadline_rows(effects, currency),
            )
        )
    return out
