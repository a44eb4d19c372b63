"""What ``optimize`` found, as the dataclasses the CLI renders: routes with their margins, the policy entry,
nearest misses and binding constraints, totals, the cost-vs-quality frontier and the budget mix."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from routecalc.chains import RoutingProblem, chain_table
from routecalc.decide import frontier as fr
from routecalc.decide.candidates import FAMILIES
from routecalc.decide.constraints import COST, COST_1K, ESCALATION, LATENCY, QUALITY, Rules, feasible
from routecalc.decide.policy import chain_steps, route_label
from routecalc.decide.scored import Scored
from routecalc.decide.verify import Checker
from routecalc.engine.ev import expected_values
from routecalc.format import money, pct
from routecalc.results import jsonable
from routecalc.worksheet import PolicySpec, Worksheet

FRONTIER_POINTS = 12  # frontier points printed (the JSON has up to FRONTIER_JSON)
FRONTIER_JSON = 200


@dataclass(frozen=True)
class Route:
    """One candidate route of one category and its expected values: money per request in the worksheet
    currency, latency in seconds, rates as fractions; ``p95_s`` from Monte Carlo when it was checked."""

    category: str
    family: str
    label: str
    steps: tuple[Any, ...]  # kind: chain steps, as written in the policy
    cost: float
    quality: float
    delivered_bad: float
    failed: float
    latency_mean_s: float
    escalation: float
    fallback: float
    risk: float
    p95_s: float | None = None
    p95_ci_s: tuple[float, float] | None = None


@dataclass(frozen=True)
class Margin:
    """A route against one target: ``ok``, and the margin in words (``+1.20 pp``, ``0.8 s under``)."""

    target: str
    value: str
    margin: str
    ok: bool


@dataclass(frozen=True)
class CategoryPick:
    """What ``optimize`` chose for one category, or why it could not."""

    rules: Rules
    route: Route | None
    margins: tuple[Margin, ...]
    candidates: int  # routes enumerated
    feasible: int  # routes meeting every expected-value target
    verified: int  # routes whose P95 was checked by Monte Carlo
    nearest: Route | None = None  # nearest miss when no route qualifies
    binding: tuple[str, ...] = ()  # which constraints bind, in words


@dataclass(frozen=True)
class FrontierView:
    """Points of the cost-vs-quality frontier of whole policies (one route per category): monthly spend
    (currency per month) and traffic-weighted quality, by rising cost. ``exact``: every point is a policy
    (the exact combined frontier, thinned for display); otherwise the upper envelope of per-category mixes."""

    monthly_cost: np.ndarray
    quality: np.ndarray
    exact: bool
    basis: str


@dataclass(frozen=True)
class Mix:
    """The budget-exact randomised mix (Dekoninck et al.): ``lam`` in quality (fraction of requests) per unit
    of currency per request; the two bracketing policies' monthly spend and quality; ``p`` the share of the
    mixed categories' requests sent to the dearer route."""

    lam: float
    p: float
    monthly_lo: float
    monthly_hi: float
    quality_lo: float
    quality_hi: float
    monthly: float
    quality: float
    routes: tuple[tuple[str, str, str], ...]  # (category, the cheaper route, the dearer route) where they differ


