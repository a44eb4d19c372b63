"""A simulated month's summary (routecalc.month), its rendering, charts and report section, and the CLI."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
from pathlib import Path

import numpy as np
import pytest
import yaml
from typer.testing import CliRunner

import routecalc
from routecalc.cli import app
from routecalc.engine.timeline import DAY_S, MONTH_DAYS
from routecalc.month import simulate_month
from routecalc.report.timeline import month_csv, month_files, month_json, render_month
from tests.test_timeline import pair_sheet

runner = CliRunner()
ROOT = Path(__file__).resolve().parent.parent
MONTH = ROOT / "worksheets" / "support-month.yaml"


def ops_sheet() -> dict:
    """pair_sheet ('a' then 'b') with every operation: a daily budget, an outage, a breaker, a spilling limit."""
    sheet = pair_sheet(
        volume={"requests_per_day": 5000, "profile": {"hourly": [1] * 8 + [4] * 10 + [1] * 6}},
        defaults={"retries": 1, "allowed_fails": 3, "cooldown_s": 30},
    )
    sheet["models"][0] |= {"failure_rate": 0.05, "rpm": 8}
    sheet["operations"] = {
        "budget": {"daily": 12, "categories": ["t"], "policy": "cheap", "check_every_min": 15},
        "outages": [{"model": "a", "day": 2, "start_hour": 10, "duration_min": 45}],
        "breaker": {},
        "rate_limits": {"on_limit": "spill"},
    }
    return sheet


@pytest.fixture(scope="module")
def month() -> routecalc.month.MonthResult:
    ws = routecalc.validate_worksheet(ops_sheet())
    return simulate_month(ws, "fallback", days=3, seed=1, start=dt.date(2026, 12, 1))


def test_days_add_up_to_the_total(month) -> None:
    rows, t = month.days_rows, month.total
    assert [d.day for d in rows] == [1, 2, 3]
    assert [d.date for d in rows] == ["2026-12-01", "2026-12-02", "2026-12-03"]
    assert [d.weekday for d in rows] == ["Tue", "Wed", "Thu"]
    assert sum(d.requests for d in rows) == t.requests
    assert sum(d.spend for d in rows) == pytest.approx(t.spend)
    assert sum(d.breaker_open_min for d in rows) == pytest.approx(t.breaker_open_min)
    assert sum(d.outage_timeouts for d in rows) == t.outage_timeouts > 0  # the day-2 outage, timeouts per try
    # a daily budget of $12: each day's is 12, the total 36
    assert [d.budget for d in rows] == pytest.approx([12.0] * 3) and t.budget == pytest.approx(36.0)
    assert t.requests == pytest.approx(15_000, abs=5 * np.sqrt(15_000))
    assert rows[1].outage_timeouts == t.outage_timeouts  # all on day 2


def test_each_effect_against_the_month_without_it(month) -> None:
    assert [e.name for e in month.effects] == ["breaker", "limits", "budget"]
    assert month.effects_on == {"breaker": True, "limits": True, "budget": True, "load": False}
    for e in month.effects:
        assert e.on == month.total
        assert e.off.requests == month.total.requests  # the same requests
    breaker, limits, budget = month.effects
    assert breaker.off.breaker_open_min == 0 and breaker.on.breaker_open_min > 0
    assert breaker.notes["timeouts_paid_on"] < breaker.notes["timeouts_paid_off"]
    assert limits.off.spilled == 0 < limits.on.spilled
    assert 8 <= limits.notes["start_hour"] <= 17  # the busy hours (4x) fill 8 calls a minute, the quiet ones not
    assert budget.off.downgraded == 0 < budget.on.downgraded and budget.notes["policy"] == "cheap"
    assert budget.on.spend < budget.off.spend


def test_chart_data(month) -> None:
    from routecalc.report.charts.month import breaker_spans, runs_of, spend_curve, spill_by_hour_of_day

    hours, spend, budget, without = spend_curve(month)
    assert hours[-1] == 3 and spend[-1] == pytest.approx(month.total.spend)
    assert budget[23] == pytest.approx(12.0) and budget[-1] == pytest.approx(36.0)  # $12 a day, pro-rated
    assert without is not None and without[-1] == pytest.approx(month.effect("budget").off.spend)
    by_hour = spill_by_hour_of_day(month)
    # the busy hours (4x the traffic) fill model a's 8 calls a minute: 4-10 % spill there; a quiet hour sees at most
    # a stray burst of Poisson arrivals (one request in ~300 over 3 days, at some seeds)
    assert by_hour[8:18].min() > 0.02 and max(by_hour[:8].max(), by_hour[18:].max()) < 0.01
    spans = breaker_spans(month)
    assert "a" in spans.outage and spans.outage["a"] == [(1 + 10 / 24, 45 / 1440)]
    assert runs_of(np.array([0, 1, 1, 0, 1], dtype=bool)) == [(1, 3), (4, 5)]


def test_json_csv_and_table(month) -> None:
    data = json.loads(month_json(month))
    assert data["schema_version"] == 1 and data["policy"] == "fallback" and data["days"] == 3
    assert len(data["daily"]) == 3 and len(data["hourly"]["requests"]) == 72
    assert {e["name"] for e in data["effects"]} == {"breaker", "limits", "budget"}
    assert data["outages"] == [
        {"model": "a", "day": 2, "start_s": DAY_S + 10 * 3600, "minutes": 45.0, "error": "timeout"}
    ]
    rows = list(csv.DictReader(io.StringIO(month_csv(month))))
    assert [r["day"] for r in rows] == ["1", "2", "3"] and float(rows[0]["budget"]) == pytest.approx(12.0)
    from rich.console import Console

    console = Console(width=200, record=True)
    console.print(render_month(month))
    text = console.export_text()
    for phrase in ("Circuit breaker: opened", "Rate limits:", "Budget rule: over pace on", "Outages", "3 days"):
        assert phrase in text


@pytest.mark.slow  # renders every chart twice (~4 s)
def test_report_section_files_are_deterministic(month) -> None:
    files = month_files(month)
    assert {"month.html", "month.md", "month-traffic.png", "month-spend.png", "month-breaker.svg",
            "month-spill.png"} <= set(files)  # fmt: skip
    assert month_files(month) == files
    html = files["month.html"].decode()
    assert "data:image/png;base64," in html and "Circuit breaker" in html


def test_a_monthly_budget_is_pro_rated_per_day() -> None:
    sheet = ops_sheet()
    sheet["operations"] = {"budget": {"monthly": 304.1667, "categories": ["t"], "policy": "cheap"}}
    r = simulate_month(routecalc.validate_worksheet(sheet), "dear", days=2, seed=0, compare_effects=False)
    assert [d.budget for d in r.days_rows] == pytest.approx([304.1667 / MONTH_DAYS] * 2)
    assert r.effects == [] and r.effects_on["budget"]


def test_the_shipped_month_worksheet_is_valid_and_has_a_budget_rule_and_a_breaker() -> None:
    ws = routecalc.load_worksheet(MONTH)
    assert ws.operations is not None and ws.operations.budget is not None and ws.operations.breaker is not None
    assert ws.volume.profile is not None and ws.volume.profile.spikes


# ---------------------------------------------------------------------------------------------------------
# CLI


@pytest.fixture()
def sheet_file(tmp_path: Path) -> Path:
    path = tmp_path / "ops.yaml"
    path.write_text(yaml.safe_dump(ops_sheet()))
    return path


def test_cli_table(sheet_file: Path) -> None:
    result = runner.invoke(app, ["simulate", str(sheet_file), "-p", "fallback", "--days", "2"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert "What each time effect did" in result.output and "Breaker open (min)" in result.output


def test_cli_json_csv_and_out_dir(sheet_file: Path, tmp_path: Path) -> None:
    args = ["simulate", str(sheet_file), "-p", "fallback", "--days", "2", "--no-compare"]
    data = json.loads(runner.invoke(app, [*args, "-f", "json"]).stdout)
    assert data["schema_version"] == 1 and len(data["daily"]) == 2 and data["effects"] == []
    assert runner.invoke(app, [*args, "-f", "json"]).stdout == runner.invoke(app, [*args, "-f", "json"]).stdout
    out = runner.invoke(app, [*args, "-f", "csv", "-o", str(tmp_path / "sec")])
    assert out.exit_code == 0 and len(out.stdout.strip().splitlines()) == 3  # header + 2 days
    assert (tmp_path / "sec" / "month.html").exists() and (tmp_path / "sec" / "month-traffic.png").exists()


def test_cli_picks_the_winner_by_default(sheet_file: Path) -> None:
    result = runner.invoke(app, ["simulate", str(sheet_file), "--days", "1", "--no-compare", "--samples", "5000",
                                 "-f", "json"])  # fmt: skip
    assert result.exit_code == 0, result.output
    # 'cheap' ('a' alone) fails 0.25 % of requests after its retry: quality 79.8 % < 80 %; 'fallback' meets it
    assert json.loads(result.stdout)["policy"] == "fallback"


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["-p", "nope"], "unknown policy 'nope'"),
        (["-p", "fallback", "--start", "2026-13-01"], "--start: not a date"),
        (["-p", "fallback", "--bucket-s", "7"], "--bucket-s must divide an hour"),
    ],
)
def test_cli_bad_input_exits_2(sheet_file: Path, extra: list[str], message: str) -> None:
    result = runner.invoke(app, ["simulate", str(sheet_file), "--days", "1", *extra])
    assert result.exit_code == 2 and message in result.output and "Traceback" not in result.output


def test_cli_bad_operations_list_every_problem(tmp_path: Path) -> None:
    sheet = ops_sheet()
    sheet["operations"]["budget"]["policy"] = "nope"
    sheet["operations"]["outages"][0]["model"] = "z"
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(sheet))
    result = runner.invoke(app, ["simulate", str(path)])
    assert result.exit_code == 2
    assert "operations.budget.policy" in result.output and "operations.outages[0].model" in result.output


def test_cli_refuses_to_replace_a_foreign_file(sheet_file: Path, tmp_path: Path) -> None:
    (tmp_path / "sec").mkdir()
    (tmp_path / "sec" / "month.html").write_text("mine")
    result = runner.invoke(app, ["simulate", str(sheet_file), "-p", "fallback", "--days", "1", "--no-compare",
                                 "-o", str(tmp_path / "sec")])  # fmt: skip
    assert result.exit_code == 3 and (tmp_path / "sec" / "month.html").read_text() == "mine"


@pytest.mark.slow  # a 30-day month (x 4) and nine charts
def test_report_adds_a_month_when_the_worksheet_has_operations(sheet_file: Path, tmp_path: Path) -> None:
    out = tmp_path / "r"
    res = runner.invoke(app, ["report", str(sheet_file), "-o", str(out), "-n", "5000", "--today", "2026-11-25"])
    assert res.exit_code == 0, res.output
    page = (out / "report.html").read_text(encoding="utf-8")
    assert "A month, not a mean" in page and "Circuit breaker: opened" in page
    assert page.count("<img") == 5 + 4  # the five charts and the month's four
    assert (out / "month-spend.svg").exists()
    plain = runner.invoke(app, ["report", str(sheet_file), "-o", str(tmp_path / "p"), "-n", "5000", "--no-month"])
    assert plain.exit_code == 0 and "A month" not in (tmp_path / "p" / "report.html").read_text(encoding="utf-8")
