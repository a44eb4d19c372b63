"""The time engine: traffic over time, outages, circuit breakers, rate limits, budget pacing, load routing.

Hand-computed cases for each effect, agreement with the per-request engines when every effect is off, an exact
match with a request-by-request reference, and invariants.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import routecalc
from routecalc.engine.compiled import numba_available
from routecalc.engine.timeline import (
    DAY_S,
    HOUR_S,
    MONTH_DAYS,
    BreakerSpec,
    BudgetSpec,
    Clock,
    Effects,
    LimitSpec,
    LoadSpec,
    OutageSpec,
    budget_checks,
    expected_arrivals,
    pro_rated,
    run_timeline,
)
from routecalc.engine.timeline_state import QueueState, queue_waits
from routecalc.engine.walk import DOWN_5XX, DOWN_TIMEOUT
from tests.helpers import fixed_model
from tests.test_engine_mc import rich_sheet
from tests.timeline_reference import ReferenceRun

# ---------------------------------------------------------------------------------------------------------
# Traffic


def test_flat_arrivals() -> None:
    # 14,400 requests a day in 1-minute buckets: 10 a minute
    c = expected_arrivals(14_400, 2, 60.0)
    assert c.expected.shape == (2 * 1440,) and np.allclose(c.expected, 10.0) and c.days == 2


def test_hourly_weekly_growth_and_spike_arrivals() -> None:
    hourly = np.ones(24)
    hourly[14] = 25.0  # mean (23 + 25) / 24 = 2: hour 14 gets 25 / 2 = 12.5x a day's average rate
    weekly = np.array([2.0, 1, 1, 1, 1, 1, 0])  # mean 1: Monday 2x, Sunday nothing
    c = expected_arrivals(2400.0, 7, 3600.0, hourly=hourly, weekly=weekly, spikes={3: 4.0})
    per_hour = c.expected.reshape(7, 24)
    # Monday (day 1) 14:00: 2400 / 24 x 12.5 x 2 = 2,500; 03:00: 100 x 0.5 x 2 = 100
    assert per_hour[0, 14] == pytest.approx(2500.0) and per_hour[0, 3] == pytest.approx(100.0)
    assert per_hour[2].sum() == pytest.approx(4 * 2400.0)  # Wednesday, the spike day: 4x
    assert per_hour[6].sum() == 0.0  # Sunday
    assert c.expected.sum() == pytest.approx(2400 * (2 + 1 + 4 + 1 + 1 + 1 + 0))
    # growth: +10 % over a month, compounded smoothly: the bucket at t has (1.1)^(t / month)
    g = expected_arrivals(1440.0, 30, 60.0, growth_per_month=0.1)
    t = (np.arange(g.expected.size) + 0.5) * 60.0
    np.testing.assert_allclose(g.expected, 1.0 * 1.1 ** (t / (MONTH_DAYS * DAY_S)))
    with pytest.raises(ValueError, match="divide an hour"):
        expected_arrivals(1.0, 1, 7.0)


def test_pro_rated_budget_and_checks() -> None:
    # a daily budget of $24: linear pace is $1 an hour; checks every 6 h plus each day's start
    t, pace, reset = budget_checks(2, 24.0, DAY_S, 6 * HOUR_S)
    np.testing.assert_allclose(t / HOUR_S, [0, 6, 12, 18, 24, 30, 36, 42])
    np.testing.assert_allclose(pace, [0, 6, 12, 18, 0, 6, 12, 18])
    assert reset.tolist() == [True, False, False, False, True, False, False, False]
    # paced by a shape: all of the day's weight in hours 12-17 -> at 15:00 half of it is spent
    shape = np.zeros(48)
    shape[12:18] = shape[36:42] = 1.0
    assert pro_rated(np.array([15 * HOUR_S]), 24.0, DAY_S, shape)[0] == pytest.approx(12.0)
    assert pro_rated(np.array([DAY_S + 20 * HOUR_S]), 24.0, DAY_S, shape)[0] == pytest.approx(48.0)


def test_queue_waits_by_hand() -> None:
    # 2 calls a minute; 5 arrive at 0..4 s: two go now, two wait for minute 1 (60 - t), one for minute 2
    waits, st = queue_waits(np.array([0.0, 1, 2, 3, 4]), np.ones(5), np.zeros(5), 2.0, np.inf, QueueState())
    np.testing.assert_allclose(waits, [0, 0, 58, 57, 116])
    assert st.calls == 3.0 and st.minute == 0  # backlog after minute 0: 5 - 2
    # minute 1 sends two of those three (the 2 s and 3 s calls); minute 2 the 4 s call and the first of two
    # arriving at 61 s and 62 s (3 ahead of it: minute 1 + 3 // 2 = 2, 120 - 61 s), minute 3 the other (180 - 62)
    waits, st = queue_waits(np.array([61.0, 62.0]), np.ones(2), np.zeros(2), 2.0, np.inf, st)
    np.testing.assert_allclose(waits, [59.0, 118.0])
    assert st.calls == 3.0 and st.minute == 1  # backlog after minute 1: 3 + 2 - 2


# ---------------------------------------------------------------------------------------------------------
# Small worksheets


def pair_sheet(**top) -> dict:
    """One category, fixed tokens (1000 in, 500 out): 'a' answers for $0.002 in 1 s, 'b' for $0.020 in 2 s."""
    return {
        "name": "pair",
        "volume": {"requests_per_day": 1000},
        "defaults": {"retries": 0},
        "models": [
            fixed_model("a", 1.0, 2.0, ttft=0.5, tpot=0.001, timeout_s=20) | {"provider": "p"},
            fixed_model("b", 10.0, 20.0, ttft=1.0, tpot=0.002, timeout_s=20) | {"provider": "q"},
        ],
        "tasks": [
            {
                "name": "t",
                "traffic_share": 1.0,
                "tokens_in": 1000,
                "tokens_out": 500,
                "quality_threshold": 0.8,
                "pass_rates": {"a": 0.8, "b": 0.9},
            }
        ],
        "policies": [
            {"name": "fallback", "kind": "fallback", "routes": {"t": ["a", "b"]}},
            {"name": "dear", "kind": "static", "routes": {"t": "b"}},
            {"name": "cheap", "kind": "static", "routes": {"t": "a"}},
        ],
    } | top


def compiled(sheet: dict) -> routecalc.RoutingProblem:
    return routecalc.compile_worksheet(routecalc.validate_worksheet(sheet))


def run(problem, policy: str, clock: Clock, fx: Effects | None = None, seed: int = 1, **kw):
    return run_timeline(problem, problem.chains.names.index(policy), clock, fx or Effects(), seed, **kw)


# ---------------------------------------------------------------------------------------------------------
# Every effect off: the per-request engines' numbers


@pytest.mark.parametrize("policy", ["cascade", "fallback", "chain", "cascade-human"])
def test_agrees_with_expected_values_when_every_effect_is_off(policy: str) -> None:
    problem = compiled(rich_sheet())
    ev = routecalc.expected_values(problem)
    p = problem.chains.names.index(policy)
    w = problem.tasks.share
    tl = run(problem, policy, expected_arrivals(10_000, 12, 60.0), seed=3)
    n = tl.total("requests")
    assert abs(n - 120_000) < 5 * np.sqrt(120_000)  # Poisson counts
    cost, lat = tl.total("spend") / n, tl.total("latency") / n
    cost_sd = np.sqrt(tl.cost2 / n - cost**2)
    lat_sd = np.sqrt(tl.latency2 / n - lat**2)
    assert abs(cost - ev.cost[p] @ w) <= 4 * cost_sd / np.sqrt(n)
    assert abs(lat - ev.latency[p] @ w) <= 4 * lat_sd / np.sqrt(n)
    for name, rate in (("failed", ev.failed[p] @ w), ("good", (ev.quality[p] - ev.human[p]) @ w)):
        got = tl.total(name) / n
        assert abs(got - rate) <= 4 * np.sqrt(rate * (1 - rate) / n) + 1e-12, (name, got, rate)


def test_bills_batch_shares_like_the_expected_values() -> None:
    """The time engine draws the batch uniform and bills per billing mode like Monte Carlo. pair_sheet's cheap
    policy on a ($1 in / $2 out per 1M, 1000 / 500 tokens = $0.002): batch prices half (a batched request $0.001),
    40 % batched: 0.6 x 0.002 + 0.4 x 0.001 = $0.0016 a request, which the EV engine also says."""
    sheet = pair_sheet()
    sheet["models"][0] |= {"price_in_batch": 0.5, "price_out_batch": 1.0}
    sheet["tasks"][0]["batch_share"] = 0.4
    problem = compiled(sheet)
    p = problem.chains.names.index("cheap")
    assert routecalc.expected_values(problem).cost[p, 0] == pytest.approx(0.0016)
    tl = run(problem, "cheap", expected_arrivals(20_000, 1, 60.0), seed=4)
    n = tl.total("requests")
    # per request $0.002 (60 %) or $0.001 (40 %): sd 0.001 x sqrt(0.6 x 0.4) = 0.00049 < 0.0005; 4 sigma
    assert abs(tl.total("spend") / n - 0.0016) <= 4 * 0.0005 / np.sqrt(n)
    assert tl.total("spend") / n < 0.0019  # not the standard price for all


def test_same_seed_same_bytes_and_a_longer_run_repeats_the_days() -> None:
    fx = Effects(breaker=BreakerSpec(np.array([True, True]), 2, 60.0, 60.0, True))
    sheet = pair_sheet()
    sheet["models"][0]["failure_rate"] = 0.2
    problem = compiled(sheet)
    a = run(problem, "fallback", expected_arrivals(20_000, 2, 60.0), fx, seed=9)
    b = run(problem, "fallback", expected_arrivals(20_000, 2, 60.0), fx, seed=9)
    c = run(problem, "fallback", expected_arrivals(20_000, 2, 60.0), fx, seed=10)
    longer = run(problem, "fallback", expected_arrivals(20_000, 3, 60.0), fx, seed=9)
    for k in a.hourly:
        np.testing.assert_array_equal(a.hourly[k], b.hourly[k])
        np.testing.assert_array_equal(a.hourly[k], longer.hourly[k][:48])
    np.testing.assert_array_equal(a.hist, b.hist)
    np.testing.assert_array_equal(a.breaker_open, b.breaker_open)
    assert not np.array_equal(a.hourly["spend"], c.hourly["spend"])
    assert longer.total("spend") > a.total("spend")


def busy_effects(problem) -> Effects:
    """Every effect at once, tuned so each acts many times in a day of 3,000 requests."""
    a, b = problem.models.names.index("a"), problem.models.names.index("b")
    check_t, pace, reset = budget_checks(1, 9.0, DAY_S, 600.0)
    return Effects(
        outages=(
            OutageSpec((a,), 0.0, 10 * HOUR_S, np.log(90), 0.0, DOWN_TIMEOUT),
            OutageSpec((b,), 3.0, np.nan, np.log(20), 0.5, DOWN_5XX),
        ),
        breaker=BreakerSpec(np.array([True, True]), 3, 60.0, 45.0, True),
        limits=LimitSpec(np.array([3.0, np.inf]), np.array([np.inf, 3000.0]), False),
        budget=BudgetSpec(
            problem.chains.names.index("cheap"), np.array([True]), check_t, pace, reset, 0.9, 0.8, 9.0, DAY_S
        ),
        load=LoadSpec(problem.chains.names.index("dear"), np.array([True]), 2.5),
    )


def busy_sheet() -> dict:
    sheet = pair_sheet(defaults={"retries": 1, "backoff_s": 0.2})
    sheet["models"][0] |= {"failure_rate": 0.05, "timeout_share": 0.5}
    sheet["models"][1] |= {"failure_rate": 0.03}
    return sheet


HOURLY = np.array([1, 1, 1, 1, 1, 1, 2, 4, 6, 8, 9, 10, 10, 9, 8, 8, 7, 6, 4, 3, 2, 2, 1, 1.0])


@pytest.mark.parametrize("window", [256, 16384], ids=["small-windows", "one-window"])
@pytest.mark.parametrize("probe", [True, False], ids=["probe", "reset"])
def test_matches_a_request_by_request_reference_exactly(probe: bool, window: int, monkeypatch) -> None:
    import routecalc.engine.timeline as engine

    monkeypatch.setattr(engine, "FIRST_WINDOW", window)  # state carried across window boundaries, or not
    problem = compiled(busy_sheet())
    fx = busy_effects(problem)
    fx = Effects(fx.outages, BreakerSpec(np.array([True, True]), 3, 60.0, 45.0, probe), fx.limits, fx.budget, fx.load)
    clock = expected_arrivals(3000, 1, 60.0, hourly=HOURLY)
    got = run(problem, "fallback", clock, fx, seed=4, engine="numpy")
    runs: list[ReferenceRun] = []

    class Ref(ReferenceRun):
        def result(self):
            runs.append(self)
            return super().result()

    ref = run(problem, "fallback", clock, fx, seed=4, engine="numpy", runner=Ref)
    for k in got.hourly:
        np.testing.assert_array_equal(got.hourly[k], ref.hourly[k], err_msg=k)
    np.testing.assert_array_equal(got.hist, ref.hist)
    r = runs[0]
    assert sorted(map(tuple, got.breaker_open.tolist())) == sorted((float(m), s, e) for m, s, e in r.ref_open)
    assert sorted(map(tuple, got.filled.tolist())) == sorted((float(m), float(w)) for m, w in r.ref_filled)
    # and every effect did act
    for k in ("downgraded", "load_routed", "breaker_skipped", "spilled", "outage_hit"):
        assert got.total(k) > 0, k
    assert got.walks > 2  # windows were walked again


@pytest.mark.skipif(not numba_available(), reason="numba is not installed")
def test_compiled_walk_gives_the_same_month() -> None:
    problem = compiled(busy_sheet())
    clock = expected_arrivals(3000, 2, 60.0, hourly=HOURLY)
    a = run(problem, "fallback", clock, busy_effects(problem), engine="numpy")
    b = run(problem, "fallback", clock, busy_effects(problem), engine="numba")
    for k in a.hourly:
        np.testing.assert_array_equal(a.hourly[k], b.hourly[k], err_msg=k)
    np.testing.assert_array_equal(a.hist, b.hist)


# ---------------------------------------------------------------------------------------------------------
# Each effect by hand


def test_budget_rule_crosses_on_the_spike_day() -> None:
    """'dear' costs $0.020 a request, 'cheap' $0.002; 500 requests a day ($10) and 20x on day 10 ($200).

    Monthly budget $608.33 -> linear pace $20 a day; checked every 6 hours; downgrade over 90 % of pace, resume
    under 80 %. Days 1-9: spend / pace = 0.5. Day 10 at 06:00: $90 + 50 = 140 < 0.9 x 185 = 166.5; at 12:00:
    $90 + 100 = 190 > 0.9 x 190 = 171: downgraded (the spike costs $20 a day from there: $200 by midnight).
    Then $1 a day against the 80 % line rising $16 a day from 0.8 x 200 = 160: 200 + d < 160 + 16 d for
    d > 2.67 days: the check on day 13 at 18:00 ($202.75 < 0.8 x 255 = 204) resumes (at 12:00, 202.5 > 200:
    the spend's noise, about $2, could bring that forward one check). Never again: $10 a day against $18.
    Downgraded: 10,000 x 12 / 24 + 500 x 2 + 500 x 18 / 24 = 6,375 requests (6,250 if at 12:00).
    """
    problem = compiled(pair_sheet(volume={"requests_per_day": 500}))
    budget = 20 * MONTH_DAYS
    check_t, pace, reset = budget_checks(16, budget, MONTH_DAYS * DAY_S, 6 * HOUR_S)
    rule = BudgetSpec(problem.chains.names.index("cheap"), np.array([True]), check_t, pace, reset, 0.9, 0.8,
                      budget, MONTH_DAYS * DAY_S)  # fmt: skip
    tl = run(problem, "dear", expected_arrivals(500, 16, 60.0, spikes={10: 20.0}), Effects(budget=rule), seed=2)
    down = np.flatnonzero(tl.hourly["downgraded"])
    assert down[0] == 9 * 24 + 12  # day 10, 12:00
    assert 12 * 24 + 12 <= down[-1] <= 12 * 24 + 17  # day 13, before the 18:00 check (or the 12:00 one)
    assert np.array_equal(np.unique(down // 24), [9, 10, 11, 12])  # days 10-13 only
    assert 6_250 * 0.95 <= tl.total("downgraded") <= 6_375 * 1.05
    # the verdicts the checks recorded say the same: on from day 10 12:00
    assert tl.budget_t[tl.budget_on].min() == 9 * DAY_S + 12 * HOUR_S


def outage_sheet() -> dict:
    """'a' first, 'b' after it; no random failures; 10 requests a minute."""
    return pair_sheet(volume={"requests_per_day": 14_400})


def outage_run(breaker: BreakerSpec | None, error: int = DOWN_TIMEOUT):
    problem = compiled(outage_sheet())
    down = OutageSpec((0,), 0.0, 10 * HOUR_S, np.log(60.0), 0.0, error)  # 'a' down 10:00-11:00 on day 1
    return run(problem, "fallback", expected_arrivals(14_400, 1, 60.0), Effects((down,), breaker), seed=5)


def test_outage_without_a_breaker_every_request_pays_the_timeout() -> None:
    tl = outage_run(None)
    n = tl.total("outage_hit")
    assert abs(n - 600) < 4 * np.sqrt(600)  # every request of the hour calls 'a'
    assert tl.total("outage_timeouts") == n  # one try each (no retries), each a 20 s timeout
    assert tl.total("failed") == 0  # 'b' answers them all
    assert tl.hourly["latency"][10] / tl.hourly["requests"][10] == pytest.approx(20 + 2.0)


def test_outage_with_a_breaker_pays_k_timeouts_plus_one_per_probe() -> None:
    """allowed_fails 3, cool-down 60 s, probe: 3 timeouts open it; then every ~66 s (60 s + the wait for the
    next request, 6 s on average at 10 a minute) one probe times out and reopens it: ~54 probes in the hour,
    and the probe after 11:00 closes it."""
    tl = outage_run(BreakerSpec(np.array([True, True]), 3, 60.0, 60.0, True))
    openings = len(tl.breaker_open)
    assert tl.total("outage_timeouts") == 3 + (openings - 1)  # k, then one per failed probe
    assert 45 <= openings <= 61
    assert tl.total("failed") == 0
    opened = tl.breaker_open[:, 1:]
    assert opened[0, 0] == pytest.approx(10 * HOUR_S, abs=60)  # within the first minute of the outage
    assert opened[-1, 1] <= 11 * HOUR_S + 60 + 60  # the last opening ends a cool-down after the outage
    assert tl.total("breaker_skipped") == pytest.approx(600 - openings - 2, abs=4 * np.sqrt(600))
    # the LiteLLM way (reset): each cycle pays allowed_fails timeouts again, in one clock minute: 3, or up to
    # 2 more when the first ones fall at the end of a minute (the count starts afresh in the next one)
    reset = outage_run(BreakerSpec(np.array([True, True]), 3, 60.0, 60.0, False))
    n = len(reset.breaker_open)
    assert 3 * n <= reset.total("outage_timeouts") <= 5 * n + 2
    assert reset.total("outage_timeouts") > 2 * tl.total("outage_timeouts")


def test_rate_limit_spills_half_of_a_peak_twice_its_size() -> None:
    """200 a minute in hour 14 (10 a minute otherwise), rpm 100 on 'a': each peak minute sends 100 and spills
    N - 100 of its N ~ Poisson(200) requests to 'b': half the peak (P(N < 100) is ~1e-15)."""
    hourly = np.ones(24)
    hourly[14] = 20.0  # mean 43 / 24: 20x the other hours
    per_day = 10 * 1440 * 43 / 24  # 10 a minute off-peak
    problem = compiled(pair_sheet())
    limits = LimitSpec(np.array([100.0, np.inf]), np.array([np.inf, np.inf]), False)
    tl = run(problem, "fallback", expected_arrivals(per_day, 2, 60.0, hourly=hourly), Effects(limits=limits))
    peak = tl.hourly["requests"].reshape(2, 24)[:, 14].sum()
    spilled = tl.hourly["spilled"].reshape(2, 24)
    assert spilled[:, 14].sum() == peak - 2 * 60 * 100  # exactly the excess
    assert spilled[:, 14].sum() / peak == pytest.approx(0.5, abs=4 * np.sqrt(0.25 / peak))
    assert spilled.sum() == spilled[:, 14].sum()  # nothing off-peak
    assert len(tl.filled) == 120
    # spilled requests pay 'b': $0.020 instead of $0.002
    peak_cost = tl.hourly["spend"].reshape(2, 24)[:, 14].sum()
    assert peak_cost == pytest.approx(12_000 * 0.002 + (peak - 12_000) * 0.020)
    # queued instead: nothing spills, the backlog grows 100 a minute and drains 90 a minute after the peak
    q = run(problem, "fallback", expected_arrivals(per_day, 1, 60.0, hourly=hourly),
            Effects(limits=LimitSpec(limits.rpm, limits.tpm, True)))  # fmt: skip
    assert q.total("spilled") == 0 and q.total("queued") > 5_000
    assert q.total("spend") == pytest.approx(q.total("requests") * 0.002)
    # the last of the peak waits for the ~6,000 ahead of it: about 60 minutes
    assert q.hourly["wait"][14] / q.hourly["queued"][14] == pytest.approx(30 * 60, rel=0.1)


def test_load_routing_follows_the_previous_minute() -> None:
    """Above 50 a minute (the previous bucket's arrivals), 't' takes 'dear''s route: the peak hour of 200 a
    minute is routed from its second minute on, and the minute after it too (its predecessor was a peak one)."""
    hourly = np.ones(24)
    hourly[14] = 20.0
    per_day = 10 * 1440 * 43 / 24
    problem = compiled(pair_sheet())
    load = LoadSpec(problem.chains.names.index("dear"), np.array([True]), 50.0)
    tl = run(problem, "cheap", expected_arrivals(per_day, 1, 60.0, hourly=hourly), Effects(load=load))
    routed = tl.hourly["load_routed"]
    peak = tl.hourly["requests"][14]
    assert peak - 260 < routed[14] < peak  # all but the first minute (~200 requests)
    assert 0 < routed[15] < 30  # the first minute after the peak: ~10
    assert routed.sum() == routed[14] + routed[15]
    assert tl.total("spend") == pytest.approx((tl.total("requests") - routed.sum()) * 0.002 + routed.sum() * 0.020)


# ---------------------------------------------------------------------------------------------------------
# Invariants


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    k=st.integers(1, 5),
    cooldown=st.floats(5.0, 300.0),
    probe=st.booleans(),
    retries=st.integers(0, 2),
    fail=st.floats(0.0, 0.3),
    start_h=st.floats(0.0, 5.0),
    minutes=st.floats(1.0, 120.0),
    seed=st.integers(0, 1000),
)
def test_breaker_never_adds_timeouts_nor_failures_with_a_healthy_fallback(
    k: int, cooldown: float, probe: bool, retries: int, fail: float, start_h: float, minutes: float, seed: int
) -> None:
    """'a' (failing at random, and down for a while) first, 'b' never fails: with or without the breaker no
    request fails, and the breaker only ever saves calls to the down model (same requests, same uniforms)."""
    sheet = pair_sheet(defaults={"retries": retries})
    sheet["models"][0] |= {"failure_rate": fail, "timeout_share": 0.5}
    problem = compiled(sheet)
    clock = expected_arrivals(2880, 0.25, 60.0)  # 2 a minute, 6 hours
    down = (OutageSpec((0,), 0.0, start_h * HOUR_S, np.log(minutes), 0.0, DOWN_TIMEOUT),)
    on = run(problem, "fallback", clock, Effects(down, BreakerSpec(np.array([True, True]), k, 60.0, cooldown, probe)),
             seed=seed)  # fmt: skip
    off = run(problem, "fallback", clock, Effects(down), seed=seed)
    assert on.total("failed") == off.total("failed") == 0
    assert on.total("outage_timeouts") <= off.total("outage_timeouts")
    assert on.total("outage_hit") <= off.total("outage_hit")


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    budget=st.floats(1.0, 200.0),
    above=st.floats(0.3, 1.5),
    gap=st.floats(0.0, 0.3),
    check_min=st.sampled_from([1.0, 5.0, 30.0, 240.0]),
    daily=st.booleans(),
    seed=st.integers(0, 1000),
)
def test_a_budget_rule_never_adds_spend_when_its_route_costs_less(
    budget: float, above: float, gap: float, check_min: float, daily: bool, seed: int
) -> None:
    """Downgrading to 'cheap' ($0.002, never fails) from 'dear' ($0.020, never fails): every request costs the
    same or less, whatever the rule's verdicts, so the month does too."""
    problem = compiled(pair_sheet())
    period = DAY_S if daily else MONTH_DAYS * DAY_S
    check_t, pace, reset = budget_checks(3, budget, period, check_min * 60)
    rule = BudgetSpec(problem.chains.names.index("cheap"), np.array([True]), check_t, pace, reset, above,
                      max(0.01, above - gap), budget, period)  # fmt: skip
    clock = expected_arrivals(1000, 3, 300.0)
    with_rule = run(problem, "dear", clock, Effects(budget=rule), seed=seed)
    without = run(problem, "dear", clock, seed=seed)
    assert with_rule.total("spend") <= without.total("spend") + 1e-9
    assert with_rule.total("requests") == without.total("requests")
