"""Policies that route a category alike share its Monte Carlo walk (routecalc.engine.distinct), bit for bit; the
walk's counts by runs of sorted keys."""

from __future__ import annotations

import copy
from dataclasses import fields, replace

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import routecalc
from routecalc.chains import ChainTable
from routecalc.engine import mc
from routecalc.engine.distinct import distinct_chains
from tests.test_engine_mc import joint_sheet, rich_sheet
from tests.test_patterns import everything_sheet, latency_everything_sheet


def problem_of(sheet: dict) -> routecalc.RoutingProblem:
    return routecalc.compile_worksheet(routecalc.validate_worksheet(sheet))


def targets(chains: ChainTable) -> np.ndarray:
    return np.isfinite(chains.latency_target_s).any(axis=(1, 2, 3))


def sheet_with(*policies: dict) -> dict:
    s = rich_sheet()
    s["policies"] = list(policies)
    return s


def test_walk_policies_hold_each_distinct_chain_once() -> None:
    # compiling adds all-to-strongest (c everywhere) as a fifth policy.
    # category x: a (p0, p1), a -> b (p2), b (p3), c (strongest): 4 distinct;
    # category y: b (p0, p3), c (p1, strongest), b -> c (p2): 3 distinct
    s = sheet_with(
        {"name": "p0", "kind": "static", "routes": {"x": "a", "y": "b"}},
        {"name": "p1", "kind": "static", "routes": {"x": "a", "y": "c"}},
        {"name": "p2", "kind": "cascade", "routes": {"x": ["a", "b"], "y": ["b", "c"]}},
        {"name": "p3", "kind": "static", "routes": {"x": "b", "y": "b"}},
    )
    ch = problem_of(s).chains
    d = distinct_chains(ch, targets(ch))
    assert d is not None
    assert ch.shape[0] == 5 and d.chains.shape[0] == 4  # the most varied category has 4: 4 walks instead of 5
    x, y = 0, 1
    assert d.owner[0, x] == d.owner[1, x] and len(set(d.owner[1:, x].tolist())) == 4
    assert d.owner[0, y] == d.owner[3, y] and d.owner[1, y] == d.owner[4, y]
    assert len({d.owner[0, y], d.owner[1, y], d.owner[2, y]}) == 3
    assert (d.owner[0] == 0).all()  # walk policies are numbered by first use: the first policy is walk policy 0
    for f in fields(ChainTable):  # each policy's column is, bit for bit, its walk policy's
        if f.name in ("names", "kinds", "backoff_s", "human_cost", "human_latency_s"):
            continue
        a, walked = getattr(ch, f.name), getattr(d.chains, f.name)
        for p in range(5):
            for c in (x, y):
                assert np.array_equal(a[p, c], walked[d.owner[p, c], c], equal_nan=True), (f.name, p, c)


def test_policies_with_other_settings_never_share() -> None:
    same = {"name": "p0", "kind": "cascade", "routes": {"x": ["a", "c"], "y": ["b", "c"]}}
    ch = problem_of(sheet_with(same, same | {"name": "p1"})).chains
    d = distinct_chains(ch, targets(ch))
    assert d is not None and d.chains.shape[0] == 2  # identical policies: one walk (and one for all-to-strongest)
    # a setting of the whole policy: backoff (a worksheet default; another caller may vary it) or human review
    other_backoff = replace(ch, backoff_s=np.array([0.3, 2.0, 0.3]))
    assert distinct_chains(other_backoff, targets(ch)) is None  # nothing to share: walked as they are
    review = {"final_reject": "human_review", "human_review": {"cost": 0.5, "latency_s": 60}}
    ch = problem_of(sheet_with(same, same | {"name": "p1"} | review)).chains
    assert distinct_chains(ch, targets(ch)) is None


def test_step_targets_are_walked_apart() -> None:
    # p1 has a per-step latency target in x only: its y column equals p0's but records per-step latencies
    p0 = {"name": "p0", "kind": "chain", "routes": {"x": ["a", "c"], "y": ["b"]}}
    p1 = {"name": "p1", "kind": "chain", "routes": {"x": [{"model": "a", "latency_target_s": 5}, "c"], "y": ["b"]}}
    p2 = p0 | {"name": "p2"}
    ch = problem_of(sheet_with(p0, p1, p2)).chains
    d = distinct_chains(ch, targets(ch))
    assert d is not None and d.chains.shape[0] == 3  # p0 = p2, p1, all-to-strongest
    assert d.owner[0, 1] == d.owner[2, 1] != d.owner[1, 1]
    assert d.targeted == (int(d.owner[1, 0]),)


