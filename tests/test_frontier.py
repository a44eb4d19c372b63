"""Global choices over per-category frontiers: exact against brute force, and the budget mix against an LP."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from routecalc.decide import frontier as fr


def random_points(rng: np.random.Generator, sizes: list[int]) -> list[tuple[np.ndarray, np.ndarray]]:
    """Per category, routes with cost in [0.001, 0.02] and quality in [0.5, 1): dearer tends to be better."""
    out = []
    for n in sizes:
        cost = rng.uniform(0.001, 0.02, n)
        quality = np.clip(0.5 + 20 * cost + rng.normal(0, 0.08, n), 0.5, 0.999)
        out.append((cost, quality))
    return out


def brute(points, weights):
    """Every combination of one route per category: totals (x, y) and the picks, the slow obvious way."""
    combos = list(itertools.product(*[range(len(x)) for x, _ in points]))
    x = np.array(
        [sum(w * points[c][0][i] for c, (i, w) in enumerate(zip(combo, weights, strict=True))) for combo in combos]
    )
    y = np.array(
        [sum(w * points[c][1][i] for c, (i, w) in enumerate(zip(combo, weights, strict=True))) for combo in combos]
    )
    return x, y, combos


def test_pareto_by_hand() -> None:
    # (2, .6) is dominated by (2, .7); (3, .7) by (2, .7); of the duplicates (2, .7) the first (index 1) stays
    x = np.array([1.0, 2.0, 2.0, 3.0, 0.5, 4.0, 2.0])
    y = np.array([0.5, 0.7, 0.6, 0.7, 0.4, 0.9, 0.7])
    assert fr.pareto(x, y).tolist() == [4, 0, 1, 5]


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 20), st.integers(0, 20)), min_size=1, max_size=30))
def test_pareto_is_the_non_dominated_set(pts: list[tuple[int, int]]) -> None:
    x = np.array([p[0] for p in pts], dtype=float)
    y = np.array([p[1] for p in pts], dtype=float)
    got = set(fr.pareto(x, y).tolist())
    for i in range(len(pts)):
        dominated = any((x[j] <= x[i] and y[j] >= y[i]) and (x[j] < x[i] or y[j] > y[i]) for j in range(len(pts)))
        duplicate_of_earlier = any(x[j] == x[i] and y[j] == y[i] for j in range(i))
        assert (i in got) == (not dominated and not duplicate_of_earlier)


@pytest.mark.parametrize("seed", range(6))
def test_combined_frontier_equals_brute_force(seed: int) -> None:
    rng = np.random.default_rng(seed)
    points = random_points(rng, [5, 4, 6])
    w = rng.dirichlet(np.ones(3))
    comb = fr.combine(points, w)
    bx, by, _ = brute(points, w)
    keep = fr.pareto(bx, by)
    assert np.allclose(comb.x, bx[keep], rtol=1e-12) and np.allclose(comb.y, by[keep], rtol=1e-12)
    for k in range(len(comb.x)):  # every point is the policy its picks say
        pick = comb.pick[k]
        assert comb.x[k] == pytest.approx(sum(w[c] * points[c][0][i] for c, i in enumerate(pick)), rel=1e-12)


@pytest.mark.parametrize("solver", ["frontier", "milp"])
@pytest.mark.parametrize("seed", range(8))
def test_global_choices_equal_brute_force(seed: int, solver: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Cheapest policy reaching a traffic-weighted quality, best quality within a budget: the exact combined
    frontier, and the MIP used when that frontier would be too big (forced here), both equal brute force."""
    if solver == "milp":
        monkeypatch.setattr(fr, "MAX_PAIRS", 0)
    rng = np.random.default_rng(100 + seed)
    points = random_points(rng, [int(n) for n in rng.integers(2, 7, 3)])
    w = rng.dirichlet(np.ones(3))
    bx, by, _ = brute(points, w)
    for target in np.quantile(by, [0.1, 0.5, 0.9]):
        got = fr.cheapest_reaching(points, w, float(target))
        want = bx[by >= target].min()
        assert got.y >= target - 1e-12
        assert got.x == pytest.approx(want, rel=1e-7 if solver == "milp" else 1e-12)
    for budget in np.quantile(bx, [0.1, 0.5, 0.9]):
        got = fr.best_within(points, w, float(budget))
        want = by[bx <= budget].max()
        assert got.x <= budget * (1 + 1e-12)
        assert got.y == pytest.approx(want, rel=1e-7 if solver == "milp" else 1e-12)
    assert fr.cheapest_reaching(points, w, float(by.max()) + 1e-6) is None  # out of reach
    assert fr.best_within(points, w, float(bx.min()) * 0.99) is None


@pytest.mark.parametrize("seed", range(6))
def test_budget_mix_is_the_linear_programme_optimum(seed: int) -> None:
    """Dekoninck et al.'s mix spends exactly the budget and reaches the LP relaxation's optimum, which is at
    least the best single policy's quality."""
    from scipy.optimize import linprog

    rng = np.random.default_rng(200 + seed)
    points = random_points(rng, [4, 6, 5])
    w = rng.dirichlet(np.ones(3))
    bx, by, _ = brute(points, w)
    budget = float(np.quantile(bx, 0.4))
    mix = fr.budget_mix(points, w, budget)
    cost = np.concatenate([w[c] * x for c, (x, _) in enumerate(points)])
    quality = np.concatenate([w[c] * y for c, (_, y) in enumerate(points)])
    cat = np.concatenate([np.full(len(x), c) for c, (x, _) in enumerate(points)])
    one = (cat[None, :] == np.arange(3)[:, None]).astype(float)
    lp = linprog(-quality, A_ub=cost[None, :], b_ub=[budget], A_eq=one, b_eq=np.ones(3), bounds=(0, 1))
    assert mix.spend == pytest.approx(budget, rel=1e-12)
    assert mix.quality == pytest.approx(-lp.fun, rel=1e-9)
    assert mix.quality >= by[bx <= budget].max() - 1e-12
    assert 0 <= mix.p <= 1 and mix.mixed  # the budget binds here: some category tosses the coin
    # lambda is the trade-off at the margin: the two bracketing policies differ by lambda in quality per spend
    assert (mix.quality_hi - mix.quality_lo) == pytest.approx(mix.lam * (mix.spend_hi - mix.spend_lo), rel=1e-9)


def test_budget_mix_edges() -> None:
    points = [(np.array([1.0, 2.0]), np.array([0.5, 0.9]))]
    w = np.array([1.0])
    assert fr.budget_mix(points, w, 0.5) is None  # below the cheapest route
    rich = fr.budget_mix(points, w, 10.0)  # budget to spare: the best route, lambda = 0, no coin
    assert (rich.lam, rich.p, rich.lo, rich.hi, rich.quality) == (0.0, 0.0, (1,), (1,), 0.9)
    half = fr.budget_mix(points, w, 1.5)  # halfway: p = 0.5, quality 0.7, lambda = 0.4 / 1
    assert (half.p, half.lo, half.hi) == (0.5, (0,), (1,))
    assert half.quality == pytest.approx(0.7) and half.lam == pytest.approx(0.4)
