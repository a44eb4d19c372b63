"""Replay: every policy of a worksheet on the rows of an eval file, next to the worksheet's own estimate.

Each prompt is a request of its category with its *real* outcome on every model the file has (mapped to catalog
names); everything else is drawn as Monte Carlo draws it (gates with their catch / false-reject rates, provider
failures, latency; tokens too unless the file has them), seeded, through the same walk as ``compare``
(:meth:`routecalc.engine.chunk.Chunk.walks`). Each prompt is replayed ``repeats`` times so that the gates' and
failures' own randomness averages out; per prompt the mean over repeats is kept.

Intervals: 95 % bootstrap over prompts, stratified by category (``B`` resamples of each category's prompts, one
multinomial weight matrix per category: no Python loop per resample). Totals mix categories by the worksheet's
traffic shares, as ``compare`` does; a category without prompts in the file keeps the estimate (and says so).

Router-research metrics on the same rows (:mod:`routecalc.data.metrics`): the oracle, the zero router, each
policy's share of the oracle's savings captured, AIQ of the worksheet's policies and of the zero router, and a
score router's APGR / CPT when the file has a router score. Per-prompt costs of single models are the
worksheet's prices on the prompt's tokens (or the category's mean tokens).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from routecalc.chains import RoutingProblem
from routecalc.data import metrics as rm
from routecalc.data.evals import EvalData
from routecalc.engine.billing import token_prices
from routecalc.engine.chunk import CHUNK, Chunk
from routecalc.engine.ev import Metrics
from routecalc.engine.histogram import bins_per_decade
from routecalc.engine.walk import GOOD, HUMAN_REVIEW, Workspace
from routecalc.errors import InputError

DEFAULT_BOOTSTRAP = 1000
MIN_REQUESTS = 200_000  # replay prompts this many times in all, at least (repeats = ceil(this / prompts))
MAX_REPEATS = 100


@dataclass(frozen=True)
class PolicyReplay:
    """One policy on the rows: traffic-weighted totals and per category, with 95 % bootstrap intervals."""

    name: str
    quality: float
    quality_ci: tuple[float, float]
    cost_per_request: float
    cost_ci: tuple[float, float]
    estimate_quality: float  # the worksheet's expected value, for comparison
    estimate_cost: float
    categories: dict[str, CategoryReplay]
    savings_captured: float | None = None  # share of the oracle's savings vs the strong model (same rows)


@dataclass(frozen=True)
class CategoryReplay:
    prompts: int
    quality: float
    quality_ci: tuple[float, float]
    estimate: float

    @property
    def inside(self) -> bool:
        """Whether the worksheet's estimate of this category's quality lies inside the replay's 95 % interval."""
        lo, hi = self.quality_ci
        return lo <= self.estimate <= hi


@dataclass(frozen=True)
class Replay:
    """What ``routecalc replay`` shows (money in ``currency`` per request)."""

    worksheet: str
    source: str
    currency: str
    prompts: int
    repeats: int
    bootstrap: int
    seed: int
    categories: tuple[str, ...]  # categories replayed (in the worksheet's order)
    missing: tuple[str, ...]  # worksheet categories without prompts in the file
    skipped: tuple[str, ...]  # file categories not in the worksheet
    models: tuple[str, ...]  # catalog models with outcomes in the file
    policies: list[PolicyReplay]
    oracle: tuple[float, float]  # (cost, quality)
    single_models: dict[str, tuple[float, float]]
    zero_router_aiq: float
    policies_aiq: float
    score_router: dict[str, float] | None = None
    notes: list[str] = field(default_factory=list)

    def policy(self, name: str) -> PolicyReplay:
        for p in self.policies:
            if p.name == name:
                return p
        raise InputError(f"unknown policy {name!r} (replayed: {', '.join(p.name for p in self.policies)})")


