"""``--uncertainty``: posterior draws of the counted inputs, intervals, probabilities, the sample-size advice.

Hand-checkable cases use one category on the two-model sheet (1,000 tokens in, 500 out; small $0.002, large
$0.020 per request) with a static policy, where quality = pass rate x (1 - failure_rate^(1 + retries)).
"""

from __future__ import annotations

import copy
import json
from pathlib import Path

import numpy as np
import pytest
from scipy.stats import beta
from typer.testing import CliRunner

import routecalc
from routecalc.chains import compile_worksheet
from routecalc.cli import app, optional_value
from routecalc.decide import uncertainty as unc
from routecalc.engine.ev import expected_values
from routecalc.errors import InputError
from routecalc.report import build, charts
from routecalc.report.document import to_markdown
from routecalc.report.risk import chart_intervals
from routecalc.worksheet.schema import conditional_range
from tests.conftest import TODAY, WORKSHEETS
from tests.helpers import two_model_sheet, with_policies

runner = CliRunner()
FAST = ["--samples", "20000", "--today", "2026-11-25"]
STATIC_LARGE = {"name": "large-only", "kind": "static", "routes": {"t": "large"}}
STATIC_SMALL = {"name": "small-only", "kind": "static", "routes": {"t": "small"}}
CASCADE = {"name": "cascade", "kind": "cascade", "routes": {"t": ["small", "large"]}}


def one_category(passed: int, of: int, threshold: float = 0.9, failure_rate: float = 0.0) -> dict:
    s = with_policies(two_model_sheet(), STATIC_LARGE, STATIC_SMALL)
    s["models"][1]["failure_rate"] = failure_rate
    s["defaults"] = {"retries": 1}
    s["tasks"][0]["pass_rates"] = {"small": 0.5, "large": {"passed": passed, "of": of}}
    s["tasks"][0]["quality_threshold"] = threshold
    return s


def analyse(sheet: dict, draws: int = 2_000, seed: int = 0) -> unc.Uncertainty:
    ws = routecalc.validate_worksheet(sheet)
    return unc.analyse(ws, routecalc.compare(ws, samples=2_000, seed=0), draws, seed)


def test_static_quality_interval_is_the_beta_quantiles_times_the_no_failure_factor() -> None:
    # large passes 8 of 10: Beta(1 + 8, 1 + 2) = Beta(9, 3); it fails 1 % of tries and retries once, so a request
    # gets no answer with probability 0.01^2 and quality = q * (1 - 0.0001) = 0.9999 q.
    u = analyse(one_category(8, 10, failure_rate=0.01), draws=40_000)
    q = u.policy("large-only").quality
    lo, mid, hi = beta.ppf([0.05, 0.5, 0.95], 9, 3) * 0.9999  # 0.5128..., 0.7714..., 0.9135...
    # 40,000 draws: the 5th percentile's standard error is sqrt(0.05 * 0.95 / 4e4) / pdf(0.53) ~ 0.0011 / 1.1
    assert (q.low, q.median, q.high) == pytest.approx((lo, mid, hi), abs=0.004)
    cost = u.policy("large-only").monthly_cost  # static, no gate: the pass rate does not move the cost
    assert cost.low == cost.high == pytest.approx(0.020 * 0.9999 * 1000, rel=1e-9)  # failed requests bill nothing
    assert u.policy("small-only").quality.low == u.policy("small-only").quality.high == 0.5  # no counts: fixed


def test_probability_of_meeting_the_threshold_is_the_beta_tail() -> None:
    # large passes 93 of 100, threshold 90 %: P(q >= 0.9) under Beta(94, 8) = 0.8199...
    u = analyse(one_category(93, 100), draws=20_000)
    expect = beta.sf(0.9, 94, 8)
    se = (expect * (1 - expect) / 20_000) ** 0.5  # 0.0027
    assert u.policy("large-only").p_meets_targets == pytest.approx(expect, abs=4 * se)
    assert u.policy("small-only").p_meets_targets == 0.0  # 0.5 < 0.9 in every draw


