"""Routing patterns inside a category: splits, rules, classifiers, tools, error-type failover, context windows.

Each compiles to lanes of ordinary chains (routecalc.routes); the tests check hand-computed expected values and
that Monte Carlo agrees with the expected-value engine within 4 sigma.
"""

from __future__ import annotations

import numpy as np
import pytest

import routecalc
from routecalc.errors import WorksheetError
from tests.helpers import ev_of, fixed_model, two_model_sheet, with_policies

SAMPLES = 200_000
SEED = 11


def sheet(*policies: dict, **task: object) -> dict:
    s = with_policies(two_model_sheet(), *policies)
    s["tasks"][0].update(task)
    return s


# ---------------------------------------------------------------------------------------------------------
# Hand-computed expected values (two models: small $0.002 per request, pass 0.8; large $0.020, pass 0.95)


def test_weighted_split() -> None:
    # 90 % small, 10 % large: cost 0.9 * 0.002 + 0.1 * 0.020 = 0.0038; quality 0.9 * 0.8 + 0.1 * 0.95 = 0.815
    got = ev_of(sheet({"name": "ab", "kind": "static", "routes": {"t": {"split": {"small": 0.9, "large": 0.1}}}}), "ab")
    assert got["cost"] == pytest.approx(0.0038, abs=1e-15)
    assert got["quality"] == pytest.approx(0.815, abs=1e-15)


def test_length_rule_uses_the_token_band() -> None:
    # tokens_in lognormal p50 1000 / p95 4000: P(x > 2000) = 1 - Phi(ln 2 / (ln 4 / 1.645)) = 1 - Phi(0.8225)
    from scipy.special import ndtr

    rule = {"rules": [{"when": {"input_tokens_gt": 2000}, "route": ["large"]}, {"route": ["small"]}]}
    s = sheet({"name": "r", "kind": "static", "routes": {"t": rule}}, tokens_in={"p50": 1000, "p95": 4000})
    p_long = 1 - ndtr(np.log(2) / (np.log(4) / 1.6448536269514722))
    got = ev_of(s, "r")
    assert got["quality"] == pytest.approx(p_long * 0.95 + (1 - p_long) * 0.8, abs=1e-12)
    assert got["answered"][1] == pytest.approx(p_long, abs=1e-12)


def test_attribute_rule() -> None:
    # enterprise (20 %) to large, the rest to small: quality 0.2 * 0.95 + 0.8 * 0.8 = 0.83
    rule = {"rules": [{"when": {"attribute": "plan", "in": ["enterprise"]}, "route": "large"}, {"route": "small"}]}
    s = sheet(
        {"name": "r", "kind": "static", "routes": {"t": rule}}, attributes={"plan": {"free": 0.8, "enterprise": 0.2}}
    )
    assert ev_of(s, "r")["quality"] == pytest.approx(0.83, abs=1e-15)


def classifier_sheet(confusion: dict) -> dict:
    s = sheet(
        {
            "name": "clf",
            "kind": "static",
            "routes": {"t": {"classifier": "c", "routes": {"easy": "small", "hard": "large"}}},
        },
        tiers={
            "easy": {"share": 0.7, "pass_rates": {"small": 0.95, "large": 0.98}},
            "hard": {"share": 0.3, "pass_rates": {"small": 0.5, "large": 0.9}},
        },
    )
    del s["tasks"][0]["pass_rates"]
    s["classifiers"] = [{"name": "c", "labels": ["easy", "hard"], "confusion": confusion, "cost_per_call": 0.0001}]
    return s


def test_classifier_with_a_confusion_matrix() -> None:
    # easy (0.7): 90 % to small (0.95), 10 % to large (0.98); hard (0.3): 20 % to small (0.5), 80 % to large (0.9)
    # quality = 0.7 * (0.9 * 0.95 + 0.1 * 0.98) + 0.3 * (0.2 * 0.5 + 0.8 * 0.9) = 0.6671 + 0.246 = 0.9131
    # cost = 0.0001 + P(small) 0.002 + P(large) 0.020, P(small) = 0.7 * 0.9 + 0.3 * 0.2 = 0.69
    conf = {"easy": {"easy": 0.9, "hard": 0.1}, "hard": {"easy": 0.2, "hard": 0.8}}
    got = ev_of(classifier_sheet(conf), "clf")
    assert got["quality"] == pytest.approx(0.9131, abs=1e-12)
    assert got["cost"] == pytest.approx(0.0001 + 0.69 * 0.002 + 0.31 * 0.020, abs=1e-15)