def replay(
    problem: RoutingProblem,
    estimate: Metrics,
    data: EvalData,
    catalog_of: dict[str, str],
    seed: int = 0,
    bootstrap: int = DEFAULT_BOOTSTRAP,
    repeats: int | None = None,
) -> Replay:
    """Replay every policy of ``problem`` on the prompts of ``data`` (see module docstring).

    ``catalog_of``: eval model name -> catalog model name. ``estimate``: the expected values of ``problem``.
    """
    if bootstrap < 100:
        raise InputError("--bootstrap: at least 100 resamples")
    tt, mt, ch = problem.tasks, problem.models, problem.chains
    C = ch.shape[1]
    M = len(mt.names)
    index = {name: c for c, name in enumerate(tt.names)}
    file_cat = np.array([index.get(name, -1) for name in data.categories])
    skipped = tuple(name for name in data.categories if name not in index)
    cat = file_cat[data.category]
    keep = np.flatnonzero(cat >= 0)
    if keep.size == 0:
        raise InputError(f"{data.source}: none of its categories is in the worksheet ({', '.join(tt.names)})")
    cat = cat[keep]
    order = np.argsort(cat, kind="stable")
    keep, cat = keep[order], cat[order]
    n = keep.size
    columns = {mt.names.index(catalog_of[m]): j for j, m in enumerate(data.models) if catalog_of.get(m) in mt.names}
    outcome = np.full((n, M), -1.0)
    for m_ix, j in columns.items():
        outcome[:, m_ix] = data.passed[keep, j]
    counts = np.bincount(cat, minlength=C)
    missing = tuple(tt.names[c] for c in range(C) if counts[c] == 0)
    repeats = repeats if repeats is not None else int(min(MAX_REPEATS, max(1, math.ceil(MIN_REQUESTS / n))))

    x_file = data.tokens_in[keep] if data.tokens_in is not None else None
    y_file = data.tokens_out[keep] if data.tokens_out is not None else None
    good, cost = _walk_rows(problem, cat, outcome, x_file, y_file, seed, repeats)  # (P, n) means over repeats

    w = np.where(counts > 0, tt.share, 0.0)
    w = w / w.sum()
    rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(1,)))
    boot = _Bootstrap(cat, counts, bootstrap, rng)
    q_cat, q_boot = boot.means(good)  # (P, C), (P, B, C)
    c_cat, c_boot = boot.means(cost)
    q_tot, c_tot = q_cat @ w, c_cat @ w
    q_ci = np.percentile(q_boot @ w, [2.5, 97.5], axis=-1)
    c_ci = np.percentile(c_boot @ w, [2.5, 97.5], axis=-1)
    qc_ci = np.percentile(q_boot, [2.5, 97.5], axis=1)  # (2, P, C)
    est_q, est_c = estimate.quality, estimate.cost

    # router-research metrics on the same rows: the file's models only
    rows_with_all = np.flatnonzero((outcome[:, list(columns)] >= 0).all(axis=1)) if columns else np.arange(0)
    weights_per_prompt = (w / np.maximum(counts, 1))[cat]
    single, oracle_pt, zero_aiq, pol_aiq, captured, score = _research(
        problem, cat, outcome, x_file, y_file, columns, rows_with_all, weights_per_prompt, c_tot, q_tot, data, keep
    )
    policies = []
    for p, name in enumerate(ch.names):
        policies.append(
            PolicyReplay(
                name=name,
                quality=float(q_tot[p]),
                quality_ci=(float(q_ci[0, p]), float(q_ci[1, p])),
                cost_per_request=float(c_tot[p]),
                cost_ci=(float(c_ci[0, p]), float(c_ci[1, p])),
                estimate_quality=float(est_q[p] @ w),
                estimate_cost=float(est_c[p] @ w),
                categories={
                    tt.names[c]: CategoryReplay(
                        prompts=int(counts[c]),
                        quality=float(q_cat[p, c]),
                        quality_ci=(float(qc_ci[0, p, c]), float(qc_ci[1, p, c])),
                        estimate=float(est_q[p, c]),
                    )
                    for c in range(C)
                    if counts[c] > 0
                },
                savings_captured=captured[p] if captured is not None else None,
            )
        )
    notes = []
    if missing:
        notes.append(f"not in the file, left out of the totals: {', '.join(missing)}")
    if len(columns) < len(data.models):
        unmapped = [m for m in data.models if catalog_of.get(m) not in mt.names]
        notes.append(f"eval models without a catalog model (ignored): {', '.join(unmapped)}")
    return Replay(
        worksheet="",
        source=data.source,
        currency=problem.currency,
        prompts=n,
        repeats=repeats,
        bootstrap=bootstrap,
        seed=seed,
        categories=tuple(tt.names[c] for c in range(C) if counts[c] > 0),
        missing=missing,
        skipped=skipped,
        models=tuple(mt.names[m] for m in columns),
        policies=policies,
        oracle=oracle_pt,
        single_models=single,
        zero_router_aiq=zero_aiq,
        policies_aiq=pol_aiq,
        score_router=score,
        notes=notes,
    )