def test_winner_probabilities_sum_to_one_with_no_winner(support_ws, support_cmp) -> None:
    u = unc.analyse(support_ws, support_cmp, 1_000, seed=3)
    total = sum(p.p_winner for p in u.policies)
    assert total <= 1 + 1e-12
    assert total + (u.p_no_winner or 0) == pytest.approx(1.0, abs=1e-12)
    for p in u.policies:
        assert p.p_winner <= p.p_meets_targets  # a winner meets every target
        for iv in (p.monthly_cost, p.quality, p.cost_change_monthly):
            assert iv is None or iv.low <= iv.median <= iv.high


def test_winner_per_draw_breaks_ties_like_pick_winner() -> None:
    meets = np.array([[True, True, True], [False, True, True], [False, False, False]])
    cost = np.array([[2.0, 1.0, 1.0], [1.0, 3.0, 3.0], [1.0, 1.0, 1.0]])
    quality = np.array([[0.9, 0.8, 0.85], [0.9, 0.9, 0.9], [0.9, 0.9, 0.9]])
    # draw 0: policies 1 and 2 tie on cost, 2 has the better quality; draw 1: 1 and 2 tie on both -> the first;
    # draw 2: nobody meets its targets
    assert unc._winner_per_draw(meets, cost, quality).tolist() == [2, 1, -1]


def test_same_seed_same_bytes_and_another_seed_differs(support_path: Path) -> None:
    args = ["compare", str(support_path), "-f", "json", *FAST, "--uncertainty", "300"]
    a, b = runner.invoke(app, args), runner.invoke(app, args)
    assert a.exit_code == 0, a.output
    assert a.stdout == b.stdout
    c = runner.invoke(app, [*args, "--seed", "1"])
    assert json.loads(c.stdout)["uncertainty"] != json.loads(a.stdout)["uncertainty"]


def test_chunking_changes_no_number(support_ws, support_cmp, monkeypatch: pytest.MonkeyPatch) -> None:
    whole = unc.analyse(support_ws, support_cmp, 400, seed=1)
    monkeypatch.setattr(unc, "CHUNK_ELEMENTS", 60 * 7)  # 7 draws per engine run on support-triage (P R S = 60)
    assert unc.analyse(support_ws, support_cmp, 400, seed=1) == whole


# ---------------------------------------------------------------------------------------------------------
# Every joint law: the batched run equals one engine run per draw


def joint_sheet() -> dict:
    """Five categories of the two-model sheet, one per way of writing the joint law, all with counts."""
    s = with_policies(two_model_sheet(), CASCADE, STATIC_LARGE)
    t = s["tasks"][0]
    t["validator"] = {"catch": {"caught": 85, "of": 100}, "false_reject": {"rejected": 6, "of": 120}}
    cats = []
    for name, outcomes, rates in (
        ("indep", None, {"small": {"passed": 160, "of": 200}, "large": {"passed": 180, "of": 200}}),
        (
            "table",
            {
                "models": ["small", "large"],
                "patterns": [
                    {"passed": ["small", "large"], "count": 78},
                    {"passed": ["small"], "count": 2},
                    {"passed": ["large"], "count": 12},
                    {"passed": [], "count": 8},
                ],
            },
            {},
        ),
        (
            "conditional",
            {"conditional": {"model": "large", "given_failed": "small", "pass_rate": {"passed": 240, "of": 400}}},
            {"small": {"passed": 1600, "of": 2000}, "large": {"passed": 1800, "of": 2000}},
        ),
        ("latent-low", {"correlation": 0.3}, {"small": {"passed": 80, "of": 100}, "large": 0.9}),
        ("latent-high", {"correlation": 0.8}, {"small": {"passed": 80, "of": 100}, "large": {"passed": 90, "of": 100}}),
    ):
        cat = copy.deepcopy(t)
        cat.update(name=name, traffic_share=0.2, pass_rates=rates)
        if outcomes is not None:
            cat["outcomes"] = outcomes
        cats.append(cat)
    s["tasks"] = cats
    s["policies"] = [{**p, "routes": {c["name"]: p["routes"]["t"] for c in cats}} for p in s["policies"]]
    return s


