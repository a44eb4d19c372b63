"""Prices that match the invoice: prompt-cache writes, reasoning tokens, batch shares, long-context tiers and
provider discounts, by hand in the expected-value engine and agreeing with Monte Carlo (numpy and numba alike)."""

from __future__ import annotations

import math

import numpy as np
import pytest

import routecalc
from routecalc.errors import WorksheetError
from routecalc.worksheet.pricing import rates
from tests.helpers import ev_of, fixed_model, two_model_sheet, with_policies
from tests.test_engine_mc import assert_identical

STATIC_SMALL = {"name": "small", "kind": "static", "routes": {"t": "small"}}
STATIC_LARGE = {"name": "large", "kind": "static", "routes": {"t": "large"}}


def cost_of(sheet: dict, policy: dict = STATIC_SMALL) -> float:
    return ev_of(with_policies(sheet, policy), policy["name"])["cost"]


# ---------------------------------------------------------------------------------------------------------
# By hand: two_model_sheet has 1000 input and 500 output tokens (fixed); small is $1 in / $2 out per 1M, i.e.
# $0.001 + $0.001 = $0.002 a request.


def test_prompt_cache_write_and_read() -> None:
    sheet = two_model_sheet()
    sheet["models"][0] |= {"price_cache": 0.10, "price_cache_write": 1.25}
    sheet["tasks"][0] |= {"cached_share": 0.5, "cache_write_share": 0.2}
    # input per 1M: 1 + 0.5 (0.10 - 1) + 0.2 (1.25 - 1) = 1 - 0.45 + 0.05 = 0.60 -> 1000 x 0.60e-6 = 0.0006
    assert cost_of(sheet) == pytest.approx(0.0006 + 0.001)


def test_cache_write_defaults_to_the_input_price() -> None:
    sheet = two_model_sheet()
    sheet["models"][0] |= {"price_cache": 0.10}
    sheet["tasks"][0] |= {"cached_share": 0.5, "cache_write_share": 0.5}
    # writes cost the input price (OpenAI): 1 + 0.5 (0.10 - 1) + 0.5 (1 - 1) = 0.55 per 1M
    assert cost_of(sheet) == pytest.approx(0.00055 + 0.001)


@pytest.mark.parametrize(
    ("model", "task", "expected"),
    [
        # visible 500 x $2 + hidden 2 x 500 x $3 = 0.001 + 0.003; + input 0.001
        ({"reasoning_ratio": 2.0, "price_reasoning": 3.0}, {}, 0.005),
        # the task's ratio for this model: 500 x 2e-6 + 0.5 x 500 x 3e-6 = 0.001 + 0.00075; + 0.001
        ({"reasoning_ratio": 2.0, "price_reasoning": 3.0}, {"reasoning_ratio": {"small": 0.5}}, 0.00275),
        # no reasoning price: the output price, 500 x 2e-6 + 2 x 500 x 2e-6 = 0.003; + 0.001
        ({"reasoning_ratio": 2.0}, {}, 0.004),
        # output_ratio 1.5: 750 visible x 2e-6 + 2 x 750 hidden x 3e-6 = 0.0015 + 0.0045; + 0.001
        ({"reasoning_ratio": 2.0, "price_reasoning": 3.0, "output_ratio": 1.5}, {}, 0.007),
        # a task may switch reasoning off for a model: 0.002
        ({"reasoning_ratio": 2.0}, {"reasoning_ratio": {"small": 0}}, 0.002),
    ],
)
def test_reasoning_tokens(model: dict, task: dict, expected: float) -> None:
    sheet = two_model_sheet()
    sheet["models"][0] |= model
    sheet["tasks"][0] |= task
    assert cost_of(sheet) == pytest.approx(expected)


