"""From engine arrays to the answer: targets, winner, nearest miss, baselines, advisories."""

from __future__ import annotations

import datetime as dt

import pytest

import routecalc
from routecalc.chains import STRONGEST
from routecalc.results import INDEPENDENCE_NOTE, WINNER_RULES, pick_winner
from tests.helpers import fixed_model, two_model_sheet, with_policies

SMALL = {"name": "small", "kind": "static", "routes": {"t": "small"}}
LARGE = {"name": "large", "kind": "static", "routes": {"t": "large"}}
CASCADE = {"name": "cascade", "kind": "cascade", "routes": {"t": ["small", "large"]}}


def run(sheet: dict, **kw) -> routecalc.Comparison:
    return routecalc.compare(routecalc.validate_worksheet(sheet), samples=20_000, seed=1, **kw)


def test_winner_is_the_cheapest_policy_meeting_every_target() -> None:
    # threshold 0.9: small (0.80) misses; cascade (0.967, $0.0072) and large (0.95, $0.020) meet it
    c = run(with_policies(two_model_sheet(), SMALL, LARGE, CASCADE))
    assert [p.meets_targets for p in c.policies] == [False, True, True, True]
    assert c.winner == "cascade"
    assert c.policy("small").nearest_miss == "t: quality 80.00% < 90.00% (10.00 pp short)"


def test_latency_budget_is_a_p95_target() -> None:
    sheet = with_policies(two_model_sheet(), SMALL, LARGE)
    sheet["tasks"][0]["latency_budget_s"] = 10  # fixed latencies: large takes 11 s, small 5.5 s
    sheet["tasks"][0]["quality_threshold"] = 0.5
    c = run(sheet)
    assert c.policy("large").categories[0].p95_s == pytest.approx(11.0, rel=0.01)
    assert not c.policy("large").meets_targets
    assert "P95 11.0" in c.policy("large").nearest_miss
    assert c.winner == "small"


def test_no_winner_says_so() -> None:
    sheet = with_policies(two_model_sheet(), SMALL)
    sheet["tasks"][0]["quality_threshold"] = 0.99
    c = run(sheet)
    assert c.winner is None
    assert pick_winner(c.policies) is None


def test_all_to_strongest_is_always_there_and_default_baseline() -> None:
    c = run(with_policies(two_model_sheet(), SMALL))
    assert c.strongest_model == "large"
    assert c.baseline == STRONGEST
    strongest = c.policy(STRONGEST)
    small = c.policy("small")
    assert strongest.monthly_cost == pytest.approx(20.0)  # 1000 requests x $0.020
    # cost change vs baseline: (0.002 - 0.020) x 1000 = -$18/month (it saves), -90 %
    assert small.cost_change_monthly == pytest.approx(-18.0)
    assert small.cost_change_pct == pytest.approx(-90.0)


def test_named_baseline() -> None:
    c = run(with_policies(two_model_sheet(baseline="small"), SMALL, LARGE))
    assert c.baseline == "small"
    assert c.policy("large").cost_change_monthly == pytest.approx(18.0)  # costs $18/month more than small


def test_independence_note_names_the_categories() -> None:
    sheet = with_policies(two_model_sheet(), CASCADE)
    c = run(sheet)
    assert any(w.startswith(INDEPENDENCE_NOTE) and "Assumed in t;" in w for w in c.warnings)


def test_stale_review_warning_uses_the_given_date() -> None:
    sheet = with_policies(two_model_sheet(), SMALL)
    sheet["tasks"][0]["last_reviewed"] = dt.date(2026, 8, 1)
    assert any("116 days ago" in w for w in run(sheet, today=dt.date(2026, 11, 25)).warnings)
    assert not any("days ago" in w for w in run(sheet, today=dt.date(2026, 9, 1)).warnings)


def test_to_dict_is_json_ready(support_cmp: routecalc.Comparison) -> None:
    import json

    d = json.loads(json.dumps(support_cmp.to_dict()))
    assert d["currency"] == "USD"
    assert {p["name"] for p in d["policies"]} >= {"today", STRONGEST}
    assert d["winner"] == support_cmp.winner


def test_a_category_without_traffic_cannot_miss_its_budget() -> None:
    sheet = with_policies(two_model_sheet(), SMALL)
    idle = sheet["tasks"][0] | {"name": "idle", "traffic_share": 0.0, "latency_budget_s": 1, "quality_threshold": 0}
    sheet["tasks"].append(idle)
    sheet["policies"][0]["routes"]["idle"] = "small"
    sheet["tasks"][0]["quality_threshold"] = 0.5
    c = run(sheet)
    idle_result = c.policy("small").categories[1]
    assert c.problem.tasks.share[1] == 0 and c.mc.n[1] == 0
    assert idle_result.latency_ok and c.policy("small").meets_targets


def objective_sheet() -> dict:
    """Three static policies that each win under one objective (threshold 0.8, bad answers cost $1 each):

    small: $0.002, 80 % good, 5.5 s (0.5 + 500 x 0.01)       -> cost + risk = 0.002 + 0.20 x $1 = $0.202
    large: $0.020, 95 % good, 11 s (1.0 + 500 x 0.02)        -> cost + risk = 0.020 + 0.05 x $1 = $0.070
    quick: $0.010 (1000 x 5e-6 + 500 x 1e-5), 85 %, 0.6 s    -> cost + risk = 0.010 + 0.15 x $1 = $0.160
    """
    sheet = two_model_sheet()
    sheet["models"].append(fixed_model("quick", 5.0, 10.0, ttft=0.1, tpot=0.001))
    task = sheet["tasks"][0]
    task["quality_threshold"] = 0.8
    task["pass_rates"]["quick"] = 0.85
    task["cost_bad_answer"] = 1.0
    static = lambda m: {"name": m, "kind": "static", "routes": {"t": m}}
    return with_policies(sheet, static("small"), static("large"), static("quick"))


@pytest.mark.parametrize(("objective", "winner"), [("cost", "small"), ("cost+risk", "large"), ("latency", "quick")])
def test_objective_sets_the_winner_rule(objective: str, winner: str) -> None:
    c = run(objective_sheet(), objective=objective)
    assert all(p.meets_targets for p in c.policies)
    assert c.winner == winner
    assert c.objective == objective and c.winner_rule == WINNER_RULES[objective]


def test_unknown_objective_is_an_input_error() -> None:
    with pytest.raises(routecalc.InputError, match="unknown objective"):
        run(objective_sheet(), objective="vibes")
