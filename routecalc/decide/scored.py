"""Every category's candidate routes, scored and checked against the expected-value targets."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from routecalc.chains import RoutingProblem
from routecalc.decide.candidates import Candidates, Scores, enumerate_routes, same_tier_partners, score
from routecalc.decide.constraints import Rules, resolve, shortfalls
from routecalc.worksheet import Worksheet


@dataclass(frozen=True, eq=False)
class Scored:
    """One category's candidates, their expected values, shortfalls against every expected-value target (the
    quality threshold included) and objective value."""

    rules: Rules
    cands: Candidates
    scores: Scores
    short: dict[str, np.ndarray]  # expected-value shortfalls (quality threshold included)
    key: np.ndarray  # objective value per candidate


def objective_values(scores: Scores, objective: str) -> np.ndarray:
    if objective == "cost":
        return scores.cost
    if objective == "cost+risk":
        return scores.cost + scores.risk
    return scores.latency


def score_categories(ws: Worksheet, problem: RoutingProblem, max_chain: int, objective: str) -> list[Scored]:
    """Enumerate and score every category's candidates (one batch of engine calls per category)."""
    rules = resolve(ws, problem)
    retries, backoff = ws.defaults.retries, ws.defaults.backoff_s
    providers = [m.provider for m in ws.models]
    M = len(ws.models)
    out = []
    for c, r in enumerate(rules):
        allowed = np.array(r.allowed, dtype=np.int64)
        singles = enumerate_routes(allowed, np.full(M, -1), 1, False)
        s1 = score(problem, c, singles, retries, backoff)
        cost, quality = np.full(M, np.inf), np.zeros(M)
        cost[allowed], quality[allowed] = s1.cost, s1.quality
        partner = same_tier_partners(allowed, cost, quality, providers)
        cands = enumerate_routes(allowed, partner, max_chain, r.gate)
        scores = score(problem, c, cands, retries, backoff)
        out.append(Scored(r, cands, scores, shortfalls(r, scores), objective_values(scores, objective)))
    return out


def best_first(cat: Scored, mask: np.ndarray) -> np.ndarray:
    """Indices of the ``mask``ed candidates, best first: objective, then quality, cost, length, enumeration."""
    ix = np.flatnonzero(mask)
    s = cat.scores
    keys = (ix, cat.cands.length[ix], s.cost[ix], -s.quality[ix], cat.key[ix])
    return ix[np.lexsort(keys)]
