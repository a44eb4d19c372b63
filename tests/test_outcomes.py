"""Joint pass/fail outcomes across models: independence, outcome tables, conditional rates, latent difficulty.

The two-model sheet: small passes 0.8, large 0.9 (set below), validator catch 0.9 / false reject 0.1, and the
cascade small -> large (last step ungated: a reject there could not change what is delivered).
"""

from __future__ import annotations

import itertools
import warnings

import numpy as np
import pytest

import routecalc
from routecalc.errors import WorksheetError
from routecalc.outcomes import latent_nodes
from tests.helpers import ev_of, two_model_sheet, with_policies

CASCADE = {"name": "c", "kind": "cascade", "routes": {"t": ["small", "large"]}}
# 100 prompts: both pass 78, only small 2, only large 12, neither 8 -> small 0.80, large 0.90
TABLE = {
    "models": ["small", "large"],
    "patterns": [
        {"passed": ["small", "large"], "count": 78},
        {"passed": ["small"], "count": 2},
        {"passed": ["large"], "count": 12},
        {"passed": [], "count": 8},
    ],
}


def sheet(outcomes: dict | None = None, large: float = 0.9) -> dict:
    s = with_policies(two_model_sheet(), CASCADE)
    s["tasks"][0]["pass_rates"] = {"small": 0.8, "large": large}
    if outcomes is not None:
        s["tasks"][0]["outcomes"] = outcomes
    return s


def test_independence_cascade_quality() -> None:
    # small accepted good: 0.8 * 0.9 = 0.72; reaches large: 0.8 * 0.1 + 0.2 * 0.9 = 0.26, then 0.26 * 0.9 = 0.234
    assert ev_of(sheet(), "c")["quality"] == pytest.approx(0.954, abs=1e-12)


def test_outcome_table_cascade_quality() -> None:
    # both pass (0.78): accepted 0.9 good, rejected 0.1 -> large good: 1.0
    # only small (0.02): accepted 0.9 good, rejected 0.1 -> large bad: 0.9
    # only large (0.12): caught 0.9 -> large good: 0.9; missed 0.1 -> delivered bad
    # neither (0.08): 0
    # 0.78 + 0.02 * 0.9 + 0.12 * 0.9 = 0.906 (independence with the same marginals says 0.954)
    got = ev_of(sheet({k: v for k, v in TABLE.items()}), "c")
    assert got["quality"] == pytest.approx(0.906, abs=1e-12)


def test_table_given_as_probabilities_equals_counts() -> None:
    probs = {
        "models": TABLE["models"],
        "patterns": [{"passed": p["passed"], "p": p["count"] / 100} for p in TABLE["patterns"]],
    }
    assert ev_of(sheet(probs), "c")["quality"] == pytest.approx(0.906, abs=1e-12)


def test_conditional_rate_is_shorthand_for_the_two_model_table() -> None:
    # large passes 60 % of what small failed: P(small fails, large passes) = 0.2 * 0.6 = 0.12, the table above
    cond = {"conditional": {"model": "large", "given_failed": "small", "pass_rate": 0.6}}
    assert ev_of(sheet(cond), "c")["quality"] == pytest.approx(0.906, abs=1e-12)


def test_table_marginals_define_the_pass_rates() -> None:
    s = sheet(TABLE)
    del s["tasks"][0]["pass_rates"]
    ws = routecalc.validate_worksheet(s)
    assert ws.tasks[0].rates == pytest.approx({"small": 0.8, "large": 0.9})
    assert ev_of(s, "c")["quality"] == pytest.approx(0.906, abs=1e-12)


def test_a_later_step_on_the_same_model_reuses_the_outcome() -> None:
    # small -> small (same prompt, same eval row): under the table a second try cannot fix the first's failure
    s = sheet(TABLE)
    s["policies"] = [{"name": "c", "kind": "cascade", "final_reject": "fail", "routes": {"t": ["small", "small"]}}]
    # pass patterns (0.80): good twice: accepted 0.9 + rejected 0.1 then accepted 0.9 -> 0.99 of them good
    assert ev_of(s, "c")["quality"] == pytest.approx(0.8 * (0.9 + 0.1 * 0.9), abs=1e-12)