def sheet_of_draw(sheet: dict, plan: unc.Plan, d: unc.Draws, i: int) -> dict:
    """The worksheet whose numbers are draw ``i`` (no counts), to evaluate it on its own."""
    out = copy.deepcopy(sheet)
    models = [m["name"] for m in out["models"]]
    for j, (kind, c, m) in enumerate(zip(plan.beta_kind, plan.beta_cat, plan.beta_model, strict=True)):
        t, v = out["tasks"][c], float(d.beta[i, j])
        if kind == unc.PASS:
            t["pass_rates"][models[m]] = v
        elif kind == unc.CATCH:
            t["validator"]["catch"] = v
        elif kind == unc.FALSE_REJECT:
            t["validator"]["false_reject"] = v
        else:
            t["outcomes"]["conditional"]["pass_rate"] = v
    for (c, _), w in zip(plan.tables, d.tables, strict=True):
        for pattern, p in zip(out["tasks"][c]["outcomes"]["patterns"], w[i], strict=True):
            pattern.pop("count")
            pattern["p"] = float(p)
        last = out["tasks"][c]["outcomes"]["patterns"][-1]
        last["p"] = 1 - sum(p["p"] for p in out["tasks"][c]["outcomes"]["patterns"][:-1])  # sum exactly 1
    return out


@pytest.mark.parametrize(("panel_nodes", "tol"), [(8, 1e-12), (unc.DRAW_PANEL_NODES, 1e-7)])
def test_batched_draws_equal_one_engine_run_per_draw(
    panel_nodes: int, tol: float, monkeypatch: pytest.MonkeyPatch
) -> None:
    # with the point estimate's 8 nodes per panel, batching is exact; the draws' default of 4 for rho > 0.5 is
    # within 1e-7 (latent-high), far below any posterior spread
    monkeypatch.setattr(unc, "DRAW_PANEL_NODES", panel_nodes)
    sheet = joint_sheet()
    ws = routecalc.validate_worksheet(sheet)
    plan = unc.plan_of(ws)
    assert [c.what for c in plan.counted].count("outcome table") == 1
    problem = compile_worksheet(ws)
    d = unc.Gammas.draw(plan, 6, np.random.default_rng(5)).draws()
    got = unc.draw_metrics(problem, plan, d)
    assert not got.clipped.any()  # large counts: the conditional rate stays feasible
    for i in range(6):
        one = expected_values(compile_worksheet(routecalc.validate_worksheet(sheet_of_draw(sheet, plan, d, i))))
        np.testing.assert_allclose(got.quality[i], one.quality, rtol=0, atol=tol)
        np.testing.assert_allclose(got.cost[i], one.cost @ problem.tasks.share, rtol=tol)


def test_a_table_moves_together_and_keeps_its_pattern_set() -> None:
    ws = routecalc.validate_worksheet(joint_sheet())
    plan = unc.plan_of(ws)
    d = unc.Gammas.draw(plan, 50_000, np.random.default_rng(0)).draws()
    (table,) = d.tables
    assert np.allclose(table.sum(axis=1), 1.0) and (table > 0).all()
    # Dirichlet(1 + 78, 1 + 2, 1 + 12, 1 + 8): mean (79, 3, 13, 9) / 104
    np.testing.assert_allclose(table.mean(axis=0), np.array([79, 3, 13, 9]) / 104, atol=0.002)


def test_a_conditional_rate_is_clipped_into_its_feasible_range_and_said_so() -> None:
    # small 0.8, large 0.9 (20 prompts each) and large passes 55 % of what small failed (4 prompts): the feasible
    # range is [0.5, 1], so many draws of the conditional rate fall below it
    s = with_policies(two_model_sheet(), CASCADE)
    s["tasks"][0]["pass_rates"] = {"small": {"passed": 16, "of": 20}, "large": {"passed": 18, "of": 20}}
    s["tasks"][0]["outcomes"] = {
        "conditional": {"model": "large", "given_failed": "small", "pass_rate": {"passed": 11, "of": 20}}
    }
    ws = routecalc.validate_worksheet(s)
    u = unc.analyse(ws, routecalc.compare(ws, samples=2_000), 1_000)
    clip = [n for n in u.notes if "clipped" in n]
    assert len(clip) == 1 and clip[0].startswith("t: the conditional rate was clipped")
    plan, problem = unc.plan_of(ws), compile_worksheet(ws)
    d = unc.Gammas.draw(plan, 1_000, np.random.default_rng(0)).draws()
    batch, clipped = unc.batched_problem(problem, plan, d)
    assert clipped[0] > 0 and (batch.outcomes.weight >= 0).all()
    np.testing.assert_allclose(batch.outcomes.weight.sum(axis=-1), 1.0)


