"""Render ``--uncertainty``: the intervals table and the risk sentences, for the terminal, CSV/JSON and the report.

The sentences are written once here (:func:`risk_sentences`) and used by ``compare`` and by the report's Risk
section, so the two never say different things.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from rich.console import Group
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from routecalc.decide.uncertainty import LEVEL, MAX_SCALE, NO_COUNTS, PolicyRisk, SampleAdvice, Uncertainty
from routecalc.format import count, money, signed_money
from routecalc.report.document import Block, Bullets, Heading, Paragraph, runs
from routecalc.report.document import Table as DocTable
from routecalc.results import Comparison


def probability(v: float) -> str:
    """A share of draws: ``94.3%``; exactly every / no draw as ``100%`` / ``0%``."""
    if v >= 1:
        return "100%"
    if v <= 0:
        return "0%"
    return f"{v:.1%}"


def money_range(lo: float, hi: float, currency: str, per: str = "/mo") -> str:
    """``$4,655–$4,726/mo``, or one value when both ends print the same (no counted input moves it)."""
    a, b = money(lo, currency), money(hi, currency)
    return f"{a}{per}" if a == b else f"{a}–{b}{per}"


def pct_range(lo: float, hi: float) -> str:
    a, b = f"{lo * 100:.2f}", f"{hi * 100:.2f}"
    return f"{a}%" if a == b else f"{a}–{b}%"


def _change(u: Uncertainty, p: PolicyRisk) -> str:
    if p.cost_change_monthly is None:
        return "—"
    lo, hi = (signed_money(v, u.currency) for v in (p.cost_change_monthly.low, p.cost_change_monthly.high))
    return f"{lo}/mo" if lo == hi else f"{lo} to {hi}/mo"


def risk_rows(u: Uncertainty) -> list[tuple[str, Callable[[PolicyRisk], str]]]:
    """(label with unit, formatter) for each row of the intervals table; one column per policy."""
    level = f"{LEVEL:.0%}"
    base = u.baseline or "baseline"
    return [
        (
            f"Monthly cost ({u.currency}, {level})",
            lambda p: money_range(p.monthly_cost.low, p.monthly_cost.high, u.currency),
        ),
        (f"Cost change vs {base} ({u.currency}, {level})", lambda p: _change(u, p)),
        (f"Quality ({level})", lambda p: pct_range(p.quality.low, p.quality.high)),
        ("P95 budgets (not redrawn)", lambda p: "✓ met" if p.latency_ok else "✗ missed"),
        ("P(meets every target)", lambda p: probability(p.p_meets_targets)),
        ("P(winner)", lambda p: probability(p.p_winner)),
    ]


def _title(u: Uncertainty) -> str:
    return (
        f"Uncertainty — {count(u.draws)} draws from the posteriors of the eval counts (seed {u.seed}); "
        f"{LEVEL:.0%} intervals = 5th–95th percentile of the draws"
    )


def uncertainty_table(c: Comparison, u: Uncertainty) -> Table:
    """The intervals and probabilities, laid out like the comparison table (one column per policy)."""
    table = Table(title=_title(u), title_justify="left", header_style="bold")
    table.add_column("Metric", style="bold", no_wrap=True)
    for p in c.policies:
        style = "green" if p.name == c.winner else None
        table.add_column(c.label(p, winner_mark="★ winner", sep="\n"), justify="right", style=style, overflow="fold")
    for label, fmt in risk_rows(u):
        table.add_row(label, *(fmt(u.policy(p.name)) for p in c.policies))
    return table


def _margin_pp(c: Comparison, policy: str, category: str) -> float:
    r = next(r for r in c.policy(policy).categories if r.category == category)
    return (r.quality - r.threshold) * 100


def advice_sentence(c: Comparison, a: SampleAdvice, draws: int) -> str:
    """Which eval set is too small for the decision, and about how many more labelled prompts would settle it."""
    target = f"{a.target:.0%}"
    uncertain = sorted((k for k, v in a.p_category.items() if v < 1), key=lambda k: a.p_category[k])
    per_cat = ", ".join(  # "dispute's quality threshold in 97.1% of draws, refund's in 97.2%"
        f"{k}'s quality threshold in {probability(a.p_category[k])} of draws"
        if i == 0
        else f"{k}'s in {probability(a.p_category[k])}"
        for i, k in enumerate(uncertain[:3])
    )
    if a.p_meets >= a.target:
        thin = f"; it meets {per_cat}" if uncertain else ""
        return (
            f"The eval sets are large enough for this decision: {a.policy} meets every target in "
            f"{probability(a.p_meets)} of draws (≥ {target}){thin}."
        )
    short = [m.category for m in a.more] or uncertain[:1]
    head = (
        f"Eval set too small for this decision: {' and '.join(short)}. {a.policy} meets every target in only "
        f"{probability(a.p_meets)} of draws (it meets {per_cat})."
    )
    if not a.reachable:
        worst = uncertain[0]
        margin = _margin_pp(c, a.policy, worst)
        return (
            f"{head} Even {MAX_SCALE:g}× today's labelled prompts would not lift that to {target}: {worst}'s point "
            f"estimate is "
            f"only {margin:+.2f} pp from its quality threshold, so more samples narrow the interval around a value "
            "on the line. Revisit the threshold or the route."
        )
    parts = [
        f"about {_about(m.extra)} more labelled {m.category} prompts ({m.factor:.2f}× today's {count(m.eval_size)})"
        for m in a.more
    ]
    after = f" (estimated {probability(a.p_after)})" if a.p_after is not None else ""
    more = " and ".join(parts)
    return (
        f"{head} {more[:1].upper() + more[1:]} would lift that to {target} or more{after}, if they pass at "
        f"today's rates. Approximate: eval sizes move in steps of ×1.26, and each probability carries a "
        f"±{_noise(a.target, draws) * 100:.1f} pp sampling error (95 %) from {count(draws)} draws."
    )


def _about(n: int) -> str:
    """Two significant figures: 52 -> "52", 1,234 -> "1,200"."""
    if n < 100:
        return str(n)
    digits = len(str(n)) - 2
    return count(round(n, -digits))


def _noise(p: float, draws: int) -> float:
    return 1.96 * (p * (1 - p) / draws) ** 0.5


def risk_sentences(c: Comparison, u: Uncertainty) -> tuple[list[str], list[str]]:
    """What the draws say, in words: (findings, notes). Findings: the winner's odds, the sample-size advice and
    the inputs held fixed; notes: what is not redrawn, and clipped draws."""
    if not u.has_counts:
        return [NO_COUNTS], []
    out = []
    if c.winner is not None:
        w = u.policy(c.winner)
        out.append(
            f"{w.name} (the winner) meets every target in {probability(w.p_meets_targets)} of draws and is the "
            f"winner in {probability(w.p_winner)}; no policy meets every target in {probability(u.p_no_winner or 0)}."
        )
    else:
        best = max(u.policies, key=lambda p: p.p_meets_targets)
        out.append(
            f"No winner at the point estimate, so no sample-size advice. The policy most often meeting every target "
            f"is {best.name} ({probability(best.p_meets_targets)} of draws)."
        )
    if u.advice is not None:
        out.append(advice_sentence(c, u.advice, u.draws))
    if u.fixed:
        out.append("Fixed, no counts: " + "; ".join(u.fixed) + ".")
    return out, list(u.notes)


def render_uncertainty(c: Comparison, u: Uncertainty) -> Group:
    """What ``compare --uncertainty`` prints below the comparison."""
    if not u.has_counts:
        return Group(Text.from_markup(f"[yellow]uncertainty:[/] {escape(NO_COUNTS)}"))
    findings, notes = risk_sentences(c, u)
    return Group(uncertainty_table(c, u), *(Text(s) for s in findings), Text(" ".join(notes), style="dim"))


CSV_FIELDS = (
    "monthly_cost_p05",
    "monthly_cost_p95",
    "cost_change_monthly_p05",
    "cost_change_monthly_p95",
    "quality_fraction_p05",
    "quality_fraction_p95",
    "probability_meets_targets",
    "probability_winner",
)


def csv_values(u: Uncertainty, policy: str) -> list[float | None]:
    """The intervals and probabilities of one policy, in the order of :data:`CSV_FIELDS` (blank without counts)."""
    if not u.has_counts:
        return [None] * len(CSV_FIELDS)
    row = next(r for r in u.to_dict()["policies"] if r["name"] == policy)
    return [row[f] for f in CSV_FIELDS]


def chart_intervals(c: Comparison, u: Uncertainty) -> tuple[np.ndarray, np.ndarray, str]:
    """For :func:`routecalc.report.charts.add_interval_bars`: ``(P, 2)`` monthly cost and quality intervals in
    ``c.policies`` order, and the note saying what the whiskers are."""
    rows = [u.policy(p.name) for p in c.policies]
    cost = np.array([[r.monthly_cost.low, r.monthly_cost.high] for r in rows])
    quality = np.array([[r.quality.low, r.quality.high] for r in rows])
    note = f"whiskers: {LEVEL:.0%} intervals from {count(u.draws)} draws of the eval counts' posteriors"
    return cost, quality, note


def risk_blocks(c: Comparison, u: Uncertainty) -> list[Block]:
    """The report's Risk section: how sure the decision is, from the posteriors of the eval counts."""
    blocks: list[Block] = [Heading(1, "Risk: how sure is the decision?")]
    if not u.has_counts:
        return [*blocks, Paragraph(runs(NO_COUNTS))]
    blocks.append(
        Paragraph(
            runs(
                f"{count(u.draws)} parameter sets drawn (seed {u.seed}) from the posteriors of every input with eval "
                "counts: Beta(1 + passed, 1 + failed) for a rate, Dirichlet(1 + count) for an outcome table. "
                f"Intervals are {LEVEL:.0%}: the 5th to the 95th percentile of the draws. P(meets every target) is "
                "the share of draws in which the policy meets every category's quality threshold (and its P95 "
                "budgets); P(winner) the share in which it is the cheapest policy that does."
            )
        )
    )
    header = (
        "Policy",
        f"Monthly cost ({u.currency}, {LEVEL:.0%})",
        f"Cost change vs {u.baseline or 'baseline'} ({u.currency}, {LEVEL:.0%})",
        f"Quality ({LEVEL:.0%})",
        "P(meets every target)",
        "P(winner)",
    )
    rows = []
    for p in c.policies:
        r = u.policy(p.name)
        rows.append(
            (
                c.label(p),
                money_range(r.monthly_cost.low, r.monthly_cost.high, u.currency),
                _change(u, r),
                pct_range(r.quality.low, r.quality.high),
                probability(r.p_meets_targets) + ("" if r.latency_ok else " (P95 over budget)"),
                probability(r.p_winner),
            )
        )
    blocks.append(DocTable(header, tuple(rows)))
    findings, notes = risk_sentences(c, u)
    blocks.append(Paragraph(runs(findings[0])))
    blocks.append(Bullets(tuple(runs(s) for s in [*findings[1:], *notes])))
    return blocks