@dataclass(frozen=True)
class Optimization:
    """Everything ``routecalc optimize`` shows."""

    worksheet: str
    currency: str
    requests_per_month: float
    objective: str
    max_chain: int
    mode: str  # per-category | min-quality | budget
    target: float | None  # the traffic-weighted quality floor, or the monthly budget
    floors: bool
    categories: list[CategoryPick]
    policy: dict[str, Any] | None
    totals: dict[str, float] | None
    baseline: tuple[str, float] | None  # (name, monthly cost from the expected-value engine)
    frontier: FrontierView | None
    mix: Mix | None
    gap: float  # global modes: distance to the solver's proven bound (0: optimal)
    samples: int
    seed: int
    hist_rel_error: float
    candidates: int
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.policy is not None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: units in key names (``_s`` seconds, ``monthly_`` per month, money in ``currency``)."""
        f = self.frontier
        return jsonable(
            {
                "worksheet": self.worksheet,
                "currency": self.currency,
                "requests_per_month": self.requests_per_month,
                "objective": self.objective,
                "max_chain": self.max_chain,
                "mode": self.mode,
                "target": self.target,
                "per_category_quality_floors": self.floors,
                "candidates": self.candidates,
                "monte_carlo": {
                    "samples": self.samples,
                    "seed": self.seed,
                    "histogram_relative_error": self.hist_rel_error,
                },
                "policy": self.policy,
                "totals": self.totals,
                "baseline": None
                if self.baseline is None
                else {"name": self.baseline[0], "monthly_cost": self.baseline[1]},
                "global_gap": self.gap,
                "categories": [_category_dict(c) for c in self.categories],
                "frontier": None
                if f is None
                else {
                    "exact": f.exact,
                    "basis": f.basis,
                    "points": [
                        {"monthly_cost": float(x), "quality": float(y)}
                        for x, y in zip(*thin(f.monthly_cost, f.quality, FRONTIER_JSON), strict=True)
                    ],
                },
                "budget_mix": None
                if self.mix is None
                else {
                    "lam": self.mix.lam,
                    "p": self.mix.p,
                    "monthly_cost_low": self.mix.monthly_lo,
                    "monthly_cost_high": self.mix.monthly_hi,
                    "quality_low": self.mix.quality_lo,
                    "quality_high": self.mix.quality_hi,
                    "monthly_cost": self.mix.monthly,
                    "quality": self.mix.quality,
                    "routes": [{"category": c, "cheaper": a, "dearer": b} for c, a, b in self.mix.routes],
                },
                "notes": self.notes,
            }
        )


def _route_dict(r: Route) -> dict[str, Any]:
    """A route in the JSON output: money per request in the document's currency (``_per_request``)."""
    d = dict(r.__dict__)
    d["cost_per_request"] = d.pop("cost")
    d["risk_per_request"] = d.pop("risk")
    return d


def _category_dict(c: CategoryPick) -> dict[str, Any]:
    return {
        "category": c.rules.category,
        "share": c.rules.share,
        "route": None if c.route is None else _route_dict(c.route),
        "margins": [m.__dict__ for m in c.margins],
        "candidates": c.candidates,
        "feasible_by_expected_values": c.feasible,
        "p95_checked": c.verified,
        "nearest_miss": None if c.nearest is None else c.nearest.__dict__,
        "binding": list(c.binding),
        "excluded_models": [{"model": m, "why": why} for m, why in c.rules.excluded],
    }


def route_of(ws: Worksheet, cat: Scored, i: int, p95: tuple[float, float, float] | None = None) -> Route:
    names = tuple(m.name for m in ws.models)
    c, s = cat.cands, cat.scores
    arrays = (c.model[i], c.gated[i], c.on_reject[i], c.on_failure[i])
    return Route(
        category=cat.rules.category,
        family=FAMILIES[int(c.family[i])],
        label=route_label(*arrays, names),
        steps=tuple(chain_steps(*arrays, names)),
        cost=float(s.cost[i]),
        quality=float(s.quality[i]),
        delivered_bad=float(s.delivered_bad[i]),
        failed=float(s.failed[i]),
        latency_mean_s=float(s.latency[i]),
        escalation=float(s.escalation[i]),
        fallback=float(s.fallback[i]),
        risk=float(s.risk[i]),
        p95_s=None if p95 is None else p95[0],
        p95_ci_s=None if p95 is None else (p95[1], p95[2]),
    )


# ---------------------------------------------------------------------------------------------------------
# Result


def n_feasible_hard(cat: Scored, floors: bool) -> int:
    """Routes meeting every expected-value target, the quality threshold only with ``floors``."""
    short = {k: v for k, v in cat.short.items() if floors or k != QUALITY}
    return int(feasible(short, len(cat.cands)).sum())


def _pp(m: float) -> str:
    """A margin in percentage points, with enough digits to show a hair's breadth."""
    v = m * 100
    return f"{v:+.4f} pp" if 0 < abs(v) < 0.005 else f"{v:+.2f} pp"


