"""``routecalc sensitivity``: one-at-a-time swings, break-even values, the batched path against the worksheet.

Hand-checkable cases use the two-model sheet (one category, 1,000 tokens in, 500 out; small $0.002 and large $0.020
per request; 1,000 requests a month; validator catch 0.9, false reject 0.1; threshold 90 %) with a cascade
small -> large. Its first step delivers a good answer with 0.9 q_small, a bad one with 0.1 (1 - q_small), and
sends r = 0.9 - 0.8 q_small on to large, so

    cost = c_small + r c_large,    quality = 0.9 q_small + r q_large.
"""

from __future__ import annotations

import copy
import json

import numpy as np
import pytest
from typer.testing import CliRunner

import routecalc
from routecalc.chains import compile_worksheet, strongest_model
from routecalc.cli import app
from routecalc.decide import sensitivity as sens
from routecalc.decide import swing
from routecalc.engine.ev import expected_values
from routecalc.errors import InputError, PolicyError
from routecalc.report import build
from routecalc.report.charts.sensitivity import SLUG, tornado, tornado_figure
from routecalc.report.document import to_markdown
from tests.conftest import TODAY, WORKSHEETS
from tests.helpers import two_model_sheet, with_policies

runner = CliRunner()
FAST = ["--samples", "20000"]
SMALL = {"name": "small", "kind": "static", "routes": {"t": "small"}}
LARGE = {"name": "large", "kind": "static", "routes": {"t": "large"}}
CASCADE = {"name": "cascade", "kind": "cascade", "routes": {"t": ["small", "large"]}}


def cascade_sheet(**top) -> dict:
    return with_policies(two_model_sheet(baseline="large", **top), SMALL, LARGE, CASCADE)


def run(sheet: dict, **kw) -> sens.Sensitivity:
    ws = routecalc.validate_worksheet(sheet)
    return sens.analyse(ws, routecalc.compare(ws, samples=5_000, seed=0), **kw)


def swing_of(s: sens.Sensitivity, key: str) -> sens.Swing:
    return next(w for w in s.swings if w.input.key == key)


def break_even(s: sens.Sensitivity, key: str, rival: str, direction: str) -> sens.BreakEven:
    return next(b for b in s.break_evens if b.input.key == key and b.rival == rival and b.direction == direction)


# ---------------------------------------------------------------------------------------------------------
# Hand-computed swings and break-evens


def test_the_cascade_is_the_winner_large_the_runner_up_and_the_baseline() -> None:
    s = run(cascade_sheet())
    # cost 0.002 + 0.26 x 0.020 = $0.0072 -> $7.20/month; quality 0.72 + 0.26 x 0.95 = 0.967
    assert s.policy == s.winner == "cascade"
    assert s.monthly_cost == pytest.approx(7.20)
    assert s.quality == pytest.approx(0.967)
    assert s.savings == pytest.approx(20.0 - 7.20)
    assert s.rivals == [("large", "runner-up")]  # large is also the baseline: listed once


def test_swings_of_a_pass_rate_and_a_price() -> None:
    s = run(cascade_sheet())
    q = swing_of(s, "pass_rate/t/small")
    # q_small 0.64: r = 0.9 - 0.512 = 0.388, cost 0.002 + 0.00776 = $9.76/mo, quality 0.576 + 0.3686 = 0.9446
    # q_small 0.96: r = 0.132, cost 0.002 + 0.00264 = $4.64/mo, quality 0.864 + 0.1254 = 0.9894
    assert (q.low, q.high) == pytest.approx((0.64, 0.96))
    assert q.monthly_cost == pytest.approx((9.76, 4.64))
    assert q.quality == pytest.approx((0.9446, 0.9894))
    assert q.savings == pytest.approx((20 - 9.76, 20 - 4.64))
    p = swing_of(s, "price_in/large")
    # large costs 1000 x $8/1M + 500 x $20/1M = $0.018 (or $0.022 at $12): the cascade 0.002 + 0.26 x that,
    # and the baseline (large itself) moves too: savings = 1000 x (0.018 - 0.00668)
    assert p.monthly_cost == pytest.approx((6.68, 7.72))
    assert p.savings == pytest.approx((18.0 - 6.68, 22.0 - 7.72))
    assert p.quality == pytest.approx((0.967, 0.967))


