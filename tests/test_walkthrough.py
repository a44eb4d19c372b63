"""README's walkthrough "From the log to a month": calibrate logs -> simulate -> report, end to end on the sample.

The commands are the README's (paths into tmp_path); the checks tie their numbers together: the calibrated volume
is the log's calls per month, the simulated month draws that volume (within Poisson error), and the report's month
section is the month `simulate` printed (same seed).
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from typer.testing import CliRunner

from routecalc.cli import app
from routecalc.engine.timeline import MONTH_DAYS
from routecalc.worksheet import load_worksheet

runner = CliRunner()
ROOT = Path(__file__).resolve().parent.parent
SAMPLE = ROOT / "examples" / "logs" / "support-sample.jsonl"
OPERATIONS = ROOT / "examples" / "logs" / "support-operations.yaml"
TRIAGE = ROOT / "worksheets" / "support-triage.yaml"
MONTH = ROOT / "worksheets" / "support-month.yaml"
LOG_CALLS, LOG_DAYS = 4055, 13.95  # the sample: 4,055 calls from 2026-10-01 00:30 to 2026-10-14 23:19 UTC


def _ok(args: list[str]) -> str:
    """The command's stdout (warnings go to stderr, so a new warning cannot break the JSON)."""
    result = runner.invoke(app, args, env={"COLUMNS": "150"})
    assert result.exit_code == 0, result.output
    return result.stdout


def test_calibrate_logs_keeps_the_worksheets_operations_section(tmp_path: Path) -> None:
    out = tmp_path / "calibrated.yaml"
    _ok(["calibrate", "logs", str(SAMPLE), "-w", str(MONTH), "-o", str(out)])
    before, after = load_worksheet(MONTH), load_worksheet(out)
    assert after.volume.requests_per_month != before.volume.requests_per_month  # the log did change the sheet
    assert after.operations is not None and after.operations == before.operations


def test_an_overlay_adds_an_operations_section() -> None:
    assert load_worksheet(TRIAGE).operations is None
    ws = load_worksheet(TRIAGE, [OPERATIONS])
    assert ws.operations is not None and ws.operations.budget is not None and ws.operations.breaker is not None
    assert ws.operations.budget.policy == "lean" and {"lean", "routine+fallback"} <= {p.name for p in ws.policies}


@pytest.mark.slow  # three months simulated (simulate's four runs, the report's four) and nine charts: ~8 s
def test_readme_walkthrough_end_to_end(tmp_path: Path) -> None:
    calibrated, report_dir = tmp_path / "calibrated.yaml", tmp_path / "report"
    _ok(["calibrate", "logs", str(SAMPLE), "-w", str(TRIAGE), "-o", str(calibrated)])
    ws = load_worksheet(calibrated, [OPERATIONS])
    assert ws.volume.profile is not None and ws.volume.profile.growth_per_month == 0
    # the volume is the log's calls per month: 4,055 calls / 13.95 days x 30.4167 days = 8,841 (1 % for the
    # rounded span)
    assert ws.volume.requests_per_month == pytest.approx(LOG_CALLS / LOG_DAYS * MONTH_DAYS, rel=0.01)

    scen = ["--scenario", str(OPERATIONS)]
    month = json.loads(_ok(["simulate", str(calibrated), *scen, "-p", "routine+fallback", "-f", "json"]))
    total, expected = month["total"], month["expected_requests"]
    # 30 simulated days of the calibrated volume: 8,841 x 30 / 30.4167 = 8,720 flat; the spike (day 7 x2.41:
    # +1.41/30 = +4.7 %) moves it by a few per cent, well inside 10 % (the two weeks' trend is inside its sampling
    # error, so growth is 0)
    assert expected == pytest.approx(ws.volume.requests_per_month * 30 / MONTH_DAYS, rel=0.10)
    assert abs(total["requests"] - expected) < 4 * math.sqrt(expected)  # Poisson arrivals: 4 sigma
    assert sum(d["requests"] for d in month["daily"]) == total["requests"]
    assert [e["name"] for e in month["effects"]] == ["breaker", "budget"]  # the walkthrough's two time effects
    assert 0 < total["downgraded"] < 1 and total["breaker_open_min"] > 0 and total["outage_timeouts"] > 0

    out = _ok(
        [
            "report", str(calibrated), *scen, "--objective", "cost+risk",
            "--today", "2026-11-25", "-o", str(report_dir), "-f", "md",
        ]
    )  # fmt: skip
    assert "Winner: routine+fallback" in out  # so the report's month is the policy simulated above
    md = (report_dir / "report.md").read_text()
    assert "## A month, not a mean" in md
    assert f"routine+fallback simulated over 30 days, request by request in arrival order: {total['requests']:,} " in md
    assert f"${total['spend']:.2f} spent against a budget of ${total['budget']:.2f}" in md
    assert (report_dir / "month-spend.png").exists() and (report_dir / "month-breaker.png").exists()


def test_simulate_picks_the_winner_by_the_same_objective_as_compare(tmp_path: Path) -> None:
    # the walkthrough's sheet: by spend the winner is cheap-first-routine; counting the risk of failed refunds and
    # disputes (cost+risk) it is routine+fallback, and simulate's default policy must follow the same rule
    calibrated = tmp_path / "calibrated.yaml"
    _ok(["calibrate", "logs", str(SAMPLE), "-w", str(TRIAGE), "-o", str(calibrated)])
    scen = ["--scenario", str(OPERATIONS), "--days", "1", "--no-compare", "-f", "json"]
    by_cost = json.loads(_ok(["simulate", str(calibrated), *scen]))["policy"]
    by_risk = json.loads(_ok(["simulate", str(calibrated), *scen, "--objective", "cost+risk"]))["policy"]
    assert (by_cost, by_risk) == ("cheap-first-routine", "routine+fallback")
