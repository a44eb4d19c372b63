"""Monte Carlo engine: agrees with the expected-value engine within 4 sigma, for every policy kind."""

from __future__ import annotations

import numpy as np
import pytest

import routecalc
from routecalc.engine.histogram import HIST_REL_ERROR, hist_quantiles
from routecalc.engine.mc import CHUNK
from tests.helpers import fixed_model

SAMPLES = 200_000
SEED = 20261125


def rich_sheet() -> dict:
    """Two categories, lognormal tokens and latency, failures with retries and backoff, gates with costs."""
    lognormal = {"ttft_s": {"p50": 0.4, "p95": 1.5}, "tpot_s": {"p50": 0.01, "p95": 0.02}}
    return {
        "name": "mc vs ev",
        "volume": {"requests_per_day": 1000},
        "defaults": {"retries": 1, "backoff_s": 0.3, "bill_failed_input": True},
        "models": [
            fixed_model("a", 0.5, 1.5, failure_rate=0.15, timeout_share=0.4, timeout_s=8, price_cache=0.1)
            | {"latency": lognormal},
            fixed_model("b", 3.0, 15.0, failure_rate=0.05, timeout_share=1.0, timeout_s=20)
            | {"latency": {"e2e_s": {"p50": 3.0, "p95": 9.0}}, "output_ratio": 1.3},
            fixed_model("c", 10.0, 30.0, ttft=1.2, tpot=0.03, failure_rate=0.02),
        ],
        "tasks": [
            {
                "name": "x",
                "traffic_share": 0.7,
                "tokens_in": {"p50": 800, "p95": 3000},
                "tokens_out": {"p50": 200, "p95": 600},
                "quality_threshold": 0.9,
                "latency_budget_s": 10,
                "pass_rates": {"a": 0.7, "b": 0.85, "c": 0.95},
                "validator": {"catch": 0.8, "false_reject": 0.1, "cost_per_call": 0.0005, "latency_s": 0.3},
                "cached_share": 0.5,
                "cost_bad_answer": 1.0,
            },
            {
                "name": "y",
                "traffic_share": 0.3,
                "tokens_in": 5000,
                "tokens_out": {"p50": 500, "p95": 1500},
                "quality_threshold": 0.8,
                "pass_rates": {"a": 0.5, "b": 0.8, "c": 0.9},
                "validator": {"catch": 0.6, "false_reject": 0.05, "cost_per_1m_tokens": 1.0},
                "cost_failed": 2.0,
            },
        ],
        "policies": [
            {"name": "static", "kind": "static", "routes": {"x": "a", "y": "b"}},
            {"name": "cascade", "kind": "cascade", "routes": {"x": ["a", "b", "c"], "y": ["a", "c"]}},
            {"name": "fallback", "kind": "fallback", "retries": 2, "routes": {"x": ["a", "b"], "y": ["b", "a", "c"]}},
            {
                "name": "cascade-human",
                "kind": "cascade",
                "final_reject": "human_review",
                "human_review": {"cost": 0.5, "latency_s": 120},
                "routes": {"x": ["a", "c"], "y": ["b"]},
            },
            {
                "name": "chain",
                "kind": "chain",
                "routes": {
                    "x": [
                        {"model": "a", "gate": True, "on_reject": 2, "on_failure": 1},
                        {"model": "b", "gate": True, "on_reject": 2},
                        {"model": "c", "gate": True, "on_reject": "deliver"},
                    ],
                    "y": [{"model": "b", "on_failure": "fail", "retries": 0}],
                },
            },
        ],
    }


@pytest.fixture(scope="module")
def engines() -> tuple[routecalc.RoutingProblem, routecalc.Metrics, routecalc.MonteCarlo]:
    problem = routecalc.compile_worksheet(routecalc.validate_worksheet(rich_sheet()))
    return (
        problem,
        routecalc.expected_values(problem),
        routecalc.simulate(problem, SAMPLES, np.random.default_rng(SEED)),
    )


RATES = ["quality", "delivered_bad", "failed", "human", "escalation", "fallback"]


@pytest.mark.parametrize("policy", ["static", "cascade", "fallback", "cascade-human", "chain", "all-to-strongest"])
@pytest.mark.parametrize("metric", ["cost", "latency", *RATES])
def test_mc_agrees_with_ev_within_4_sigma(engines, policy: str, metric: str) -> None:
    problem, ev, mc = engines
    p = problem.chains.names.index(policy)
    n = mc.n
    expected = getattr(ev, metric)[p]
    got = getattr(mc.mean, metric)[p]
    if metric == "cost":
        sigma = mc.cost_sd[p] / np.sqrt(n)
    elif metric == "latency":
        sigma = mc.latency_sd[p] / np.sqrt(n)
    else:
        sigma = np.sqrt(expected * (1 - expected) / n)
    assert np.all(np.abs(got - expected) <= 4 * sigma + 1e-12), (got, expected, sigma)


