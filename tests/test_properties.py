"""Invariants over random worksheets (hypothesis): conservation, ranges, MC within 4 sigma of EV."""

from __future__ import annotations

import numpy as np
from hypothesis import Phase, given, settings
from hypothesis import strategies as st

import routecalc
from tests.helpers import fixed_model

prob = st.floats(0.0, 1.0)
fail = st.floats(0.0, 0.6)


def band(p50: float, spread: float) -> dict:
    return {"p50": p50, "p95": p50 * spread}


@st.composite
def worksheets(draw: st.DrawFn) -> dict:
    n_models = draw(st.integers(1, 4))
    n_cats = draw(st.integers(1, 4))
    models = [
        fixed_model(
            f"m{i}",
            draw(st.floats(0, 20)),
            draw(st.floats(0, 60)),
            ttft=draw(st.floats(0.05, 3)),
            tpot=draw(st.floats(0, 0.05)),
            failure_rate=draw(fail),
            timeout_share=draw(prob),
            timeout_s=draw(st.floats(1, 60)),
        )
        for i in range(n_models)
    ]
    weights = draw(st.lists(st.integers(1, 100), min_size=n_cats, max_size=n_cats))
    names = [m["name"] for m in models]
    tasks = [
        {
            "name": f"c{j}",
            "traffic_share": w,
            "tokens_in": band(draw(st.floats(50, 5000)), draw(st.floats(1, 8))),  # realistic p95/p50 <= 8
            "tokens_out": draw(st.floats(0, 1000)),
            "quality_threshold": draw(prob),
            "pass_rates": {m: draw(prob) for m in names},
            "validator": {"catch": draw(prob), "false_reject": draw(prob), "cost_per_call": draw(st.floats(0, 0.01))},
        }
        for j, w in enumerate(weights)
    ]
    cats = [t["name"] for t in tasks]

    def chain() -> list[str]:
        return draw(st.lists(st.sampled_from(names), min_size=1, max_size=3))

    final = draw(st.sampled_from(["deliver", "fail", "human_review"]))
    return {
        "name": "random",
        "share_unit": "percent",
        "volume": {"requests_per_month": 1e6},
        "defaults": {"retries": draw(st.integers(0, 2)), "backoff_s": draw(st.floats(0, 2))},
        "models": models,
        "tasks": [t | {"traffic_share": 100 * t["traffic_share"] / sum(weights)} for t in tasks],
        "policies": [
            {"name": "cascade", "kind": "cascade", "final_reject": final, "routes": {c: chain() for c in cats}}
            | ({"human_review": {"cost": 1.0, "latency_s": 60}} if final == "human_review" else {}),
            {"name": "fallback", "kind": "fallback", "routes": {c: chain() for c in cats}},
            {"name": "static", "kind": "static", "routes": {c: chain()[:1] for c in cats}},
        ],
    }


@settings(max_examples=60, deadline=None, derandomize=True)
@given(worksheets())
def test_ev_invariants(sheet: dict) -> None:
    ws = routecalc.validate_worksheet(sheet)
    assert abs(sum(ws.shares) - 1) < 1e-6
    ev = routecalc.expected_values(routecalc.compile_worksheet(ws))
    assert np.all(ev.cost >= 0) and np.all(ev.latency >= 0)
    for rate in (ev.quality, ev.delivered_bad, ev.failed, ev.escalation, ev.fallback, ev.human):
        assert np.all((rate >= -1e-12) & (rate <= 1 + 1e-12))
    # every request ends exactly one way: delivered good, delivered bad, or failed
    np.testing.assert_allclose(ev.quality + ev.delivered_bad + ev.failed, 1.0, atol=1e-9)
    # delivered answers come from a model, or from human review
    np.testing.assert_allclose(ev.answered.sum(-1) + ev.human, ev.quality + ev.delivered_bad, atol=1e-9)


