"""Replay on eval rows, and the MMLU done-when: calibrate -> compare agrees with replay on the same rows."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

import routecalc
from routecalc.cli import app
from routecalc.data.calibrate import CategoryCalibration, calibrate, fit_correlation
from routecalc.data.evals import EvalOptions, read_evals
from routecalc.data.replay import replay
from tests.helpers import two_model_sheet, with_policies

ROOT = Path(__file__).resolve().parent.parent
MMLU = ROOT.parent / "shared" / "data" / "evals" / "routellm-mmlu.csv"
runner = CliRunner()


def tiny_evals(tmp_path: Path) -> Path:
    # 5 prompts of category t: small passes p1, p2, p3; large passes p1, p2, p4
    rows = ["prompt_id,category,model,passed"]
    for pid, small, large in (("p1", 1, 1), ("p2", 1, 1), ("p3", 1, 0), ("p4", 0, 1), ("p5", 0, 0)):
        rows += [f"{pid},t,small,{small}", f"{pid},t,large,{large}"]
    path = tmp_path / "evals.csv"
    path.write_text("\n".join(rows) + "\n")
    return path


def tiny_sheet() -> dict:
    s = with_policies(
        two_model_sheet(),
        {"name": "small", "kind": "static", "routes": {"t": "small"}},
        {"name": "cascade", "kind": "cascade", "routes": {"t": ["small", "large"]}},
    )
    s["tasks"][0]["validator"] = {"catch": 1.0, "false_reject": 0.0}
    s["tasks"][0]["pass_rates"] = {"small": 0.6, "large": 0.6}
    return s


def test_replay_uses_each_prompts_real_outcomes(tmp_path: Path) -> None:
    data = read_evals(tiny_evals(tmp_path), EvalOptions())
    problem = routecalc.compile_worksheet(routecalc.validate_worksheet(tiny_sheet()))
    r = replay(problem, routecalc.expected_values(problem), data, {"small": "small", "large": "large"}, bootstrap=200)
    # small alone: 3 of 5; the cascade with a perfect gate: small's 3 + large on p4 = 4 of 5
    assert r.policy("small").quality == pytest.approx(0.6)
    assert r.policy("cascade").quality == pytest.approx(0.8)
    # costs: small $0.002 on every prompt; the cascade adds large ($0.020) on the 2 small failures
    assert r.policy("cascade").cost_per_request == pytest.approx(0.002 + 0.4 * 0.020)
    # the oracle: small where it passes (3), large where only it passes (1), small (cheapest) where none does
    assert r.oracle == pytest.approx((0.002 * 4 / 5 + 0.020 / 5, 0.8))
    lo, hi = r.policy("cascade").quality_ci
    assert lo <= 0.8 <= hi and hi - lo > 0  # five prompts: a wide interval


def test_replay_cli_error_paths(tmp_path: Path) -> None:
    ws = tmp_path / "w.yaml"
    ws.write_text(yaml.safe_dump(tiny_sheet()))
    other = tmp_path / "other.csv"
    other.write_text("prompt_id,category,model,passed\nx,nope,small,1\n")
    r = runner.invoke(app, ["replay", str(other), "-w", str(ws)])
    assert r.exit_code == 2 and "none of its categories" in r.output
    r = runner.invoke(app, ["replay", str(tiny_evals(tmp_path)), "-w", str(ws), "--bootstrap", "5"])
    assert r.exit_code == 2 and "bootstrap" in r.output
    r = runner.invoke(app, ["replay", str(tiny_evals(tmp_path)), "-w", str(ws), "--format", "json"])
    assert r.exit_code == 0, r.output
    assert '"estimate_inside_interval"' in r.stdout


# ---------------------------------------------------------------------------------------------------------
# Done when: on MMLU, calibrate -> compare equals replay within 0.1 pp; the correlation model within 1 pp;
# compare shows the independence figure beside it.

needs_mmlu = pytest.mark.skipif(not MMLU.exists(), reason="../shared/data/evals/routellm-mmlu.csv is not here")
CASCADE = "mixtral-then-gpt-4"


@pytest.fixture(scope="module")
def mmlu(tmp_path_factory: pytest.TempPathFactory) -> dict[str, float]:
    tmp = tmp_path_factory.mktemp("mmlu")
    shipped = ROOT / "worksheets" / "mmlu-cascade.yaml"
    out = {}
    for joint in ("table", "correlation"):
        path = tmp / f"{joint}.yaml"
        r = runner.invoke(app, ["calibrate", "evals", str(MMLU), "-w", str(shipped), "--joint", joint, "-o", str(path)])
        assert r.exit_code == 0, r.output
        comparison = routecalc.compare(routecalc.load_worksheet(path), samples=20_000)
        out[joint] = comparison.policy(CASCADE).quality
        out[f"{joint}-independent"] = comparison.policy(CASCADE).quality_if_independent
    ws = routecalc.load_worksheet(shipped)
    problem = routecalc.compile_worksheet(ws)
    data = read_evals(MMLU, EvalOptions())
    mapping = {m.eval_name: m.name for m in ws.models}
    out["replay"] = (
        replay(problem, routecalc.expected_values(problem), data, mapping, bootstrap=200).policy(CASCADE).quality
    )
    # one correlation for every subject, fitted to the pooled table of all prompts
    cal = calibrate(data, mapping)
    pooled: dict[tuple[str, ...], int] = {}
    for c in cal.categories:
        for models, count in c.patterns:
            pooled[models] = pooled.get(models, 0) + count
    some = cal.categories[0]
    rho = fit_correlation(
        CategoryCalibration("all", cal.total_prompts, {}, some.table_models, tuple(pooled.items()), 0, None, None)
    )
    data_ws = yaml.safe_load(shipped.read_text())
    for t in data_ws["tasks"]:
        t["outcomes"] = {"correlation": rho}
    out["pooled"] = routecalc.compare(routecalc.validate_worksheet(data_ws), samples=20_000).policy(CASCADE).quality
    out["rho"] = rho
    return out


@needs_mmlu
def test_calibrated_tables_equal_the_replay_within_0_1_pp(mmlu: dict[str, float]) -> None:
    assert mmlu["replay"] == pytest.approx(0.8586, abs=5e-4)  # 85.9 % of prompts, as the file's README says
    assert abs(mmlu["table"] - mmlu["replay"]) < 0.001


@needs_mmlu
def test_one_parameter_correlation_within_1_pp(mmlu: dict[str, float]) -> None:
    # per subject: with two models the fitted rho reproduces each subject's table (by construction)
    assert abs(mmlu["correlation"] - mmlu["replay"]) < 0.01
    # one rho for all 57 subjects, fitted to the pooled table: still within a point
    assert 0.5 < mmlu["rho"] < 0.8
    assert abs(mmlu["pooled"] - mmlu["replay"]) < 0.01


@needs_mmlu
def test_compare_shows_what_independence_would_have_promised(mmlu: dict[str, float]) -> None:
    # the same per-subject pass rates, independent: 91.4 % (pooled over subjects, 93.8 %); the rows say 85.9 %
    assert mmlu["table-independent"] == pytest.approx(0.9143, abs=5e-4)
    assert mmlu["table-independent"] - mmlu["replay"] > 0.05