@pytest.mark.parametrize("policy", ["static", "cascade", "chain"])
def test_mc_model_shares_agree_with_ev(engines, policy: str) -> None:
    problem, ev, mc = engines
    p = problem.chains.names.index(policy)
    expected = ev.answered[p]
    sigma = np.sqrt(expected * (1 - expected) / mc.n[:, None])
    assert np.all(np.abs(mc.mean.answered[p] - expected) <= 4 * sigma + 1e-12)
    expected_cost = ev.token_cost[p]
    assert np.allclose(mc.mean.token_cost[p], expected_cost, rtol=0.05, atol=1e-7)


def test_same_seed_same_numbers_across_chunks() -> None:
    problem = routecalc.compile_worksheet(routecalc.validate_worksheet(rich_sheet()))
    n = CHUNK + 5_000  # two chunks, the second partial
    a = routecalc.simulate(problem, n, np.random.default_rng(1))
    b = routecalc.simulate(problem, n, np.random.default_rng(1))
    c = routecalc.simulate(problem, n, np.random.default_rng(2))
    assert a.n.sum() == n
    np.testing.assert_array_equal(a.mean.cost, b.mean.cost)
    np.testing.assert_array_equal(a.hist, b.hist)
    assert not np.array_equal(a.mean.cost, c.mean.cost)


def test_percentiles_of_a_lognormal_latency() -> None:
    """One model with end-to-end latency p50 2 s / p95 6 s and no failures: MC percentiles recover them."""
    sheet = rich_sheet()
    sheet["models"] = [fixed_model("e", 1, 1) | {"latency": {"e2e_s": {"p50": 2.0, "p95": 6.0}}}]
    sheet["tasks"] = [sheet["tasks"][1] | {"traffic_share": 1.0, "name": "only", "pass_rates": {"e": 0.9}}]
    sheet["policies"] = [{"name": "s", "kind": "static", "routes": {"only": "e"}}]
    problem = routecalc.compile_worksheet(routecalc.validate_worksheet(sheet))
    mc = routecalc.simulate(problem, 400_000, np.random.default_rng(3))
    p50, p95 = hist_quantiles(mc.hist[0, 0], [0.5, 0.95])
    # histogram resolution is ~0.6 %; sampling error of a quantile with n = 400k is ~0.3 % here
    assert p50 == pytest.approx(2.0, rel=HIST_REL_ERROR + 0.01)
    assert p95 == pytest.approx(6.0, rel=HIST_REL_ERROR + 0.02)


def test_hist_quantiles_on_a_hand_made_histogram() -> None:
    from routecalc.engine.histogram import BINS_PER_DECADE, LAT_MIN_S, histogram_edges

    edges = histogram_edges()
    hist = np.zeros(edges.size - 1)
    one_second_bin = 3 * BINS_PER_DECADE  # 1e-3 * 10^(600/200) = 1 s
    hist[one_second_bin] = 10
    q = hist_quantiles(hist, [0.0, 0.5, 1.0])
    # all mass in [1 s, 1.0116 s): the median sits halfway in log space, 1 s * 10^(0.5/200)
    assert q[1] == pytest.approx(LAT_MIN_S * 10 ** ((one_second_bin + 0.5) / BINS_PER_DECADE))
    assert q[0] == pytest.approx(1.0) and q[2] == pytest.approx(10 ** (1 / BINS_PER_DECADE))
    assert np.isnan(hist_quantiles(np.zeros(5), [0.5])[0])


@pytest.mark.parametrize("bins", [400, 200, 100, 25, 10])
def test_latency_bins_are_defined_by_the_edges(bins: int) -> None:
    """A latency's bin is the b with edges[b] <= latency < edges[b + 1] (searchsorted is the ground truth), on the
    edges themselves, one ulp either side of them, anywhere at random, and outside the range (end bins)."""
    from routecalc.engine.histogram import histogram_edges, latency_bins

    edges = histogram_edges(bins)
    B = edges.size - 1
    rng = np.random.default_rng(bins)
    values = np.concatenate(
        [
            edges,
            np.nextafter(edges, 0),
            np.nextafter(edges, np.inf),
            10 ** rng.uniform(-4, 6, 100_000),
            [0.0, -1.0, 1e-300, 1e300, np.inf],
        ]
    )
    truth = np.clip(np.searchsorted(edges[1:-1], values, side="right"), 0, B - 1)
    np.testing.assert_array_equal(latency_bins(values, bins), truth)
    assert latency_bins(np.array([np.nan]), bins)[0] == 0


# ---------------------------------------------------------------------------------------------------------
# Joint outcomes: a table over three models on x, latent difficulty on y


def joint_sheet() -> dict:
    sheet = rich_sheet()
    x, y = sheet["tasks"]
    del x["pass_rates"]  # the table defines them: a 0.7, b 0.85, c 0.95 (out of 100)
    x["outcomes"] = {
        "models": ["a", "b", "c"],
        "patterns": [
            {"passed": ["a", "b", "c"], "count": 66},
            {"passed": ["a", "c"], "count": 3},
            {"passed": ["a", "b"], "count": 1},
            {"passed": ["b", "c"], "count": 16},
            {"passed": ["b"], "count": 2},
            {"passed": ["c"], "count": 10},
            {"passed": [], "count": 2},
        ],
    }
    y["outcomes"] = {"correlation": 0.6}
    return sheet