def test_a_pass_rate_at_one_is_clipped_to_its_range() -> None:
    sheet = cascade_sheet()
    sheet["tasks"][0]["pass_rates"]["large"] = 0.9
    s = run(sheet)
    assert swing_of(s, "pass_rate/t/large").high == 1.0  # 0.9 x 1.2 = 1.08, clipped
    assert swing_of(s, "pass_rate/t/large").low == pytest.approx(0.72)


@pytest.mark.parametrize(
    ("key", "direction", "value", "after"),
    [
        # quality 0.855 + 0.14 q_small = 0.9 at q_small = 9/28: below it the cascade misses the threshold
        ("pass_rate/t/small", "below", 9 / 28, "large"),
        # quality 0.72 + 0.26 q_large = 0.9 at 9/13; large itself misses 90 % already below 0.9: neither
        ("pass_rate/t/large", "below", 9 / 13, "neither"),
    ],
)
def test_break_even_of_a_pass_rate(key: str, direction: str, value: float, after: str) -> None:
    b = break_even(run(cascade_sheet(), top=20), key, "large", direction)
    assert b.value == pytest.approx(value, abs=1e-9)
    assert (b.before, b.after) == ("cascade", after)


def test_break_even_of_a_price() -> None:
    # small at $5 in / $10 out per 1M: $0.010 per request; the cascade pays 0.010 + 0.26 x 0.020 = $0.0152 and
    # large $0.020. With small's input price p: p / 1000 + 0.005 + 0.0052 = 0.020 at p = $9.80 per 1M.
    sheet = cascade_sheet()
    sheet["models"][0].update(price_in=5.0, price_out=10.0)
    s = run(sheet, top=20)
    b = break_even(s, "price_in/small", "large", "above")
    assert b.value == pytest.approx(9.8, abs=1e-8)
    assert b.after == "large" and b.reason == "large becomes the cheaper of the two"
    assert "cascade stops beating large (runner-up) when small input price is above $9.80 per 1M tokens" in (
        sens.break_even_sentence(s, b)
    )
    # and nothing makes large cheaper by lowering a price
    none = break_even(s, "price_in/small", "large", "below")
    assert none.value is None
    assert "no flip within the valid range below today's small input price" in sens.break_even_sentence(s, none)


def test_traffic_shares_are_renormalised() -> None:
    # two categories, a (small, $0.002) and b (large, $0.020), half the traffic each
    sheet = with_policies(two_model_sheet(), {"name": "mix", "kind": "static", "routes": {"t": "small", "u": "large"}})
    sheet["tasks"][0]["quality_threshold"] = 0.5
    sheet["tasks"].append({**copy.deepcopy(sheet["tasks"][0]), "name": "u"})
    for t in sheet["tasks"]:
        t["traffic_share"] = 0.5
    s = run(sheet, policy="mix")
    w = swing_of(s, "traffic_share/t")
    # t at 0.4 / 0.6, u takes the rest: 0.4 x 2 + 0.6 x 20 = $12.80/mo, 0.6 x 2 + 0.4 x 20 = $9.20/mo
    assert (w.low, w.high) == pytest.approx((0.4, 0.6))
    assert w.monthly_cost == pytest.approx((12.8, 9.2))


@pytest.mark.parametrize(("text", "value"), [("20%", 0.2), ("0.2", 0.2), (" 5 %", 0.05), ("100%", 1.0), (0.3, 0.3)])
def test_parse_swing(text: str | float, value: float) -> None:
    assert sens.parse_swing(text) == pytest.approx(value)


@pytest.mark.parametrize("text", ["abc", "20", "0%", "150%", "-10%", "1e-3"])
def test_parse_swing_refuses(text: str) -> None:
    with pytest.raises(InputError, match="--swing"):
        sens.parse_swing(text)


def test_no_winner_needs_a_policy() -> None:
    sheet = cascade_sheet()
    sheet["tasks"][0]["quality_threshold"] = 0.999
    with pytest.raises(PolicyError, match="no winner to analyse: name one with --policy"):
        run(sheet)
    assert run(sheet, policy="cascade").policy == "cascade"


