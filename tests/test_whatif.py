"""What routing patterns buy: a classifier's value curve and oracle, deadlines' tail cut and waste."""

from __future__ import annotations

import numpy as np
import pytest

import routecalc
from routecalc.decide.whatif import confusion_at, pattern_effects
from routecalc.worksheet import ClassifierSpec
from tests.helpers import two_model_sheet, with_policies

P_LATE = 0.14966  # 1 - Phi(ln(4/2) / (ln 3 / 1.645)): small's end-to-end latency (p50 2 s, p95 6 s) above 4 s


def classifier_sheet() -> dict:
    s = two_model_sheet()
    task = s["tasks"][0]
    del task["pass_rates"]
    task["quality_threshold"] = 0.88
    task["tiers"] = {
        "easy": {"share": 0.7, "pass_rates": {"small": 0.9, "large": 0.95}},
        "hard": {"share": 0.3, "pass_rates": {"small": 0.5, "large": 0.9}},
    }
    s["classifiers"] = [{"name": "clf", "labels": ["easy", "hard"], "recall": {"easy": 0.8, "hard": 0.8}}]
    route = {"classifier": "clf", "routes": {"easy": ["small"], "hard": ["large"]}}
    return with_policies(s, {"name": "routed", "kind": "static", "routes": {"t": route}})


def effects_of(sheet: dict, samples: int = 50_000):
    ws = routecalc.validate_worksheet(sheet)
    return pattern_effects(ws, routecalc.compare(ws, samples=samples, seed=3))


def test_confusion_at_moves_between_chance_and_perfect() -> None:
    clf = ClassifierSpec(name="c", labels=["a", "b"], confusion={"a": {"a": 0.9, "b": 0.1}, "b": {"a": 0.3, "b": 0.7}})
    # balanced accuracy (0.9 + 0.7) / 2 = 0.8
    assert np.allclose(confusion_at(clf, 0.8), [[0.9, 0.1], [0.3, 0.7]])
    assert np.allclose(confusion_at(clf, 1.0), np.eye(2))
    assert np.allclose(confusion_at(clf, 0.5), 0.5)
    # halfway to perfect: t = (0.9 - 0.8) / (1 - 0.8) = 0.5 -> 0.5 M0 + 0.5 I
    assert np.allclose(confusion_at(clf, 0.9), [[0.95, 0.05], [0.15, 0.85]])


def test_classifier_oracle_and_curve_by_hand() -> None:
    (v,) = effects_of(classifier_sheet()).classifiers
    # with it: easy 0.7 x (0.8 small $0.002 + 0.2 large $0.020) + hard 0.3 x (0.2 small + 0.8 large)
    #   = 0.7 x 0.0056 + 0.3 x 0.0164 = $0.00884 per request, x 1,000 requests = $8.84/month
    #   quality 0.7 x (0.8 x 0.9 + 0.2 x 0.95) + 0.3 x (0.2 x 0.5 + 0.8 x 0.9) = 0.637 + 0.246 = 0.883
    # perfect: 0.7 x $0.002 + 0.3 x $0.020 = $0.0074 -> $7.40/month; quality 0.7 x 0.9 + 0.3 x 0.9 = 0.9
    assert (v.policy, v.classifier, v.categories, v.accuracy) == ("routed", "clf", ("t",), pytest.approx(0.8))
    assert v.monthly_cost == pytest.approx(8.84) and v.quality == pytest.approx(0.883)
    assert v.oracle_monthly_cost == pytest.approx(7.40) and v.oracle_quality == pytest.approx(0.9)
    assert v.perfect_saves_monthly == pytest.approx(1.44)
    # chance (0.5): half of each tier to each model: $0.011 -> $11/month; 0.7 x 0.925 + 0.3 x 0.7 = 0.8575
    assert v.curve_accuracy[0] == pytest.approx(0.5) and v.curve_accuracy[-1] == pytest.approx(1.0)
    assert v.curve_monthly_cost[0] == pytest.approx(11.0) and v.curve_quality[0] == pytest.approx(0.8575)
    # the classifier's own accuracy is on the curve and reproduces the comparison
    own = v.curve_accuracy.index(pytest.approx(0.8))
    assert v.curve_monthly_cost[own] == pytest.approx(v.monthly_cost, rel=1e-12)
    assert v.curve_meets_quality[0] is False and v.curve_meets_quality[own] is True  # 0.8575 < 0.88 <= 0.883
    assert np.all(np.diff(v.curve_monthly_cost) < 0)  # here every point of accuracy saves money