@pytest.fixture(scope="module")
def joint_engines() -> tuple[routecalc.RoutingProblem, routecalc.Metrics, routecalc.MonteCarlo]:
    problem = routecalc.compile_worksheet(routecalc.validate_worksheet(joint_sheet()))
    return (
        problem,
        routecalc.expected_values(problem),
        routecalc.simulate(problem, SAMPLES, np.random.default_rng(SEED)),
    )


def test_joint_sheet_marginals() -> None:
    ws = routecalc.validate_worksheet(joint_sheet())
    assert ws.tasks[0].rates == pytest.approx({"a": 0.70, "b": 0.85, "c": 0.95})


@pytest.mark.parametrize("policy", ["static", "cascade", "fallback", "cascade-human", "chain"])
@pytest.mark.parametrize("metric", ["cost", "latency", *RATES])
def test_mc_agrees_with_ev_under_joint_outcomes(joint_engines, policy: str, metric: str) -> None:
    test_mc_agrees_with_ev_within_4_sigma(joint_engines, policy, metric)


# ---------------------------------------------------------------------------------------------------------
# Same seed, same bytes: whatever the number of threads, and with or without the compiled walk

MC_ARRAYS = ("n", "cost_sd", "latency_sd", "hist", "model_successes", "model_slow")
MC_MEANS = ("token_cost", "gate_cost", "human_cost", "quality", "delivered_bad", "failed", "human", "latency",
            "escalation", "fallback", "answered", "calls")  # fmt: skip


def assert_identical(a: routecalc.MonteCarlo, b: routecalc.MonteCarlo) -> None:
    for name in MC_ARRAYS:
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name), err_msg=name)
    for name in MC_MEANS:
        np.testing.assert_array_equal(getattr(a.mean, name), getattr(b.mean, name), err_msg=name)


@pytest.mark.parametrize("make", [rich_sheet, joint_sheet], ids=["independent", "joint"])
@pytest.mark.parametrize(
    ("n", "threads"),
    [(3 * CHUNK + 1_234, 2), (CHUNK + 10, 2), (2 * CHUNK, 3)],
    ids=["threads-share-chunks", "threads-share-policies", "three-threads-share-policies"],
)
def test_threads_do_not_change_a_bit(make, n: int, threads: int, monkeypatch) -> None:
    """Many chunks: each thread walks whole chunks; fewer chunks than twice the threads (and enough work in each,
    lowered to nothing here): the threads share each chunk's policies. Either way the bytes of a one-thread run."""
    from routecalc.engine import mc

    monkeypatch.setattr(mc, "POLICY_THREADS_WORK", 0)
    problem = routecalc.compile_worksheet(routecalc.validate_worksheet(make()))
    one = routecalc.simulate(problem, n, np.random.default_rng(9), threads=1, engine="numpy")
    more = routecalc.simulate(problem, n, np.random.default_rng(9), threads=threads, engine="numpy")
    assert_identical(one, more)


@pytest.mark.parametrize("make", [rich_sheet, joint_sheet], ids=["independent", "joint"])
def test_compiled_walk_gives_the_same_bytes(make, monkeypatch) -> None:
    from routecalc.engine import mc
    from routecalc.engine.compiled import numba_available

    if not numba_available():
        pytest.skip("numba is not installed (pip install routecalc[fast])")
    problem = routecalc.compile_worksheet(routecalc.validate_worksheet(make()))
    n = 2 * CHUNK + 77
    plain = routecalc.simulate(problem, n, np.random.default_rng(4), threads=1, engine="numpy")
    compiled = routecalc.simulate(problem, n, np.random.default_rng(4), threads=2, engine="numba")
    assert_identical(plain, compiled)
    monkeypatch.setattr(mc, "POLICY_THREADS_WORK", 0)  # the threads share each chunk's policies
    shared = routecalc.simulate(problem, n, np.random.default_rng(4), threads=2, engine="numba")
    assert_identical(plain, shared)


def test_rng_spawn_contract() -> None:
    """Chunk i uses the i-th child of rng.spawn: a run on a spawned-from generator differs, and the parent
    is left as rng.spawn(n_chunks) leaves it."""
    problem = routecalc.compile_worksheet(routecalc.validate_worksheet(rich_sheet()))
    rng = np.random.default_rng(5)
    first = routecalc.simulate(problem, 2 * CHUNK, rng)
    assert rng.bit_generator.seed_seq.n_children_spawned == 2
    second = routecalc.simulate(problem, 2 * CHUNK, rng)
    assert not np.array_equal(first.mean.cost, second.mean.cost)
    with pytest.raises(ValueError, match="engine must be"):
        routecalc.simulate(problem, 10, np.random.default_rng(0), engine="fortran")