def with_variants(sheet: dict) -> dict:
    """Every policy twice more: a copy, and a copy routing its first category like the next policy does."""
    s = copy.deepcopy(sheet)
    base = s["policies"]
    first = s["tasks"][0]["name"]
    variants = []
    for i, p in enumerate(base):
        variants.append(copy.deepcopy(p) | {"name": f"{p['name']}-copy"})
        other = base[(i + 1) % len(base)]
        if p["kind"] == other["kind"] and first in other["routes"] and first in p["routes"]:
            v = copy.deepcopy(p) | {"name": f"{p['name']}-variant"}
            v["routes"][first] = copy.deepcopy(other["routes"][first])
            variants.append(v)
    s["policies"] = base + variants
    return s


def step_target_sheet() -> dict:
    s = rich_sheet()
    s["policies"].append(
        {
            "name": "targeted",
            "kind": "chain",
            "routes": {"x": [{"model": "a", "gate": True, "latency_target_s": 4}, "c"], "y": ["b"]},
        }
    )
    return s


SHEETS = {
    "independent": rich_sheet,
    "joint": joint_sheet,
    "patterns": everything_sheet,
    "deadlines-hedges": latency_everything_sheet,
    "step-targets": step_target_sheet,
}


@pytest.mark.parametrize("name", SHEETS)
@pytest.mark.parametrize("engine", ["numpy", "numba"])
def test_shared_walks_give_the_same_bytes(name: str, engine: str, monkeypatch) -> None:
    from routecalc.engine.compiled import numba_available
    from tests.test_engine_mc import assert_identical

    if engine == "numba" and not numba_available():
        pytest.skip("numba is not installed (pip install routecalc[fast])")
    problem = problem_of(with_variants(SHEETS[name]()))
    d = distinct_chains(problem.chains, targets(problem.chains))
    assert d is not None and d.chains.shape[0] < problem.chains.shape[0]  # some walks are shared
    n = mc.CHUNK + 4_321
    shared = routecalc.simulate(problem, n, np.random.default_rng(8), engine=engine)
    monkeypatch.setattr(mc, "distinct_chains", lambda chains, targeted: None)
    apart = routecalc.simulate(problem, n, np.random.default_rng(8), engine=engine)
    assert_identical(shared, apart)
    np.testing.assert_array_equal(shared.mean.served, apart.mean.served)
    for f in ("overflow", "router_cost", "late", "deadline_waste"):
        np.testing.assert_array_equal(getattr(shared.mean, f), getattr(apart.mean, f), err_msg=f)
    assert shared.step_policies == apart.step_policies
    if apart.step_hist is None:
        assert shared.step_hist is None
    else:
        np.testing.assert_array_equal(shared.step_hist, apart.step_hist)


@given(st.lists(st.tuples(st.integers(0, 6), st.booleans()), max_size=60), st.integers(1, 4))
def test_counting_runs_of_sorted_keys_is_bincount(rows: list[tuple[int, bool]], extra_keys: int) -> None:
    """The walk counts flags per key by runs when requests are sorted by key; empty runs anywhere (first, in
    between, last) count 0, as np.bincount does."""
    from routecalc.engine.numpy_walk import _count_runs, _run_starts

    rows = sorted(rows)
    K = 7 + extra_keys  # keys 7.. never drawn: empty runs at the end
    key = np.array([k for k, _ in rows], dtype=np.int64)
    flags = np.array([f for _, f in rows], dtype=bool)
    counts = np.bincount(key, minlength=K)
    got = _count_runs(flags, counts, _run_starts(counts))
    np.testing.assert_array_equal(got, np.bincount(key[flags], minlength=K))


def test_rows_are_told_apart_exactly_even_when_their_hashes_collide() -> None:
    from routecalc.engine.distinct import _row_weights, _unique_rows

    rng = np.random.default_rng(3)
    rows = rng.integers(-3, 3, size=(400, 6)).astype(np.int64)  # many repeated rows
    first, inverse = _unique_rows([rows[:, :2], rows[:, 2:]])  # in two blocks
    _, want_first, want_inverse = np.unique(rows, axis=0, return_index=True, return_inverse=True)
    assert sorted(first.tolist()) == sorted(want_first.tolist())
    # the same partition of the rows (the numbering of the distinct rows may differ)
    assert np.array_equal(rows[first[inverse]], rows)
    assert len(set(zip(inverse.tolist(), want_inverse.reshape(-1).tolist(), strict=True))) == len(want_first)
    # two rows built to share a hash: r2 - r1 = w1 at column 0 and -w0 at column 1 adds w1 w0 - w0 w1 = 0
    w = _row_weights(6)
    r1 = np.zeros(6, dtype=np.int64)
    r2 = r1.copy()
    r2[0], r2[1] = w[1], -w[0]
    with np.errstate(over="ignore"):
        assert (r1 * w).sum() == (r2 * w).sum()
    first, inverse = _unique_rows([np.stack([r1, r2, r1])])
    assert inverse[0] == inverse[2] != inverse[1] and len(first) == 2
