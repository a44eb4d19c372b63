"""``routecalc backtest``: the estimate of a logged period against the log and the invoice, computed by hand."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

import routecalc
from routecalc.cli import app
from routecalc.data.backtest import backtest, relative
from routecalc.data.logs import LogOptions, read_logs
from routecalc.data.synth import synth_calls, write_litellm
from routecalc.errors import InputError, PolicyError
from routecalc.worksheet import validate_worksheet

runner = CliRunner()

SHEET = {
    "schema_version": 1,
    "name": "backtest by hand",
    "volume": {"requests_per_month": 1000},
    "models": [
        # small: $1 / $4 per 1M tokens, 1 try in 10 fails; large: $10 / $40, never fails
        {"name": "small", "provider": "p", "price_in": 1, "price_out": 4, "latency": {"e2e_s": 1.0},
         "failure_rate": 0.1},
        {"name": "large", "provider": "p", "price_in": 10, "price_out": 40, "latency": {"e2e_s": 4.0}},
    ],
    "tasks": [
        {"name": "a", "traffic_share": 0.75, "tokens_in": 1000, "tokens_out": 200, "quality_threshold": 0.5,
         "pass_rates": {"small": 0.9, "large": 0.9}},
        {"name": "b", "traffic_share": 0.25, "tokens_in": 2000, "tokens_out": 400, "quality_threshold": 0.5,
         "pass_rates": {"small": 0.9, "large": 0.9}},
    ],
    "policies": [{"name": "split", "kind": "static", "routes": {"a": "small", "b": "large"}}],
}  # fmt: skip

# 8 calls over 7 hours: a/small 4 answers (one billed $0.0030 instead of $0.0018) and 1 timeout; b/large 3 answers
LOG = """timestamp,category,model,tokens_in,tokens_out,latency_s,status,error,cost
2026-10-01T00:00:00Z,a,small,1000,200,1.0,success,,0.0018
2026-10-01T01:00:00Z,a,small,1000,200,1.0,success,,0.0018
2026-10-01T02:00:00Z,a,small,1000,200,1.0,success,,0.0018
2026-10-01T03:00:00Z,a,small,1000,200,1.0,success,,0.0030
2026-10-01T04:00:00Z,a,small,0,0,20.0,failure,timeout,0
2026-10-01T05:00:00Z,b,large,2000,400,4.0,success,,0.036
2026-10-01T06:00:00Z,b,large,2000,400,4.0,success,,0.036
2026-10-01T07:00:00Z,b,large,2000,400,4.0,success,,0.036
"""


@pytest.fixture
def ws() -> routecalc.Worksheet:
    return validate_worksheet(SHEET, "backtest by hand")


@pytest.fixture
def log(tmp_path: Path) -> Path:
    path = tmp_path / "log.csv"
    path.write_text(LOG)
    return path


def test_backtest_by_hand(ws: routecalc.Worksheet, log: Path) -> None:
    bt = backtest(ws, "split", read_logs(log), invoice=0.12)
    # no retries: one call per request in both categories, so N = 8 logged calls / 1 = 8 requests
    assert bt.calls_per_request == pytest.approx(1.0)
    assert bt.requests == pytest.approx(8)
    small, large = bt.by_model
    # small: 8 x 0.75 = 6 calls; 6 x 0.9 answered x (1000 x $1e-6 + 200 x $4e-6 = $0.0018) = $0.00972
    assert small.calls_est == pytest.approx(6) and small.cost_est == pytest.approx(0.00972)
    assert small.calls_log == 5 and small.cost_log == pytest.approx(0.0084)  # 3 x 0.0018 + 0.0030
    assert small.error("calls") == pytest.approx(6 / 5 - 1)  # +20 %
    assert small.error("cost") == pytest.approx(0.00972 / 0.0084 - 1)  # +15.7 %
    # tokens of successful calls: 6 x 0.9 x 1000 = 5,400 estimated, 4 x 1000 = 4,000 logged: +35 %
    assert small.tokens_in_est == pytest.approx(5400) and small.error("tokens_in") == pytest.approx(0.35)
    # large: 8 x 0.25 = 2 calls x (2000 x $1e-5 + 400 x $4e-5 = $0.036) = $0.072, logged 3 x $0.036 = $0.108
    assert large.calls_est == pytest.approx(2) and large.cost_est == pytest.approx(0.072)
    assert large.error("cost") == pytest.approx(0.072 / 0.108 - 1)  # -33.3 %
    # the total: $0.08172 estimated vs $0.1164 logged (-29.8 %) and vs the $0.12 invoice (-31.9 %)
    assert bt.total.cost_est == pytest.approx(0.08172) and bt.total.cost_log == pytest.approx(0.1164)
    assert bt.total.error("cost") == pytest.approx(0.08172 / 0.1164 - 1)
    assert bt.invoice_error == pytest.approx(0.08172 / 0.12 - 1)
    a, b = bt.by_category
    assert (a.calls_est, a.calls_log, b.calls_est, b.calls_log) == pytest.approx((6, 5, 2, 3))
    # failures: small's logged 1 of 5 calls (20 %) against the worksheet's 10 %; latency: fixed 1 s and 4 s
    check = {m.name: m for m in bt.models}
    assert check["small"].failure_log == pytest.approx(0.2) and check["small"].failure_est == 0.1
    assert check["small"].p50_est == pytest.approx(1.0) and check["large"].p95_est == pytest.approx(4.0)
    assert check["large"].p50_log == pytest.approx(4.0, rel=0.006)  # one histogram bin
    # the worksheet's 1,000 requests a month, over the log's 7 hours: 1000 x (7/24) / 30.4167 = 9.59
    assert bt.days == pytest.approx(7 / 24)
    assert bt.worksheet_requests == pytest.approx(1000 * 7 / 24 / (365 / 12))


def test_given_requests_scale_the_estimate(ws: routecalc.Worksheet, log: Path) -> None:
    bt = backtest(ws, "split", read_logs(log), requests=16)
    assert bt.requests_given and bt.total.calls_est == pytest.approx(16)
    assert bt.total.cost_est == pytest.approx(2 * 0.08172)


def test_unknown_categories_and_models(ws: routecalc.Worksheet, tmp_path: Path) -> None:
    path = tmp_path / "log.csv"
    path.write_text(
        LOG + "2026-10-01T08:00:00Z,c,small,1,1,1,success,,0\n2026-10-01T09:00:00Z,a,other,1,1,1,success,,0\n"
    )
    bt = backtest(ws, "split", read_logs(path))
    assert bt.skipped_categories == (("c", 1.0),)
    assert [m.name for m in bt.by_model] == ["small", "large", "other"]
    assert bt.by_model[-1].calls_est == 0 and any("other" in n for n in bt.notes)
    with pytest.raises(PolicyError):
        backtest(ws, "nope", read_logs(path))
    only_c = tmp_path / "c.csv"
    only_c.write_text("timestamp,category,model\n2026-10-01T00:00:00Z,c,small\n")
    with pytest.raises(InputError, match="category-map"):
        backtest(ws, "split", read_logs(only_c))


def test_relative() -> None:
    assert relative(11, 10) == pytest.approx(0.1)
    assert relative(1, 0) is None and relative(None, 1) is None


@pytest.mark.slow
def test_a_log_drawn_from_the_worksheet_backtests_within_sampling_error(tmp_path: Path) -> None:
    """Support triage's cheap-first cascade, 20,000 requests: every per-model spend within 10 % (the cascade's
    escalations are binomial: about 1,300 gpt-4.1 calls, sd 2.7 %)."""
    ws = routecalc.load_worksheet(Path(__file__).parents[1] / "worksheets" / "support-triage.yaml")
    calls = synth_calls(ws, "cheap-first-routine", 20_000, start=dt.datetime(2026, 10, 1, tzinfo=dt.UTC), days=7)
    path = write_litellm(calls, tmp_path / "spend.parquet")
    from routecalc.data.logcal import catalog_aliases

    data = read_logs(path, LogOptions(model_map=catalog_aliases(ws.models)))
    bt = backtest(ws, "cheap-first-routine", data)
    assert bt.requests == pytest.approx(20_000, rel=0.01)
    for line in bt.by_model:
        assert abs(line.error("cost")) < 0.10, line  # type: ignore[arg-type]
    assert abs(bt.total.error("cost")) < 0.03  # type: ignore[arg-type]


# ---------------------------------------------------------------------------------------------------------
# the command


def _sheet(tmp_path: Path) -> Path:
    import yaml

    path = tmp_path / "ws.yaml"
    path.write_text(yaml.safe_dump(SHEET))
    return path


def test_cli_table_and_json(tmp_path: Path, log: Path) -> None:
    sheet = _sheet(tmp_path)
    result = runner.invoke(app, ["backtest", str(log), "-w", str(sheet), "-p", "split", "--invoice", "0.12"])
    assert result.exit_code == 0, result.output
    text = " ".join(result.stdout.split())
    assert "By model" in text and "By category" in text and "invoice $0.120 (-31.9%)" in text
    result = runner.invoke(app, ["backtest", str(log), "-w", str(sheet), "-p", "split", "-f", "json"])
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert doc["total"]["cost_est"] == pytest.approx(0.08172)
    assert doc["by_model"][0]["error"]["calls"] == pytest.approx(0.2)
    assert doc["currency"] == "USD" and doc["invoice"] is None


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["-p", "nope"], "unknown policy 'nope'"),
        (["-p", "split", "--invoice", "-1"], "Invalid value"),
        (["-p", "split", "--category-from", "colour"], "no column for category=colour"),
        (["-p", "split", "--strict", "--log"], "bad row(s) (--strict)"),
    ],
)
def test_cli_error_paths_exit_2(tmp_path: Path, log: Path, args: list[str], message: str) -> None:
    target = log
    if "--log" in args:
        args = [a for a in args if a != "--log"]
        target = tmp_path / "bad.csv"
        target.write_text(LOG + "yesterday,a,small,1,1,1,success,,0\n")
    result = runner.invoke(app, ["backtest", str(target), "-w", str(_sheet(tmp_path)), *args])
    assert result.exit_code == 2, result.output
    assert message in " ".join(result.output.split())
