"""Advisories: each one triggered and not, with the arithmetic; none recommends a route the numbers do not back.

The two-model sheet: one category, 1,000 tokens in and 500 out (small $0.002, large $0.020 per request; latency
small 0.5 + 500 x 0.01 = 5.5 s, large 1 + 500 x 0.02 = 11 s; the validator adds 0.2 s), 1,000 requests a month.
A cascade small -> large gates small's answers: good ones pass with q (1 - false_reject), bad ones with
(1 - q)(1 - catch); the rest (r) escalate to large, whose answer is delivered ungated.
"""

from __future__ import annotations

import copy

import numpy as np
import pytest

import routecalc
from routecalc import advice
from routecalc.chains import compile_worksheet
from routecalc.engine.ev import expected_values
from routecalc.worksheet import StepSpec
from tests.conftest import shipped_worksheets
from tests.helpers import two_model_sheet, with_policies

CASCADE = {"name": "cascade", "kind": "cascade", "routes": {"t": ["small", "large"]}}
LARGE = {"name": "large-only", "kind": "static", "routes": {"t": "large"}}


def sheet(small: float = 0.8, large: float = 0.95, catch: float = 0.9, false_reject: float = 0.1, **top) -> dict:
    s = with_policies(two_model_sheet(**top), CASCADE, LARGE)
    s["tasks"][0]["pass_rates"] = {"small": small, "large": large}
    s["tasks"][0]["validator"] |= {"catch": catch, "false_reject": false_reject}
    return s


def advised(s: dict, kind: str | None = None) -> list[advice.Advisory]:
    c = routecalc.compare(routecalc.validate_worksheet(s), samples=2_000, seed=0)
    assert c.advisories == [a.text for a in c.advice]
    return [a for a in c.advice if kind is None or a.kind == kind]


# ---------------------------------------------------------------------------------------------------------
# Escalation: recommend the direct route only when it is better


def test_escalation_recommends_the_direct_route_when_it_is_faster_at_equal_or_better_quality() -> None:
    # small 0.3: good 0.27 and bad 0.07 delivered, r = 0.66 escalates. Cascade: quality 0.27 + 0.66 x 0.95 = 0.897,
    # cost 0.002 + 0.66 x 0.020 = $0.0152, latency 5.7 + 0.66 x 11 = 12.96 s. Straight to large: 0.95, $0.020, 11 s:
    # better quality and faster (not cheaper)
    (a,) = advised(sheet(small=0.3), advice.ESCALATION)
    assert a.text == (
        "cascade / t: 66.0% of requests escalate (> 40%); sending t straight to large is faster at equal or better "
        "quality ($0.0200 vs $0.0152 per request, 11.00 vs 12.96 s mean, 95.00% vs 89.70% good)."
    )
    assert a.recommends == "t -> large"
    assert a.numbers == pytest.approx(
        {
            "cost": 0.0152,
            "quality": 0.897,
            "latency_s": 12.96,
            "direct_cost": 0.02,
            "direct_quality": 0.95,
            "direct_latency_s": 11.0,
            "escalation": 0.66,
        }
    )


def test_escalation_says_what_the_cascade_buys_when_the_direct_route_is_not_better() -> None:
    # small 0.5 with a perfect check: 0.5 delivered good, r = 0.5 escalates (> 40 %). Cascade: quality
    # 0.5 + 0.5 x 0.9 = 0.95, cost 0.002 + 0.5 x 0.020 = $0.012, latency 5.7 + 0.5 x 11 = 11.2 s; straight to large
    # (0.9): quality 0.90, $0.020, 11 s. Faster, but worse: the cascade saves (0.020 - 0.012) x 1,000 = $8/month.
    (a,) = advised(sheet(small=0.5, large=0.9, catch=1.0, false_reject=0.0), advice.ESCALATION)
    assert a.recommends is None
    assert a.text == (
        "cascade / t: 50.0% of requests escalate (> 40%), but the cascade saves $8.00/mo against sending t straight "
        "to large at equal or better quality (95.00% vs 90.00% good, 11.20 vs 11.00 s mean)."
    )