def test_deadline_effect_by_hand() -> None:
    s = two_model_sheet()
    s["models"][0]["latency"] = {"e2e_s": {"p50": 2, "p95": 6}}
    s["models"][1]["latency"] = {"e2e_s": 1.0}
    s = with_policies(
        s, {"name": "d", "kind": "chain", "routes": {"t": [{"model": "small", "deadline_s": 4}, "large"]}}
    )
    effects = effects_of(s, samples=200_000)
    assert effects.classifiers == []
    (d,) = effects.deadlines
    assert (d.policy, d.category) == ("d", "t")
    assert d.late == pytest.approx(P_LATE, abs=1e-4)
    # without: small alone, P99 = 2 exp(2.326 x ln 3 / 1.645) = 9.46 s, P95 = 6 s
    # with: the slow 15 % wait 4 s then take large's 1 s, so P95 = P99 = 5 s
    assert d.p99_s_without == pytest.approx(9.46, rel=0.02) and d.p95_s_without == pytest.approx(6.0, rel=0.02)
    assert d.p99_s == pytest.approx(5.0, rel=0.02) and d.p95_s == pytest.approx(5.0, rel=0.02)
    assert d.p99_bought_s == pytest.approx(4.46, rel=0.05)
    # the abandoned try bills in full (deadline_billing: full): 0.1497 x $0.002 x 1,000 = $0.30/month
    assert d.waste_monthly == pytest.approx(P_LATE * 2.0, abs=1e-3)
    assert d.monthly_cost_without == pytest.approx(2.0)
    assert d.monthly_cost == pytest.approx(2.0 + P_LATE * 20.0, abs=1e-2)
    assert d.quality == pytest.approx((1 - P_LATE) * 0.8 + P_LATE * 0.95, abs=1e-4) and d.quality_without == 0.8


def test_no_patterns_no_effects() -> None:
    s = with_policies(two_model_sheet(), {"name": "s", "kind": "static", "routes": {"t": "small"}})
    assert not effects_of(s)


def test_compare_shows_what_patterns_buy(tmp_path) -> None:
    import json

    import yaml
    from typer.testing import CliRunner

    from routecalc.cli import app

    path = tmp_path / "w.yaml"
    path.write_text(yaml.safe_dump(classifier_sheet()))
    res = CliRunner().invoke(app, ["compare", str(path), "--samples", "20000"], env={"COLUMNS": "200"})
    assert res.exit_code == 0, res.output
    assert "What a perfect classifier is worth" in res.output and "-$1.44/mo" in res.output
    res = CliRunner().invoke(app, ["compare", str(path), "--samples", "20000", "--format", "json"])
    data = json.loads(res.output)
    assert data["patterns"]["classifiers"][0]["perfect_saves_monthly"] == pytest.approx(1.44)


def test_report_has_the_patterns_section_and_curve() -> None:
    from routecalc.report.build import build_report

    ws = routecalc.validate_worksheet(classifier_sheet())
    c = routecalc.compare(ws, samples=20_000, seed=3)
    files = build_report(ws, c, None, "md", patterns=pattern_effects(ws, c))
    md = files["report.md"].decode()
    assert "## What the routing patterns buy" in md and "![classifier value curve" in md
    assert "| routed / clf (t) | 80.0% | $8.84/mo | $7.40/mo | -$1.44/mo |" in md
    assert files["classifier-value.png"].startswith(b"\x89PNG")