# ---------------------------------------------------------------------------------------------------------
# Every break-even flips the decision, re-evaluated on the worksheet itself


def rich_sheet(latency_law: bool = False) -> dict:
    """Every kind of input: three models (one with e2e latency, one with a cached price), an independent category
    with a paid, slow validator and cached prompts, latent difficulty (rho 0.3 and 0.8), a conditional rate, an
    outcome table, tiers, and a context window that cuts one category's tokens into segments. With
    ``latency_law``, a deadline and a hedged step too (the engine cannot batch latency then)."""
    s = two_model_sheet(baseline="big")
    s["volume"] = {"requests_per_month": 50_000}
    s["defaults"] = {"retries": 1}
    s["models"][0].update(failure_rate=0.03, timeout_share=0.5, timeout_s=8, price_cache=0.25)
    s["models"][1].update(failure_rate=0.01, context_window=3000)
    s["models"].append(
        {
            "name": "mid",
            "provider": "b",
            "price_in": 4,
            "price_out": 8,
            "latency": {"e2e_s": {"p50": 2, "p95": 5}},
            "failure_rate": 0.02,
        }
    )
    base = s["tasks"][0]
    base.update(
        validator={"catch": 0.9, "false_reject": 0.1, "latency_s": 0.2, "cost_per_call": 0.0005},
        latency_budget_s=30,
        quality_threshold=0.85,
    )
    rates = {"small": 0.8, "large": 0.95, "mid": 0.85}
    cats = [
        {**base, "name": "indep", "pass_rates": rates, "cached_share": 0.3},
        {**base, "name": "latent-low", "pass_rates": rates, "outcomes": {"correlation": 0.3}},
        {**base, "name": "latent-high", "pass_rates": rates, "outcomes": {"correlation": 0.8}},
        {
            **base,
            "name": "cond",
            "pass_rates": rates,
            "outcomes": {"conditional": {"model": "large", "given_failed": "small", "pass_rate": 0.85}},
        },
        {
            **base,
            "name": "table",
            "pass_rates": {"mid": 0.85},
            "outcomes": {
                "models": ["small", "large"],
                "patterns": [
                    {"passed": ["small", "large"], "p": 0.7},
                    {"passed": ["small"], "p": 0.1},
                    {"passed": ["large"], "p": 0.15},
                    {"passed": [], "p": 0.05},
                ],
            },
        },
        {
            **base,
            "name": "tiers",
            "pass_rates": {},
            "tiers": {
                "easy": {"share": 0.7, "pass_rates": {"small": 0.95, "large": 0.99, "mid": 0.97}},
                "hard": {"share": 0.3, "pass_rates": {"small": 0.5, "large": 0.85, "mid": 0.7}},
            },
        },
        {**base, "name": "long", "pass_rates": rates, "tokens_in": {"p50": 1500, "p95": 4000}},
    ]
    shares = [0.3, 0.15, 0.15, 0.1, 0.1, 0.1, 0.1]
    for cat, share in zip(cats, shares, strict=True):
        cat["traffic_share"] = share
    s["tasks"] = cats
    names = [c["name"] for c in cats]
    every = lambda route: {n: copy.deepcopy(route) for n in names}
    s["policies"] = [
        {"name": "cascade", "kind": "cascade", "routes": every(["small", "large"])},
        {"name": "big", "kind": "static", "routes": every("large")},
        {"name": "fallback", "kind": "fallback", "routes": every(["small", "mid"])},
        {"name": "three", "kind": "cascade", "routes": every(["small", "mid", "large"])},
    ]
    if latency_law:
        s["policies"].append(
            {
                "name": "deadline",
                "kind": "chain",
                "routes": every([{"model": "small", "deadline_s": 6, "gate": True}, {"hedge": ["mid", "large"]}]),
            }
        )
    return s


