"""Expected-value engine against hand-computed numbers (arithmetic in the comments)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

import routecalc
from tests.helpers import ev_of, fixed_model, two_model_sheet, with_policies

STATIC_SMALL = {"name": "small", "kind": "static", "routes": {"t": "small"}}
CASCADE = {"name": "cascade", "kind": "cascade", "routes": {"t": ["small", "large"]}}


def test_static_cost_quality_latency() -> None:
    ev = ev_of(with_policies(two_model_sheet(), STATIC_SMALL), "small")
    assert ev["cost"] == pytest.approx(0.002)  # 1000 * $1/1M + 500 * $2/1M
    assert ev["quality"] == pytest.approx(0.8)
    assert ev["delivered_bad"] == pytest.approx(0.2)
    assert ev["latency"] == pytest.approx(5.5)  # 0.5 s TTFT + 500 tokens * 0.01 s
    assert ev["escalation"] == 0 and ev["fallback"] == 0


def test_cascade_pays_every_attempt() -> None:
    ev = ev_of(with_policies(two_model_sheet(), CASCADE), "cascade")
    # step 0 (small, gated): good accepted 0.8 * 0.9 = 0.72, bad accepted 0.2 * 0.1 = 0.02, rejected 0.26
    # step 1 (large, last step, final_reject deliver -> ungated): reached 0.26
    assert ev["escalation"] == pytest.approx(0.26)
    assert ev["cost"] == pytest.approx(0.002 + 0.26 * 0.020)  # = 0.0072
    assert ev["quality"] == pytest.approx(0.72 + 0.26 * 0.95)  # = 0.967
    assert ev["delivered_bad"] == pytest.approx(0.02 + 0.26 * 0.05)  # = 0.033
    assert ev["latency"] == pytest.approx(5.5 + 0.2 + 0.26 * 11.0)  # gate 0.2 s; large = 1 + 500 * 0.02 = 11 s
    np.testing.assert_allclose(ev["answered"], [0.74, 0.26])


def test_cascade_final_reject_fail_and_human_review() -> None:
    fail = dict(CASCADE, name="fail", final_reject="fail")
    human = dict(CASCADE, name="human", final_reject="human_review", human_review={"cost": 2.0, "latency_s": 600})
    sheet = with_policies(two_model_sheet(), fail, human)
    # the last step is now gated: large accepted good 0.95 * 0.9 = 0.855, bad 0.05 * 0.1 = 0.005, rejected 0.14
    ev = ev_of(sheet, "fail")
    assert ev["quality"] == pytest.approx(0.72 + 0.26 * 0.855)
    assert ev["failed"] == pytest.approx(0.26 * 0.14)
    ev = ev_of(sheet, "human")
    assert ev["human"] == pytest.approx(0.26 * 0.14)  # = 0.0364
    assert ev["quality"] == pytest.approx(0.72 + 0.26 * 0.855 + 0.0364)  # human review counts as good
    assert ev["cost"] == pytest.approx(0.002 + 0.26 * 0.020 + 0.0364 * 2.0)
    assert ev["latency"] == pytest.approx(5.7 + 0.26 * (11.0 + 0.2) + 0.0364 * 600)


def test_fallback_retries_and_timeouts() -> None:
    sheet = two_model_sheet()
    sheet["models"][0] |= {"failure_rate": 0.1, "timeout_share": 0.5, "timeout_s": 10.0, "error_latency_s": 0.5}
    sheet["defaults"] = {"retries": 1, "backoff_s": 1.0}
    sheet = with_policies(sheet, {"name": "fb", "kind": "fallback", "routes": {"t": ["small", "large"]}})
    ev = ev_of(sheet, "fb")
    abandon = 0.1**2  # F = f^(1+r) = 0.01
    failed_tries = 0.1 * (1 - 0.1**2) / 0.9  # = 0.11
    retries = 0.1  # f (1 - f^r) / (1 - f) = 0.1
    assert ev["fallback"] == pytest.approx(abandon)
    assert ev["cost"] == pytest.approx(0.99 * 0.002 + 0.01 * 0.020)  # failed tries bill nothing by default
    small_latency = failed_tries * (0.5 * 10.0 + 0.5 * 0.5) + retries * 1.0 + 0.99 * 5.5
    assert ev["latency"] == pytest.approx(small_latency + 0.01 * 11.0)
    assert ev["quality"] == pytest.approx(0.99 * 0.8 + 0.01 * 0.95)
    np.testing.assert_allclose(ev["calls"], [failed_tries + (1 - abandon), 0.01])  # tries = failed + successful


def test_static_failure_without_fallback_fails_the_request() -> None:
    sheet = two_model_sheet()
    sheet["models"][0]["failure_rate"] = 0.2
    ev = ev_of(with_policies(sheet, STATIC_SMALL), "small")
    assert ev["failed"] == pytest.approx(0.2)  # no retries, nowhere to go
    assert ev["quality"] == pytest.approx(0.8 * 0.8)


def test_billing_failed_input_tokens() -> None:
    sheet = two_model_sheet(defaults={"bill_failed_input": True})
    sheet["models"][0]["failure_rate"] = 0.5
    ev = ev_of(with_policies(sheet, STATIC_SMALL), "small")
    # expected failed tries with r = 0: f = 0.5; each bills 1000 input tokens at $1/1M
    assert ev["cost"] == pytest.approx(0.5 * 0.002 + 0.5 * 0.001)


def test_chain_with_skip_targets_and_gate_costs() -> None:
    steps = [
        {"model": "small", "gate": True, "on_reject": 2, "on_failure": 1},
        {"model": "large"},
        {"model": "large", "gate": True, "on_reject": "fail"},
    ]
    sheet = two_model_sheet()
    sheet["models"][0]["failure_rate"] = 0.1
    sheet["tasks"][0]["validator"] |= {"cost_per_call": 0.001, "cost_per_1m_tokens": 2.0}
    ev = ev_of(with_policies(sheet, {"name": "ch", "kind": "chain", "routes": {"t": steps}}), "ch")
    # step 0: fails 0.1 -> step 1 (ungated large); answers 0.9: accepted 0.9 * 0.74, rejected 0.9 * 0.26 -> step 2
    reach2 = 0.9 * 0.26
    gate = 0.001 + 1500 * 2e-6  # per call + (x + y) tokens read at $2/1M = $0.004
    assert ev["gate_cost"] == pytest.approx((0.9 + reach2) * gate)
    assert ev["cost"] == pytest.approx(0.9 * 0.002 + 0.1 * 0.020 + reach2 * 0.020 + (0.9 + reach2) * gate)
    assert ev["quality"] == pytest.approx(0.9 * 0.72 + 0.1 * 0.95 + reach2 * 0.855)
    assert ev["failed"] == pytest.approx(reach2 * 0.14)
    assert ev["fallback"] == pytest.approx(0.1)
    assert ev["escalation"] == pytest.approx(reach2)  # a rejection at step 2 comes after one at step 0


def test_lognormal_tokens_use_the_mean_not_the_median() -> None:
    sheet = two_model_sheet()
    sheet["tasks"][0]["tokens_in"] = {"p50": 1000, "p95": 3000}
    sheet["tasks"][0]["tokens_out"] = 0
    ev = ev_of(with_policies(sheet, STATIC_SMALL), "small")
    assert ev["cost"] == pytest.approx(1249.8 * 1e-6, rel=1e-4)  # mean = 1000 * exp(0.6679^2 / 2)


def test_prompt_cache_share() -> None:
    sheet = two_model_sheet()
    sheet["models"][0]["price_cache"] = 0.25
    sheet["tasks"][0]["cached_share"] = 0.4
    ev = ev_of(with_policies(sheet, STATIC_SMALL), "small")
    assert ev["cost"] == pytest.approx(0.002 + 0.4 * 1000 * (0.25 - 1.0) * 1e-6)  # = 0.0017


def test_seed_001_back_of_envelope() -> None:
    """100k requests/month of ~1K tokens at $0.03/1K = $3,000; 60 % to $0.002/1K gives $1,320 (not ~$1,560)."""

    def sheet(cheap_price: float) -> dict:
        task = {"tokens_in": 700, "tokens_out": 300, "quality_threshold": 0, "pass_rates": {"big": 1, "cheap": 1}}
        return {
            "name": "seed 001",
            "price_unit": "per_1k",
            "volume": {"requests_per_month": 100_000},
            "models": [fixed_model("big", 0.03, 0.03), fixed_model("cheap", cheap_price, cheap_price)],
            "tasks": [task | {"name": "easy", "traffic_share": 0.6}, task | {"name": "hard", "traffic_share": 0.4}],
            "policies": [
                {"name": "all-big", "kind": "static", "routes": {"easy": "big", "hard": "big"}},
                {"name": "routed", "kind": "static", "routes": {"easy": "cheap", "hard": "big"}},
            ],
        }

    def monthly(s: dict) -> dict[str, float]:
        problem = routecalc.compile_worksheet(routecalc.validate_worksheet(s))
        costs = routecalc.expected_values(problem).cost @ problem.tasks.share * problem.requests_per_month
        return dict(zip(problem.chains.names, costs, strict=True))

    got = monthly(sheet(0.002))
    assert got["all-big"] == pytest.approx(3000.0)  # 100,000 x 1,000 tokens x $0.03/1K
    assert got["routed"] == pytest.approx(1320.0)  # 0.6 x 100k x $0.002 + 0.4 x 100k x $0.03 = 120 + 1,200
    # the article's ~$1,560 needs ~$0.006 per cheap request: 0.6 x 100k x 0.006 + 1,200 = 1,560
    assert monthly(sheet(0.006))["routed"] == pytest.approx(1560.0)


def test_strongest_model_ties_go_to_the_cheaper() -> None:
    sheet = two_model_sheet()
    sheet["tasks"][0]["pass_rates"] = {"small": 0.9, "large": 0.9}
    ws = routecalc.validate_worksheet(sheet)
    from routecalc.chains import strongest_model

    assert strongest_model(ws) == "small"
    sheet["tasks"][0]["pass_rates"]["large"] = 0.91
    assert strongest_model(routecalc.validate_worksheet(sheet)) == "large"


# ---------------------------------------------------------------------------------------------------------
# Bit-for-bit: the expected-value arrays of routecalc 0.1.0 (independence, one lane), saved as JSON by the
# 0.1.0 engine before the joint-outcome and lane axes were added. Independence must not move a single bit.

EV_GOLDEN = Path(__file__).parent / "golden" / "ev"
EV_FIELDS = (
    "token_cost",
    "gate_cost",
    "human_cost",
    "quality",
    "delivered_bad",
    "failed",
    "human",
    "latency",
    "escalation",
    "fallback",
    "answered",
    "calls",
)


def _golden_sheets() -> dict[str, routecalc.Worksheet]:
    import sys

    sys.path.insert(0, str(Path(__file__).parent.parent / "benchmarks"))
    from workload import benchmark_worksheet

    from tests.test_engine_mc import rich_sheet

    sheets = {
        p.stem: routecalc.load_worksheet(p)
        for p in sorted((Path(__file__).parent.parent / "worksheets").glob("*.yaml"))
    }
    # the shipped support-triage has gained cache prices since 0.1.0; the golden is 0.1.0's on the sheet it had then
    sheets["support-triage"] = routecalc.load_worksheet(EV_GOLDEN / "support-triage.yaml")
    sheets["benchmark"] = routecalc.validate_worksheet(benchmark_worksheet())
    sheets["mc-rich"] = routecalc.validate_worksheet(rich_sheet())
    return sheets


@pytest.mark.parametrize("name", ["rag-assistant", "structured-extraction", "support-triage", "benchmark", "mc-rich"])
def test_independence_is_bit_for_bit_the_0_1_engine(name: str) -> None:
    """Every (policy, category) is bit for bit 0.1.0's, except where a prompt can exceed a model's context
    window: 0.1.0 ignored windows; only rag-assistant's all-to-strongest baseline sends long prompts to a
    200k-token model (1.53 % of long-document and 0.006 % of summarize prompts are longer)."""
    ws = _golden_sheets()[name]
    problem = routecalc.compile_worksheet(ws)
    ev = routecalc.expected_values(problem)
    golden = json.loads((EV_GOLDEN / f"{name}.json").read_text())
    same = ev.overflow == 0  # (P, C)
    # a category whose tokens can exceed some window is split at it: the same numbers, up to rounding
    whole = (problem.segments.prob > 0).sum(1) == 1  # (C,)
    for field in EV_FIELDS:
        got = getattr(ev, field)
        want = np.array(golden[field])
        assert got.shape == want.shape, field
        exact = same & whole[None, :]
        assert np.array_equal(got[exact], want[exact]), f"{name}.{field} moved: max diff {np.abs(got - want).max():.3g}"
        np.testing.assert_allclose(got[same], want[same], rtol=1e-12, atol=1e-15, err_msg=field)
    moved = {(problem.chains.names[p], problem.tasks.names[c]) for p, c in zip(*np.nonzero(~same), strict=True)}
    if name == "rag-assistant":
        assert moved == {("all-to-strongest", "long-document"), ("all-to-strongest", "summarize")}
        assert ev.overflow[-1, 1] == pytest.approx(0.015337, abs=1e-6)
    else:
        assert moved == set()