@pytest.mark.parametrize("q1", [0.0, 0.3, 0.8, 0.99, 1.0])
@pytest.mark.parametrize("q2", [0.0, 0.5, 0.9, 1.0])
def test_feasible_range_is_conditional_range(q1: float, q2: float) -> None:
    lo, hi = unc.feasible_range(np.array([q1]), np.array([q2]))
    assert (float(lo[0]), float(hi[0])) == pytest.approx(conditional_range(q1, q2))


# ---------------------------------------------------------------------------------------------------------
# Coverage: do 90 % intervals cover the truth 90 % of the time?


@pytest.mark.slow
def test_quality_intervals_cover_the_truth_about_90_percent_of_the_time() -> None:
    # truth: small 0.8, large 0.9, validator catch 0.85 / false reject 0.05; a cascade small -> large.
    # Each repetition simulates an eval (300 prompts per model, 100 bad and 200 good answers for the validator),
    # draws 1,000 parameter sets from the posteriors and asks whether the 90 % interval covers the true quality.
    truth = {"small": 0.8, "large": 0.9, "catch": 0.85, "false_reject": 0.05}
    n = {"small": 300, "large": 300, "catch": 100, "false_reject": 200}
    base = with_policies(two_model_sheet(), CASCADE)
    true_sheet = copy.deepcopy(base)
    true_sheet["tasks"][0]["pass_rates"] = {"small": truth["small"], "large": truth["large"]}
    true_sheet["tasks"][0]["validator"] = {"catch": truth["catch"], "false_reject": truth["false_reject"]}
    true_q = float(expected_values(compile_worksheet(routecalc.validate_worksheet(true_sheet))).quality[0, 0])
    rng = np.random.default_rng(2024)
    reps, covered = 400, 0
    for r in range(reps):
        k = {key: int(rng.binomial(n[key], truth[key])) for key in truth}
        s = copy.deepcopy(base)
        s["tasks"][0]["pass_rates"] = {m: {"passed": k[m], "of": n[m]} for m in ("small", "large")}
        s["tasks"][0]["validator"] = {
            "catch": {"caught": k["catch"], "of": n["catch"]},
            "false_reject": {"rejected": k["false_reject"], "of": n["false_reject"]},
        }
        ws = routecalc.validate_worksheet(s)
        plan = unc.plan_of(ws)
        q = unc.draw_metrics(
            compile_worksheet(ws), plan, unc.Gammas.draw(plan, 1_000, np.random.default_rng(r)).draws()
        )
        iv = unc.Interval.of(q.quality[:, 0, 0])
        covered += iv.low <= true_q <= iv.high
    # binomial tolerance: sd of the coverage over 400 repetitions is sqrt(0.9 * 0.1 / 400) = 0.015; allow 3.5 sd
    assert abs(covered / reps - 0.90) < 0.053, covered / reps


# ---------------------------------------------------------------------------------------------------------
# The sample-size advice


def test_advice_finds_the_factor_the_beta_tail_asks_for() -> None:
    # large passes 93 of 100, threshold 90 %: today P = P(Beta(94, 8) >= 0.9) = 0.82. With f times the counts it
    # is P(Beta(1 + 93 f, 1 + 7 f) >= 0.9); the smallest factor on the 2^(k/3) grid reaching 95 % is exact below.
    u = analyse(one_category(93, 100), draws=4_000)
    a = u.advice
    assert a is not None and a.policy == "large-only" and a.bottleneck == "t" and a.reachable
    grid = unc.SCALE_STEP ** np.arange(22)
    exact = next(f for f in grid if beta.sf(0.9, 1 + 93 * f, 1 + 7 * f) >= 0.95)  # 2.52 -> 152 more prompts
    (more,) = a.more
    assert more.category == "t" and more.eval_size == 100
    assert any(more.factor == pytest.approx(exact * unc.SCALE_STEP**k) for k in (-1, 0, 1))  # ± one step: noise
    assert more.extra == int(np.ceil((more.factor - 1) * 100))
    assert a.p_after is not None and a.p_after >= 0.93