def _walk_rows(
    problem: RoutingProblem,
    cat: np.ndarray,
    outcome: np.ndarray,
    x: np.ndarray | None,
    y: np.ndarray | None,
    seed: int,
    repeats: int,
) -> tuple[np.ndarray, np.ndarray]:
    """Per policy and prompt, the share of replays delivered good and the mean cost ``(P, n)``."""
    P = problem.chains.shape[0]
    n = cat.size
    good = np.zeros((P, n))
    cost = np.zeros((P, n))
    chunk = Chunk(problem, bins_per_decade(P, problem.chains.shape[1]), np.zeros((1, 1, 1), np.int32), None, "numpy")
    ss = np.random.SeedSequence(seed)
    ws = Workspace()
    rows_per_chunk = max(1, CHUNK)
    for _ in range(repeats):
        for a in range(0, n, rows_per_chunk):
            b = min(n, a + rows_per_chunk)
            rng = np.random.default_rng(ss.spawn(1)[0])
            given = lambda v, a=a, b=b: None if v is None or np.isnan(v[a:b]).any() else v[a:b]
            req = chunk.draw(rng, b - a, ws, cat=cat[a:b], x=given(x), y=given(y))
            for p, _, _, w, _ in chunk.walks(req, ws, outcome=outcome[a:b]):
                good[p, a:b] += (w.outcome == GOOD) | (w.outcome == HUMAN_REVIEW)
                cost[p, a:b] += w.cost
    return good / repeats, cost / repeats


class _Bootstrap:
    """Stratified bootstrap of per-category means: one multinomial weight matrix per category."""

    def __init__(self, cat: np.ndarray, counts: np.ndarray, B: int, rng: np.random.Generator):
        self.cat, self.counts, self.B = cat, counts, B
        self.weights = []
        start = 0
        for k in counts:
            if k == 0:
                self.weights.append(None)
                continue
            self.weights.append((start, rng.multinomial(k, np.full(k, 1.0 / k), size=B) / k))  # (B, k)
            start += k

    def means(self, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``values`` ``(P, n)`` -> per-category means ``(P, C)`` and bootstrap means ``(P, B, C)``."""
        P = values.shape[0]
        C = self.counts.size
        mean = np.zeros((P, C))
        boot = np.zeros((P, self.B, C))
        for c, item in enumerate(self.weights):
            if item is None:
                continue
            start, W = item
            block = values[:, start : start + self.counts[c]]  # (P, k)
            mean[:, c] = block.mean(axis=1)
            boot[:, :, c] = block @ W.T
        return mean, boot


def _research(problem, cat, outcome, x, y, columns, rows, weights, policy_cost, policy_quality, data, keep):  # type: ignore[no-untyped-def]
    """Oracle, single models, zero router and AIQs, savings captured, score router (module docstring)."""
    tt, mt = problem.tasks, problem.models
    models = list(columns)
    if len(models) == 0 or rows.size == 0:
        return {}, (math.nan, math.nan), math.nan, math.nan, None, None
    xs = (x[rows] if x is not None and not np.isnan(x[rows]).any() else tt.x_mean[cat[rows]])[:, None]
    ys = (y[rows] if y is not None and not np.isnan(y[rows]).any() else tt.y_mean[cat[rows]])[:, None]
    m = np.array(models)
    c_rows = cat[rows][:, None]
    long = xs > problem.segments.long_above[c_rows, m]  # this prompt's tier; the category's batch share mixed in
    price = token_prices(mt, tt, m, c_rows, long, tt.batch_share[c_rows])
    per_prompt_cost = xs * price.answer_in + ys * price.answer_out + mt.call_cost[m]
    passed = outcome[rows][:, m].astype(bool)
    w = weights[rows]
    singles = rm.single_models(passed, per_prompt_cost, w)
    orc = rm.oracle(passed, per_prompt_cost, w)
    zero = rm.zero_router(singles)
    lo, hi = float(np.min(singles.cost)), float(np.max(singles.cost))
    zero_aiq = rm.aiq(zero.cost, zero.quality, (lo, hi))
    pol_hull = rm.ndch(policy_cost, policy_quality)
    pol_aiq = rm.aiq(pol_hull.cost, pol_hull.quality, (lo, hi))
    strong = singles.strong
    captured = [rm.savings_captured(float(c), float(orc.cost), float(singles.cost[strong])) for c in policy_cost]
    score = None
    if data.router_score is not None and len(models) >= 2:
        weak = int(np.argmin(singles.cost))
        sweep = rm.score_router(passed, per_prompt_cost, data.router_score[keep][rows], weak, strong, w)
        score = {"apgr": sweep.apgr, "cpt50": sweep.cpt50, "cpt80": sweep.cpt80}
    names = [mt.names[i] for i in models]
    single = {nm: (float(singles.cost[i]), float(singles.quality[i])) for i, nm in enumerate(names)}
    return single, (float(orc.cost), float(orc.quality)), zero_aiq, pol_aiq, captured, score


__all__ = ["CategoryReplay", "PolicyReplay", "Replay", "replay"]