def test_zero_correlation_is_independence_bit_for_bit() -> None:
    a, b = ev_of(sheet(), "c"), ev_of(sheet({"correlation": 0.0}), "c")
    assert a["quality"] == b["quality"] and a["cost"] == b["cost"]


def _latent_quality(rho: float) -> float:
    """The cascade's quality under latent difficulty, by adaptive quadrature (the reference)."""
    from scipy import integrate
    from scipy.special import ndtr, ndtri

    a_s, a_l = ndtri(0.8), ndtri(0.9)

    def integrand(z: float) -> float:
        ps = ndtr((a_s - np.sqrt(rho) * z) / np.sqrt(1 - rho))
        pl = ndtr((a_l - np.sqrt(rho) * z) / np.sqrt(1 - rho))
        q = ps * 0.9 + (ps * 0.1 + (1 - ps) * 0.9) * pl
        return q * np.exp(-z * z / 2) / np.sqrt(2 * np.pi)

    points = [a_s / np.sqrt(rho), a_l / np.sqrt(rho)]
    with warnings.catch_warnings():  # quad may say it cannot reach 1e-14; its estimate is still ~1e-13
        warnings.simplefilter("ignore")
        value, _ = integrate.quad(integrand, -12, 12, points=points, epsabs=1e-14, epsrel=1e-14, limit=1000)
    return value


@pytest.mark.parametrize("rho", [0.05, 0.3, 0.5, 0.51, 0.8, 0.95, 0.99, 0.999])
def test_latent_difficulty_is_exact_to_1e_10(rho: float) -> None:
    got = ev_of(sheet({"correlation": rho}), "c")["quality"]
    assert abs(got - _latent_quality(rho)) < 1e-10


def test_latent_difficulty_runs_from_independence_to_nested_passes() -> None:
    # rho -> 1: large passes everything small passes (0.8 both, 0.1 only large, 0.1 neither):
    # 0.8 * (0.9 + 0.1 * 1) + 0.1 * 0.9 = 0.89
    q = [ev_of(sheet({"correlation": r}), "c")["quality"] for r in (0.0, 0.3, 0.6, 0.9, 0.999)]
    assert q[0] == pytest.approx(0.954, abs=1e-12)
    assert all(a > b for a, b in itertools.pairwise(q))
    assert q[-1] == pytest.approx(0.89, abs=0.005)


def test_latent_nodes_integrate_the_normal() -> None:
    for rho in (0.2, 0.9):
        z, w = latent_nodes(rho, np.array([0.5, -1.0]))
        assert w.sum() == pytest.approx(1.0, abs=1e-15)
        assert (w * z * z).sum() == pytest.approx(1.0, abs=1e-10)  # E[Z^2] = 1 (less the tail beyond 7.5)


@pytest.mark.parametrize(
    ("outcomes", "message"),
    [
        ({"correlation": 1.0}, "less than or equal to 0.999"),
        ({"correlation": 0.2, "patterns": TABLE["patterns"], "models": TABLE["models"]}, "exactly one of"),
        ({"patterns": TABLE["patterns"]}, "needs both models and patterns"),
        ({"models": ["small", "large"], "patterns": [{"passed": ["huge"], "count": 1}]}, "not in outcomes.models"),
        ({"models": ["small"], "patterns": [{"passed": ["small"], "count": 0}]}, "sum to 0"),
        ({"models": ["small"], "patterns": [{"passed": ["small"], "p": 0.5}]}, "sum to 1"),
        (
            {"conditional": {"model": "large", "given_failed": "small", "pass_rate": 0.1}},
            "must lie in [0.5000, 1.0000]",
        ),
    ],
)
def test_bad_outcomes_are_reported_with_a_field_path(outcomes: dict, message: str) -> None:
    with pytest.raises(WorksheetError) as info:
        routecalc.validate_worksheet(sheet(outcomes))
    text = "\n".join(str(p) for p in info.value.problems)
    assert "tasks[0]" in text and message in text, text