def invoice_sheet() -> dict:
    """The rich sheet billed like an invoice: provider discounts, cache writes and reasoning tokens whose prices
    default to price_in / price_out (so a swung price must carry them, net of the discount), a batch share."""
    s = rich_sheet()
    s["discounts"] = {"openai": 0.2, "b": 0.1}
    s["models"][0].update(reasoning_ratio=0.5)
    s["models"][2].update(reasoning_ratio=1.5, price_in_batch=2, price_out_batch=4)
    for t in s["tasks"]:
        t.update(cache_write_share=0.2, batch_share=0.25)
    return s


CASES = {
    "rich": rich_sheet(),
    "rich-latency-law": rich_sheet(latency_law=True),
    "support-triage": WORKSHEETS / "support-triage.yaml",
    "rag-assistant": WORKSHEETS / "rag-assistant.yaml",
    "structured-extraction": WORKSHEETS / "structured-extraction.yaml",
    "invoice": invoice_sheet(),
}


def load(case: str) -> routecalc.Worksheet:
    src = CASES[case]
    return routecalc.validate_worksheet(src) if isinstance(src, dict) else routecalc.load_worksheet(src)


def reference(ws: routecalc.Worksheet, strongest: str | None, inp: swing.Input, v: float) -> sens.Evaluated:
    """One setting on the worksheet itself: applied, re-compiled, one engine run (the reference semantics)."""
    problem = compile_worksheet(swing.apply_input(ws, inp, v), strongest=strongest)
    ev = expected_values(problem)
    return sens.Evaluated(ev.cost[None], ev.quality[None], ev.latency[None], problem.tasks.share[None])


@pytest.mark.slow
@pytest.mark.parametrize("case", list(CASES))
def test_the_batched_path_equals_the_worksheet_path(case: str) -> None:
    ws = load(case)
    problem = compile_worksheet(ws)
    strongest = strongest_model(ws) if "all-to-strongest" in problem.chains.names else None
    inputs = swing.inputs_of(ws, problem)
    ev = swing.Evaluator(ws, problem, inputs, strongest)
    base = expected_values(problem)
    np.testing.assert_allclose(ev.base.cost[0], base.cost, rtol=1e-12)
    np.testing.assert_allclose(ev.base.quality[0], base.quality, rtol=0, atol=1e-12)
    settings = [(i, v) for i, inp in enumerate(inputs) for v in inp.swung(0.37)]
    # input tokens past the point where a context window starts to cut the band: re-compiled, segments appear
    settings += [(i, inp.high) for i, inp in enumerate(inputs) if inp.kind == swing.TOKENS_IN]
    got = ev.run(settings)
    for n, (i, v) in enumerate(settings):
        want = reference(ws, strongest, inputs[i], v)
        msg = f"{inputs[i].key} = {v}"
        np.testing.assert_allclose(got.cost[n], want.cost[0], rtol=1e-9, atol=1e-15, err_msg=msg)
        np.testing.assert_allclose(got.quality[n], want.quality[0], rtol=0, atol=1e-9, err_msg=msg)
        np.testing.assert_allclose(got.latency[n], want.latency[0], rtol=1e-9, err_msg=msg)
        np.testing.assert_allclose(got.share[n], want.share[0], rtol=1e-12, err_msg=msg)


def test_every_kind_of_input_is_swung_and_some_take_the_worksheet_path() -> None:
    kinds = {i.kind for i in swing.inputs_of(load("rich"), compile_worksheet(load("rich")))}
    assert kinds == {
        swing.PRICE_IN,
        swing.PRICE_OUT,
        swing.PRICE_CACHE,
        swing.FAILURE,
        swing.LATENCY,
        swing.SHARE,
        swing.TOKENS_IN,
        swing.TOKENS_OUT,
        swing.PASS_RATE,
        swing.TIER_PASS_RATE,
        swing.CORRELATION,
        swing.CONDITIONAL_RATE,
        swing.CATCH_RATE,
        swing.FALSE_REJECT_RATE,
        swing.GATE_COST,
        swing.GATE_LATENCY,
    }
    ws = load("rich-latency-law")
    unbatched = {i.kind for i in swing.inputs_of(ws, compile_worksheet(ws)) if not i.batched}
    # deadlines and hedges need the whole latency law; a context window cuts input tokens into segments; tiers
    assert unbatched == {swing.FAILURE, swing.LATENCY, swing.TOKENS_OUT, swing.TOKENS_IN, swing.TIER_PASS_RATE}