def test_escalation_at_lower_quality_says_so() -> None:
    # small 0.5625: r = 0.9 - 0.8 x 0.5625 = 0.45; cascade quality 0.50625 + 0.45 x 0.95 = 0.93375 < 0.95,
    # cost $0.011 (saves $9/month), latency 5.7 + 0.45 x 11 = 10.65 s < 11 s: cheaper and faster, but worse
    (a,) = advised(sheet(small=0.5625), advice.ESCALATION)
    assert a.recommends is None
    assert a.text.startswith("cascade / t: 45.0% of requests escalate (> 40%), but the cascade saves $9.00/mo")
    assert "pp lower quality (93.38% vs 95.00% good, 10.65 vs 11.00 s mean)" in a.text


def test_escalation_that_costs_more_says_what_quality_it_buys() -> None:
    # small at $15 / $30 per 1M: $0.030 per request, dearer than large. small 0.5, perfect check, large 0.9:
    # cascade quality 0.95 for 0.030 + 0.5 x 0.020 = $0.040 against large's 0.90 for $0.020: +5 pp for $20/month
    s = sheet(small=0.5, large=0.9, catch=1.0, false_reject=0.0)
    s["models"][0].update(price_in=15.0, price_out=30.0)
    (a,) = advised(s, advice.ESCALATION)
    assert a.recommends is None
    assert "but the cascade buys +5.00 pp quality for $20.00/mo more than sending t straight to large" in a.text


def test_direct_route_advice_without_escalation() -> None:
    # small dearer than large ($0.030): r = 0.26 (< 40 %), cascade $0.030 + 0.26 x 0.020 = $0.0352 and quality
    # 0.72 + 0.26 x 0.99 = 0.9774 against large's 0.99 for $0.020: cheaper at better quality, $15.20/month less
    s = sheet(large=0.99)
    s["models"][0].update(price_in=15.0, price_out=30.0)
    assert not advised(s, advice.ESCALATION)
    (a,) = advised(s, advice.DIRECT)
    assert a.recommends == "t -> large"
    assert a.text.startswith("cascade / t: sending t straight to large is cheaper at equal or better quality")
    assert a.text.endswith("$15.20/mo less).")


def test_no_route_advice_when_the_cascade_is_better_and_escalates_little() -> None:
    # the default: r = 0.26, cascade 0.967 for $0.0072 against large's 0.95 for $0.020
    assert not advised(sheet(), advice.ESCALATION) and not advised(sheet(), advice.DIRECT)


# ---------------------------------------------------------------------------------------------------------
# Gates, catalog, volume


@pytest.mark.parametrize(("catch", "fires"), [(0.4, True), (0.5, False)])
def test_weak_validator(catch: float, fires: bool) -> None:
    # threshold 0.9 allows 10 % wrong; small's bad answers (20 %) get past the check with 1 - catch:
    # 0.2 x 0.6 = 12 % > 10 % (fires); 0.2 x 0.5 = 10 % (does not)
    got = advised(sheet(catch=catch), advice.WEAK_VALIDATOR)
    assert bool(got) == fires
    if fires:
        assert got[0].text.startswith("t: the validator catches 40.0% of bad answers, so 12.00% of small's answers")
        assert "more than the 10.00% of requests the 90.0% quality threshold allows" in got[0].text
        assert "(cascade)" in got[0].text


@pytest.mark.parametrize(("cost", "fires"), [(0.0015, True), (0.0009, False)])
def test_costly_gate(cost: float, fires: bool) -> None:
    # small's answer costs $0.002; the check $0.0015 (75 %, over half) or $0.0009 (45 %)
    s = sheet()
    s["tasks"][0]["validator"]["cost_per_call"] = cost
    got = advised(s, advice.COSTLY_GATE)
    assert bool(got) == fires
    if fires:
        assert got[0].text.startswith("t: the validator costs $0.00150 per check, 75% of what small's answer costs")
        assert got[0].model == "small"  # large's step is the last: delivered ungated, never checked