def test_perfect_classifier_is_its_oracle() -> None:
    perfect = {"easy": {"easy": 1.0, "hard": 0.0}, "hard": {"easy": 0.0, "hard": 1.0}}
    got = ev_of(classifier_sheet(perfect), "clf")
    assert got["quality"] == pytest.approx(0.7 * 0.95 + 0.3 * 0.9, abs=1e-15)
    assert got["cost"] == pytest.approx(0.0001 + 0.7 * 0.002 + 0.3 * 0.020, abs=1e-15)


def test_tool_first_step() -> None:
    # a cache answers 40 % of requests (all right) for $0.0001; misses go to small
    # quality 0.4 + 0.6 * 0.8 = 0.88; cost 0.0001 + 0.6 * 0.002 = 0.0013
    s = sheet(
        {"name": "tool", "kind": "fallback", "routes": {"t": [{"tool": "cache"}, "small"]}},
        tool_hit_rates={"cache": 0.4},
    )
    s["tools"] = [{"name": "cache", "cost_per_call": 0.0001, "latency_s": 0.02}]
    got = ev_of(s, "tool")
    assert got["quality"] == pytest.approx(0.88, abs=1e-15)
    assert got["cost"] == pytest.approx(0.0013, abs=1e-15)
    assert got["answered"][2] == pytest.approx(0.4, abs=1e-15)  # the tool is its own answerer (after 2 models)


def test_failover_by_error_type() -> None:
    # small fails 10 %: half 5xx -> large, half 429 -> fail; no retries
    # quality = 0.9 * 0.8 + 0.05 * 0.95 = 0.7675; failed = 0.05
    s = two_model_sheet()
    s["models"][0].update(failure_rate=0.1, errors={"5xx": 0.5, 429: 0.5})
    s = with_policies(
        s, {"name": "c", "kind": "chain", "routes": {"t": [{"model": "small", "on_failure": {"429": "fail"}}, "large"]}}
    )
    got = ev_of(s, "c")
    assert got["quality"] == pytest.approx(0.7675, abs=1e-15)
    assert got["failed"] == pytest.approx(0.05, abs=1e-15)


def test_content_filter_refusals_are_not_retried() -> None:
    # small fails 10 %, all content-filter refusals: with 3 retries still 10 % leave small (a retry would not help)
    s = two_model_sheet(defaults={"retries": 3})
    s["models"][0].update(failure_rate=0.1, errors={"content_filter": 1.0})
    s = with_policies(s, {"name": "f", "kind": "fallback", "routes": {"t": ["small", "large"]}})
    got = ev_of(s, "f")
    assert got["fallback"] == pytest.approx(0.1, abs=1e-15)
    assert got["quality"] == pytest.approx(0.9 * 0.8 + 0.1 * 0.95, abs=1e-15)


def test_context_window_overflow_is_shown_and_routed_on() -> None:
    # small's window is 2,000 tokens; prompts lognormal p50 1000 / p95 4000 exceed it with P(x > 2000)
    from scipy.special import ndtr

    s = two_model_sheet()
    s["models"][0]["context_window"] = 2000
    s["tasks"][0]["tokens_in"] = {"p50": 1000, "p95": 4000}
    s = with_policies(
        s,
        {"name": "f", "kind": "fallback", "routes": {"t": ["small", "large"]}},
        {"name": "s", "kind": "static", "routes": {"t": "small"}},
    )
    p_long = 1 - ndtr(np.log(2) / (np.log(4) / 1.6448536269514722))
    fb, st = ev_of(s, "f"), ev_of(s, "s")
    assert fb["quality"] == pytest.approx((1 - p_long) * 0.8 + p_long * 0.95, abs=1e-12)
    assert st["failed"] == pytest.approx(p_long, abs=1e-12)  # nothing after small: the long prompts fail
    problem = routecalc.compile_worksheet(routecalc.validate_worksheet(s))
    assert routecalc.expected_values(problem).overflow[0, 0] == pytest.approx(p_long, abs=1e-12)