@pytest.mark.slow
@pytest.mark.parametrize("case", [c for c in CASES if c != "invoice"])  # invoice: its pricing is checked above
def test_every_break_even_flips_the_decision_just_past_it(case: str) -> None:
    ws = load(case)
    c = routecalc.compare(ws, samples=20_000, seed=0)
    s = sens.analyse(ws, c, policy=c.winner or "cascade", top=12)
    names = [p.name for p in c.policies]
    f = names.index(s.policy)
    strongest = c.strongest_model if "all-to-strongest" in names else None
    targets = sens.Targets.of(c, expected_values(c.problem).latency)
    found = [b for b in s.break_evens if b.value is not None]
    assert found, "expected at least one break-even"
    for b in found:
        span = abs(b.searched_to - b.input.value)
        step = 1e-6 * span * (1 if b.direction == "above" else -1)
        r = names.index(b.rival)
        sides = []
        for v in (b.value - step, b.value + step):  # today's side, then the other side
            e = reference(ws, strongest, b.input, v)
            _, _, meets = targets.verdicts(e)
            sides.append(int(sens.pair_outcome(meets, e.total_cost, e.total_quality, f, r)[0]))
        labels = [sens._label(o, s.policy, b.rival) for o in sides]
        assert labels == [b.before, b.after], (b.input.key, b.rival, b.value, labels)
        assert labels[0] != labels[1]
        # where a P95 budget decides it, Monte Carlo at that value is quoted next to the scaled estimate
        assert (b.check is not None) == bool(b.latency)
        if b.check:
            assert b.check.startswith("Monte Carlo at that value (20,000 requests, seed 0): ")


@pytest.mark.slow
def test_the_search_is_batched() -> None:
    ws = load("rich")
    c = routecalc.compare(ws, samples=5_000, seed=0)
    problem = c.problem
    strongest = c.strongest_model
    inputs = swing.inputs_of(ws, problem)
    ev = swing.Evaluator(ws, problem, inputs, strongest)
    assert ev.passes == 1  # today's values
    ev.run([(i, v) for i, inp in enumerate(inputs) for v in inp.swung(0.2)])
    rho = sum(2 for i in inputs if i.kind == swing.CORRELATION and i.batched)
    # one pass for every batchable swing, one per correlation setting (its quadrature moves), tiers re-compiled
    assert ev.passes == 2 + rho
    assert ev.recompiled == 2 * sum(not i.batched for i in inputs)
    s = sens.analyse(ws, c)
    assert s.engine_passes <= 1 + 1 + 1 + sens.MAX_PASSES + 1  # base, swings, scan, refinements, both sides
    assert s.engine_passes < 20


# ---------------------------------------------------------------------------------------------------------
# Output: CLI, JSON, tornado, report


def test_cli_table(tmp_path) -> None:
    path = tmp_path / "w.yaml"
    import yaml

    path.write_text(yaml.safe_dump(cascade_sheet()), encoding="utf-8")
    res = runner.invoke(app, ["sensitivity", str(path), *FAST], env={"COLUMNS": "200"})
    assert res.exit_code == 0, res.output
    out = res.output
    assert "cascade (the winner): $7.20/mo, saves $12.80/mo vs large, quality 96.70%" in out
    assert "small pass rate on t" in out and "64.00% / 96.00%" in out
    assert "cascade stops beating large (runner-up) when small pass rate on t is below 32.14%" in out


