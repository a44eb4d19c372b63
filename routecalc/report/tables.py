"""Render a Comparison: rich tables for the terminal, CSV and JSON for machines, Markdown for reports."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable

from rich.console import Group
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from routecalc.format import count, money, pct, seconds, signed_money, signed_pct
from routecalc.results import Comparison, PolicyResult
from routecalc.worksheet import DAYS_PER_MONTH


def _header(c: Comparison, p: PolicyResult) -> str:
    return c.label(p, winner_mark="★ winner", sep="\n")


def _delta_pct(p: PolicyResult) -> str:
    if p.savings_pct is None or p.is_baseline:
        return "—"
    return signed_pct(-p.savings_pct)


def _delta_money(c: Comparison, p: PolicyResult) -> str:
    if p.savings_monthly is None or p.is_baseline:
        return "—"
    return signed_money(-p.savings_monthly, c.currency, "/mo")


def metric_rows(c: Comparison) -> list[tuple[str, Callable[[PolicyResult], str]]]:
    """(label with unit, formatter) for every row of the side-by-side table; cells stay short."""
    cur = c.currency
    base = c.baseline or "baseline"
    return [
        ("Kind", lambda p: p.kind),
        (f"Cost / request ({cur})", lambda p: money(p.cost_per_request, cur)),
        (f"Monthly cost ({cur})", lambda p: money(p.monthly_cost, cur, "/mo")),
        (f"Cost change vs {base} (%)", _delta_pct),
        (f"Cost change vs {base} ({cur})", lambda p: _delta_money(c, p)),
        ("Quality (good answers)", lambda p: pct(p.quality, 2)),
        ("Delivered bad", lambda p: pct(p.delivered_bad, 2)),
        ("Failed (no answer)", lambda p: pct(p.failed, 2)),
        ("Latency P50", lambda p: seconds(p.p50_s)),
        ("Latency P95", lambda p: seconds(p.p95_s)),
        ("Latency P99", lambda p: seconds(p.p99_s)),
        ("Latency mean", lambda p: seconds(p.latency_mean_s)),
        ("Escalation rate", lambda p: pct(p.escalation)),
        ("Fallback rate", lambda p: pct(p.fallback, 2)),
        (f"Op. risk: bad + failed ({cur})", lambda p: money(p.risk_monthly, cur, "/mo")),
        ("Meets every target", lambda p: "✓ yes" if p.meets_targets else f"✗ {_n_missed(p)}"),
        (
            "MC cost/request (95% CI)",
            lambda p: f"{money(p.cost_per_request_mc, cur)} ±{_rel(p.cost_ci95, p.cost_per_request_mc)}",
        ),
        ("MC quality (95% CI)", lambda p: f"{pct(p.quality_mc, 2)} ±{p.quality_ci95 * 100:.2f}pp"),
    ]


def _n_missed(p: PolicyResult) -> str:
    n = sum(not c.ok for c in p.categories)
    return f"{n} categor{'y' if n == 1 else 'ies'}"


def _rel(half: float, mean: float) -> str:
    return f"{half / mean:.1%}" if mean else "n/a"


def comparison_table(c: Comparison) -> Table:
    """One column per policy (baseline and all-to-strongest included), one row per metric."""
    table = Table(
        title=f"{c.worksheet} — {count(c.requests_per_month)} requests/month, {c.currency}",
        title_justify="left",
        show_lines=False,
        header_style="bold",
        caption=f"★ = {c.winner_rule}",
    )
    table.add_column("Metric", style="bold", no_wrap=True)
    for p in c.policies:
        style = "green" if p.name == c.winner else None
        table.add_column(_header(c, p), justify="right", style=style, overflow="fold", min_width=10)
    for label, fmt in metric_rows(c):
        table.add_row(label, *(fmt(p) for p in c.policies))
    return table


def category_table(c: Comparison) -> Table:
    """Per category: quality vs threshold and P95 vs budget under each policy (✗ marks a miss)."""
    table = Table(
        title="Targets by category: quality (≥ threshold) · P95 latency (≤ budget)",
        title_justify="left",
        header_style="bold",
    )
    table.add_column("Category", style="bold", no_wrap=True)
    table.add_column("Share", justify="right")
    table.add_column("Target", justify="right")
    for p in c.policies:
        table.add_column(p.name, justify="right", overflow="fold")
    first = c.policies[0]
    for i, cat in enumerate(first.categories):
        budget = f"{cat.budget_s:g} s" if cat.budget_s is not None else "none"
        cells = []
        for p in c.policies:
            r = p.categories[i]
            mark = "✓" if r.ok else "✗"
            text = Text(f"{mark} {r.quality:.1%} {r.p95_s:.1f}s")
            if not r.ok:
                text.stylize("red")
            cells.append(text)
        table.add_row(cat.category, pct(cat.share), f"≥{cat.threshold:.0%} {budget}", *cells)
    return table


def verdict(c: Comparison) -> str:
    """One or two sentences: the answer to "what should we run?"."""
    w = c.winner_result
    if w is None:
        return (
            "[bold red]No winner:[/] no policy meets every category's quality threshold and P95 latency budget. "
            "Each policy's nearest miss:"
        )
    text = f"[bold green]Winner: {escape(w.name)}[/] — {money(w.monthly_cost, c.currency, '/month')}"
    if w.savings_monthly is not None and not w.is_baseline:
        verb = "saves" if w.savings_monthly >= 0 else "costs"
        text += (
            f", {verb} {money(abs(w.savings_monthly), c.currency, '/month')} "
            f"({abs(w.savings_pct or 0):.1f}%) {'vs' if verb == 'saves' else 'more than'} {escape(c.baseline or '')}"
        )
    return text + "; meets every quality threshold and latency budget."


def footnote(c: Comparison) -> str:
    return (
        f"Means from the expected-value engine (exact under the model). Percentiles and P95 budget checks from "
        f"Monte Carlo: {count(c.samples)} requests, seed {c.seed}, histogram resolution ±{c.mc.hist_rel_error:.1%}. "
        f"1 month = {DAYS_PER_MONTH:.4f} days."
    )


def render_comparison(c: Comparison) -> Group:
    """Everything ``compare`` prints, as one rich renderable."""
    parts: list = [comparison_table(c), category_table(c), Text.from_markup(verdict(c))]
    for p in c.policies:
        if not p.meets_targets:
            parts.append(Text.from_markup(f"  [red]✗[/] {escape(p.name)}: nearest miss {escape(p.nearest_miss or '')}"))
    for w in c.warnings:
        parts.append(Text.from_markup(f"[yellow]warning:[/] {escape(w)}"))
    for a in c.advisories:
        parts.append(Text.from_markup(f"[cyan]advice:[/] {escape(a)}"))
    parts.append(Text(footnote(c), style="dim"))
    return Group(*parts)


CSV_FIELDS = [
    "policy",
    "kind",
    "cost_per_request",
    "monthly_cost",
    "savings_monthly",
    "savings_pct",
    "quality",
    "delivered_bad",
    "failed",
    "latency_mean_s",
    "p50_s",
    "p95_s",
    "p99_s",
    "escalation",
    "fallback",
    "risk_monthly",
    "meets_targets",
    "winner",
    "nearest_miss",
]


def comparison_csv(c: Comparison) -> str:
    """One row per policy; money in the worksheet currency (see the ``currency`` column), rates as fractions."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow([*CSV_FIELDS, "currency"])
    for p in c.policies:
        row = {
            "policy": p.name,
            "kind": p.kind,
            "meets_targets": p.meets_targets,
            "winner": p.name == c.winner,
            "nearest_miss": p.nearest_miss or "",
        }
        writer.writerow([row[f] if f in row else _csv_value(getattr(p, f)) for f in CSV_FIELDS] + [c.currency])
    return buf.getvalue()


def _csv_value(v: float | None) -> str:
    return "" if v is None else repr(round(v, 10))


def comparison_json(c: Comparison) -> str:
    return json.dumps(c.to_dict(), indent=2, ensure_ascii=False)
