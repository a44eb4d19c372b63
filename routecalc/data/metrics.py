"""Router-research metrics on per-prompt outcomes, as the papers define them. Pure and vectorized.

Inputs: ``passed`` (P, M) bool/0-1 (every prompt needs an outcome for every model given; filter first), ``cost``
(P, M) the cost of answering each prompt with each model (currency per request, computed by the caller from
prices and tokens), optional ``weights`` (P,) (e.g. to reweight prompts to a traffic mix; default uniform).
Quality is the (weighted) share of prompts answered acceptably; cost is the (weighted) mean cost per prompt.

* **Oracle** (RouterBench, arXiv 2403.12031): per prompt the cheapest model that passes; if none passes, the
  cheapest model.
* **Non-decreasing convex hull** (RouterBench): on the cost/quality plane, any two routers can be mixed at random
  (every point of the segment between them is reachable) and any router can be made dearer at equal quality, so
  what a set of points offers is the upper convex hull from the cheapest point up to the best quality, extended
  flat to the right. The **zero router** is that hull of the single models (random mixes of neighbouring models).
* **AIQ** (RouterBench): the area under a router's hull over a cost range ``[c_min, c_max]``, divided by
  ``c_max - c_min``. Below the router's cheapest point it cannot operate and adds nothing (as in RouterBench's
  ``evaluation/AIQ.py``, which integrates from the router's first point).
* **Share of the oracle's savings captured**: ``(cost(ref) - cost(policy)) / (cost(ref) - cost(oracle))`` with
  ``ref`` the *strong model*: the single model of highest quality (ties: the cheaper). 1 = saves as much as the
  oracle, 0 = saves nothing, < 0 = costs more than the strong model.
* **Score router** (RouteLLM, arXiv 2406.18665): a router score per prompt (higher = more in need of the strong
  model); threshold ``t`` sends prompts with ``score >= t`` to the strong model. Every distinct threshold is
  swept (RouteLLM's code uses 10 quantile bins; every threshold gives the exact piecewise-linear curve).
  ``PGR = (q - q_weak) / (q_strong - q_weak)``; **APGR** = the area under PGR against the share of calls to the
  strong model, from 0 to 1 (trapezoids between the swept points); **CPT(x)** = the smallest share of calls to
  the strong model at which PGR reaches x (linear between swept points; NaN if never).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from routecalc.errors import InputError


def _inputs(passed: np.ndarray, cost: np.ndarray, weights: np.ndarray | None) -> tuple[np.ndarray, ...]:
    p = np.asarray(passed)
    c = np.asarray(cost, dtype=float)
    if p.ndim != 2 or c.shape != p.shape or p.shape[0] == 0 or p.shape[1] == 0:
        raise InputError(f"metrics need passed and cost of one shape (prompts, models); got {p.shape} and {c.shape}")
    if p.dtype != bool:
        if np.any((p != 0) & (p != 1)):
            raise InputError("metrics need an outcome (0 or 1) for every prompt and model: filter missing ones first")
        p = p.astype(bool)
    if not np.all(np.isfinite(c)):
        raise InputError("metrics need a finite cost for every prompt and model")
    if weights is None:
        w = np.full(p.shape[0], 1.0 / p.shape[0])
    else:
        w = np.asarray(weights, dtype=float)
        if w.shape != (p.shape[0],) or not np.all(np.isfinite(w)) or np.any(w < 0) or w.sum() <= 0:
            raise InputError("weights must be one non-negative finite number per prompt, not all zero")
        w = w / w.sum()
    return p, c, w


@dataclass(frozen=True)
class Points:
    """Single models on the cost/quality plane: mean cost per prompt and quality (share passed), per model."""

    cost: np.ndarray
    quality: np.ndarray

    @property
    def strong(self) -> int:
        """The strong model: highest quality, ties to the cheaper (then the first)."""
        return int(np.lexsort((self.cost, -self.quality))[0])


def single_models(passed: np.ndarray, cost: np.ndarray, weights: np.ndarray | None = None) -> Points:
    """Each model alone: (weighted) mean cost per prompt and share of prompts passed."""
    p, c, w = _inputs(passed, cost, weights)
    return Points(cost=w @ c, quality=w @ p)


@dataclass(frozen=True)
class Oracle:
    """Per prompt the model the oracle picks, and its mean cost, quality and share of prompts per model."""

    choice: np.ndarray
    cost: float
    quality: float
    share: np.ndarray


def oracle(passed: np.ndarray, cost: np.ndarray, weights: np.ndarray | None = None) -> Oracle:
    """The oracle: the cheapest passing model per prompt; if none passes, the cheapest model (ties: the first)."""
    p, c, w = _inputs(passed, cost, weights)
    choice = np.argmin(np.where(p, c, np.inf), axis=1)
    none = ~p.any(axis=1)
    choice[none] = np.argmin(c[none], axis=1)
    rows = np.arange(p.shape[0])
    share = np.bincount(choice, weights=w, minlength=p.shape[1])
    return Oracle(choice=choice, cost=float(w @ c[rows, choice]), quality=float(w @ p[rows, choice]), share=share)


@dataclass(frozen=True)
class Hull:
    """A non-decreasing convex hull: vertices by increasing cost and quality; ``index`` into the input points."""

    cost: np.ndarray
    quality: np.ndarray
    index: np.ndarray

    def quality_at(self, cost: np.ndarray | float) -> np.ndarray:
        """Best quality reachable at ``cost``: linear between vertices (random mixes), flat beyond the last vertex
        (paying more at equal quality), NaN below the first (unreachable)."""
        c = np.asarray(cost, dtype=float)
        q = np.interp(c, self.cost, self.quality)
        return np.where(c < self.cost[0], np.nan, q)

    def mix(self, cost: float) -> tuple[int, int, float]:
        """The zero router at ``cost``: points ``(i, j)`` (input indexes) and the probability of ``j``."""
        if cost <= self.cost[0]:
            return int(self.index[0]), int(self.index[0]), 0.0
        if cost >= self.cost[-1]:
            return int(self.index[-1]), int(self.index[-1]), 0.0
        k = int(np.searchsorted(self.cost, cost, side="right"))
        t = (cost - self.cost[k - 1]) / (self.cost[k] - self.cost[k - 1])
        return int(self.index[k - 1]), int(self.index[k]), float(t)


def ndch(costs: np.ndarray, qualities: np.ndarray) -> Hull:
    """The non-decreasing convex hull of cost/quality points (RouterBench): from the cheapest point (the best
    quality among equally cheap ones) along the upper convex hull to the best quality (its cheapest point).

    Vectorized: points below the chord of their neighbours are removed, all at once, until none is; a point
    below a chord of two other points is never a hull vertex, so each pass is safe.
    """
    c = np.asarray(costs, dtype=float)
    q = np.asarray(qualities, dtype=float)
    if c.shape != q.shape or c.ndim != 1 or c.size == 0 or not (np.all(np.isfinite(c)) and np.all(np.isfinite(q))):
        raise InputError("ndch needs one finite cost and quality per point")
    order = np.lexsort((-q, c))  # by cost, best quality first among equal costs
    first_of_cost = np.r_[True, c[order][1:] != c[order][:-1]]
    idx = order[first_of_cost]
    best = np.max(q)
    stop = np.flatnonzero(q[idx] == best)[0]  # the cheapest point of best quality ends the hull
    idx = idx[: stop + 1]
    idx = idx[q[idx] >= q[idx[0]]]  # dearer and worse than the cheapest point: never on a non-decreasing hull
    while idx.size > 2:
        x, y = c[idx], q[idx]
        # cross product of (P[i-1] -> P[i]) x (P[i-1] -> P[i+1]) >= 0: P[i] is on or below the chord
        cross = (x[1:-1] - x[:-2]) * (y[2:] - y[:-2]) - (y[1:-1] - y[:-2]) * (x[2:] - x[:-2])
        drop = cross >= 0
        if not drop.any():
            break
        keep = np.r_[True, ~drop, True]
        idx = idx[keep]
    return Hull(cost=c[idx], quality=q[idx], index=idx)


def zero_router(points: Points) -> Hull:
    """The zero router (RouterBench): random mixes of single models along their non-decreasing convex hull."""
    return ndch(points.cost, points.quality)


def aiq(costs: np.ndarray, qualities: np.ndarray, cost_range: tuple[float, float] | None = None) -> float:
    """AIQ (RouterBench): area under the non-decreasing convex hull of a router's points over ``cost_range``
    (default: the points' own cost range), divided by the range's width. Zero below the router's cheapest point
    (it cannot operate there), flat after its last vertex. A zero-width range gives the quality at that cost."""
    h = ndch(costs, qualities)
    lo, hi = cost_range if cost_range is not None else (float(np.min(costs)), float(np.max(costs)))
    if not (np.isfinite(lo) and np.isfinite(hi)) or hi < lo:
        raise InputError(f"AIQ: cost range must be finite with min <= max (got {lo}, {hi})")
    if hi == lo:
        return float(np.nan_to_num(h.quality_at(lo), nan=0.0))
    start = max(lo, float(h.cost[0]))
    if start >= hi:
        return 0.0
    inner = h.cost[(h.cost > start) & (h.cost < hi)]
    x = np.concatenate([[start], inner, [hi]])
    y = h.quality_at(x)
    area = float(np.sum((x[1:] - x[:-1]) * (y[1:] + y[:-1]) / 2))
    return area / (hi - lo)


def savings_captured(policy_cost: float, oracle_cost: float, reference_cost: float) -> float:
    """Share of the oracle's savings (against the reference, normally the strong model) a policy captures:
    ``(ref - policy) / (ref - oracle)``; NaN when the oracle saves nothing."""
    gap = reference_cost - oracle_cost
    return float((reference_cost - policy_cost) / gap) if gap > 0 else float("nan")


@dataclass(frozen=True)
class ScoreSweep:
    """A score router swept over every threshold, from all-weak (first point, threshold +inf) to all-strong.

    Per point: ``threshold`` (strong when score >= threshold), ``strong_share`` (share of calls to the strong
    model, 0..1), mean ``cost`` per prompt, ``quality``, ``pgr``. ``apgr``, ``cpt50``, ``cpt80`` as in the module
    docstring (CPT as a share of calls, 0..1)."""

    threshold: np.ndarray
    strong_share: np.ndarray
    cost: np.ndarray
    quality: np.ndarray
    pgr: np.ndarray
    quality_weak: float
    quality_strong: float
    apgr: float
    cpt50: float
    cpt80: float

    def cpt(self, target: float) -> float:
        """Smallest share of calls to the strong model at which PGR reaches ``target`` (NaN if it never does)."""
        return _cpt(self.strong_share, self.pgr, target)


def _cpt(share: np.ndarray, pgr: np.ndarray, target: float) -> float:
    hit = np.flatnonzero(pgr >= target)
    if hit.size == 0:
        return float("nan")
    j = int(hit[0])
    if j == 0:
        return float(share[0])
    x0, x1, y0, y1 = share[j - 1], share[j], pgr[j - 1], pgr[j]
    return float(x0 + (target - y0) * (x1 - x0) / (y1 - y0))


def score_router(
    passed: np.ndarray,
    cost: np.ndarray,
    score: np.ndarray,
    weak: int,
    strong: int,
    weights: np.ndarray | None = None,
) -> ScoreSweep:
    """Sweep a binary score router between models ``weak`` and ``strong`` (column indexes) over every distinct
    threshold; APGR and CPT(50 %)/CPT(80 %) as RouteLLM defines them. Ties in score move together."""
    p, c, w = _inputs(passed, cost, weights)
    s = np.asarray(score, dtype=float)
    if s.shape != (p.shape[0],) or not np.all(np.isfinite(s)):
        raise InputError("score_router needs one finite router score per prompt (filter missing ones first)")
    if weak == strong or not (0 <= weak < p.shape[1] and 0 <= strong < p.shape[1]):
        raise InputError(f"score_router: weak and strong must be two different model columns (got {weak}, {strong})")
    order = np.argsort(-s, kind="stable")
    ss = s[order]
    ends = np.r_[np.flatnonzero(ss[1:] != ss[:-1]), ss.size - 1]  # last prompt of each tie group
    ww = w[order]
    pw, ps = p[order, weak].astype(float), p[order, strong].astype(float)
    cw, cs = c[order, weak], c[order, strong]
    q_weak, q_strong = float(w @ p[:, weak]), float(w @ p[:, strong])
    cost_weak = float(w @ c[:, weak])
    share = np.r_[0.0, np.cumsum(ww)[ends]]
    quality = q_weak + np.r_[0.0, np.cumsum(ww * (ps - pw))[ends]]
    mean_cost = cost_weak + np.r_[0.0, np.cumsum(ww * (cs - cw))[ends]]
    share[-1] = 1.0  # exact, not a float sum
    gap = q_strong - q_weak
    pgr = (quality - q_weak) / gap if gap != 0 else np.full(quality.shape, np.nan)
    apgr = float(np.sum((share[1:] - share[:-1]) * (pgr[1:] + pgr[:-1]) / 2)) if gap != 0 else float("nan")
    return ScoreSweep(
        threshold=np.r_[np.inf, ss[ends]],
        strong_share=share,
        cost=mean_cost,
        quality=quality,
        pgr=pgr,
        quality_weak=q_weak,
        quality_strong=q_strong,
        apgr=apgr,
        cpt50=_cpt(share, pgr, 0.5) if gap != 0 else float("nan"),
        cpt80=_cpt(share, pgr, 0.8) if gap != 0 else float("nan"),
    )