def test_advice_when_the_point_estimate_sits_on_the_threshold() -> None:
    # 90 of 100 against a 90 % threshold: more data only narrows the posterior around 0.9, P stays near 1/2
    u = analyse(one_category(90, 100), draws=2_000)
    assert u.advice is not None and not u.advice.reachable and u.advice.p_after is None
    from routecalc.report.risk import advice_sentence

    ws = routecalc.validate_worksheet(one_category(90, 100))
    text = advice_sentence(routecalc.compare(ws, samples=2_000), u.advice, u.draws)
    assert "Even 128× today's labelled prompts would not lift that to 95%" in text and "+0.00 pp" in text


def test_no_advice_needed_with_a_large_eval_set() -> None:
    u = analyse(one_category(9_300, 10_000), draws=2_000)  # P(Beta(9301, 701) >= 0.9) ~ 1
    assert u.advice is not None and u.advice.p_meets >= 0.95 and u.advice.more == []


# ---------------------------------------------------------------------------------------------------------
# Worksheets without counts, and the outputs


def test_a_worksheet_without_counts_says_nothing_is_uncertain() -> None:
    result = runner.invoke(app, ["compare", str(WORKSHEETS / "rag-assistant.yaml"), *FAST, "--uncertainty"])
    assert result.exit_code == 0, result.output
    text = " ".join(result.output.split())
    assert "Nothing is uncertain in this worksheet" in text and "no counts: add {passed, of} to pass rates" in text
    assert "P(winner)" not in text  # no degenerate intervals
    data = json.loads(
        runner.invoke(
            app, ["compare", str(WORKSHEETS / "rag-assistant.yaml"), *FAST, "-f", "json", "--uncertainty"]
        ).stdout
    )
    assert data["uncertainty"]["has_counts"] is False and "policies" not in data["uncertainty"]


def test_fixed_inputs_are_named(support_ws) -> None:
    plan = unc.plan_of(support_ws)
    assert len(plan.counted) == 20  # 5 categories x 4 models
    assert plan.fixed == ("validator catch and false-reject rates: classify, extract, faq, refund, dispute",)


