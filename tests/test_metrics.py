"""Router-research metrics on tiny hand-computed cases.

The shared case: 4 prompts, a weak model (column 0, $1 per prompt) and a strong one (column 1, $10 per prompt).

    prompt   weak  strong
    p0        1      1
    p1        0      1
    p2        0      0
    p3        1      1

weak quality 2/4 = 0.5, strong 3/4 = 0.75; mean costs $1 and $10.
"""

from __future__ import annotations

import numpy as np
import pytest

from routecalc.data import metrics
from routecalc.errors import InputError

PASSED = np.array([[1, 1], [0, 1], [0, 0], [1, 1]], dtype=bool)
COST = np.array([[1.0, 10.0]] * 4)


def test_single_models_and_the_strong_model() -> None:
    pts = metrics.single_models(PASSED, COST)
    assert pts.quality == pytest.approx([0.5, 0.75])
    assert pts.cost == pytest.approx([1.0, 10.0])
    assert pts.strong == 1
    # a tie in quality goes to the cheaper model
    assert metrics.Points(cost=np.array([5.0, 2.0]), quality=np.array([0.9, 0.9])).strong == 1


def test_oracle_picks_the_cheapest_passing_model_else_the_cheapest() -> None:
    o = metrics.oracle(PASSED, COST)
    # p0 weak ($1), p1 strong ($10), p2 none passes -> cheapest (weak, $1), p3 weak ($1)
    assert o.choice.tolist() == [0, 1, 0, 0]
    assert o.cost == pytest.approx((1 + 10 + 1 + 1) / 4)  # 3.25
    assert o.quality == pytest.approx(3 / 4)
    assert o.share == pytest.approx([0.75, 0.25])


def test_savings_captured_against_the_strong_model() -> None:
    # strong $10, oracle $3.25: a policy at $5.50 captures (10 - 5.5) / (10 - 3.25) = 4.5 / 6.75 = 2/3
    assert metrics.savings_captured(5.5, 3.25, 10.0) == pytest.approx(2 / 3)
    assert metrics.savings_captured(12.0, 3.25, 10.0) < 0  # dearer than the strong model
    assert np.isnan(metrics.savings_captured(1.0, 10.0, 10.0))  # the oracle saves nothing


def test_zero_router_mixes_neighbouring_models() -> None:
    hull = metrics.zero_router(metrics.single_models(PASSED, COST))
    assert hull.index.tolist() == [0, 1]
    # at $5.50: half weak, half strong: 0.5 + 0.25 * (4.5 / 9) = 0.625
    assert hull.quality_at(5.5) == pytest.approx(0.625)
    assert hull.mix(5.5) == (0, 1, pytest.approx(0.5))
    assert hull.quality_at(20.0) == pytest.approx(0.75)  # paying more keeps the quality
    assert np.isnan(hull.quality_at(0.5))  # below the cheapest model: unreachable


def test_ndch_drops_points_below_a_chord_and_after_the_best() -> None:
    # (0, 0) cheapest: on; (0.5, 0): equal quality, dearer: off; (2, 1): the best: on; (3, 0.9): after the best:
    # off; (1.5, 0.9): above the chord (0, 0)-(2, 1) at 1.5 (0.75): on; (1, 0.4): below the chord
    # (0, 0)-(1.5, 0.9) at 1 (0.6): off
    c = np.array([0.0, 0.5, 1.0, 2.0, 3.0, 1.5])
    q = np.array([0.0, 0.0, 0.4, 1.0, 0.9, 0.9])
    h = metrics.ndch(c, q)
    assert h.cost.tolist() == [0.0, 1.5, 2.0]
    assert h.index.tolist() == [0, 5, 3]


def test_aiq_hand_computed() -> None:
    pts = metrics.single_models(PASSED, COST)
    # single models over [1, 10]: trapezoid (0.5 + 0.75) / 2 * 9 = 5.625; / 9 = 0.625
    assert metrics.aiq(pts.cost, pts.quality) == pytest.approx(0.625)
    # with the oracle point (3.25, 0.75): (0.5 + 0.75) / 2 * 2.25 + 0.75 * 6.75 = 1.40625 + 5.0625 = 6.46875; / 9
    o = metrics.oracle(PASSED, COST)
    c = np.r_[pts.cost, o.cost]
    q = np.r_[pts.quality, o.quality]
    assert metrics.aiq(c, q, (1.0, 10.0)) == pytest.approx(6.46875 / 9)
    # a router whose cheapest point is $4 adds nothing over [1, 4): 0.75 * 6 / 9 = 0.5
    assert metrics.aiq(np.array([4.0]), np.array([0.75]), (1.0, 10.0)) == pytest.approx(0.5)


def test_score_router_sweep_apgr_cpt() -> None:
    # scores p0 0.1, p1 0.9, p2 0.5, p3 0.5 (a tie: p2 and p3 move together)
    score = np.array([0.1, 0.9, 0.5, 0.5])
    s = metrics.score_router(PASSED, COST, score, weak=0, strong=1)
    # all weak: 0.5; + p1 (strong passes, weak fails): 0.75; + p2, p3 (no change): 0.75; + p0: 0.75
    assert s.threshold.tolist() == [np.inf, 0.9, 0.5, 0.1]
    assert s.strong_share == pytest.approx([0, 0.25, 0.75, 1.0])
    assert s.quality == pytest.approx([0.5, 0.75, 0.75, 0.75])
    assert s.pgr == pytest.approx([0, 1, 1, 1])  # (q - 0.5) / (0.75 - 0.5)
    # mean cost: $1, then + 0.25 * 9 = 3.25, + 0.5 * 9 = 7.75, + 0.25 * 9 = 10
    assert s.cost == pytest.approx([1, 3.25, 7.75, 10])
    # APGR: (0 + 1) / 2 * 0.25 + 1 * 0.5 + 1 * 0.25 = 0.875
    assert s.apgr == pytest.approx(0.875)
    # CPT(50 %): between (0, 0) and (0.25, 1): 0.25 * 0.5 = 0.125; CPT(80 %): 0.25 * 0.8 = 0.2
    assert s.cpt50 == pytest.approx(0.125)
    assert s.cpt80 == pytest.approx(0.2)
    assert np.isnan(s.cpt(1.5))


def test_cpt_takes_the_first_crossing() -> None:
    share = np.array([0.0, 0.5, 0.75, 1.0])
    pgr = np.array([0.0, 0.9, 0.4, 1.0])  # a router that overshoots, then falls back
    assert metrics._cpt(share, pgr, 0.8) == pytest.approx(0.5 * 0.8 / 0.9)


def test_weights_reweight_prompts() -> None:
    # weights 1, 3, 0, 0: weak passes 1 of 4 weighted units (0.25), strong all (1.0)
    pts = metrics.single_models(PASSED, COST, weights=np.array([1.0, 3.0, 0.0, 0.0]))
    assert pts.quality == pytest.approx([0.25, 1.0])


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: metrics.oracle(np.array([[1, -1]]), np.array([[1.0, 2.0]])), "filter missing"),
        (lambda: metrics.oracle(PASSED, COST[:2]), "one shape"),
        (lambda: metrics.score_router(PASSED, COST, np.array([0.1, np.nan, 0.2, 0.3]), 0, 1), "finite router score"),
        (lambda: metrics.score_router(PASSED, COST, np.zeros(4), 1, 1), "two different"),
        (lambda: metrics.aiq(np.array([1.0]), np.array([0.5]), (3.0, 1.0)), "min <= max"),
    ],
)
def test_bad_inputs_are_input_errors(call, message: str) -> None:
    with pytest.raises(InputError, match=message):
        call()