# ---------------------------------------------------------------------------------------------------------
# Monte Carlo agrees with the expected-value engine, for every pattern at once


def everything_sheet() -> dict:
    s = {
        "name": "patterns",
        "volume": {"requests_per_month": 10_000},
        "defaults": {"retries": 1, "backoff_s": 0.2, "bill_failed_input": True},
        "models": [
            fixed_model("small", 0.5, 1.5, ttft=0.3, tpot=0.01, failure_rate=0.08, context_window=3000)
            | {"errors": {"timeout": 0.25, "5xx": 0.25, "429": 0.3, "content_filter": 0.2}, "timeout_s": 5},
            fixed_model("new-small", 0.4, 1.2, ttft=0.35, tpot=0.012, failure_rate=0.02)
            | {"latency": {"ttft_s": {"p50": 0.3, "p95": 1.2}, "tpot_s": {"p50": 0.01, "p95": 0.02}}},
            fixed_model("large", 5.0, 15.0, ttft=0.8, tpot=0.02, failure_rate=0.03, timeout_share=0.5, timeout_s=10),
        ],
        "tools": [
            {"name": "faq", "cost_per_call": 0.0002, "latency_s": {"p50": 0.03, "p95": 0.1}, "failure_rate": 0.01}
        ],
        "classifiers": [
            {
                "name": "clf",
                "labels": ["easy", "hard"],
                "recall": {"easy": 0.85, "hard": 0.75},
                "model": "small",
                "output_tokens": 3,
                "latency_s": {"p50": 0.05, "p95": 0.2},
            },
        ],
        "tasks": [
            {
                "name": "a",
                "traffic_share": 0.6,
                "tokens_in": {"p50": 1500, "p95": 6000},
                "tokens_out": {"p50": 200, "p95": 600},
                "quality_threshold": 0.8,
                "tiers": {
                    "easy": {"share": 0.6, "pass_rates": {"small": 0.9, "new-small": 0.88, "large": 0.97}},
                    "hard": {"share": 0.4, "pass_rates": {"small": 0.5, "new-small": 0.45, "large": 0.85}},
                },
                "outcomes": {"correlation": 0.4},
                "attributes": {"plan": {"free": 0.7, "pro": 0.3}},
                "validator": {"catch": 0.8, "false_reject": 0.05, "cost_per_call": 0.0001, "latency_s": 0.2},
                "tool_hit_rates": {"faq": {"rate": 0.3, "quality": 0.9}},
            },
            {
                "name": "b",
                "traffic_share": 0.4,
                "tokens_in": {"p50": 800, "p95": 2500},
                "tokens_out": 300,
                "quality_threshold": 0.8,
                "pass_rates": {"small": 0.7, "new-small": 0.72, "large": 0.93},
                "validator": {"catch": 0.7, "false_reject": 0.1},
                "tool_hit_rates": {"faq": 0.5},
            },
        ],
        "policies": [
            {
                "name": "routed",
                "kind": "cascade",
                "routes": {
                    "a": {
                        "rules": [
                            {"when": {"input_tokens_gt": 5000}, "route": ["large"]},
                            {
                                "when": {"attribute": "plan", "in": ["pro"]},
                                "route": [{"tool": "faq"}, "small", "large"],
                            },
                            {"route": {"classifier": "clf", "routes": {"easy": ["small", "large"], "hard": ["large"]}}},
                        ]
                    },
                    "b": {
                        "split": [
                            {"weight": 0.7, "route": ["small", "large"]},
                            {"weight": 0.3, "route": ["new-small", "large"]},
                        ]
                    },
                },
            },
            {
                "name": "failover",
                "kind": "chain",
                "routes": {
                    "a": [{"model": "small", "on_failure": {"429": 2, "content_filter": "fail"}}, "new-small", "large"],
                    "b": [{"tool": "faq"}, {"model": "small", "gate": True, "on_reject": 2}, "new-small", "large"],
                },
            },
        ],
    }
    return s