def margins(rules: Rules, r: Route, currency: str) -> tuple[Margin, ...]:
    out = []
    for key, text in rules.targets(currency):
        if key == QUALITY:
            m = r.quality - rules.threshold
            out.append(Margin(text, pct(r.quality, 2), _pp(m), m >= -1e-12))
        elif key == COST:
            cap = rules.max_cost_per_request
            out.append(Margin(text, money(r.cost, currency), f"{money(cap - r.cost, currency)} under", r.cost <= cap))
        elif key == COST_1K:
            v = r.cost * 1000 / rules.tokens_per_request
            cap = rules.max_cost_per_1k_tokens
            out.append(Margin(text, money(v, currency), f"{money(cap - v, currency)} under", v <= cap))
        elif key == ESCALATION:
            cap = rules.max_escalation
            out.append(Margin(text, pct(r.escalation), _pp(cap - r.escalation), r.escalation <= cap))
        elif key == LATENCY and r.p95_s is not None and rules.budget_s is not None:
            m = rules.budget_s - r.p95_s
            out.append(Margin(text, f"{r.p95_s:.2f} s", f"{m:.2f} s {'under' if m >= 0 else 'over'}", m >= 0))
        elif key == LATENCY:
            out.append(Margin(text, "n/a", "no traffic" if rules.share == 0 else "not checked", True))
    return tuple(out)


def why_none(
    ws: Worksheet, cat: Scored, c: int, checker: Checker, floors: bool
) -> tuple[Route | None, tuple[str, ...]]:
    """Nearest miss and the binding constraints of a category with no route meeting every target."""
    r, n = cat.rules, len(cat.cands)
    if n == 0:
        why = "; ".join(f"{m}: {reason}" for m, reason in r.excluded) or "no model has a pass rate here"
        return None, (f"no model is allowed ({why})",)
    short = {k: v for k, v in cat.short.items() if floors or k != QUALITY}
    worst = np.zeros(n)
    for v in short.values():
        worst = np.maximum(worst, v)
    for i, (p95, _, _) in checker.p95[c].items():
        if r.budget_s is not None and p95 > r.budget_s:
            worst[i] = max(worst[i], (p95 - r.budget_s) / r.budget_s)
    if r.needs_p95:
        never = np.ones(n, dtype=bool)
        never[list(checker.p95[c])] = False
        worst[(worst == 0) & never] = np.inf  # met the expected-value targets, but its P95 was never checked
    i = int(np.argmin(worst))
    nearest = route_of(ws, cat, i, checker.p95[c].get(i))
    s = cat.scores
    out = []
    if QUALITY in short and s.quality.max() < r.threshold - 1e-12:
        j = int(np.argmax(s.quality))
        out.append(
            f"quality ≥ {pct(r.threshold, 2)}: no allowed route reaches it (best {pct(s.quality[j], 2)}, {route_of(ws, cat, j).label})"
        )
    for key, cap, values, unit in (
        (COST, r.max_cost_per_request, s.cost, "/request"),
        (COST_1K, r.max_cost_per_1k_tokens, s.cost * 1000 / r.tokens_per_request, " per 1k tokens"),
    ):
        if key in short and values.min() > cap:
            out.append(
                f"cost cap {money(cap, ws.currency)}{unit}: the cheapest allowed route costs {money(values.min(), ws.currency)}"
            )
    if ESCALATION in short and s.escalation.min() > r.max_escalation:
        out.append(f"escalation ≤ {pct(r.max_escalation)}: every allowed route escalates more")
    ev_ok = feasible(short, n)
    if r.needs_p95 and ev_ok.any():
        seen = np.zeros(n, dtype=bool)
        seen[list(checker.p95[c])] = True
        checked, total = int((ev_ok & seen).sum()), int(ev_ok.sum())
        more = "" if checked == total else f" ({total - checked} more not checked; raise --verify-max)"
        out.append(
            f"P95 ≤ {r.budget_s:g} s: the {checked} best route(s) by the objective that meet every other target exceed it{more}"
        )
    if not out:
        out.append("no single route meets every target together (each is met by some route)")
    return nearest, tuple(out)


