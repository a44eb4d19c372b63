"""Turn engine output into the answer a team acts on: per-policy summaries, targets met, the winner.

``compare(worksheet)`` runs both engines: expected values give the means (exact under the model), Monte Carlo
gives latency percentiles (budgets are P95 targets) and a cross-check of the means with its 95 % CI.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from typing import Any

import numpy as np

from routecalc._version import __version__
from routecalc.advice import Advisory, advisories
from routecalc.chains import STRONGEST, RoutingProblem, compile_worksheet, strongest_model
from routecalc.contract import jsonable
from routecalc.engine.ev import Metrics, expected_values
from routecalc.engine.mc import MonteCarlo, simulate
from routecalc.errors import InputError, PolicyError
from routecalc.format import pct
from routecalc.limits import MAX_SAMPLES, MAX_SEED, MIN_SAMPLES, short_repr
from routecalc.worksheet import DAYS_PER_MONTH, Worksheet
from routecalc.worksheet.pricing import PriceProvenance, price_provenance

DEFAULT_SAMPLES = 200_000
DEFAULT_SEED = 0
STALE_AFTER_DAYS = 90
SLOW_SUCCESS_WARN = 0.01
Z = 1.96  # 95 % confidence intervals
OBJECTIVES = ("cost", "cost+risk", "latency")
WINNER_RULES = {
    "cost": "cheapest policy meeting every target",
    "cost+risk": "policy with the lowest spend + operational risk meeting every target",
    "latency": "fastest policy (lowest mean latency) meeting every target",
}
INDEPENDENCE_NOTE = (
    "Pass rates are assumed independent along a chain: a later model passes as often on the requests an "
    "earlier model failed as on any request. Real eval data usually shows the opposite, so cascade quality "
    "here is optimistic."
)
MAX_NAMED = 10  # categories named in a warning before "and N more"


def outcome_dependent(problem: RoutingProblem) -> np.ndarray:
    """``(P, C)``: whether a policy's route in a category reaches a later step because a gate rejected an answer:
    only then does the joint law of pass/fail (not just each model's pass rate) change its numbers."""
    ch = problem.chains
    rejects_on = (ch.model >= 0) & (ch.gated | ch.tool) & (ch.on_reject >= 0)
    return rejects_on.any(axis=(2, 3))


def independence_warning(problem: RoutingProblem) -> str | None:
    """The independence note, naming the categories where a cascade-like route still relies on it."""
    from routecalc.outcomes import assumed_independent

    where = outcome_dependent(problem).any(axis=0) & assumed_independent(problem.outcomes)
    names = [problem.tasks.names[c] for c in np.flatnonzero(where)]
    if not names:
        return None
    shown = ", ".join(names[:MAX_NAMED]) + (f" (and {len(names) - MAX_NAMED} more)" if len(names) > MAX_NAMED else "")
    return (
        f"{INDEPENDENCE_NOTE} Assumed in {shown}; give tasks[].outcomes (routecalc calibrate evals writes it) "
        "to replace the assumption."
    )


@dataclass(frozen=True)
class StepTarget:
    """A chain step's own latency target ("primary < 1.5 s"): the share of requests it serves and their P95."""

    step: int  # 0-based
    target_s: float
    served: float  # share of the category's requests answered (or sent to review) at this step
    p95_s: float  # P95 end-to-end latency of those requests (Monte Carlo); NaN if it served none

    @property
    def ok(self) -> bool:
        return not (self.p95_s > self.target_s)  # NaN (serves none) meets it


@dataclass(frozen=True)
class CategoryResult:
    """One category under one policy: what it costs and whether it meets its targets."""

    category: str
    share: float
    cost_per_request: float
    quality: float
    threshold: float
    quality_ok: bool
    p95_s: float
    p95_ci_s: tuple[float, float]  # 95 % CI of the P95 from MC order statistics
    budget_s: float | None
    latency_ok: bool
    escalation: float
    fallback: float  # share that abandoned at least one step after provider errors (see fallback_route)
    steps: tuple[StepTarget, ...] = ()  # per-step latency targets of the policy's chain, if it sets any
    fallback_route: bool = False  # some step sends provider errors on to another step (else `fallback` = giving up)

    @property
    def ok(self) -> bool:
        return self.quality_ok and self.latency_ok and all(t.ok for t in self.steps)

    @property
    def latency_uncertain(self) -> bool:
        """The budget lies inside the P95's 95 % CI: more samples could flip this category's latency verdict."""
        lo, hi = self.p95_ci_s
        return self.budget_s is not None and lo <= self.budget_s <= hi

    def shortfall(self) -> tuple[float, str] | None:
        """How far this category misses its targets (relative, for ranking) and a sentence saying so."""
        misses = []
        if not self.quality_ok:
            gap = self.threshold - self.quality
            digits = 2 if gap >= 5e-5 else 4  # never "90.00% < 90.00%"
            misses.append(
                (
                    gap / max(self.threshold, 1e-9),
                    f"{self.category}: quality {self.quality:.{digits}%} < {self.threshold:.{digits}%} "
                    f"({gap * 100:.{digits}f} pp short)",
                )
            )
        if not self.latency_ok and self.budget_s is not None:
            if math.isnan(self.p95_s):  # nothing to compare with the budget
                miss = f"{self.category}: P95 not measured, Monte Carlo drew no request of it (raise --samples)"
                misses.append((math.inf, miss))
            else:
                over = self.p95_s - self.budget_s
                misses.append(
                    (
                        over / self.budget_s,
                        f"{self.category}: P95 {self.p95_s:.2f} s > budget {self.budget_s:g} s ({over:.2f} s over)",
                    )
                )
        for t in self.steps:
            if not t.ok:
                over = t.p95_s - t.target_s
                misses.append(
                    (
                        over / t.target_s,
                        f"{self.category}: step {t.step + 1} P95 {t.p95_s:.2f} s > its target {t.target_s:g} s "
                        f"({over:.2f} s over, {pct(t.served)} of requests answered there)",
                    )
                )
        return max(misses) if misses else None


@dataclass(frozen=True)
class PolicyResult:
    """One policy, all categories together (traffic-weighted)."""

    name: str
    kind: str
    description: str | None
    cost_per_request: float  # EV, currency
    cost_per_request_mc: float
    cost_ci95: float  # MC 95 % CI half-width, currency per request
    monthly_cost: float
    token_cost_monthly: float
    gate_cost_monthly: float
    human_cost_monthly: float
    quality: float  # EV share of requests delivered good
    quality_mc: float
    quality_ci95: float
    delivered_bad: float
    failed: float
    human_review: float
    latency_mean_s: float  # EV
    latency_mean_mc_s: float
    p50_s: float
    p95_s: float
    p99_s: float
    escalation: float
    fallback: float  # share that abandoned at least one step after provider errors (see fallback_route)
    risk_per_request: float
    risk_monthly: float
    answered: dict[str, float]  # model -> share of requests it answered (delivered)
    calls: dict[str, float]  # model -> provider tries per request
    categories: list[CategoryResult]
    quality_if_independent: float | None = None  # EV quality with every category independent (joint laws given)
    overflow: float = 0.0  # share of requests longer than some step's context window (that step skipped)
    late: float = 0.0  # share of requests that abandoned a try at its client-side deadline
    deadline_waste_monthly: float = 0.0  # spend on tries abandoned at a deadline
    router_cost_monthly: float = 0.0  # classifiers' spend
    served_by_step: tuple[float, ...] = ()  # share of requests answered at each chain step
    cost_change_monthly: float | None = None  # vs the comparison's baseline: this minus it; positive = costs more
    cost_change_pct: float | None = None
    is_baseline: bool = False
    fallback_route: bool = False  # in some category with traffic, a step sends provider errors to another step

    @property
    def meets_targets(self) -> bool:
        return all(c.ok for c in self.categories)

    @property
    def nearest_miss(self) -> str | None:
        """The worst shortfall over categories, as a sentence; None when every target is met."""
        misses = [m for c in self.categories if (m := c.shortfall()) is not None]
        return max(misses)[1] if misses else None


@dataclass(frozen=True)
class Comparison:
    """Everything ``routecalc compare`` shows, plus the engine arrays the charts need."""

    worksheet: str
    currency: str
    requests_per_month: float
    policies: list[PolicyResult]
    baseline: str | None
    winner: str | None
    strongest_model: str | None
    warnings: list[str]
    advisories: list[str]
    samples: int
    seed: int
    problem: RoutingProblem = field(repr=False)
    ev: Metrics = field(repr=False)
    mc: MonteCarlo = field(repr=False)
    objective: str = "cost"  # the winner rule (see objective_value)
    prices: PriceProvenance | None = None  # where the worksheet's prices come from

    @property
    def winner_rule(self) -> str:
        """The winner rule in words, e.g. "cheapest policy meeting every target"."""
        return WINNER_RULES[self.objective]

    advice: list[Advisory] = field(default_factory=list)  # the advisories with their kind and backing numbers

    def policy(self, name: str) -> PolicyResult:
        for p in self.policies:
            if p.name == name:
                return p
        raise PolicyError(f"unknown policy {name!r} (compared: {', '.join(p.name for p in self.policies)})")

    def label(self, p: PolicyResult, winner_mark: str = "winner", sep: str = " ") -> str:
        """A policy's name with its roles, e.g. ``cheap-first (winner)`` or ``today (baseline)``."""
        roles = [winner_mark] if p.name == self.winner else []
        roles += ["baseline"] if p.is_baseline else []
        return p.name + (f"{sep}({', '.join(roles)})" if roles else "")

    @property
    def winner_result(self) -> PolicyResult | None:
        return self.policy(self.winner) if self.winner else None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready (the ``compare`` output, schema ``routecalc schema --output compare``): units in key names
        (``_s`` seconds, ``_monthly`` per month, ``_per_request``, money in ``currency``), rates as fractions,
        cost changes vs the baseline as this policy minus the baseline (positive costs more)."""
        from routecalc.tabular import policy_dict

        out = {
            "routecalc_version": __version__,
            "worksheet": self.worksheet,
            "currency": self.currency,
            "requests_per_month": self.requests_per_month,
            "days_per_month": DAYS_PER_MONTH,
            "baseline": self.baseline,
            "winner": self.winner,
            "objective": self.objective,
            "winner_rule": self.winner_rule,
            "strongest_model": self.strongest_model,
            "monte_carlo": {
                "samples": self.samples,
                "seed": self.seed,
                "percentile_histogram_relative_error": self.mc.hist_rel_error,
            },
            "warnings": self.warnings,
            "advisories": self.advisories,
            "advice": [asdict(a) for a in self.advice],
            **({"prices": self.prices.to_dict()} if self.prices is not None else {}),
            "policies": [policy_dict(p) for p in self.policies],
        }
        return jsonable(out)

    def to_frame(self, by: str = "policy", metric: str = "quality") -> Any:
        """The comparison as a pandas DataFrame (``routecalc.tabular.comparison_frame``): ``by="policy"``
        policies x metrics, ``by="category"`` categories x policies for one per-category ``metric``."""
        from routecalc.tabular import comparison_frame

        return comparison_frame(self, by, metric)


def weighted(values: np.ndarray, share: np.ndarray) -> np.ndarray:
    """Traffic-weighted total over categories: ``(P, C[, M]) -> (P[, M])``."""
    if values.ndim == 3:
        return np.einsum("pcm,c->pm", values, share)
    return values @ share


def overall_quantiles(mc: MonteCarlo, share: np.ndarray, qs: list[float]) -> np.ndarray:
    """Latency quantiles over all traffic ``(P, Q)``: category histograms mixed by traffic share."""
    with np.errstate(invalid="ignore", divide="ignore"):
        w = np.where(mc.n > 0, share / np.maximum(mc.n, 1), 0.0)
    mixed = np.stack([w @ mc.hist[p] for p in range(mc.hist.shape[0])])  # (P, B), one policy at a time
    return mc.quantiles(mixed, qs)


def p95_ci(mc: MonteCarlo) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """P95 per (policy, category) and a 95 % CI from the binomial spread of the order statistic's rank."""
    half = Z * np.sqrt(0.95 * 0.05 / np.maximum(mc.n, 1))
    ranks = np.stack([0.95 - half, np.full_like(half, 0.95), 0.95 + half], -1).clip(0, 1)  # (C, 3): per category
    lo, q, hi = np.moveaxis(mc.quantiles(mc.hist, ranks), -1, 0)
    return q, lo, hi


def summarize(
    problem: RoutingProblem,
    ev: Metrics,
    mc: MonteCarlo,
    descriptions: dict[str, str | None] | None = None,
    baseline: str | None = None,
) -> list[PolicyResult]:
    """Per-policy results from both engines' arrays (pure: arrays in, dataclasses out)."""
    tt, ch, mt = problem.tasks, problem.chains, problem.models
    w = tt.share
    vol = problem.requests_per_month
    descriptions = descriptions or {}
    cost = ev.cost
    total = weighted(cost, w)
    with np.errstate(invalid="ignore", divide="ignore"):
        n = np.maximum(mc.n, 1)
        cost_mc = weighted(np.nan_to_num(mc.mean.cost), w)
        cost_ci = Z * np.sqrt(((w**2) * np.nan_to_num(mc.cost_sd) ** 2 / n).sum(1))  # no draws: no spread (warned)
        qm = np.nan_to_num(mc.mean.quality)
        quality_mc = weighted(qm, w)
        quality_ci = Z * np.sqrt(((w**2) * qm * (1 - qm) / n).sum(1))
    pct = overall_quantiles(mc, w, [0.5, 0.95, 0.99])
    p95, p95_lo, p95_hi = p95_ci(mc)
    risk = ev.delivered_bad * tt.cost_bad + ev.failed * tt.cost_failed
    answered = weighted(ev.answered, w)
    calls = weighted(ev.calls, w)
    per_category = {
        "tokens": ev.token_cost.sum(-1),
        "gate": ev.gate_cost,
        "human_cost": ev.human_cost,
        "quality": ev.quality,
        "bad": ev.delivered_bad,
        "failed": ev.failed,
        "human": ev.human,
        "latency": ev.latency,
        "latency_mc": np.nan_to_num(mc.mean.latency),
        "escalation": ev.escalation,
        "fallback": ev.fallback,
        "risk": risk,
    }
    tot = {k: weighted(v, w) for k, v in per_category.items()}  # traffic-weighted, (P,) each
    base_ix = ch.names.index(baseline) if baseline in ch.names else None

    zeros = np.zeros(len(ch.names))
    optional = {"overflow": ev.overflow, "late": ev.late, "waste": ev.deadline_waste, "router": ev.router_cost}
    extra = {k: zeros if v is None else weighted(v, w) for k, v in optional.items()}
    served = weighted(ev.served, w) if ev.served is not None else np.zeros((len(ch.names), 0))
    step_targets = _step_targets(problem, ev, mc)
    # (P, C) verdicts as arrays, then plain Python lists: one pass builds P x C CategoryResults without numpy
    # scalar conversions (the per-pair loop is the only Python loop, and it only packs values)
    budgets = [None if np.isnan(b) else b for b in tt.budget_s.tolist()]
    with np.errstate(invalid="ignore"):
        quality_ok = (ev.quality >= tt.threshold - 1e-12).tolist()
        latency_ok = (np.isnan(tt.budget_s) | (w == 0) | (p95 <= tt.budget_s)).tolist()  # no traffic, no P95
    shares, thresholds = w.astype(float).tolist(), tt.threshold.astype(float).tolist()
    # (P, C): some step of some lane sends a provider error (any type) on to another step
    fb_route = ((ch.on_failure >= 0) & (ch.model >= 0)[..., None]).any(axis=(2, 3, 4))
    cols = [a.tolist() for a in (cost, ev.quality, p95, p95_lo, p95_hi, ev.escalation, ev.fallback)]
    results = []
    no_steps = ((),) * len(tt.names)
    for p, name in enumerate(ch.names):
        steps = [step_targets.get((p, c), ()) for c in range(len(tt.names))] if step_targets else no_steps
        # positional, in CategoryResult's field order (category, share, cost_per_request, quality, threshold,
        # quality_ok, p95_s, p95_ci_s, budget_s, latency_ok, escalation, fallback, steps, fallback_route):
        # P x C of them, and keywords cost more than the rest of the loop
        cats = [
            CategoryResult(cname, sh, cost, q, th, qok, p95_, (lo, hi), bud, lok, esc, fb, st, fbr)
            for cname, sh, cost, q, th, qok, p95_, lo, hi, bud, lok, esc, fb, st, fbr in zip(
                tt.names,
                shares,
                cols[0][p],
                cols[1][p],
                thresholds,
                quality_ok[p],
                cols[2][p],
                cols[3][p],
                cols[4][p],
                budgets,
                latency_ok[p],
                cols[5][p],
                cols[6][p],
                steps,
                fb_route[p].tolist(),
                strict=True,
            )
        ]
        change = change_pct = None
        if base_ix is not None:
            change = float((total[p] - total[base_ix]) * vol)
            change_pct = float((total[p] - total[base_ix]) / total[base_ix] * 100) if total[base_ix] else None
        results.append(
            PolicyResult(
                name=name,
                kind=ch.kinds[p],
                description=descriptions.get(name),
                cost_per_request=float(total[p]),
                cost_per_request_mc=float(cost_mc[p]),
                cost_ci95=float(cost_ci[p]),
                monthly_cost=float(total[p] * vol),
                token_cost_monthly=float(tot["tokens"][p] * vol),
                gate_cost_monthly=float(tot["gate"][p] * vol),
                human_cost_monthly=float(tot["human_cost"][p] * vol),
                quality=float(tot["quality"][p]),
                quality_mc=float(quality_mc[p]),
                quality_ci95=float(quality_ci[p]),
                delivered_bad=float(tot["bad"][p]),
                failed=float(tot["failed"][p]),
                human_review=float(tot["human"][p]),
                latency_mean_s=float(tot["latency"][p]),
                latency_mean_mc_s=float(tot["latency_mc"][p]),
                p50_s=float(pct[p, 0]),
                p95_s=float(pct[p, 1]),
                p99_s=float(pct[p, 2]),
                escalation=float(tot["escalation"][p]),
                fallback=float(tot["fallback"][p]),
                risk_per_request=float(tot["risk"][p]),
                risk_monthly=float(tot["risk"][p] * vol),
                answered={m: float(answered[p, i]) for i, m in enumerate(mt.names) if answered[p, i] > 0},
                calls={m: float(calls[p, i]) for i, m in enumerate(mt.names) if calls[p, i] > 0},
                categories=cats,
                overflow=float(extra["overflow"][p]),
                late=float(extra["late"][p]),
                deadline_waste_monthly=float(extra["waste"][p] * vol),
                router_cost_monthly=float(extra["router"][p] * vol),
                served_by_step=tuple(float(v) for v in served[p]),
                cost_change_monthly=change,
                cost_change_pct=change_pct,
                is_baseline=p == base_ix,
                fallback_route=bool((fb_route[p] & (w > 0)).any()),
            )
        )
    return results


def with_independent_quality(problem: RoutingProblem, ev: Metrics, policies: list[PolicyResult]) -> list[PolicyResult]:
    """Add, where a joint law changes a policy's numbers, the quality independence would have promised."""
    from dataclasses import replace as _replace

    from routecalc.outcomes import assumed_independent, independent_version

    given = ~assumed_independent(problem.outcomes)
    matters = (outcome_dependent(problem) & given[None, :]).any(axis=1)
    if not matters.any():
        return policies
    indep = expected_values(replace(problem, outcomes=independent_version(problem.outcomes)))
    quality = weighted(indep.quality, problem.tasks.share)
    return [_replace(p, quality_if_independent=float(quality[i])) if matters[i] else p for i, p in enumerate(policies)]


def _step_targets(
    problem: RoutingProblem, ev: Metrics, mc: MonteCarlo
) -> dict[tuple[int, int], tuple[StepTarget, ...]]:
    """Per (policy, category), the chain steps with a latency target: share served (EV) and its P95 (MC)."""
    ch = problem.chains
    if mc.step_hist is None or ev.served is None:
        return {}
    p95 = mc.quantiles(mc.step_hist, [0.95])[..., 0]  # (policies with targets, C, S)
    target = np.where(np.isfinite(ch.latency_target_s), ch.latency_target_s, np.inf).min(axis=2)  # (P, C, S)
    out: dict[tuple[int, int], tuple[StepTarget, ...]] = {}
    for row, p in enumerate(mc.step_policies):
        for c in range(ch.shape[1]):
            steps = [
                StepTarget(s, float(target[p, c, s]), float(ev.served[p, c, s]), float(p95[row, c, s]))
                for s in np.flatnonzero(np.isfinite(target[p, c]))
            ]
            if steps:
                out[(p, c)] = tuple(steps)
    return out


def objective_value(p: PolicyResult, objective: str = "cost") -> float:
    """What the winner rule minimises: spend per request (``cost``), spend plus operational risk per request
    (``cost+risk``: ``cost_bad_answer x delivered bad + cost_failed x failed``), or mean latency (``latency``)."""
    if objective == "cost":
        return p.cost_per_request
    if objective == "cost+risk":
        return p.cost_per_request + p.risk_per_request
    if objective == "latency":
        return p.latency_mean_s
    raise InputError(f"unknown objective {objective!r} (one of {', '.join(OBJECTIVES)})")


def pick_winner(policies: list[PolicyResult], objective: str = "cost") -> str | None:
    """The policy meeting every category's quality threshold and latency budget with the least
    ``objective_value`` (default: the cheapest; ties: quality, then spend). A policy whose objective is not a
    finite number (NaN compares false with everything, so ``min`` would pick whatever comes first) never wins."""
    ok = [
        p
        for p in policies
        if p.meets_targets
        and math.isfinite(objective_value(p, objective))
        and math.isfinite(p.quality)
        and math.isfinite(p.cost_per_request)
    ]
    if not ok:
        return None
    return min(ok, key=lambda p: (objective_value(p, objective), -p.quality, p.cost_per_request)).name


def compare(
    ws: Worksheet,
    samples: int = DEFAULT_SAMPLES,
    seed: int = DEFAULT_SEED,
    today: dt.date | None = None,
    objective: str = "cost",
    progress: Callable[[int, int], None] | None = None,
) -> Comparison:
    """Run both engines on a worksheet's policies (plus all-to-strongest) and pick the winner: the policy meeting
    every target with the least ``objective`` (``cost``, ``cost+risk`` or ``latency``; see objective_value).
    ``progress(done, samples)`` is told how far the Monte Carlo run is (engine.mc.simulate)."""
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed <= MAX_SEED:
        raise InputError(f"seed must be an integer from 0 to 2^63-1 (got {short_repr(seed)})")
    if isinstance(samples, bool) or not isinstance(samples, int) or not MIN_SAMPLES <= samples <= MAX_SAMPLES:
        raise InputError(
            f"samples must be a whole number from {MIN_SAMPLES:,} to {MAX_SAMPLES:,} (got {short_repr(samples)})"
        )
    if objective not in OBJECTIVES:
        raise InputError(f"unknown objective {short_repr(objective)} (one of {', '.join(OBJECTIVES)})")
    problem = compile_worksheet(ws)
    ev = expected_values(problem)
    mc = simulate(problem, samples, np.random.default_rng(seed), progress=progress)
    strongest = strongest_model(ws)
    baseline = ws.baseline or (STRONGEST if strongest else None)
    descriptions: dict[str, str | None] = {p.name: p.description for p in ws.policies}
    if strongest:
        descriptions[STRONGEST] = f"every category to {strongest} (highest traffic-weighted pass rate)"
    policies = summarize(problem, ev, mc, descriptions, baseline)
    policies = with_independent_quality(problem, ev, policies)
    winner = pick_winner(policies, objective)
    warnings, advice = _warnings(ws, problem, ev, mc, policies, today)
    warnings += borderline_warnings(policies, winner, objective)
    if strongest is None:
        warnings.append("No model has a pass rate for every category, so there is no all-to-strongest baseline.")
    return Comparison(
        worksheet=ws.name,
        currency=ws.currency,
        requests_per_month=problem.requests_per_month,
        policies=policies,
        baseline=baseline,
        winner=winner,
        strongest_model=strongest,
        warnings=warnings,
        advisories=[a.text for a in advice],
        samples=samples,
        seed=seed,
        problem=problem,
        ev=ev,
        mc=mc,
        objective=objective,
        advice=advice,
        prices=price_provenance(ws),
    )


def stale_warnings(ws: Worksheet, today: dt.date) -> list[str]:
    """The review-age warnings ``compare`` prints, one per stale category."""
    return [
        f"{name}: pass rates last reviewed {age} days ago (> {STALE_AFTER_DAYS}); re-run evals."
        for name, age in stale_categories(ws, today)
    ]


def borderline_warnings(policies: list[PolicyResult], winner: str | None, objective: str = "cost") -> list[str]:
    """Latency verdicts within Monte Carlo error that could change the decision.

    Those of the winner, and of better policies (by ``objective``) whose only misses are such borderline budgets.
    """
    out = []
    win = next((p for p in policies if p.name == winner), None)
    for p in policies:
        cheaper = win is None or objective_value(p, objective) < objective_value(win, objective)
        misses = [c for c in p.categories if not c.ok]
        decisive = p is win or (cheaper and misses and all(c.quality_ok and c.latency_uncertain for c in misses))
        if not decisive:
            continue
        for c in p.categories:
            if c.latency_uncertain:
                lo, hi = c.p95_ci_s
                out.append(
                    f"{p.name} / {c.category}: P95 {c.p95_s:.2f} s vs budget {c.budget_s:g} s is within Monte Carlo "
                    f"error (95% CI {lo:.2f}-{hi:.2f} s); raise --samples to settle whether it "
                    f"{'meets' if c.latency_ok else 'misses'} the budget."
                )
    return out


def stale_categories(ws: Worksheet, today: dt.date) -> list[tuple[str, int]]:
    """Categories whose ``last_reviewed`` is more than 90 days before ``today``: (name, age in days)."""
    out = []
    for t in ws.tasks:
        if t.last_reviewed is not None and (today - t.last_reviewed).days > STALE_AFTER_DAYS:
            out.append((t.name, (today - t.last_reviewed).days))
    return out


def _warnings(
    ws: Worksheet,
    problem: RoutingProblem,
    ev: Metrics,
    mc: MonteCarlo,
    policies: list[PolicyResult],
    today: dt.date | None,
) -> tuple[list[str], list[Advisory]]:
    warnings: list[str] = []
    tt = problem.tasks
    note = independence_warning(problem)
    if note is not None:
        warnings.append(note)
    with np.errstate(invalid="ignore", divide="ignore"):
        slow = mc.model_slow / mc.model_successes
    for i, name in enumerate(problem.models.names):
        if mc.model_successes[i] > 0 and slow[i] > SLOW_SUCCESS_WARN:
            warnings.append(
                f"{name}: {slow[i]:.1%} of successful answers take longer than its timeout "
                f"({problem.models.timeout_s[i]:g} s); the model counts them as successes, a real client "
                "would have timed out. Raise timeout_s or expect more failures."
            )
    if today is not None:
        warnings += stale_warnings(ws, today)
    empty = [tt.names[c] for c in range(len(tt.names)) if mc.n[c] == 0 and tt.share[c] > 0]
    if empty:
        warnings.append(f"Monte Carlo drew no request of {', '.join(empty)}: raise --samples.")
    for pol in policies:
        if pol.failed > 0.01:
            warnings.append(f"{pol.name}: {pol.failed:.1%} of requests fail with no answer.")
    if ev.overflow is not None:
        spill = [(p, c) for p, c in zip(*np.nonzero(ev.overflow > 0), strict=True)]
        for p, c in spill[:MAX_NAMED]:
            warnings.append(
                f"{problem.chains.names[p]} / {tt.names[c]}: {pct(float(ev.overflow[p, c]))} of requests are longer "
                "than a model's context window and skip it (overflow)."
            )
        if len(spill) > MAX_NAMED:
            warnings.append(
                f"... and {len(spill) - MAX_NAMED} more (policy, category) pairs with overflow (--format json)."
            )
    return warnings, advisories(ws, problem, ev, policies)