@pytest.fixture(scope="module")
def engines():
    problem = routecalc.compile_worksheet(routecalc.validate_worksheet(everything_sheet()))
    return (
        problem,
        routecalc.expected_values(problem),
        routecalc.simulate(problem, SAMPLES, np.random.default_rng(SEED)),
    )


@pytest.mark.parametrize("policy", ["routed", "failover", "all-to-strongest"])
@pytest.mark.parametrize(
    "metric", ["cost", "latency", "quality", "delivered_bad", "failed", "escalation", "fallback", "overflow"]
)
def test_mc_agrees_with_ev(engines, policy: str, metric: str) -> None:
    problem, ev, mc = engines
    p = problem.chains.names.index(policy)
    expected, got = getattr(ev, metric)[p], getattr(mc.mean, metric)[p]
    if metric == "cost":
        sigma = mc.cost_sd[p] / np.sqrt(mc.n)
    elif metric == "latency":
        sigma = mc.latency_sd[p] / np.sqrt(mc.n)
    else:
        sigma = np.sqrt(expected * (1 - expected) / mc.n)
    assert np.all(np.abs(got - expected) <= 4 * sigma + 1e-12), (got, expected, sigma)


@pytest.mark.parametrize("policy", ["routed", "failover"])
def test_mc_agrees_with_ev_per_answerer_and_step(engines, policy: str) -> None:
    problem, ev, mc = engines
    p = problem.chains.names.index(policy)
    for name in ("answered", "served"):
        expected, got = getattr(ev, name)[p], getattr(mc.mean, name)[p]
        sigma = np.sqrt(expected * (1 - expected) / mc.n[:, None])
        assert np.all(np.abs(got - expected) <= 4 * sigma + 1e-12), name
    np.testing.assert_allclose(mc.mean.token_cost[p], ev.token_cost[p], rtol=0.05, atol=2e-6)


def test_compiled_walk_agrees_bit_for_bit() -> None:
    from routecalc.engine.compiled import numba_available

    if not numba_available():
        pytest.skip("numba is not installed (pip install routecalc[fast])")
    from tests.test_engine_mc import assert_identical

    problem = routecalc.compile_worksheet(routecalc.validate_worksheet(everything_sheet()))
    plain = routecalc.simulate(problem, 100_000, np.random.default_rng(3), threads=1, engine="numpy")
    compiled = routecalc.simulate(problem, 100_000, np.random.default_rng(3), threads=2, engine="numba")
    assert_identical(plain, compiled)


# ---------------------------------------------------------------------------------------------------------
# Validation


@pytest.mark.parametrize(
    ("route", "path", "message"),
    [
        ({"split": {"small": 0.5, "large": 0.4}}, "policies[0].routes.t", "weights must sum to 1"),
        (
            {"rules": [{"when": {"input_tokens_gt": 10}, "route": "large"}]},
            "policies[0].routes.t",
            "end with a default",
        ),
        (
            {"rules": [{"when": {"attribute": "plan", "in": ["x"]}, "route": "large"}, {"route": "small"}]},
            "policies[0].routes.t.rules[0].when.attribute",
            "has no attribute",
        ),
        ({"classifier": "nope", "routes": {"a": "small"}}, "policies[0].routes.t.classifier", "unknown classifier"),
        ([{"tool": "nope"}, "small"], "policies[0].routes.t[0].tool", "unknown tool"),
        (
            {"split": [{"weight": 1.0, "route": ["ghost"]}]},
            "policies[0].routes.t.split[0].route[0].model",
            "unknown model",
        ),
    ],
)
def test_bad_routes_name_the_field(route: object, path: str, message: str) -> None:
    s = sheet({"name": "p", "kind": "fallback", "routes": {"t": route}})
    with pytest.raises(WorksheetError) as info:
        routecalc.validate_worksheet(s)
    assert any(p.path.startswith(path) and message in p.message for p in info.value.problems), info.value.problems