@dataclass(frozen=True)
class Settings:
    """What was asked: the objective, longest chain, mode and its target (quality fraction or monthly budget),
    whether per-category quality thresholds hold in global modes, the Monte Carlo run, the policy's name."""

    objective: str
    max_chain: int
    mode: str
    target: float | None
    floors: bool
    samples: int
    seed: int
    name: str


def assemble(
    ws: Worksheet,
    problem: RoutingProblem,
    cats: list[Scored],
    checker: Checker,
    picks: list[int | None],
    how: Settings,
    mix: Mix | None,
    gap: float,
    notes: list[str],
) -> Optimization:
    """The answer: per category the chosen route (or nearest miss), the policy entry, totals, frontier."""
    cur, mode, floors = ws.currency, how.mode, how.floors
    results = []
    for c, (cat, i) in enumerate(zip(cats, picks, strict=True)):
        n_feasible = int(feasible(cat.short, len(cat.cands)).sum())
        if i is None:
            if mode == "per-category" or n_feasible_hard(cat, floors) == 0:
                nearest, binding = why_none(ws, cat, c, checker, floors or mode == "per-category")
            else:
                nearest, binding = None, ("no policy meets the global target (see the note)",)
            results.append(
                CategoryPick(cat.rules, None, (), len(cat.cands), n_feasible, len(checker.p95[c]), nearest, binding)
            )
            continue
        route = route_of(ws, cat, i, checker.p95[c].get(i))
        results.append(
            CategoryPick(
                cat.rules, route, margins(cat.rules, route, cur), len(cat.cands), n_feasible, len(checker.p95[c])
            )
        )
    policy = totals = None
    vol = problem.requests_per_month
    if all(r.route is not None for r in results):
        policy = policy_entry(ws, cats, picks, how)
        w = problem.tasks.share
        tot = lambda key: float(sum(wc * getattr(r.route, key) for wc, r in zip(w, results, strict=True)))
        totals = {
            "cost_per_request": tot("cost"),
            "monthly_cost": tot("cost") * vol,
            "quality": tot("quality"),
            "delivered_bad": tot("delivered_bad"),
            "failed": tot("failed"),
            "latency_mean_s": tot("latency_mean_s"),
            "risk_monthly": tot("risk") * vol,
        }
    elif mode != "per-category":
        notes.insert(0, global_miss(ws, problem, cats, mode, how.target))
    baseline = None
    if ws.baseline is not None:
        ev = expected_values(problem)
        b = problem.chains.names.index(ws.baseline)
        baseline = (ws.baseline, float(ev.cost[b] @ problem.tasks.share * vol))
    if any(r.rules.excluded and any("context window" in why for _, why in r.rules.excluded) for r in results):
        notes.append(
            "Models whose context window is smaller than a category's P95 input tokens are left out there "
            "(until the engines model prompts that overflow a window)."
        )
    if any(r.route is not None and r.route.steps and len(r.route.steps) > 1 for r in results):
        notes.append(
            "Pass rates are independent along a chain unless the worksheet gives outcomes: cascade quality may be optimistic."
        )
    return Optimization(
        worksheet=ws.name,
        currency=cur,
        requests_per_month=vol,
        objective=how.objective,
        max_chain=how.max_chain,
        mode=mode,
        target=how.target,
        floors=floors,
        categories=results,
        policy=policy,
        totals=totals,
        baseline=baseline,
        frontier=frontier_view(problem, cats),
        mix=mix,
        gap=gap,
        samples=how.samples,
        seed=how.seed,
        hist_rel_error=checker.hist_rel_error,
        candidates=sum(len(c.cands) for c in cats),
        notes=notes,
    )


