"""The constraints ``optimize`` obeys, resolved per category, and how far a candidate route is from each.

Per category (``tasks[i].constraints``, falling back field by field to the worksheet-wide ``constraints``):
allowed models (default: every model with a pass rate there) minus forbidden ones (worksheet-wide and
per-category lists add up); a cap on expected cost per request and/or per 1,000 tokens (the category's mean
input + output tokens); a maximum escalation rate. The category's quality threshold and P95 latency budget
apply too. A model whose context window is smaller than the category's P95 input tokens is not allowed there
(until the engines model the share of prompts that overflow a window, this is the conservative reading).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from routecalc.chains import RoutingProblem
from routecalc.decide.candidates import Scores
from routecalc.errors import Problem, WorksheetError
from routecalc.format import money, pct
from routecalc.worksheet import Band, Worksheet

QUALITY, COST, COST_1K, ESCALATION, LATENCY = "quality", "cost", "cost_1k", "escalation", "latency"
QUALITY_TOL = 1e-12  # as results.CategoryResult.quality_ok


def p95_tokens(band: Band) -> float:
    """A token band's P95: the p95 of a lognormal band, the value of a fixed one."""
    return float(band.p95 if band.p95 is not None else band.mean or 0.0)


@dataclass(frozen=True)
class Rules:
    """The resolved constraints of one category. Money in the worksheet currency."""

    category: str
    share: float
    allowed: tuple[int, ...]  # model indices optimize may use here
    excluded: tuple[tuple[str, str], ...]  # (model, why) for models with a pass rate that are not allowed
    threshold: float
    budget_s: float | None
    max_cost_per_request: float | None
    max_cost_per_1k_tokens: float | None
    tokens_per_request: float  # mean input + output tokens, for the per-1k cap
    max_escalation: float | None
    gate: bool  # the category has a validator (cascades possible)

    @property
    def needs_p95(self) -> bool:
        """Whether the P95 budget must be checked (by Monte Carlo): a budget and some traffic."""
        return self.budget_s is not None and self.share > 0

    def targets(self, currency: str) -> list[tuple[str, str]]:
        """(key, text) of every target that applies, e.g. ``("quality", "quality ≥ 95.00%")``."""
        out = [(QUALITY, f"quality ≥ {pct(self.threshold, 2)}")]
        if self.max_cost_per_request is not None:
            out.append((COST, f"cost ≤ {money(self.max_cost_per_request, currency)}/request"))
        if self.max_cost_per_1k_tokens is not None:
            out.append((COST_1K, f"cost ≤ {money(self.max_cost_per_1k_tokens, currency)} per 1k tokens"))
        if self.max_escalation is not None:
            out.append((ESCALATION, f"escalation ≤ {pct(self.max_escalation)}"))
        if self.budget_s is not None:
            out.append((LATENCY, f"P95 ≤ {self.budget_s:g} s"))
        return out


def check(ws: Worksheet, source: str) -> None:
    """What makes a worksheet unusable for ``optimize`` beyond its own validation: a model whose context window
    is smaller than every category's typical prompt (median input tokens) can hold no request at all, which is
    a units slip (128 for 128,000) more often than a model. Raises WorksheetError with the field paths."""
    typical = min((t.tokens_in.p50 if t.tokens_in.p50 is not None else t.tokens_in.mean or 0.0) for t in ws.tasks)
    problems = [
        Problem(
            f"models[{i}].context_window",
            f"{m.context_window:,} tokens is smaller than every category's typical prompt (smallest median input: "
            f"{typical:,.0f} tokens); check the units",
        )
        for i, m in enumerate(ws.models)
        if m.context_window is not None and m.context_window < typical
    ]
    if problems:
        raise WorksheetError(source, problems)


def resolve(ws: Worksheet, problem: RoutingProblem) -> list[Rules]:
    """Every category's constraints (see module docstring)."""
    names = [m.name for m in ws.models]
    top = ws.constraints
    out = []
    for c, t in enumerate(ws.tasks):
        own = t.constraints

        def pick(field: str, own=own):
            v = getattr(own, field) if own is not None else None
            return v if v is not None else (getattr(top, field) if top is not None else None)

        allowed_list = pick("allowed_models")
        forbidden = set(top.forbidden_models if top is not None else []) | set(own.forbidden_models if own else [])
        need = p95_tokens(t.tokens_in)
        allowed, excluded = [], []
        for i, m in enumerate(ws.models):
            if m.name not in t.rates:
                continue
            if allowed_list is not None and m.name not in allowed_list:
                why = "not in allowed_models"
            elif m.name in forbidden:
                why = "in forbidden_models"
            elif m.context_window is not None and m.context_window < need:
                why = f"context window {m.context_window:,} tokens < P95 input {need:,.0f} tokens"
            else:
                allowed.append(i)
                continue
            excluded.append((names[i], why))
        tt = problem.tasks
        out.append(
            Rules(
                category=t.name,
                share=float(tt.share[c]),
                allowed=tuple(allowed),
                excluded=tuple(excluded),
                threshold=float(tt.threshold[c]),
                budget_s=None if np.isnan(tt.budget_s[c]) else float(tt.budget_s[c]),
                max_cost_per_request=pick("max_cost_per_request"),
                max_cost_per_1k_tokens=pick("max_cost_per_1k_tokens"),
                tokens_per_request=float(tt.x_mean[c] + tt.y_mean[c]),
                max_escalation=pick("max_escalation"),
                gate=t.validator is not None,
            )
        )
    return out


def shortfalls(rules: Rules, scores: Scores, floors: bool = True) -> dict[str, np.ndarray]:
    """Relative shortfall of every candidate against every expected-value target ``(N,)`` (0 where met):
    quality below its threshold / threshold, cost over its cap / cap, escalation over its cap / cap (the rate
    itself when the cap is 0). ``floors=False`` leaves out the quality threshold (global modes trade quality
    between categories)."""
    out: dict[str, np.ndarray] = {}
    if floors:
        gap = rules.threshold - scores.quality
        out[QUALITY] = np.where(gap > QUALITY_TOL, gap / max(rules.threshold, 1e-9), 0.0)
    if rules.max_cost_per_request is not None:
        out[COST] = _over(scores.cost, rules.max_cost_per_request)
    if rules.max_cost_per_1k_tokens is not None:
        out[COST_1K] = _over(scores.cost * 1000 / max(rules.tokens_per_request, 1e-300), rules.max_cost_per_1k_tokens)
    if rules.max_escalation is not None:
        out[ESCALATION] = _over(scores.escalation, rules.max_escalation)
    return out


def _over(value: np.ndarray, cap: float) -> np.ndarray:
    excess = value - cap
    met = excess <= abs(cap) * 1e-12
    return np.where(met, 0.0, excess / cap if cap > 0 else excess)


def feasible(short: dict[str, np.ndarray], n: int) -> np.ndarray:
    """Candidates meeting every expected-value target ``(N,)``."""
    ok = np.ones(n, dtype=bool)
    for v in short.values():
        ok &= v == 0
    return ok