# ---------------------------------------------------------------------------------------------------------
# Deadlines and hedged requests


def latency_sheet(small_latency: dict, large_latency: dict, *policies: dict) -> dict:
    s = two_model_sheet()
    s["models"][0]["latency"] = small_latency
    s["models"][1]["latency"] = large_latency
    return with_policies(s, *policies)


def test_deadline_moves_slow_answers_on() -> None:
    # small end-to-end p50 2 s / p95 6 s; deadline 4 s: P(L > 4) = 1 - Phi(ln 2 / (ln 3 / 1.645)) = 0.14966
    from scipy.special import ndtr

    p_late = 1 - ndtr(np.log(2) / (np.log(3) / 1.6448536269514722))
    s = latency_sheet(
        {"e2e_s": {"p50": 2, "p95": 6}},
        {"e2e_s": 1.0},
        {"name": "d", "kind": "chain", "routes": {"t": [{"model": "small", "deadline_s": 4}, "large"]}},
    )
    got = ev_of(s, "d")
    # late answers are billed in full (defaults.deadline_billing: full) and the large model answers them
    assert got["quality"] == pytest.approx((1 - p_late) * 0.8 + p_late * 0.95, abs=1e-9)
    assert got["cost"] == pytest.approx(0.002 + p_late * 0.020, abs=1e-12)


def test_hedge_first_and_best_with_fixed_latencies() -> None:
    # small answers in 1 s, large in 2 s, no failures
    hedge = lambda **kw: {"t": [{"hedge": ["small", "large"], **kw}]}
    s = latency_sheet(
        {"e2e_s": 1.0},
        {"e2e_s": 2.0},
        {"name": "first", "kind": "chain", "routes": hedge()},
        {"name": "first-both-paid", "kind": "chain", "routes": hedge(cancel_loser=False)},
        {"name": "best", "kind": "chain", "routes": hedge(hedge_mode="best")},
    )
    first, paid, best = ev_of(s, "first"), ev_of(s, "first-both-paid"), ev_of(s, "best")
    # first: small always wins; the cancelled large bills its 1,000 input tokens only (1000 * 1e-5 = 0.01)
    assert first["quality"] == pytest.approx(0.8) and first["latency"] == pytest.approx(1.0)
    assert first["cost"] == pytest.approx(0.002 + 0.010)
    assert paid["cost"] == pytest.approx(0.022)
    # best: wait for both (2 s), good if either is: 1 - 0.2 * 0.05 = 0.99
    assert best["quality"] == pytest.approx(0.99) and best["latency"] == pytest.approx(2.0)
    assert best["cost"] == pytest.approx(0.022)


def latency_everything_sheet() -> dict:
    s = everything_sheet()
    del s["tasks"][0]["outcomes"]  # latent difficulty is tested above: here it would only multiply the rows
    s["models"].append(
        fixed_model("mid", 1.0, 4.0, failure_rate=0.05, timeout_share=0.4, timeout_s=6)
        | {"latency": {"ttft_s": {"p50": 0.5, "p95": 2.0}, "tpot_s": {"p50": 0.008, "p95": 0.02}}}
    )
    for t in s["tasks"]:
        rates = t.get("pass_rates")
        if rates is not None:
            rates["mid"] = 0.85
        for tier in (t.get("tiers") or {}).values():
            tier["pass_rates"]["mid"] = 0.8
    s["defaults"]["deadline_billing"] = "input"
    s["policies"].append(
        {
            "name": "fast",
            "kind": "chain",
            "routes": {
                "a": [
                    {"hedge": ["new-small", "mid"], "on_failure": 2},
                    {"model": "small", "deadline_s": 2.5, "gate": True, "on_reject": 2},
                    "large",
                ],
                "b": [
                    {"model": "mid", "deadline_s": 1.5},
                    {"hedge": ["large", "new-small"], "hedge_mode": "best"},
                ],
            },
        }
    )
    return s


