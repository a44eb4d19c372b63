"""Global choices over per-category frontiers: exact cheapest-for-quality and best-within-budget, the combined
frontier, and the budget-exact randomised mix.

A policy picks one route per category, so its traffic-weighted spend and quality are sums over categories of
``w_c x_c`` and ``w_c y_c``. "Cheapest policy whose traffic-weighted quality reaches q" and "best quality within
a budget" are multiple-choice knapsack problems. Each category first keeps only its Pareto frontier (a
dominated route is never needed); then:

* **Combined frontier** (exact): category by category, every kept partial sum is extended by every frontier
  point of the next category and the sums are reduced to their Pareto set again. That is exact because a
  dominated partial sum stays dominated whatever the remaining categories add, and it answers every global
  question by look-up. It can grow large when categories have hundreds of near-equal routes (fallback variants
  differ by a provider's failure rate squared); past ``MAX_PAIRS`` sums per category routecalc stops building it.
* **Mixed-integer programme** (when the combined frontier is too large): binary variable per (category, route),
  one route per category, the budget or quality constraint, solved by HiGHS (``scipy.optimize.milp``) to a
  relative MIP gap of 0 with the objective scaled to order 1. HiGHS works to feasibility tolerances of about
  1e-7, so its answer is checked in double precision (and the target tightened and re-solved if it falls short
  by a rounding); the bound HiGHS proves is reported as ``Choice.gap``.

The randomised mix (Dekoninck et al., "A Unified Approach to Routing and Cascading for LLMs", arXiv 2410.10347,
routing as a linear programme): maximise ``quality - lambda x cost`` in every category independently, with
``lambda`` set so that the expected spend meets the budget. At that ``lambda`` some category is indifferent
between two routes; the cheaper choice (``S_lo``) spends at most the budget, the dearer (``S_hi``) more, and
sending a share ``p`` of those requests to ``S_hi`` spends exactly the budget. That is the relaxation's optimum:
the best expected quality any per-category mix of routes reaches at that spend (tests check it against
``scipy.optimize.linprog``), at least as good as the best single policy.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np

TOL = 1e-12
MAX_PAIRS = 1_000_000  # partial sums x frontier points tried per category before switching to the MIP


def pareto(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Indices of the points not dominated when ``x`` is minimised and ``y`` maximised, by rising ``x``.

    Of points with equal ``(x, y)`` the first (lowest index) is kept; of equal ``x`` only the best ``y``.
    """
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    if x.size == 0:
        return np.zeros(0, dtype=np.int64)
    order = np.lexsort((np.arange(x.size), -y, x))
    ys = y[order]
    best_before = np.concatenate([[-np.inf], np.maximum.accumulate(ys)[:-1]])
    return order[ys > best_before]