def test_a_pass_rate_beside_a_table_must_agree() -> None:
    with pytest.raises(WorksheetError) as info:
        routecalc.validate_worksheet(sheet(TABLE, large=0.95))
    assert "disagrees with the outcome table's 0.9000" in str(info.value)


def test_unknown_model_in_a_table() -> None:
    bad = {
        "models": ["small", "nope"],
        "patterns": [{"passed": ["small", "nope"], "count": 8}, {"passed": [], "count": 2}],
    }
    with pytest.raises(WorksheetError) as info:
        routecalc.validate_worksheet(sheet(bad))
    assert any(p.path == "tasks[0].outcomes.models[1]" for p in info.value.problems)


def test_pass_rate_counts() -> None:
    s = sheet()
    s["tasks"][0]["pass_rates"] = {"small": {"passed": 80, "of": 100}, "large": 0.9}
    s["tasks"][0]["validator"] = {"catch": {"caught": 9, "of": 10}, "false_reject": {"rejected": 1, "of": 10}}
    ws = routecalc.validate_worksheet(s)
    assert ws.tasks[0].pass_rates["small"].counted and ws.tasks[0].rates["small"] == 0.8
    assert ev_of(s, "c")["quality"] == pytest.approx(0.954, abs=1e-12)
    s["tasks"][0]["pass_rates"]["small"] = {"passed": 120, "of": 100}
    with pytest.raises(WorksheetError) as info:
        routecalc.validate_worksheet(s)
    assert any(p.path == "tasks[0].pass_rates.small" for p in info.value.problems)


@pytest.mark.parametrize("rho", [0.3, 0.51, 0.8, 0.95, 0.999])
def test_batched_nodes_give_each_row_the_rule_of_latent_nodes(rho: float) -> None:
    # rows of marginals as uncertainty draws them, with a model without a pass rate (NaN) and a rate of 1 (a = inf):
    # the batched rule integrates the engine's integrand (a product of the models' steps) as latent_nodes does
    from scipy.special import ndtri

    from routecalc.outcomes import latent_nodes_batch, latent_q

    a = ndtri(np.array([[0.8, 0.9, np.nan], [0.55, 0.99, 1.0], [0.3, 0.97, 0.6]]))
    zb, wb = latent_nodes_batch(rho, a)
    assert zb.shape == wb.shape and zb.shape[0] == 3
    for i in range(3):
        z, w = latent_nodes(rho, a[i])
        step = lambda zz, i=i: np.nan_to_num(latent_q(rho, a[i], zz), nan=1.0).prod(axis=-1)
        assert abs(w @ step(z) - wb[i] @ step(zb[i])) < 1e-12


def test_independence_warning_names_categories_and_skips_fallbacks() -> None:
    from routecalc.results import independence_warning

    two = with_policies(two_model_sheet(), {"name": "f", "kind": "fallback", "routes": {"t": ["small", "large"]}})
    two["tasks"].append({**two["tasks"][0], "name": "u", "traffic_share": 0.5})
    two["tasks"][0]["traffic_share"] = 0.5
    two["policies"][0]["routes"]["u"] = ["small", "large"]
    problem = lambda s: routecalc.compile_worksheet(routecalc.validate_worksheet(s))
    assert independence_warning(problem(two)) is None  # failures are independent of quality: nothing assumed
    two["policies"].append(
        {"name": "c", "kind": "cascade", "routes": {"t": ["small", "large"], "u": ["small", "large"]}}
    )
    assert "Assumed in t, u;" in independence_warning(problem(two))
    two["tasks"][0]["outcomes"] = TABLE
    two["tasks"][0]["pass_rates"] = {}  # the table defines them
    assert "Assumed in u;" in independence_warning(problem(two))