def test_batch_share_of_a_category() -> None:
    sheet = two_model_sheet()
    sheet["models"][0] |= {"price_in_batch": 0.5, "price_out_batch": 1.0}
    sheet["tasks"][0]["batch_share"] = 0.4
    # batch request: 1000 x 0.5e-6 + 500 x 1e-6 = 0.001; 0.6 x 0.002 + 0.4 x 0.001 = 0.0016
    assert cost_of(sheet) == pytest.approx(0.0016)
    # the batch discount applies to cache reads too: standard input 1 + 0.5 (0.1 - 1) = 0.55 per 1M, batch half of it
    sheet["models"][0]["price_cache"] = 0.1
    sheet["tasks"][0]["cached_share"] = 0.5
    # standard 0.00055 + 0.001 = 0.00155; batch 0.000275 + 0.0005 = 0.000775; 0.6 x 0.00155 + 0.4 x 0.000775
    assert cost_of(sheet) == pytest.approx(0.00093 + 0.00031)


def test_a_step_overrides_the_batch_share() -> None:
    sheet = two_model_sheet()
    sheet["models"][0] |= {"price_in_batch": 0.5, "price_out_batch": 1.0}
    sheet["tasks"][0]["batch_share"] = 0.4
    all_batch = {"name": "b", "kind": "chain", "routes": {"t": {"model": "small", "batch_share": 1.0}}}
    no_batch = {"name": "b", "kind": "chain", "routes": {"t": {"model": "small", "batch_share": 0}}}
    assert cost_of(sheet, all_batch) == pytest.approx(0.001)
    assert cost_of(sheet, no_batch) == pytest.approx(0.002)


def test_a_model_without_batch_prices_costs_the_same_in_batch() -> None:
    sheet = two_model_sheet()
    sheet["models"][1] |= {"price_in_batch": 5.0}  # only large has one, and only for input
    sheet["tasks"][0]["batch_share"] = 1.0
    assert cost_of(sheet) == pytest.approx(0.002)
    # large: 1000 x 5e-6 + 500 x 20e-6 (no output batch price) = 0.005 + 0.010
    assert cost_of(sheet, STATIC_LARGE) == pytest.approx(0.015)


def test_provider_discount() -> None:
    sheet = two_model_sheet()
    sheet["models"][1]["provider"] = "anthropic"
    sheet["models"][1] |= {"price_cache": 1.0, "reasoning_ratio": 1.0}
    sheet["tasks"][0]["cached_share"] = 0.5
    sheet["discounts"] = {"anthropic": 0.25}
    assert cost_of(sheet) == pytest.approx(0.002)  # small is openai's: no discount
    # large: input 1000 x (10 + 0.5 (1 - 10)) = 5.5e-3, output 500 x 20 + 500 x 20 (reasoning) = 2e-2; x 0.75
    assert cost_of(sheet, STATIC_LARGE) == pytest.approx((0.0055 + 0.02) * 0.75)


def _phi(z: float) -> float:
    return 0.5 * (1 + math.erf(z / math.sqrt(2)))


def long_sheet() -> dict:
    sheet = two_model_sheet()
    sheet["models"][0] |= {
        "price_in": 1.25,
        "price_out": 10.0,
        "long_context": {"above_tokens": 200_000, "price_in": 2.5, "price_out": 15.0},
    }
    sheet["tasks"][0] |= {"tokens_in": {"p50": 100_000, "p95": 400_000}, "tokens_out": 1000}
    return sheet


def long_expected(p_in: float, p_in_long: float, p_out: float, p_out_long: float) -> float:
    """Lognormal x (mu = ln 100,000, sigma = ln 4 / 1.6449 = 0.8428) split at T = 200,000:
    P(x > T) = 1 - Phi(a), a = (ln T - mu) / sigma = ln 2 / 0.8428 = 0.8224  -> 0.2055;
    E[x; x > T] = E[x] (1 - Phi(a - sigma)), E[x] = 1e5 exp(sigma^2 / 2) = 142,620 -> 142,620 x 0.5082 = 72,480.
    Cost = (E[x] - E[x; x > T]) p_in + E[x; x > T] p_in_long + 1000 ((1 - P) p_out + P p_out_long)."""
    sigma = math.log(4) / 1.6448536269514722
    a = math.log(2) / sigma
    p_long = 1 - _phi(a)
    mean = 1e5 * math.exp(sigma**2 / 2)
    above = mean * (1 - _phi(a - sigma))
    assert p_long == pytest.approx(0.2055, abs=1e-4) and above == pytest.approx(72_480, rel=1e-3)
    per_1m = (mean - above) * p_in + above * p_in_long + 1000 * ((1 - p_long) * p_out + p_long * p_out_long)
    return per_1m / 1e6