def test_costly_gate_reads_tokens() -> None:
    # a judge at $2 per 1M tokens reads 1,000 + 500 tokens: $0.003 per check, 150 % of small's $0.002
    s = sheet()
    s["tasks"][0]["validator"]["cost_per_1m_tokens"] = 2.0
    (a,) = advised(s, advice.COSTLY_GATE)
    assert a.numbers == pytest.approx({"gate_cost": 0.003, "answer_cost": 0.002})


@pytest.mark.parametrize(("rate", "fires"), [(0.03, True), (0.02, False)])
def test_failure_rate(rate: float, fires: bool) -> None:
    s = sheet()
    s["models"][1]["failure_rate"] = rate
    got = advised(s, advice.FAILURE_RATE)
    assert bool(got) == fires
    if fires:
        assert got[0].text.startswith("large (openai): 3.0% of tries fail (> 2%)")


def test_failure_rate_of_an_unused_model_is_not_advice() -> None:
    s = with_policies(sheet(), LARGE)
    s["models"][0]["failure_rate"] = 0.1  # small: no policy calls it
    assert not advised(s, advice.FAILURE_RATE)


@pytest.mark.parametrize(("volume", "fires"), [(999, True), (1000, False)])
def test_low_volume(volume: int, fires: bool) -> None:
    s = sheet(volume={"requests_per_month": volume})
    got = advised(s, advice.LOW_VOLUME_KIND)
    assert bool(got) == fires
    if fires:
        # the dearest policy, large: 999 x $0.020 = $19.98; the cheapest meeting every target, the cascade: $7.19
        assert got[0].text.startswith(
            "Only 999 requests a month: the dearest policy costs $19.98/mo and the cheapest meeting every target "
            "(cascade) $7.19/mo."
        )


@pytest.mark.parametrize(("cached_share", "fires"), [(0.0, True), (0.2, False)])
def test_ignored_price(cached_share: float, fires: bool) -> None:
    s = sheet()
    s["models"][0]["price_cache"] = 0.5
    s["tasks"][0]["cached_share"] = cached_share
    got = advised(s, advice.IGNORED_PRICE)
    assert bool(got) == fires
    if fires:
        assert got[0].text.startswith("small: price_cache ($0.500 per 1M tokens) is given, but no category it serves")
    else:  # the price is used: 20 % of 1,000 input tokens at $0.50 instead of $1 per 1M saves $0.0001 a request
        c = routecalc.compare(routecalc.validate_worksheet(s), samples=2_000)
        assert c.policy("cascade").cost_per_request == pytest.approx(0.0072 - 0.0001)


# ---------------------------------------------------------------------------------------------------------
# No advisory contradicts the numbers


ROUTE_CASES = [
    *[pytest.param(p, id=p.stem) for p in shipped_worksheets()],
    pytest.param(sheet(small=0.3), id="escalating"),
    pytest.param(sheet(small=0.5, large=0.9, catch=1.0, false_reject=0.0), id="worth-it"),
]


def direct_check(ws: routecalc.Worksheet, policy: str, category: str, last: str) -> tuple[np.ndarray, np.ndarray]:
    """The cascade and the same policy with ``category`` sent straight to ``last``, as two worksheet policies:
    ``(2, 3)`` cost, quality and mean latency of that category (independent of ``direct_variants``)."""
    pol = ws.policy(policy)
    straight = pol.model_copy(update={"name": "straight", "routes": {**pol.routes, category: [StepSpec(model=last)]}})
    problem = compile_worksheet(ws.model_copy(update={"policies": [pol, straight]}), include_strongest=False)
    ev = expected_values(problem)
    c = list(problem.tasks.names).index(category)
    return np.stack([ev.cost[:, c], ev.quality[:, c], ev.latency[:, c]], axis=-1), ev.escalation[:, c]


