"""routecalc explain: the hand arithmetic of one policy in one category, checked against hand-computed numbers
and against the expected-value engine."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

import routecalc
from routecalc.chains import compile_worksheet
from routecalc.cli import app
from routecalc.errors import InputError, PolicyError
from routecalc.explain import explain
from tests.conftest import WORKSHEETS
from tests.helpers import two_model_sheet, with_policies

runner = CliRunner()
CASCADE = {"name": "cascade", "kind": "cascade", "routes": {"t": ["small", "large"]}}


def test_cascade_by_hand() -> None:
    ws = routecalc.validate_worksheet(with_policies(two_model_sheet(), CASCADE))
    e = explain(ws, "cascade", "t")
    [lane] = e.lanes
    small, large = lane.steps
    # small: q 0.8, catch 0.9, false_reject 0.1 -> accepted good 0.8 x 0.9 = 0.72, accepted bad 0.2 x 0.1 = 0.02,
    # rejected 0.8 x 0.1 + 0.2 x 0.9 = 0.26 -> large, reached by 0.26; answers cost $0.002 and $0.020
    assert (small.reach, small.accept_good, small.accept_bad, small.reject) == pytest.approx((1, 0.72, 0.02, 0.26))
    assert large.reach == pytest.approx(0.26)
    assert small.answer_cost == pytest.approx(0.002) and large.answer_cost == pytest.approx(0.020)
    # cost: 0.002 + 0.26 x 0.020 = 0.0072; quality: 0.72 + 0.26 x 0.95 = 0.967 (the last step is not gated)
    assert e.hand["cost_per_request"] == pytest.approx(0.0072)
    assert e.hand["quality"] == pytest.approx(0.72 + 0.26 * 0.95)
    # latency: small 0.5 + 500 x 0.01 = 5.5 s, gate 0.2 s; large 1.0 + 500 x 0.02 = 11 s: 5.7 + 0.26 x 11 = 8.56 s
    assert e.hand["latency_mean_s"] == pytest.approx(5.7 + 0.26 * 11)
    assert e.exact and e.hand == pytest.approx({k: e.engine[k] for k in e.hand})
    assert any("0.26" in line for line in large.lines)


def test_retries_and_fallback_by_hand() -> None:
    sheet = two_model_sheet()
    sheet["models"][0]["failure_rate"] = 0.1
    sheet["defaults"] = {"retries": 1}
    ws = routecalc.validate_worksheet(
        with_policies(sheet, {"name": "fb", "kind": "fallback", "routes": {"t": ["small", "large"]}})
    )
    small, large = explain(ws, "fb", "t").lanes[0].steps
    assert small.abandon == pytest.approx(0.01)  # 0.1^(1+1)
    assert small.tries == pytest.approx(1.1)  # failed tries 0.1 (1 - 0.01) / 0.9 = 0.11, answered 0.99
    assert large.reach == pytest.approx(0.01) and small.on_failure == "step 2 (large)"


@pytest.mark.parametrize("path", sorted(WORKSHEETS.glob("*.yaml")), ids=lambda p: p.stem)
def test_hand_equals_engine_wherever_it_claims_to(path) -> None:  # type: ignore[no-untyped-def]
    ws = routecalc.load_worksheet(path)
    problem = compile_worksheet(ws)
    exact = 0
    for p in problem.chains.names:
        for c in problem.tasks.names[:3]:
            e = explain(ws, p, c)
            if e.exact:
                exact += 1
                for k, v in e.hand.items():
                    assert v == pytest.approx(e.engine[k], rel=1e-9, abs=1e-15)
            else:
                assert e.notes and "differs from the engine" in e.notes[0]
    assert exact > 0


def test_router_lanes_carry_their_share() -> None:
    ws = routecalc.load_worksheet(WORKSHEETS / "support-routing.yaml")
    e = explain(ws, "patterns", "refund")  # a classifier splits refunds into two lanes
    assert len(e.lanes) == 2 and sum(lane.share for lane in e.lanes) == pytest.approx(1)
    assert e.exact
    assert e.hand["cost_per_request"] == pytest.approx(sum(lane.share * lane.cost_per_request for lane in e.lanes))


def test_unknown_names() -> None:
    ws = routecalc.validate_worksheet(with_policies(two_model_sheet(), CASCADE))
    with pytest.raises(PolicyError):
        explain(ws, "nope", "t")
    with pytest.raises(InputError):
        explain(ws, "cascade", "nope")


def test_cli(support_path) -> None:  # type: ignore[no-untyped-def]
    result = runner.invoke(
        app, ["explain", str(support_path), "-p", "cheap-first", "-c", "classify"], env={"COLUMNS": "200"}
    )
    assert result.exit_code == 0, result.output
    out = " ".join(result.stdout.split())
    assert "route: gpt-4.1-mini [gated] → gpt-4.1" in out
    assert "cost = $0.0002101 + $0.00006608 = $0.0002762 per request" in out
    assert "matches the hand arithmetic ✓" in out
    bad = runner.invoke(app, ["explain", str(support_path), "-p", "cheap-first", "-c", "nope"])
    assert bad.exit_code == 2 and "unknown category 'nope'" in bad.stderr


@pytest.mark.parametrize("columns", ["80", "200"])
def test_cli_step_table_shows_every_number_in_full_at_any_width(support_path, columns: str) -> None:  # type: ignore[no-untyped-def]
    # 11 quantities per step do not fit 80 columns: the table turns (one column per step) rather than cut to "…"
    result = runner.invoke(
        app, ["explain", str(support_path), "-p", "cheap-first", "-c", "classify"], env={"COLUMNS": columns}
    )
    assert result.exit_code == 0, result.output
    table = result.stdout.split("step 1 (")[0]
    assert "…" not in table and "Accepted good" in table and "Latency" in table
    assert max(len(line) for line in table.splitlines()) <= int(columns)
    steps_as_columns = "1: gpt-4.1-mini [gated]" in table
    assert steps_as_columns == (columns == "80")