def global_miss(ws: Worksheet, problem: RoutingProblem, cats: list[Scored], mode: str, target: float | None) -> str:
    """Why a global mode found no policy: the target against what the feasible routes can reach."""
    w, vol = problem.tasks.share, problem.requests_per_month
    empty = [cat.rules.category for cat in cats if len(cat.cands) == 0]
    if empty:
        return f"No policy: {', '.join(empty)} has no allowed route."
    if mode == "min-quality":
        best = sum(wc * cat.scores.quality.max() for wc, cat in zip(w, cats, strict=True))
        return f"No policy reaches traffic-weighted quality {pct(target, 2)} under the constraints (at most {pct(best, 2)})."
    cheapest = sum(wc * cat.scores.cost.min() for wc, cat in zip(w, cats, strict=True)) * vol
    return f"No policy fits a budget of {money(target, ws.currency, '/month')} under the constraints (cheapest: {money(cheapest, ws.currency, '/month')})."


def policy_entry(ws: Worksheet, cats: list[Scored], picks: list[int | None], how: Settings) -> dict[str, Any]:
    """The chosen routes as a ``kind: chain`` policy entry, checked to compile to exactly the scored arrays."""
    objective, target = how.objective, how.target
    what = {
        "per-category": f"best route per category by {objective} meeting every target",
        "min-quality": f"least {objective} with traffic-weighted quality ≥ {pct(target or 0, 2)}",
        "budget": f"best traffic-weighted quality within {money(target, ws.currency, '/month')}",
    }[how.mode]
    routes = {cat.rules.category: list(route_of(ws, cat, int(i)).steps) for cat, i in zip(cats, picks, strict=True)}
    policy = {
        "name": how.name,
        "kind": "chain",
        "description": f"routecalc optimize: {what} (routes of up to {how.max_chain} models)",
        "routes": routes,
    }
    spec = PolicySpec.model_validate(policy)
    compiled = chain_table(ws.model_copy(update={"policies": []}), [spec])
    for c, (cat, i) in enumerate(zip(cats, picks, strict=True)):
        L = int(cat.cands.length[i])
        got = (
            compiled.model[0, c, 0, :L],
            compiled.gated[0, c, 0, :L],
            compiled.on_reject[0, c, 0, :L],
            compiled.on_failure[0, c, 0, :L, 0],  # every error type goes the same way in these routes
        )
        want = (cat.cands.model[i, :L], cat.cands.gated[i, :L], cat.cands.on_reject[i, :L], cat.cands.on_failure[i, :L])
        if not all(np.array_equal(a, b) for a, b in zip(got, want, strict=True)):  # pragma: no cover - a bug
            raise AssertionError(f"policy for {cat.rules.category} does not compile to the scored route")
    return policy


def thin(x: np.ndarray, y: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """At most ``n`` points of a frontier, evenly spread in quality, ends kept."""
    if len(x) <= n:
        return x, y
    targets = np.linspace(y[0], y[-1], n)
    ix = np.unique(np.minimum(np.searchsorted(y, targets), len(y) - 1))
    return x[ix], y[ix]


def frontier_view(problem: RoutingProblem, cats: list[Scored]) -> FrontierView | None:
    """Spend vs quality of whole policies over the routes meeting the hard constraints (allowed models, cost
    caps, escalation); quality thresholds and P95 budgets not applied (quality is the axis; P95 is not checked
    here)."""
    w, vol = problem.tasks.share, problem.requests_per_month
    points = []
    for cat in cats:
        hard = {k: v for k, v in cat.short.items() if k != QUALITY}
        ok = np.flatnonzero(feasible(hard, len(cat.cands)))
        if not ok.size:
            return None
        points.append((cat.scores.cost[ok], cat.scores.quality[ok]))
    basis = "every allowed route; cost caps and escalation limits applied, quality thresholds and P95 budgets not"
    combined = fr.combine(points, w)
    if combined is not None:
        x, y = thin(combined.x, combined.y, FRONTIER_JSON)
        return FrontierView(x * vol, y, True, basis)
    h = fr.envelope(points, w)
    return FrontierView(
        h[0] * vol,
        h[1],
        False,
        basis + "; upper envelope of per-category mixes (too many routes for the exact frontier)",
    )
