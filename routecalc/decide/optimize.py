"""Find the best route per category, or the best policy overall, among every route the catalog allows.

``optimize(ws)`` enumerates every candidate route of every category (:mod:`routecalc.decide.candidates`),
scores them all with the expected-value engine, applies the worksheet's constraints
(:mod:`routecalc.decide.constraints`) and picks, per category, the feasible route that is best by the
objective:

* ``cost``: expected spend per request (tokens, validator, human review);
* ``cost+risk``: spend plus operational risk (``cost_bad_answer x delivered bad + cost_failed x failed``);
* ``latency``: mean end-to-end latency (the expected-value engine's, failed requests' time included).

Ties go to the higher quality, then the cheaper, shorter, earlier-enumerated route. Every target except the P95
latency budget is an expected value and is screened exactly; the P95 needs the latency distribution, so the
routes are checked by Monte Carlo (:mod:`routecalc.decide.verify`) in the order of the objective, a few at a time
(4, 8, 16, ... per category) until one passes, at most ``verify_max`` per category. The first to pass is the
best route meeting every target *among those checked*: when the budget binds for more than ``verify_max``
routes, the category is reported as having no verified route.

Global modes trade quality between categories instead of holding each to its threshold: the cheapest policy
(by the objective) whose traffic-weighted quality reaches ``min_quality``, or the best quality within a
monthly ``budget`` (with the budget-exact randomised mix of Dekoninck et al.). Both are solved exactly over
the per-category frontiers (:mod:`routecalc.decide.frontier`); a route on a frontier with a P95 budget is
checked by Monte Carlo before it is used, and the frontiers are rebuilt without those that fail. Per-category
quality thresholds still apply unless ``floors=False``.
"""

from __future__ import annotations

import numpy as np

from routecalc.chains import RoutingProblem, compile_worksheet
from routecalc.decide import frontier as fr
from routecalc.decide.answer import FrontierView, Mix, Optimization, Settings, assemble, frontier_view, route_of
from routecalc.decide.candidates import DEFAULT_MAX_CHAIN
from routecalc.decide.constraints import QUALITY, check, feasible
from routecalc.decide.scored import Scored, best_first, score_categories
from routecalc.decide.verify import Checker
from routecalc.errors import InputError
from routecalc.results import DEFAULT_SAMPLES, DEFAULT_SEED, OBJECTIVES
from routecalc.worksheet import Worksheet

DEFAULT_NAME = "optimized"
VERIFY_MAX = 64  # routes per category checked against the P95 budget by Monte Carlo
FIRST_BATCH = 4  # routes per category in the first Monte Carlo check; doubled each round


# ---------------------------------------------------------------------------------------------------------
# The optimisation


def optimize(
    ws: Worksheet,
    objective: str = "cost",
    max_chain: int = DEFAULT_MAX_CHAIN,
    min_quality: float | None = None,
    budget: float | None = None,
    floors: bool = True,
    samples: int = DEFAULT_SAMPLES,
    seed: int = DEFAULT_SEED,
    verify_max: int = VERIFY_MAX,
    name: str = DEFAULT_NAME,
    source: str = "worksheet",
) -> Optimization:
    """Best route per category (default), or the global optimum under ``min_quality`` (traffic-weighted, a
    fraction) or a monthly ``budget`` (worksheet currency); see the module docstring. ``source`` names the
    worksheet in errors."""
    if objective not in OBJECTIVES:
        raise InputError(f"--objective: one of {', '.join(OBJECTIVES)} (got {objective!r})")
    if not 1 <= max_chain <= 8:
        raise InputError(f"--max-chain: between 1 and 8 (got {max_chain})")
    if min_quality is not None and budget is not None:
        raise InputError("give --min-quality or --budget, not both")
    if min_quality is not None and not 0 <= min_quality <= 1:
        raise InputError(f"--min-quality: a fraction between 0 and 1 (got {min_quality:g})")
    if budget is not None and not budget >= 0:
        raise InputError(f"--budget: a monthly amount >= 0 (got {budget:g})")
    if budget is not None and objective == "latency":
        raise InputError("--budget maximises quality within spend; --objective latency does not apply to it")
    if name in {p.name for p in ws.policies}:
        raise InputError(f"the worksheet already has a policy named {name!r}; choose another with --name")
    check(ws, source)
    problem = compile_worksheet(ws, include_strongest=False)
    cats = score_categories(ws, problem, max_chain, objective)
    checker = Checker(ws, problem, cats, samples, seed)
    mode = "per-category" if min_quality is None and budget is None else ("min-quality" if budget is None else "budget")
    notes: list[str] = []
    mix = None
    gap = 0.0
    if mode == "per-category":
        picks = _per_category(ws, cats, checker, verify_max)
    else:
        picks, mix, gap, extra = _global(ws, problem, cats, checker, objective, min_quality, budget, floors, verify_max)
        notes += extra
    how = Settings(objective, max_chain, mode, min_quality if budget is None else budget, floors, samples, seed, name)
    return assemble(ws, problem, cats, checker, picks, how, mix, gap, notes)