@pytest.fixture(scope="module")
def latency_engines():
    problem = routecalc.compile_worksheet(routecalc.validate_worksheet(latency_everything_sheet()))
    return (
        problem,
        routecalc.expected_values(problem),
        routecalc.simulate(problem, SAMPLES, np.random.default_rng(SEED)),
    )


@pytest.mark.parametrize("policy", ["fast", "routed"])
@pytest.mark.parametrize("metric", ["cost", "latency", "quality", "delivered_bad", "failed", "fallback", "late"])
def test_mc_agrees_with_ev_with_deadlines_and_hedges(latency_engines, policy: str, metric: str) -> None:
    test_mc_agrees_with_ev(latency_engines, policy, metric)


def test_mc_agrees_with_ev_per_answerer_with_hedges(latency_engines) -> None:
    test_mc_agrees_with_ev_per_answerer_and_step(latency_engines, "fast")


def test_compiled_walk_agrees_with_deadlines_and_hedges() -> None:
    from routecalc.engine.compiled import numba_available

    if not numba_available():
        pytest.skip("numba is not installed (pip install routecalc[fast])")
    from tests.test_engine_mc import assert_identical

    problem = routecalc.compile_worksheet(routecalc.validate_worksheet(latency_everything_sheet()))
    plain = routecalc.simulate(problem, 100_000, np.random.default_rng(5), threads=1, engine="numpy")
    compiled = routecalc.simulate(problem, 100_000, np.random.default_rng(5), threads=2, engine="numba")
    assert_identical(plain, compiled)


@pytest.mark.parametrize(("target", "ok"), [(5.0, False), (6.0, True)])
def test_step_latency_target(target: float, ok: bool) -> None:
    # small answers in 0.5 + 500 * 0.01 = 5.5 s, then the validator takes 0.2 s: step 1 answers at 5.7 s.
    # step 1 serves what the validator accepts: good 0.8 * (1 - 0.1) + bad 0.2 * (1 - 0.9) = 0.74
    step = {"model": "small", "gate": True, "latency_target_s": target}
    s = sheet({"name": "c", "kind": "chain", "routes": {"t": [step, "large"]}})
    result = routecalc.compare(routecalc.validate_worksheet(s), samples=20_000, seed=1)
    pol = result.policy("c")
    (t,) = pol.categories[0].steps
    assert (t.step, t.target_s) == (0, target)
    assert t.served == pytest.approx(0.74, abs=1e-12)
    assert t.p95_s == pytest.approx(5.7, rel=0.02)  # histogram bin resolution
    assert t.ok is ok and pol.categories[0].ok is (ok and pol.categories[0].quality_ok)
    assert pol.served_by_step == pytest.approx((0.74, 0.26), abs=1e-12)


def test_deadline_budget_means_the_category_budget() -> None:
    # deadline_s: budget with latency_budget_s 4 compiles to the same arrays as deadline_s: 4
    def with_deadline(value: object) -> dict:
        s = latency_sheet(
            {"e2e_s": {"p50": 2, "p95": 6}},
            {"e2e_s": 1.0},
            {"name": "d", "kind": "chain", "routes": {"t": [{"model": "small", "deadline_s": value}, "large"]}},
        )
        s["tasks"][0]["latency_budget_s"] = 4
        return s

    by_budget, by_number = ev_of(with_deadline("budget"), "d"), ev_of(with_deadline(4), "d")
    assert by_budget["late"] > 0.1  # P(L > 4 s) = 0.1497: the deadline acts
    assert {k: by_budget[k] for k in ("cost", "quality", "late")} == {
        k: by_number[k] for k in ("cost", "quality", "late")
    }
    s = with_deadline("budget")
    del s["tasks"][0]["latency_budget_s"]
    with pytest.raises(WorksheetError) as info:
        routecalc.validate_worksheet(s)
    assert [p.path for p in info.value.problems] == ["policies[0].routes.t[0].deadline_s"]