def test_long_context_prices_above_the_threshold() -> None:
    # (142,620 - 72,480) x 1.25 + 72,480 x 2.5 + 1000 (0.7945 x 10 + 0.2055 x 15) = 87,675 + 181,200 + 11,028 per 1M
    assert cost_of(long_sheet()) == pytest.approx(long_expected(1.25, 2.5, 10.0, 15.0), rel=1e-9)
    assert cost_of(long_sheet()) == pytest.approx(0.2799, abs=1e-4)


def test_long_context_and_batch_stack() -> None:
    sheet = long_sheet()
    sheet["models"][0] |= {"price_in_batch": 0.625, "price_out_batch": 5.0}  # half price, long prices included
    sheet["tasks"][0]["batch_share"] = 1.0
    assert cost_of(sheet) == pytest.approx(long_expected(1.25, 2.5, 10.0, 15.0) / 2, rel=1e-9)


def test_a_threshold_no_prompt_reaches_changes_nothing() -> None:
    sheet = two_model_sheet()  # 1000-token prompts
    sheet["models"][0]["long_context"] = {"above_tokens": 200_000, "price_in": 100.0, "price_out": 100.0}
    problem = routecalc.compile_worksheet(routecalc.validate_worksheet(with_policies(sheet, STATIC_SMALL)))
    assert problem.segments.trivial and np.isinf(problem.segments.long_above).all()
    assert cost_of(sheet) == pytest.approx(0.002)


def test_long_context_defaults_scale_with_the_tier() -> None:
    spec = routecalc.validate_worksheet(long_sheet()).models[0]
    r = rates(spec.model_copy(update={"price_cache": 0.125, "price_reasoning": 12.0}))
    assert r.long_cache_read == pytest.approx(0.25)  # 0.125 x 2.5 / 1.25
    assert r.long_cache_write == 2.5  # no write price: the tier's input price
    assert r.long_reasoning == pytest.approx(18.0)  # 12 x 15 / 10
    r = rates(spec.model_copy(update={"long_context": spec.long_context.model_copy(update={"price_cache": 0.3})}))
    assert (r.long_cache_read, r.long_reasoning) == (0.3, 15.0)
    assert rates(spec, discount=0.2).long_in == pytest.approx(2.0)  # 2.5 x 0.8


def test_the_price_fields_are_validated_together() -> None:
    sheet = two_model_sheet(tools=[{"name": "kb", "latency_s": 0.05}])
    sheet["models"][0] |= {"price_in_batch": 0.5, "price_in": 0}
    sheet["models"][1]["long_context"] = {"above_tokens": 0, "price_in": 1, "price_out": 1}
    sheet["tasks"][0] |= {"cached_share": 0.8, "cache_write_share": 0.3, "reasoning_ratio": {"nope": 1.0}}
    sheet["tasks"][0]["tool_hit_rates"] = {"kb": 0.1}
    sheet["discounts"] = {"openai": 0.1, "acme": 0.2, "google": 1.0}
    sheet["policies"] = [{"name": "p", "kind": "chain", "routes": {"t": [{"tool": "kb", "batch_share": 0.5}, "small"]}}]
    with pytest.raises(WorksheetError) as info:
        routecalc.validate_worksheet(sheet)
    problems = {p.path: p.message for p in info.value.problems}
    assert "a batch price is a discount" in problems["models[0]"]
    assert "models[1].long_context.above_tokens" in problems
    assert "exceed 1" in problems["tasks[0]"]
    assert "unknown model" in problems["tasks[0].reasoning_ratio.nope"]
    assert "no model has provider 'acme'" in problems["discounts.acme"]
    assert "discounts.google" in problems  # 100 % off is not a discount
    assert "tool step" in problems["policies[0].routes.t[0]"]