def _per_category(ws: Worksheet, cats: list[Scored], checker: Checker, verify_max: int) -> list[int | None]:
    """Per category, the best feasible route by the objective whose P95 passes (checked in batches)."""
    order = [best_first(cat, feasible(cat.short, len(cat.cands))) for cat in cats]
    picks: list[int | None] = [int(o[0]) if len(o) else None for o in order]
    need = [c for c, cat in enumerate(cats) if cat.rules.needs_p95 and len(order[c])]
    tried = dict.fromkeys(need, 0)
    done: set[int] = set()
    size = FIRST_BATCH
    while True:
        todo = [c for c in need if c not in done and tried[c] < min(len(order[c]), verify_max)]
        if not todo:
            break
        batches = {c: order[c][tried[c] : min(tried[c] + size, len(order[c]), verify_max)] for c in todo}
        checker.check(batches)
        for c, ix in batches.items():
            tried[c] += len(ix)
            passing = [int(i) for i in ix if checker.passes(c, int(i))]
            if passing:
                picks[c] = passing[0]
                done.add(c)
        size *= 2
    for c in need:
        if c not in done:
            picks[c] = None
    return picks


def _global(
    ws: Worksheet,
    problem: RoutingProblem,
    cats: list[Scored],
    checker: Checker,
    objective: str,
    min_quality: float | None,
    budget: float | None,
    floors: bool,
    verify_max: int,
) -> tuple[list[int | None], Mix | None, float, list[str]]:
    """Global modes: exact choice over per-category frontiers of routes meeting every target (P95 checked)."""
    notes: list[str] = []
    w = problem.tasks.share
    ok = []
    for cat in cats:
        short = {k: v for k, v in cat.short.items() if floors or k != QUALITY}
        ok.append(feasible(short, len(cat.cands)))
    x_of = (lambda cat: cat.key) if budget is None else (lambda cat: cat.scores.cost)
    # check the P95 of every frontier route of a budgeted category; drop failures; repeat until the frontiers hold
    unverified_dropped = False
    while True:
        batches = {}
        for c, cat in enumerate(cats):
            if not cat.rules.needs_p95:
                continue
            ix = np.flatnonzero(ok[c])
            front = ix[fr.pareto(x_of(cat)[ix], cat.scores.quality[ix])]
            seen = np.zeros(len(cat.cands), dtype=bool)
            seen[list(checker.p95[c])] = True
            new = front[~seen[front]]
            room = verify_max - len(checker.p95[c])
            if len(new) > room:
                ok[c][new[max(room, 0) :]] = False  # beyond the check budget: treated as not meeting the budget
                unverified_dropped = True
                new = new[: max(room, 0)]
            if len(new):
                batches[c] = new
        if not batches:
            break
        checker.check(batches)
        for c, ix in batches.items():
            for i in ix:
                if not checker.passes(c, int(i)):
                    ok[c][int(i)] = False
    if unverified_dropped:
        notes.append(
            f"More than {verify_max} frontier routes of a category needed a P95 check; the rest were left out "
            "(raise --verify-max to check them)."
        )
    active = [c for c in range(len(cats)) if w[c] > 0]
    picks: list[int | None] = [None] * len(cats)
    for c in range(len(cats)):  # no traffic: the best route by the objective (it changes no total)
        if w[c] == 0:
            o = best_first(cats[c], ok[c])
            picks[c] = int(o[0]) if len(o) else None
    idx = [np.flatnonzero(ok[c]) for c in active]
    if any(len(i) == 0 for i in idx):
        return picks, None, 0.0, notes
    points = [(x_of(cats[c])[i], cats[c].scores.quality[i]) for c, i in zip(active, idx, strict=True)]
    weights = w[active]
    vol = problem.requests_per_month
    if budget is None:
        choice = fr.cheapest_reaching(points, weights, float(min_quality))
        mix = None
    else:
        choice = fr.best_within(points, weights, budget / vol if vol else np.inf)
        bm = fr.budget_mix(points, weights, budget / vol if vol else np.inf)
        mix = None
        if bm is not None:
            label = lambda k, j: route_of(ws, cats[active[k]], int(idx[k][j])).label
            mix = Mix(
                lam=bm.lam,
                p=bm.p,
                monthly_lo=bm.spend_lo * vol,
                monthly_hi=bm.spend_hi * vol,
                quality_lo=bm.quality_lo,
                quality_hi=bm.quality_hi,
                monthly=bm.spend * vol,
                quality=bm.quality,
                routes=tuple(
                    (cats[active[k]].rules.category, label(k, bm.lo[k]), label(k, bm.hi[k])) for k in bm.mixed
                ),
            )
    if choice is None:
        return picks, mix, 0.0, notes
    for k, c in enumerate(active):
        picks[c] = int(idx[k][choice.pick[k]])
    return picks, mix, choice.gap, notes


def achievable_frontier(ws: Worksheet, max_chain: int = DEFAULT_MAX_CHAIN) -> FrontierView | None:
    """The cost-vs-quality frontier of whole policies over every candidate route (expected values, no Monte
    Carlo; quality thresholds and P95 budgets not applied): what the report's cost/quality chart draws."""
    problem = compile_worksheet(ws, include_strongest=False)
    return frontier_view(problem, score_categories(ws, problem, max_chain, "cost"))