def upper_hull(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Indices of the points on the upper-left concave hull (the routes some ``lambda >= 0`` makes optimal for
    ``max y - lambda x``), by rising ``x``; slopes between them strictly decrease."""
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    hull: list[int] = []
    for i in pareto(x, y):
        while len(hull) >= 2:
            a, b = hull[-2], hull[-1]
            if (y[b] - y[a]) * (x[i] - x[a]) <= (y[i] - y[a]) * (x[b] - x[a]):  # b on or below the chord a-i
                hull.pop()
            else:
                break
        hull.append(int(i))
    return np.array(hull, dtype=np.int64)


Points = list[tuple[np.ndarray, np.ndarray]]


@dataclass(frozen=True, eq=False)
class _Hulls:
    """Weighted points ``X[c], Y[c]`` and their hull edges, sorted best quality-per-cost first."""

    X: list[np.ndarray]
    Y: list[np.ndarray]
    hulls: list[np.ndarray]
    slope: np.ndarray  # (E,) dy/dx of each edge, falling
    edge_cat: np.ndarray  # (E,)
    edge_k: np.ndarray  # (E,) edge from hull point k to k + 1
    dx: np.ndarray
    dy: np.ndarray
    x0: float  # every category at its cheapest hull point
    y0: float


def _hulls(points: Points, weights: np.ndarray) -> _Hulls:
    X = [np.asarray(x, dtype=float) * w for (x, _), w in zip(points, weights, strict=True)]
    Y = [np.asarray(y, dtype=float) * w for (_, y), w in zip(points, weights, strict=True)]
    hulls = [upper_hull(x, y) for x, y in zip(X, Y, strict=True)]
    cat, k, dx, dy = [], [], [], []
    for c, h in enumerate(hulls):
        cat.append(np.full(max(len(h) - 1, 0), c))
        k.append(np.arange(max(len(h) - 1, 0)))
        dx.append(np.diff(X[c][h]))
        dy.append(np.diff(Y[c][h]))
    cat_a, k_a, dx_a, dy_a = (np.concatenate(a) if a else np.zeros(0) for a in (cat, k, dx, dy))
    slope = dy_a / np.where(dx_a > 0, dx_a, np.inf)
    order = np.lexsort((k_a, cat_a, -slope))
    return _Hulls(
        X,
        Y,
        hulls,
        slope[order],
        cat_a[order].astype(np.int64),
        k_a[order].astype(np.int64),
        dx_a[order],
        dy_a[order],
        float(sum(X[c][h[0]] for c, h in enumerate(hulls))),
        float(sum(Y[c][h[0]] for c, h in enumerate(hulls))),
    )


@dataclass(frozen=True)
class BudgetMix:
    """The budget-exact randomised mix: ``lam`` (traffic-weighted quality per unit of spend per request), the
    bracketing strategies ``lo`` / ``hi`` (per category, an index into that category's points), their spend and
    quality (traffic-weighted, per request), and ``p``: the share of requests sent to ``hi``'s route in the
    categories where the two differ."""

    lam: float
    lo: tuple[int, ...]
    hi: tuple[int, ...]
    spend_lo: float
    spend_hi: float
    quality_lo: float
    quality_hi: float
    p: float

    @property
    def spend(self) -> float:
        return self.spend_lo + self.p * (self.spend_hi - self.spend_lo)

    @property
    def quality(self) -> float:
        return self.quality_lo + self.p * (self.quality_hi - self.quality_lo)

    @property
    def mixed(self) -> tuple[int, ...]:
        """Categories where ``lo`` and ``hi`` differ (where the coin is tossed)."""
        return tuple(c for c, (a, b) in enumerate(zip(self.lo, self.hi, strict=True)) if a != b)


def _walk(h: _Hulls, stop) -> tuple[list[int], list[int], float, float, float, float, float, bool]:
    """Move along hull edges, best first, a group of equal slopes at a time, until ``stop(x, y, dx, dy)``.

    Returns (positions before the stopping group, after it, x, y before, x, y after, its slope, stopped)."""
    at = [0] * len(h.hulls)
    x, y = h.x0, h.y0
    i, E = 0, len(h.slope)
    while i < E:
        j = i
        while j < E and h.slope[j] == h.slope[i]:
            j += 1
        gdx, gdy = float(h.dx[i:j].sum()), float(h.dy[i:j].sum())
        after = list(at)
        for e in range(i, j):
            after[h.edge_cat[e]] = int(h.edge_k[e]) + 1
        if stop(x, y, gdx, gdy):
            return at, after, x, y, x + gdx, y + gdy, float(h.slope[i]), True
        at, x, y = after, x + gdx, y + gdy
        i = j
    return at, at, x, y, x, y, 0.0, False


def budget_mix(points: Points, weights: np.ndarray, budget: float) -> BudgetMix | None:
    """Maximise ``sum_c w_c y_c`` subject to ``sum_c w_c x_c <= budget`` over per-category mixtures of routes.

    ``x`` is spend per request, ``budget`` per request. Lowering ``lambda`` from infinity moves categories along
    their concave hulls, one edge at a time in order of falling slope; ``lambda`` is the slope of the edge whose
    move crosses the budget (edges of equal slope move together: ``hi`` takes all, ``lo`` none). None when even
    the cheapest routes spend more than ``budget``; with budget to spare at ``lambda = 0``, the mix is the
    best-quality hull point everywhere and ``p = 0``.
    """
    h = _hulls(points, weights)
    if any(len(x) == 0 for x in h.hulls) or h.x0 > budget + _slack(budget):
        return None
    lo, hi, x_lo, y_lo, x_hi, y_hi, lam, crossed = _walk(h, lambda x, y, dx, dy: x + dx > budget + _slack(budget))
    ix = lambda at: tuple(int(h.hulls[c][at[c]]) for c in range(len(at)))
    if not crossed:
        return BudgetMix(0.0, ix(lo), ix(lo), x_lo, x_lo, y_lo, y_lo, 0.0)
    p = (budget - x_lo) / (x_hi - x_lo)
    return BudgetMix(lam, ix(lo), ix(hi), x_lo, x_hi, y_lo, y_hi, p)


def envelope(points: Points, weights: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The upper envelope of per-category mixes: totals ``(x, y)`` at every vertex of the relaxation's curve,
    from every category's cheapest hull point to every category's best one (what randomised policies reach)."""
    h = _hulls(points, weights)
    x = h.x0 + np.concatenate([[0.0], np.cumsum(h.dx)])
    y = h.y0 + np.concatenate([[0.0], np.cumsum(h.dy)])
    return x, y


@dataclass(frozen=True, eq=False)
class Combined:
    """The exact combined frontier: totals ``x``, ``y`` ``(F,)`` by rising ``x``, and ``pick`` ``(F, C)``: for each
    point, the index of the route chosen in each category (into that category's point list)."""

    x: np.ndarray
    y: np.ndarray
    pick: np.ndarray

    def cheapest_reaching(self, y_min: float) -> Choice | None:
        ok = np.flatnonzero(self.y >= y_min - _slack(y_min))
        return self._choice(int(ok[0])) if ok.size else None

    def best_within(self, x_max: float) -> Choice | None:
        ok = np.flatnonzero(self.x <= x_max + _slack(x_max))
        return self._choice(int(ok[-1])) if ok.size else None

    def _choice(self, i: int) -> Choice:
        return Choice(tuple(int(v) for v in self.pick[i]), float(self.x[i]), float(self.y[i]))


@dataclass(frozen=True)
class Choice:
    """A global choice: per category, the index of its chosen point; the traffic-weighted totals ``x``, ``y``;
    ``gap``: the distance to the best bound the solver proved, in the units of what is optimised (0: optimal)."""

    pick: tuple[int, ...]
    x: float
    y: float
    gap: float = 0.0


def _slack(v: float) -> float:
    return abs(v) * TOL + 1e-18


def combine(points: Points, weights: np.ndarray, max_pairs: int | None = None) -> Combined | None:
    """Exact combined frontier of per-category point sets ``(x_c, y_c)`` weighted by ``weights`` ``(C,)``; None
    if a category has no point or extending the partial frontier would take more than ``max_pairs`` sums."""
    max_pairs = MAX_PAIRS if max_pairs is None else max_pairs
    C = len(points)
    xs, ys = np.zeros(1), np.zeros(1)
    parents: list[np.ndarray] = []
    choices: list[np.ndarray] = []
    for c, (x, y) in enumerate(points):
        own = pareto(x, y)
        if own.size == 0 or xs.size * own.size > max_pairs:
            return None
        sx = (xs[:, None] + weights[c] * np.asarray(x, dtype=float)[own][None, :]).ravel()
        sy = (ys[:, None] + weights[c] * np.asarray(y, dtype=float)[own][None, :]).ravel()
        keep = pareto(sx, sy)
        parents.append(keep // own.size)
        choices.append(own[keep % own.size])
        xs, ys = sx[keep], sy[keep]
    pick = np.zeros((len(xs), C), dtype=np.int64)
    at = np.arange(len(xs))
    for c in range(C - 1, -1, -1):
        pick[:, c] = choices[c][at]
        at = parents[c][at]
    return Combined(xs, ys, pick)


def cheapest_reaching(
    points: Points, weights: np.ndarray, y_min: float, combined: Combined | None = None
) -> Choice | None:
    """One point per category minimising ``sum_c w_c x_c`` subject to ``sum_c w_c y_c >= y_min``; None when no
    choice reaches ``y_min``. Uses ``combined`` (or builds it) when it fits, else the MIP (module docstring)."""
    combined = combined if combined is not None else combine(points, weights)
    if combined is not None:
        return combined.cheapest_reaching(y_min)
    return _milp(points, weights, "x", y_min)


def best_within(points: Points, weights: np.ndarray, x_max: float, combined: Combined | None = None) -> Choice | None:
    """One point per category maximising ``sum_c w_c y_c`` subject to ``sum_c w_c x_c <= x_max``; None when even
    the cheapest points exceed ``x_max``. Same method as :func:`cheapest_reaching`."""
    combined = combined if combined is not None else combine(points, weights)
    if combined is not None:
        return combined.best_within(x_max)
    return _milp(points, weights, "y", x_max)


def _milp(points: Points, weights: np.ndarray, goal: str, bound: float) -> Choice | None:
    """Solve over the per-category frontiers with HiGHS: minimise total ``x`` with total ``y >= bound``
    (``goal="x"``), or maximise total ``y`` with total ``x <= bound`` (``goal="y"``)."""
    from scipy.optimize import Bounds, LinearConstraint, milp
    from scipy.sparse import csr_matrix

    fronts = [pareto(x, y) for x, y in points]
    if any(f.size == 0 for f in fronts):
        return None
    X = np.concatenate(
        [w * np.asarray(x, dtype=float)[f] for (x, _), w, f in zip(points, weights, fronts, strict=True)]
    )
    Y = np.concatenate(
        [w * np.asarray(y, dtype=float)[f] for (_, y), w, f in zip(points, weights, fronts, strict=True)]
    )
    cat = np.concatenate([np.full(f.size, c) for c, f in enumerate(fronts)])
    N, C = X.size, len(points)
    one = LinearConstraint(csr_matrix((np.ones(N), (cat, np.arange(N))), shape=(C, N)), 1, 1)
    sx = float(np.abs(X).max()) or 1.0
    sy = float(np.abs(Y).max()) or 1.0
    target = bound
    for _ in range(4):
        if goal == "x":
            c_obj, row, lo, hi, scale = X / sx, Y / sy, target / sy, np.inf, sx
        else:
            c_obj, row, lo, hi, scale = -Y / sy, X / sx, -np.inf, target / sx, sy
        with _quiet():
            res = milp(
                c_obj,
                constraints=[one, LinearConstraint(csr_matrix(row[None, :]), lo, hi)],
                integrality=np.ones(N),
                bounds=Bounds(0, 1),
                options={"mip_rel_gap": 0.0, "time_limit": 120.0},
            )
        if res.x is None:
            return None
        chosen = np.flatnonzero(res.x > 0.5)
        tx, ty = float(X[chosen].sum()), float(Y[chosen].sum())
        short = (bound - ty) if goal == "x" else (tx - bound)
        if short <= _slack(bound):
            local = [int(np.flatnonzero(chosen_c)[0]) for _, chosen_c in _split(res.x > 0.5, cat, C)]
            local, tx, ty = _polish(X, Y, cat, fronts, local, goal, bound)
            pick = tuple(int(fronts[c][i]) for c, i in enumerate(local))
            proven = abs(float(res.fun) - float(getattr(res, "mip_dual_bound", res.fun))) * scale
            return Choice(pick, tx, ty, proven)
        target = target + short + _slack(bound) if goal == "x" else target - short - _slack(bound)
    return None


def _split(mask: np.ndarray, cat: np.ndarray, C: int):
    for c in range(C):
        yield c, mask[cat == c]


def _polish(
    X: np.ndarray, Y: np.ndarray, cat: np.ndarray, fronts: list[np.ndarray], local: list[int], goal: str, bound: float
) -> tuple[list[int], float, float]:
    """Single-category swaps that improve the solver's answer in double precision while keeping the constraint
    exactly (HiGHS decides to its tolerances, about 1e-7). ``local[c]``: index into category ``c``'s frontier."""
    starts = np.concatenate([[0], np.cumsum([f.size for f in fronts])])
    xs = [X[starts[c] : starts[c + 1]] for c in range(len(fronts))]
    ys = [Y[starts[c] : starts[c + 1]] for c in range(len(fronts))]
    tx = float(sum(xs[c][i] for c, i in enumerate(local)))
    ty = float(sum(ys[c][i] for c, i in enumerate(local)))
    for _ in range(10 * len(local)):
        best = None
        for c, i in enumerate(local):
            nx, ny = tx - xs[c][i] + xs[c], ty - ys[c][i] + ys[c]
            if goal == "x":
                ok = np.flatnonzero((ny >= bound - _slack(bound)) & ((nx < tx) | ((nx == tx) & (ny > ty))))
                key = lambda j, nx=nx, ny=ny: (nx[j], -ny[j])
            else:
                ok = np.flatnonzero((nx <= bound + _slack(bound)) & ((ny > ty) | ((ny == ty) & (nx < tx))))
                key = lambda j, nx=nx, ny=ny: (-ny[j], nx[j])
            if ok.size:
                j = int(min(ok, key=key))
                if best is None or key(j) < best[0]:
                    best = (key(j), c, j, float(nx[j]), float(ny[j]))
        if best is None:
            break
        _, c, j, tx, ty = best
        local[c] = j
    return local, tx, ty


@contextmanager
def _quiet() -> Iterator[None]:
    """Silence the solver's C++ library, which may print to the process's stdout (it would corrupt JSON output)."""
    import os
    import sys

    sys.stdout.flush()
    saved = os.dup(1)
    try:
        with open(os.devnull, "wb") as null:
            os.dup2(null.fileno(), 1)
            yield
    finally:
        os.dup2(saved, 1)
        os.close(saved)
