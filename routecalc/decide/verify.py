"""P95 latency of candidate routes, from the Monte Carlo engine, batched over categories.

A P95 needs the whole latency distribution, so budgets are checked by simulation, not by the expected-value
screen. The routes to check are laid out as policies of the full worksheet problem: policy ``j`` runs, in each
category, that category's ``j``-th route to check (categories with fewer repeat their last one; categories with
nothing to check run any route, whose result is ignored). One ``simulate`` call checks up to ``P`` routes in
every category at once, on the same requests (common random numbers).

Same ``samples`` and ``seed`` as ``compare``: the engine draws each request's random numbers step by step,
independently of the other policies simulated beside it, so a route's P95 here is the P95 ``compare`` reports
for a policy using that route (given the same histogram resolution, which only changes past 10,000
policy-categories). Error: the histogram's resolution (``hist_rel_error``, 0.58 %) plus sampling error, shown
as the 95 % CI of the P95 from the binomial spread of its rank.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from routecalc.chains import RoutingProblem, plain_chains
from routecalc.decide.candidates import Candidates, concat, enumerate_routes
from routecalc.decide.scored import Scored
from routecalc.engine.mc import simulate
from routecalc.results import p95_ci
from routecalc.worksheet import Worksheet


@dataclass(frozen=True, eq=False)
class P95:
    """Per checked route ``(P, C)``: P95 latency (s) and its 95 % CI; ``hist_rel_error``: histogram resolution."""

    p95: np.ndarray
    lo: np.ndarray
    hi: np.ndarray
    hist_rel_error: float


def simulate_routes(
    problem: RoutingProblem,
    columns: list[Candidates],
    retries: int,
    backoff_s: float,
    samples: int,
    seed: int,
) -> P95:
    """Simulate ``columns[c]`` (``P`` routes each, the same ``P`` for every category) through the worksheet's
    traffic and return each route's P95 in its category."""
    P = len(columns[0])
    S = max(c.model.shape[1] for c in columns)
    cols = [c.padded(S) for c in columns]
    stack = lambda name: np.stack([getattr(c, name) for c in cols], axis=1)  # (P, C, S)
    model = stack("model")
    chains = plain_chains(
        model,
        stack("gated"),
        np.where(model >= 0, retries, 0),
        stack("on_reject"),
        stack("on_failure"),
        tiers=problem.chains.lane_weight.shape[2],
        segments=problem.segments.prob.shape[1],
        backoff_s=backoff_s,
    )
    chains = replace(chains, names=tuple(f"route {j}" for j in range(P)))
    mc = simulate(replace(problem, chains=chains), samples, np.random.default_rng(seed))
    p95, lo, hi = p95_ci(mc)
    return P95(p95, lo, hi, mc.hist_rel_error)


def columns_for(batches: dict[int, Candidates], fillers: list[Candidates]) -> list[Candidates]:
    """Lay out per-category batches of routes to check as equally long columns (see module docstring)."""
    P = max((len(b) for b in batches.values()), default=1)
    out = []
    for c, filler in enumerate(fillers):
        b = batches.get(c, filler)
        if len(b) < P:
            b = concat([b, b.take(np.full(P - len(b), len(b) - 1))])
        out.append(b)
    return out


class Checker:
    """Monte Carlo P95 checks, batched over categories, remembered per (category, candidate)."""

    def __init__(self, ws: Worksheet, problem: RoutingProblem, cats: list[Scored], samples: int, seed: int):
        self.ws, self.problem, self.cats, self.samples, self.seed = ws, problem, cats, samples, seed
        self.p95: list[dict[int, tuple[float, float, float]]] = [{} for _ in cats]
        self.hist_rel_error = float("nan")
        self.runs = 0
        fillers = []
        for cat in cats:
            if len(cat.cands):
                fillers.append(cat.cands.take([0]))
            else:  # no allowed model: simulate any single model, its result is never read
                fillers.append(enumerate_routes(np.array([0]), np.array([-1]), 1, False))
        self.fillers = fillers

    def check(self, batches: dict[int, np.ndarray]) -> None:
        """Simulate the candidates ``batches[c]`` (indices) of each category; record their P95."""
        todo = {c: ix for c, ix in batches.items() if len(ix)}
        if not todo:
            return
        cols = columns_for({c: self.cats[c].cands.take(ix) for c, ix in todo.items()}, self.fillers)
        res = simulate_routes(
            self.problem, cols, self.ws.defaults.retries, self.ws.defaults.backoff_s, self.samples, self.seed
        )
        self.hist_rel_error = res.hist_rel_error
        self.runs += 1
        for c, ix in todo.items():
            for j, i in enumerate(ix):
                self.p95[c][int(i)] = (float(res.p95[j, c]), float(res.lo[j, c]), float(res.hi[j, c]))

    def passes(self, c: int, i: int) -> bool:
        budget = self.cats[c].rules.budget_s
        p = self.p95[c][i][0]
        return budget is not None and bool(p <= budget)