@settings(max_examples=12, deadline=None, derandomize=True, phases=[Phase.explicit, Phase.generate])
@given(worksheets())
def test_mc_within_4_sigma_of_ev(sheet: dict) -> None:
    """Traffic-weighted totals per policy; sigma of the stratified estimate sum_c w_c^2 var_c / n_c."""
    problem = routecalc.compile_worksheet(routecalc.validate_worksheet(sheet))
    ev = routecalc.expected_values(problem)
    mc = routecalc.simulate(problem, 40_000, np.random.default_rng(11))
    w = problem.tasks.share
    n = np.maximum(mc.n, 1)
    assert np.all(mc.n > 0)
    for metric in ("quality", "failed", "escalation", "fallback"):
        p = getattr(ev, metric)
        sigma = np.sqrt((w**2 * p * (1 - p) / n).sum(1))
        assert np.all(np.abs(getattr(mc.mean, metric) @ w - p @ w) <= 4 * sigma + 1e-9), metric
    # a branch too rare to appear in the sample (failure 1.2e-5 in 36k requests: none drawn) leaves the sample sd
    # blind to it while the EV counts it: floor each category's variance by the EV's branch probabilities times its
    # cost scale (a failed, escalated or fallen-back request costs about a request more or less)
    branch = sum(getattr(ev, m) * (1 - getattr(ev, m)) for m in ("failed", "escalation", "fallback"))
    var = np.maximum(mc.cost_sd**2, branch * ev.cost**2)
    cost_sigma = np.sqrt((w**2 * var / n).sum(1))
    assert np.all(np.abs(mc.mean.cost @ w - ev.cost @ w) <= 4 * cost_sigma + 1e-12)


JUNK = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-5, 5),
    st.floats(allow_nan=True),
    st.text(max_size=5),
    st.lists(st.integers(), max_size=2),
    st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
)


def _paths(obj: object, prefix: tuple = ()) -> list[tuple]:
    """Every key path of a nested dict/list document."""
    out = [prefix] if prefix else []
    if isinstance(obj, dict):
        for k, v in obj.items():
            out += _paths(v, (*prefix, k))
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            out += _paths(v, (*prefix, i))
    return out


@settings(max_examples=150, deadline=None, derandomize=True)
@given(st.data())
def test_any_damage_to_a_worksheet_is_reported_never_a_traceback(data: st.DataObject) -> None:
    """Replace or delete any part of a real worksheet: validation either passes or raises WorksheetError."""
    import copy

    import yaml

    from tests.conftest import WORKSHEETS

    sheet = yaml.safe_load((WORKSHEETS / "support-triage.yaml").read_text())
    for _ in range(data.draw(st.integers(1, 3))):
        path = data.draw(st.sampled_from(_paths(sheet)))
        parent = sheet
        for key in path[:-1]:
            parent = parent[key]
        if data.draw(st.booleans()) and isinstance(parent, dict):
            del parent[path[-1]]
        else:
            parent[path[-1]] = data.draw(JUNK)
        sheet = copy.deepcopy(sheet)
    try:
        ws = routecalc.validate_worksheet(sheet)
    except routecalc.WorksheetError as err:
        assert err.problems and all(p.message for p in err.problems)
    else:
        routecalc.expected_values(routecalc.compile_worksheet(ws))  # a valid worksheet also compiles and runs


_LEAF = st.one_of(st.none(), st.booleans(), st.integers(-3, 3), st.floats(-2, 2), st.text(max_size=4))
_KEYS = st.sampled_from(["models", "tasks", "policies", "scale", "name", "price_in", "volume", "gpt-4.1", "x"])
_TREE = st.recursive(
    _LEAF, lambda ch: st.one_of(st.lists(ch, max_size=3), st.dictionaries(_KEYS, ch, max_size=3)), max_leaves=8
)


@settings(max_examples=200, deadline=None, derandomize=True)
@given(st.dictionaries(_KEYS, _TREE, max_size=4))
def test_any_scenario_overlay_is_reported_never_a_traceback(overlay: dict) -> None:
    import yaml

    from routecalc.errors import InputError
    from routecalc.worksheet import apply_overlay
    from tests.conftest import WORKSHEETS

    base = yaml.safe_load((WORKSHEETS / "support-triage.yaml").read_text())
    try:
        routecalc.validate_worksheet(apply_overlay(base, overlay))
    except InputError as err:
        assert str(err)