def test_cli_json(tmp_path) -> None:
    import yaml

    path = tmp_path / "w.yaml"
    path.write_text(yaml.safe_dump(cascade_sheet()), encoding="utf-8")
    res = runner.invoke(app, ["sensitivity", str(path), *FAST, "--format", "json", "--swing", "10%", "--top", "3"])
    assert res.exit_code == 0, res.output
    d = json.loads(res.output)
    assert d["policy"] == "cascade" and d["swing_fraction"] == 0.1 and d["currency"] == "USD"
    row = next(r for r in d["swings"] if r["input"]["key"] == "pass_rate/t/small")
    # q_small 0.72: r = 0.324, cost 0.002 + 0.00648 = $8.48/mo
    assert row["value_low"] == pytest.approx(0.72) and row["monthly_cost_low"] == pytest.approx(8.48)
    be = next(b for b in d["break_evens"] if b["input"] == "pass_rate/t/small" and b["direction"] == "below")
    assert be["value"] == pytest.approx(9 / 28) and be["after"] == "large"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--swing", "abc"], "--swing: give a relative change such as 20% or 0.2"),
        (["--swing", "300%"], "at most 100%"),
        (["--policy", "nope"], "unknown policy 'nope'"),
    ],
)
def test_cli_errors_exit_2(args: list[str], message: str) -> None:
    res = runner.invoke(app, ["sensitivity", str(WORKSHEETS / "support-triage.yaml"), *FAST, *args])
    assert res.exit_code == 2
    assert message in res.output


def test_cli_no_winner_exits_2_and_names_the_policies() -> None:
    res = runner.invoke(app, ["sensitivity", str(WORKSHEETS / "mmlu-cascade.yaml"), *FAST], env={"COLUMNS": "200"})
    assert res.exit_code == 2
    assert "no winner to analyse" in res.output and "mixtral-then-gpt-4" in res.output


def test_tornado_data_and_figure() -> None:
    s = run(cascade_sheet(), top=2)
    t = tornado(s)
    assert len(t.labels) >= 2
    top = s.swings[0]
    lo, hi = s.effect(top, "cost")
    assert (t.cost_low[0], t.cost_high[0]) == (lo, hi)
    ql, qh = s.effect(top, "quality")
    assert (t.quality_low[0], t.quality_high[0]) == pytest.approx((ql * 100, qh * 100))
    # ranked by the largest change in monthly cost
    effects = [max(map(abs, s.effect(w, "cost"))) for w in s.swings]
    assert effects == sorted(effects, reverse=True)
    fig = tornado_figure(s)
    assert len(fig.axes) == 2


@pytest.mark.slow
def test_report_section(support_ws: routecalc.Worksheet, support_cmp: routecalc.Comparison) -> None:
    s = sens.analyse(support_ws, support_cmp, top=4)
    files = build.build_report(support_ws, support_cmp, None, "md", generated=TODAY, sensitivity=s)
    assert f"{SLUG}.png" in files and f"{SLUG}.svg" in files
    md = files["report.md"].decode()
    assert "## Sensitivity: what would change the answer?" in md
    assert f"![{sens_title()} for Support triage]({SLUG}.png)" in md
    for sentence in s.sentences():
        assert sentence in md
    without = to_markdown(build.report_document(support_ws, support_cmp, None, TODAY))
    assert "Sensitivity" not in without


@pytest.mark.slow
def test_cli_report_with_sensitivity(tmp_path) -> None:
    out = tmp_path / "rep"
    args = ["report", str(WORKSHEETS / "support-triage.yaml"), "--out", str(out), "--format", "md", *FAST]
    res = runner.invoke(app, [*args, "--sensitivity", "--swing", "10%", "--today", "2026-11-25"])
    assert res.exit_code == 0, res.output
    md = (out / "report.md").read_text(encoding="utf-8")
    assert "Each input moved ±10% alone" in md and (out / f"{SLUG}.png").is_file()
    bad = runner.invoke(app, [*args, "--sensitivity", "--swing", "nope"])
    assert bad.exit_code == 2 and "--swing" in bad.output


def test_swing_table_names_the_winner_only_where_it_changes() -> None:
    from routecalc.report.sensitivity import swing_cells

    sheet = cascade_sheet()
    sheet["tasks"][0]["pass_rates"]["small"] = 0.4  # quality 0.855 + 0.14 x 0.4 = 0.911; at 0.32 it is 0.8998
    s = run(sheet, swing=0.2, top=30)
    cells = swing_cells(s, swing_of(s, "pass_rate/t/small"))
    assert cells[-1] == "large / —"  # the low end: large wins; the high end: the cascade still does
    assert swing_cells(s, swing_of(s, "price_in/large"))[-1] == "—"


def sens_title() -> str:
    from routecalc.report.charts.sensitivity import TITLE

    return TITLE