def test_compare_table_shows_intervals_and_advice(support_path: Path) -> None:
    result = runner.invoke(app, ["compare", str(support_path), *FAST, "--uncertainty", "500"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    text = " ".join(result.output.split())
    assert "Uncertainty — 500 draws from the posteriors of the eval counts (seed 0)" in text
    for row in ("Monthly cost (USD, 90%)", "Cost change vs today (USD, 90%)", "Quality (90%)", "P(meets every target)"):
        assert row in text
    assert "Fixed, no counts: validator catch and false-reject rates" in text
    assert "Latency budgets come from the point-estimate Monte Carlo run and are not redrawn." in text
    assert "cheap-first-routine (the winner) meets every target in" in text


def test_compare_json_and_csv_carry_units_in_key_names(support_path: Path) -> None:
    data = json.loads(runner.invoke(app, ["compare", str(support_path), *FAST, "-f", "json", "--uncertainty"]).stdout)
    u = data["uncertainty"]
    assert u["draws"] == 1_000 and u["currency"] == "USD" and u["interval_level"] == 0.9
    row = next(p for p in u["policies"] if p["name"] == data["winner"])
    assert row["monthly_cost_p05"] <= row["monthly_cost_p50"] <= row["monthly_cost_p95"]
    assert 0 < row["quality_fraction_p05"] < row["quality_fraction_p95"] < 1
    assert 0 <= row["probability_winner"] <= row["probability_meets_targets"] <= 1
    assert u["sample_advice"]["policy"] == data["winner"]
    csv_text = runner.invoke(app, ["compare", str(support_path), *FAST, "-f", "csv", "--uncertainty", "200"]).stdout
    header = csv_text.splitlines()[0].split(",")
    assert header[-2:] == ["probability_meets_targets", "probability_winner"]


@pytest.mark.parametrize(
    ("args", "draws"),
    [
        (["--uncertainty"], 1_000),
        (["--uncertainty", "250"], 250),
        (["--uncertainty=300"], 300),
        (["--uncertainty", "--seed", "2"], 1_000),
    ],
)
def test_uncertainty_takes_an_optional_number(support_path: Path, args: list[str], draws: int) -> None:
    result = runner.invoke(app, ["compare", str(support_path), *FAST, "-f", "json", *args])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["uncertainty"]["draws"] == draws


def test_uncertainty_before_the_worksheet(support_path: Path) -> None:
    result = runner.invoke(app, ["compare", "--uncertainty", str(support_path), *FAST, "-f", "json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["uncertainty"]["draws"] == 1_000


def test_optional_value_leaves_other_words_alone() -> None:
    assert optional_value(["a", "--uncertainty"], "--uncertainty", "1000") == ["a", "--uncertainty", "1000"]
    assert optional_value(["--uncertainty", "-5", "a"], "--uncertainty", "1000") == ["--uncertainty", "-5", "a"]
    assert optional_value(["--", "--uncertainty"], "--uncertainty", "1000") == ["--", "--uncertainty"]


@pytest.mark.parametrize("command", ["compare", "report"])
@pytest.mark.parametrize("n", ["0", "-5", "99", "100001", "10000000000"])
def test_bad_number_of_draws_exits_2(support_path: Path, tmp_path: Path, command: str, n: str) -> None:
    extra = ["--out", str(tmp_path / "r")] if command == "report" else []
    result = runner.invoke(app, [command, str(support_path), *extra, "--uncertainty", n])
    assert result.exit_code == 2, result.output
    assert "--uncertainty: give a number of draws between 100 and 100,000" in " ".join(result.output.split())
    assert "Traceback" not in result.output
    assert not (tmp_path / "r").exists()


def test_library_refuses_bad_draws(support_ws, support_cmp) -> None:
    with pytest.raises(InputError, match="between 100 and 100,000"):
        unc.analyse(support_ws, support_cmp, 0)


def test_report_risk_section(support_ws, support_cmp, support_path: Path) -> None:
    u = unc.analyse(support_ws, support_cmp, 500)
    plain = to_markdown(build.report_document(support_ws, support_cmp, support_path, TODAY))
    md = to_markdown(build.report_document(support_ws, support_cmp, support_path, TODAY, uncertainty=u))
    assert "# Risk: how sure is the decision?" in md and "Risk: how sure" not in plain
    assert "| Policy | Monthly cost (USD, 90%) | Cost change vs today (USD, 90%) | Quality (90%) |" in md
    assert "Fixed, no counts: validator catch and false-reject rates" in md
    assert md.replace(md[md.index("## Risk") : md.index("## Charts")], "") == plain  # nothing else moves


def test_cost_quality_chart_gets_whiskers(support_cmp) -> None:
    u = unc.analyse(support_cmp_ws(), support_cmp, 300)

    def svg(with_bars: bool) -> bytes:
        fig = charts.cost_quality_figure(support_cmp)
        if with_bars:
            charts.add_interval_bars(fig, support_cmp, *chart_intervals(support_cmp, u))
        return charts.figure_bytes(fig, "svg")

    plain, bars = svg(False), svg(True)
    assert bars != plain and bars == svg(True)  # drawn, deterministically
    cost, quality, note = chart_intervals(support_cmp, u)
    assert cost.shape == quality.shape == (len(support_cmp.policies), 2) and (cost[:, 0] <= cost[:, 1]).all()
    assert note == "whiskers: 90% intervals from 300 draws of the eval counts' posteriors"


def support_cmp_ws() -> routecalc.Worksheet:
    return routecalc.load_worksheet(WORKSHEETS / "support-triage.yaml")


def test_report_without_counts_says_so() -> None:
    ws = routecalc.load_worksheet(WORKSHEETS / "structured-extraction.yaml")
    c = routecalc.compare(ws, samples=20_000, today=TODAY)
    u = unc.analyse(ws, c)
    assert not u.has_counts and u.policies == []
    md = to_markdown(build.report_document(ws, c, None, TODAY, uncertainty=u))
    assert "Nothing is uncertain in this worksheet" in md


@pytest.mark.slow
def test_cli_report_with_uncertainty(tmp_path: Path, support_path: Path) -> None:
    result = runner.invoke(
        app, ["report", str(support_path), "--out", str(tmp_path), *FAST, "-f", "md", "--uncertainty", "200"]
    )
    assert result.exit_code == 0, result.output
    assert "cheap-first-routine (the winner) meets every target in" in " ".join(result.output.split())
    assert "# Risk: how sure is the decision?" in (tmp_path / "report.md").read_text()