# ---------------------------------------------------------------------------------------------------------
# Monte Carlo applies each price per request; it agrees with the closed form, with numpy and numba alike


def billing_sheet() -> dict:
    lognormal = {"ttft_s": {"p50": 0.4, "p95": 1.2}, "tpot_s": 0.01}
    return {
        "name": "invoice prices",
        "volume": {"requests_per_month": 100_000},
        "defaults": {"retries": 1, "bill_failed_input": True, "deadline_billing": "input"},
        "discounts": {"anthropic": 0.1},
        "models": [
            fixed_model("a", 1.25, 10.0, failure_rate=0.1, timeout_share=0.5, timeout_s=5)
            | {
                "latency": lognormal,
                "price_cache": 0.125,
                "price_cache_write": 1.5,
                "price_in_batch": 0.625,
                "price_out_batch": 5.0,
                "reasoning_ratio": 1.5,
                "price_reasoning": 12.0,
                "long_context": {"above_tokens": 200_000, "price_in": 2.5, "price_out": 15.0},
            },
            fixed_model("b", 3.0, 15.0, ttft=0.8, tpot=0.02, failure_rate=0.05, provider="anthropic")
            | {
                "price_cache": 0.3,
                "price_cache_write": 3.75,
                "price_in_batch": 1.5,
                "price_out_batch": 7.5,
                "long_context": {"above_tokens": 150_000, "price_in": 6.0, "price_out": 22.5, "price_cache": 0.6},
            },
            fixed_model("c", 0.4, 1.6, ttft=0.3, tpot=0.005, failure_rate=0.02),
        ],
        "tasks": [
            {
                "name": "long",
                "traffic_share": 0.6,
                "tokens_in": {"p50": 120_000, "p95": 400_000},
                "tokens_out": {"p50": 300, "p95": 900},
                "quality_threshold": 0.8,
                "pass_rates": {"a": 0.9, "b": 0.95, "c": 0.6},
                "validator": {"catch": 0.8, "false_reject": 0.05},
                "cached_share": 0.3,
                "cache_write_share": 0.1,
                "batch_share": 0.25,
                "reasoning_ratio": {"c": 0.5},
            },
            {
                "name": "short",
                "traffic_share": 0.4,
                "tokens_in": {"p50": 2000, "p95": 8000},
                "tokens_out": 200,
                "quality_threshold": 0.8,
                "pass_rates": {"a": 0.85, "b": 0.9, "c": 0.7},
                "validator": {"catch": 0.7, "false_reject": 0.1, "cost_per_call": 0.0002},
            },
        ],
        "policies": [
            {"name": "static", "kind": "static", "routes": {"long": "a", "short": "b"}},
            {"name": "cascade", "kind": "cascade", "routes": {"long": ["c", "a", "b"], "short": ["c", "b"]}},
            {
                "name": "batched",
                "kind": "chain",
                "routes": {
                    "long": [{"model": "b", "batch_share": 0.8, "on_failure": 1}, {"model": "a"}],
                    "short": {"model": "a", "batch_share": 1.0},
                },
            },
            {
                "name": "deadline",
                "kind": "chain",
                "routes": {
                    "long": [{"model": "a", "deadline_s": 3, "on_deadline": 1}, "c"],
                    "short": [{"model": "b", "deadline_s": 1.5, "on_deadline": 1}, "a"],
                },
            },
            {
                "name": "hedged",
                "kind": "chain",
                "routes": {"long": {"hedge": ["a", "b"]}, "short": {"hedge": ["b", "a"], "hedge_mode": "best"}},
            },
        ],
    }


SAMPLES = 200_000