@pytest.mark.parametrize("source", ROUTE_CASES)
def test_route_advice_is_backed_by_the_numbers(source) -> None:
    ws = routecalc.load_worksheet(source) if not isinstance(source, dict) else routecalc.validate_worksheet(source)
    c = routecalc.compare(ws, samples=5_000, seed=0)
    checked = 0
    for a in c.advice:
        if a.kind not in (advice.ESCALATION, advice.DIRECT):
            continue
        assert a.policy is not None and a.category is not None and a.model is not None
        (cascade, straight), esc = direct_check(ws, a.policy, a.category, a.model)
        # the advisory quotes the comparison's numbers for the cascade ...
        row = next(r for r in c.policy(a.policy).categories if r.category == a.category)
        assert a.numbers is not None
        assert (a.numbers["cost"], a.numbers["quality"]) == pytest.approx((row.cost_per_request, row.quality))
        assert a.numbers["escalation"] == pytest.approx(esc[0])
        # ... and the direct route's, as an independent compile of it gives them
        assert (a.numbers["direct_cost"], a.numbers["direct_quality"], a.numbers["direct_latency_s"]) == (
            pytest.approx(tuple(straight))
        )
        better = straight[1] >= cascade[1] - 1e-9 and (straight[0] < cascade[0] or straight[2] < cascade[2])
        assert (a.recommends is not None) == better, a.text
        checked += 1
    if isinstance(source, dict):
        assert checked == 1
    # every cascade category escalating more than 40 % is discussed, and only those or better direct routes
    ch = c.problem.chains
    for p, name in enumerate(ch.names):
        if ch.kinds[p] != "cascade":
            continue
        for k, cat in enumerate(c.problem.tasks.names):
            discussed = any(a.policy == name and a.category == cat for a in c.advice if a.kind == advice.ESCALATION)
            multi = (ch.model[p, k, 0] >= 0).sum() >= 2
            assert discussed == bool(multi and c.ev.escalation[p, k] > advice.ESCALATION_WARN)


def test_report_lists_escalation_advice_from_the_comparison() -> None:
    from routecalc.report import build
    from routecalc.report.document import md_escape, to_markdown
    from tests.conftest import TODAY

    ws = routecalc.validate_worksheet(sheet(small=0.3))
    c = routecalc.compare(ws, samples=2_000)
    md = to_markdown(build.report_document(ws, c, None, TODAY))
    (a,) = [a for a in c.advice if a.kind == advice.ESCALATION]
    section = md.split("## Cascades escalating more than 40%")[1].split("##")[0]
    assert md_escape(a.text) in section
    assert copy.deepcopy(c.advisories) == [x.text for x in c.advice]


# ---------------------------------------------------------------------------------------------------------
# Price-map fields that change a bill: imported now (prices update, diff --prices), the rest reported


def test_price_map_fields_that_change_a_bill_are_imported_not_ignored() -> None:
    from routecalc import prices

    ws = routecalc.validate_worksheet(sheet())
    per_token = {"input_cost_per_token": 1e-6, "output_cost_per_token": 2e-6, "litellm_provider": "openai"}
    price_map = {
        # small: a long-prompt tier, a cache-write price and a batch price: each becomes a worksheet field
        "small": per_token
        | {
            "input_cost_per_token_above_200k_tokens": 2e-6,
            "cache_creation_input_token_cost": 1.25e-6,
            "input_cost_per_token_batches": 5e-7,
            "input_cost_per_token_priority": 2e-6,  # a service tier the estimate does not bill: reported
        },
        # large: reasoning tokens at the output price and a cache write at the input price
        "large": {
            "input_cost_per_token": 1e-5,
            "output_cost_per_token": 2e-5,
            "output_cost_per_reasoning_token": 2e-5,
            "cache_creation_input_token_cost": 1e-5,
            "litellm_provider": "openai",
        },
    }
    small, large = prices.price_updates(ws, price_map)
    # per token x 1e6 = per 1M tokens; the tier's output price is the standard one (the map gives none above 200k)
    assert {f.field: f.new for f in small.fields} == {
        "price_cache_write": 1.25,
        "price_in_batch": 0.5,
        "long_context.above_tokens": 200_000,
        "long_context.price_in": 2.0,
        "long_context.price_out": 2.0,
    }
    assert small.unused == ("input_cost_per_token_priority",)
    assert {f.field: f.new for f in large.fields} == {"price_cache_write": 10.0, "price_reasoning": 20.0}
    assert large.unused == ()
    summary = prices.unused_summary([small, large])
    assert summary is not None and "input_cost_per_token_priority (small)" in summary