@pytest.fixture(scope="module")
def engines() -> tuple[routecalc.RoutingProblem, routecalc.Metrics, routecalc.MonteCarlo]:
    problem = routecalc.compile_worksheet(routecalc.validate_worksheet(billing_sheet()))
    ev = routecalc.expected_values(problem)
    return problem, ev, routecalc.simulate(problem, SAMPLES, np.random.default_rng(11), engine="numpy")


@pytest.mark.parametrize("policy", ["static", "cascade", "batched", "deadline", "hedged", "all-to-strongest"])
def test_mc_cost_agrees_with_ev_within_4_sigma(engines, policy: str) -> None:
    problem, ev, mc = engines
    p = problem.chains.names.index(policy)
    sigma = mc.cost_sd[p] / np.sqrt(mc.n)
    assert np.all(np.abs(mc.mean.cost[p] - ev.cost[p]) <= 4 * sigma), (mc.mean.cost[p], ev.cost[p], sigma)
    # by model: within 5 %, or 2 % of the category's cost for a model that answers rarely (a fallback's)
    got, want = mc.mean.token_cost[p], ev.token_cost[p]
    assert np.all(np.abs(got - want) <= 0.05 * want + 0.02 * ev.cost[p][:, None]), (got, want)


def test_every_price_is_in_play(engines) -> None:
    """The sheet exercises what it claims: long prompts on both tiers, batch traffic, a discount."""
    problem, ev, _ = engines
    assert np.isfinite(problem.segments.long_above[0, :2]).all()  # long: a's and b's thresholds are cut
    assert np.isinf(problem.segments.long_above[1]).all()  # short prompts never reach them
    plain = billing_sheet()
    for m in plain["models"]:
        for key in ("price_cache_write", "price_in_batch", "price_out_batch", "reasoning_ratio", "long_context"):
            m.pop(key, None)
    plain.pop("discounts")
    cheaper = routecalc.expected_values(routecalc.compile_worksheet(routecalc.validate_worksheet(plain)))
    assert not np.allclose(ev.cost, cheaper.cost)


def test_compiled_walk_gives_the_same_bytes_with_every_price() -> None:
    from routecalc.engine.compiled import numba_available
    from routecalc.engine.mc import CHUNK

    if not numba_available():
        pytest.skip("numba is not installed (pip install routecalc[fast])")
    problem = routecalc.compile_worksheet(routecalc.validate_worksheet(billing_sheet()))
    n = CHUNK + 501
    plain = routecalc.simulate(problem, n, np.random.default_rng(3), threads=1, engine="numpy")
    compiled = routecalc.simulate(problem, n, np.random.default_rng(3), threads=2, engine="numba")
    assert_identical(plain, compiled)


def test_the_readme_discount_line() -> None:
    """README worked example: 20 % off an Anthropic model at $1 in / $2 out, 1000 / 500 tokens."""
    sheet = two_model_sheet(discounts={"anthropic": 0.2})
    sheet["models"][0]["provider"] = "anthropic"
    assert cost_of(sheet) == pytest.approx(0.0016)  # (0.001 + 0.001) x 0.8


def test_the_readme_example_all_at_once() -> None:
    """README "Prices that match the invoice": every effect on one request of 1000 input / 500 output tokens."""
    sheet = two_model_sheet(discounts={"anthropic": 0.2})
    sheet["models"][0] |= {
        "provider": "anthropic",
        "price_cache": 0.10,
        "price_cache_write": 1.25,
        "reasoning_ratio": 2.0,
        "price_reasoning": 3.0,
        "price_in_batch": 0.5,
        "price_out_batch": 1.0,
    }
    sheet["tasks"][0] |= {"cached_share": 0.5, "cache_write_share": 0.2, "batch_share": 0.4}
    # standard: 1000 x 0.60e-6 + 500 x (2 + 2 x 3)e-6 = 0.0006 + 0.004 = 0.0046; batch (both factors 0.5): 0.0023
    # mixed: 0.6 x 0.0046 + 0.4 x 0.0023 = 0.00368; 20 % off: 0.002944
    assert cost_of(sheet) == pytest.approx(0.002944)
