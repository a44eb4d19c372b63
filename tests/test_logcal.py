"""Calibrating from request logs: a log drawn from a known worksheet gives its numbers back, within sampling error.

Tolerances are 4 standard errors of each estimate (a 4-sigma miss happens about once in 16,000 comparisons), with
the standard error computed from the sample actually drawn:

* a share or a failure rate p from n trials: sqrt(p (1 - p) / n) (binomial);
* a quantile x_q of a lognormal(mu, sigma) from n values: sqrt(q (1 - q) / n) / f(x_q), f the density, i.e. a
  relative error of sigma sqrt(q (1 - q) / n) / phi(z_q); plus half a token (tokens are logged as whole numbers),
  the 4-significant-digit rounding, and for latency the histogram's resolution (0.58 %);
* hourly and weekday weights: a Poisson count's relative error 1 / sqrt(count), over both the weight and the mean
  it is normalised by; growth per month: the slope's standard error over 28 days of counts (see the test).
"""

from __future__ import annotations

import datetime as dt
import math
from pathlib import Path

import numpy as np
import pytest
from scipy.stats import norm

import routecalc
from routecalc.data.logcal import calibrate_logs, catalog_aliases, fit_profile
from routecalc.data.logcal_yaml import checked_starter, plan_update
from routecalc.data.logs import LogOptions, read_logs
from routecalc.data.synth import arrival_times, synth_calls, write_litellm
from routecalc.worksheet import parse_yaml
from routecalc.worksheet.schema import Spike, TrafficProfile

SHEET = Path(__file__).parent / "data" / "ws-logs.yaml"
N = 60_000
DAYS = 28


@pytest.fixture(scope="module")
def known() -> routecalc.Worksheet:
    return routecalc.load_worksheet(SHEET)


@pytest.fixture(scope="module")
def drawn(known: routecalc.Worksheet, tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    """60,000 requests over 28 days through the static policy (no retries: one call per request), LiteLLM spend
    logs in Parquet (the other formats' reading is tested in test_logs.py)."""
    calls = synth_calls(known, "today", N, start=dt.datetime(2026, 10, 1, tzinfo=dt.UTC), days=DAYS, seed=11)
    path = write_litellm(calls, tmp_path_factory.mktemp("logs") / "spend.parquet")
    data = read_logs(path, LogOptions(model_map=catalog_aliases(known.models)))
    return calls, path, calibrate_logs(data)


def _quantile_tol(sigma: float, q: float, n: int, value: float, extra: float = 0.0) -> float:
    """4 standard errors of a lognormal quantile estimate (absolute), plus rounding and ``extra`` (relative)."""
    rel = sigma * math.sqrt(q * (1 - q) / n) / norm.pdf(norm.ppf(q))
    return 4 * rel * value + 0.5 + value * (5e-4 + extra)


@pytest.mark.slow  # shares a 60,000-request log drawn once (about 2-5 s)
def test_shares_and_volume(known: routecalc.Worksheet, drawn) -> None:  # type: ignore[no-untyped-def]
    calls, _, cal = drawn
    assert cal.calls == N  # no retries: one row per request
    for task, share in zip(known.tasks, known.shares, strict=True):
        got = cal.category(task.name).share
        assert abs(got - share) <= 4 * math.sqrt(share * (1 - share) / N), task.name
    span = (calls.start[-1] - calls.start[0]) / 86400
    assert cal.calls_per_month == pytest.approx(N / span * 365 / 12)


@pytest.mark.slow  # shares a 60,000-request log drawn once (about 2-5 s)
def test_token_bands(known: routecalc.Worksheet, drawn) -> None:  # type: ignore[no-untyped-def]
    _, _, cal = drawn
    for task in known.tasks:
        cat = cal.category(task.name)
        for band, fit in ((task.tokens_in, cat.tokens_in), (task.tokens_out, cat.tokens_out)):
            assert fit is not None and fit.p50 is not None and fit.p95 is not None
            n = fit.n  # successful calls: the bands come from them
            assert abs(fit.p50 - band.p50) <= _quantile_tol(band.sigma, 0.5, n, band.p50), (task.name, fit)
            assert abs(fit.p95 - band.p95) <= _quantile_tol(band.sigma, 0.95, n, band.p95), (task.name, fit)


@pytest.mark.slow  # shares a 60,000-request log drawn once (about 2-5 s)
def test_failure_rates_and_error_types(known: routecalc.Worksheet, drawn) -> None:  # type: ignore[no-untyped-def]
    _, _, cal = drawn
    for spec in known.models:
        m = cal.model(spec.name)
        f = spec.failure_rate
        assert abs(m.failure_rate - f) <= 4 * math.sqrt(f * (1 - f) / m.calls), spec.name
        k = m.provider_failures
        assert m.errors is not None
        for kind, share in spec.error_shares.items():
            assert abs(m.errors[kind] - share) <= 4 * math.sqrt(share * (1 - share) / k) + 1e-4, (spec.name, kind)
        assert m.timeout_s == pytest.approx(spec.timeout_s, rel=0.006)  # one histogram bin
        assert m.failures["client_error"] == m.failures["other_error"] == 0


@pytest.mark.slow  # shares a 60,000-request log drawn once (about 2-5 s)
def test_latency(known: routecalc.Worksheet, drawn) -> None:  # type: ignore[no-untyped-def]
    _, _, cal = drawn
    small, large = cal.model("small"), cal.model("large")
    assert small.latency is not None and set(small.latency) == {"ttft_s", "tpot_s"}  # streamed: ttft + tpot
    ttft = known.model("small").latency.ttft_s
    fit = small.latency["ttft_s"]
    n = fit.n
    assert abs(fit.p50 - ttft.p50) <= _quantile_tol(ttft.sigma, 0.5, n, ttft.p50, 0.006) - 0.5
    assert abs(fit.p95 - ttft.p95) <= _quantile_tol(ttft.sigma, 0.95, n, ttft.p95, 0.006) - 0.5
    assert small.latency["tpot_s"].mean == pytest.approx(0.01, rel=0.012)  # fixed: within two bins
    # the large model's latency is end to end (not streamed: the first token comes with the last): e2e_s
    assert large.latency is not None and set(large.latency) == {"e2e_s"}
    e2e, fit = known.model("large").latency.e2e_s, large.latency["e2e_s"]
    assert abs(fit.p50 - e2e.p50) <= _quantile_tol(e2e.sigma, 0.5, fit.n, e2e.p50, 0.006) - 0.5
    assert abs(fit.p95 - e2e.p95) <= _quantile_tol(e2e.sigma, 0.95, fit.n, e2e.p95, 0.006) - 0.5
    # prices: the least-squares fit of each call's cost on its tokens is exact (cost = tokens x price here)
    assert small.price_in == pytest.approx(0.5e-6) and small.price_out == pytest.approx(2e-6)
    assert large.price_in == pytest.approx(3e-6) and large.price_out == pytest.approx(15e-6)


@pytest.mark.slow  # shares a 60,000-request log drawn once (about 2-5 s)
def test_profile(known: routecalc.Worksheet, drawn) -> None:  # type: ignore[no-untyped-def]
    _, _, cal = drawn
    truth = known.volume.profile
    p = cal.profile
    assert p.hourly is not None and p.weekly is not None
    hourly = np.array(truth.hourly) / np.mean(truth.hourly)
    per_hour = N * hourly / hourly.sum()  # requests in each hour of day over the log
    tol = 4 * np.sqrt(1 / per_hour + 1 / N) * hourly
    np.testing.assert_array_less(np.abs(np.array(p.hourly) - hourly), tol + 0.0005)
    weekly = np.array(truth.weekly) / np.mean(truth.weekly)
    per_day = N * weekly / weekly.sum()
    np.testing.assert_array_less(
        np.abs(np.array(p.weekly) - weekly), 4 * np.sqrt(1 / per_day + 1 / N) * weekly + 0.0005
    )
    # slope of ln(daily count) on months: var = 1 / (count per day x sum of squared deviations of t in months)
    t = np.arange(DAYS) / (365 / 12)
    se = 1 / math.sqrt(N / DAYS * ((t - t.mean()) ** 2).sum())
    assert abs(math.log1p(p.growth_per_month) - math.log1p(truth.growth_per_month)) <= 4 * se
    (day, factor), *rest = p.spikes
    assert not rest and day == 15
    assert abs(factor - 3.0) <= 4 * 3.0 * math.sqrt(1 / (N / DAYS) + 1 / (3 * N / DAYS))


def test_short_logs_say_what_they_cannot_fit() -> None:
    rng = np.random.default_rng(0)
    t = arrival_times(rng, TrafficProfile(), 2000, dt.datetime(2026, 10, 1, tzinfo=dt.UTC), 0.5)
    hours, n = np.unique((t // 3600).astype(np.int64), return_counts=True)
    fit = fit_profile(hours, n.astype(float), t[0], t[-1])
    assert fit.hourly is None and fit.weekly is None and fit.growth_per_month == 0
    assert len(fit.notes) == 3


@pytest.mark.parametrize(("day", "factor"), [(5, 3.0), (9, 2.0)])
def test_spike_in_a_two_week_log(day: int, factor: float) -> None:
    # with two weeks, a spike day is one of only two days of its weekday: judged against its own weekday's fitted
    # weight it would raise that weight and hide itself; judged against the other days it stands out
    rng = np.random.default_rng(0)
    truth = TrafficProfile(weekly=[1, 1, 1, 1, 1, 0.4, 0.3], spikes=[Spike(day=day, factor=factor)])
    t = arrival_times(rng, truth, 60_000, dt.datetime(2026, 10, 1, tzinfo=dt.UTC), 14)
    hours, n = np.unique((t // 3600).astype(np.int64), return_counts=True)
    fit = fit_profile(hours, n.astype(float), t[0], t[-1])
    [(found, f)] = fit.spikes
    # about 60,000 / 14 x weekday weight ~ 5,000 requests on a usual weekday: the factor within 4 sigma of a
    # ratio of two Poisson counts (plus the fitted weekday weight's own error, same order)
    assert found == day
    assert abs(f - factor) <= 4 * factor * math.sqrt(2 / 5000 + 1 / (factor * 5000))


def test_flat_traffic_gives_flat_weights() -> None:
    rng = np.random.default_rng(1)
    t = arrival_times(rng, TrafficProfile(), 200_000, dt.datetime(2026, 10, 1, tzinfo=dt.UTC), 21)
    hours, n = np.unique((t // 3600).astype(np.int64), return_counts=True)
    fit = fit_profile(hours, n.astype(float), t[0], t[-1])
    assert max(abs(w - 1) for w in fit.hourly) < 4 * math.sqrt(24 / 200_000)  # type: ignore[union-attr]
    assert fit.spikes == []


@pytest.mark.slow  # shares a 60,000-request log drawn once (about 2-5 s)
def test_starter_worksheet_loads(drawn) -> None:  # type: ignore[no-untyped-def]
    _, path, cal = drawn
    text = checked_starter(cal, "from logs")
    data = parse_yaml(text, "starter")
    assert data["volume"]["profile"]["spikes"] == [{"day": 15, "factor": cal.profile.spikes[0][1]}]
    assert [t["name"] for t in data["tasks"]] == [c.name for c in cal.categories]
    assert "GUESS" in text and path.name in text


@pytest.mark.slow  # shares a 60,000-request log drawn once (about 2-5 s)
def test_update_keeps_the_rest(known: routecalc.Worksheet, drawn, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    _, _, cal = drawn
    update = plan_update(SHEET, known, cal)
    assert "# a comment that must survive an update" in update.text
    new = parse_yaml(update.text, "updated")
    old = parse_yaml(SHEET.read_text(), "old")
    assert new["tasks"][0]["pass_rates"] == old["tasks"][0]["pass_rates"]
    assert new["policies"] == old["policies"]
    assert "timeout_share" not in new["models"][1]  # replaced by errors
    assert new["models"][1]["errors"]["timeout"] == pytest.approx(0.5, abs=0.1)
    assert {w for w, *_ in update.changes} >= {"volume", "tasks.chat", "models.small", "models.large"}
    assert update.zeroed == update.skipped_categories == update.skipped_models == ()


# ---------------------------------------------------------------------------------------------------------
# routecalc calibrate logs


@pytest.fixture(scope="module")
def small_log(known: routecalc.Worksheet, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """2,000 requests over 14 days, LiteLLM JSONL: enough for the command line's paths."""
    calls = synth_calls(known, "today", 2000, start=dt.datetime(2026, 10, 1, tzinfo=dt.UTC), days=14, seed=5)
    return write_litellm(calls, tmp_path_factory.mktemp("small") / "spend.jsonl")


def _cli(*args: str):  # type: ignore[no-untyped-def]
    from typer.testing import CliRunner

    from routecalc.cli import app

    return CliRunner().invoke(app, list(args))


@pytest.mark.slow
def test_cli_starter_to_stdout_and_file(small_log: Path, tmp_path: Path) -> None:
    path = small_log
    result = _cli("calibrate", "logs", str(path))
    assert result.exit_code == 0, result.output
    assert "schema_version: 1" in result.stdout and "Traffic by category" not in result.stdout  # summary on stderr
    out = tmp_path / "starter.yaml"
    result = _cli("calibrate", "logs", str(path), "-o", str(out))
    assert result.exit_code == 0, result.output
    assert "calls/month" in result.stdout and "Traffic by category" in result.stdout
    assert _cli("validate", str(out)).exit_code == 0
    assert _cli("calibrate", "logs", str(path), "-o", str(out)).exit_code == 3  # exists: --force to replace
    assert _cli("calibrate", "logs", str(path), "-o", str(out), "--force").exit_code == 0


@pytest.mark.slow
def test_cli_update_is_a_dry_run_without_out(small_log: Path, tmp_path: Path) -> None:
    path = small_log
    before = SHEET.read_text()
    result = _cli("calibrate", "logs", str(path), "-w", str(SHEET))
    assert result.exit_code == 0, result.output
    assert "dry run" in result.stdout and "traffic_share" in result.stdout
    assert SHEET.read_text() == before
    out = tmp_path / "updated.yaml"
    result = _cli("calibrate", "logs", str(path), "-w", str(SHEET), "-o", str(out))
    assert result.exit_code == 0, result.output
    assert "# a comment that must survive an update" in out.read_text()
    assert _cli("validate", str(out)).exit_code == 0


def test_cli_bad_rows_are_warnings_or_with_strict_fatal(tmp_path: Path) -> None:
    log = tmp_path / "log.csv"
    log.write_text(
        "timestamp,category,model,status\n2026-10-01T00:00:00Z,a,m,success\nnot a time,a,m,success\n"
        "2026-10-01T00:10:00Z,a,m,success\n"
    )
    result = _cli("calibrate", "logs", str(log), "-o", str(tmp_path / "w.yaml"))
    assert result.exit_code == 0, result.output
    text = " ".join(result.stdout.split())
    assert "1 bad row(s): timestamp is not a date-time (ISO 8601) or an epoch number (line 3)" in text
    assert "2 of 3 rows used" in text
    result = _cli("calibrate", "logs", str(log), "--strict")
    assert result.exit_code == 2
    text = " ".join(result.output.split())
    assert "1 bad row(s) (--strict)" in text and "(line 3)" in text and "Traceback" not in text


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["missing.csv"], "no such file"),
        (["{log}", "--columns", "colour=x"], "unknown role"),
        (["{log}", "--category-from", "nope"], "no column for category=nope"),
        (["{log}", "--model-map", "m"], "is not NAME=NAME"),
        (["{log}", "-w", str(SHEET), "--model-map", "m=gpt-9"], "not a model of the worksheet"),
        (["{log}", "--shape", "openai"], "no timestamp in this openai log"),
    ],
)
def test_cli_error_paths_exit_2(tmp_path: Path, args: list[str], message: str) -> None:
    log = tmp_path / "log.csv"
    log.write_text("timestamp,category,model\n2026-10-01T00:00:00Z,a,m\n")
    result = _cli("calibrate", "logs", *[a.format(log=log) for a in args])
    assert result.exit_code == 2, result.output
    assert message in " ".join(result.output.split())


def test_an_aggregated_usage_export_gives_means_and_no_failure_rates(tmp_path: Path) -> None:
    import json

    rows = [  # OpenAI usage API results, hourly buckets: 2 projects x 24 hours x 14 days, 10 or 30 requests each
        {"start_time": 1790812800 + h * 3600, "end_time": 1790812800 + (h + 1) * 3600, "model": "gpt-4o",
         "input_tokens": 1000 * n, "output_tokens": 200 * n, "num_model_requests": n, "project_id": p}
        for h in range(24 * 14)
        for p, n in (("support", 10 if h % 24 < 8 else 30), ("search", 10))
    ]  # fmt: skip
    path = tmp_path / "usage.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    cal = calibrate_logs(read_logs(path, LogOptions(columns={"category": "project_id"})))
    support = cal.category("support")
    # 8 hours x 10 + 16 hours x 30 = 560 requests a day against 240: a share of 560 / 800 = 0.7
    assert support.share == pytest.approx(0.7)
    assert support.tokens_in is not None and support.tokens_in.mean == 1000  # per-request means, no bands
    hourly = cal.profile.hourly
    # hours 0-7: 10 + 10 = 20 requests, 8-23: 40; mean (8 x 20 + 16 x 40) / 24 = 33.3
    assert hourly is not None and hourly[0] == pytest.approx(20 / (800 / 24), abs=1e-3)
    text = checked_starter(cal, "usage")
    assert "failure_rate: 0.01   # GUESS" in text and "# GUESS: the log has no latency" in text


ROOT = Path(__file__).resolve().parent.parent
SAMPLE = ROOT / "examples" / "logs" / "support-sample.jsonl"
TRUTH = ROOT / "examples" / "logs" / "support-truth.yaml"


@pytest.mark.slow  # draws 4,000 requests again (about 2 s)
def test_shipped_sample_is_what_its_command_draws(tmp_path: Path) -> None:
    # the command written at the top of support-truth.yaml, byte for byte: the sample is not a stale hand edit
    import subprocess
    import sys

    out = tmp_path / "sample.jsonl"
    cmd = [sys.executable, str(ROOT / "scripts" / "gen_logs.py"), str(ROOT / "worksheets" / "support-triage.yaml")]
    cmd += ["--scenario", str(TRUTH), "--policy", "tiered+fallback", "--requests", "4000", "--days", "14"]
    subprocess.run([*cmd, "--seed", "7", "-o", str(out)], check=True, capture_output=True)
    assert out.read_bytes() == SAMPLE.read_bytes()


def test_shipped_sample_round_trips() -> None:
    """Calibrating the shipped sample recovers the worksheet it was drawn from (support-triage + the truth overlay)
    within sampling error: 4 standard errors at the sample's own counts (4,000 requests, so the bounds are wide)."""
    truth = routecalc.load_worksheet(ROOT / "worksheets" / "support-triage.yaml", [TRUTH])
    data = read_logs(SAMPLE)
    assert data.report.bad_rows == 0
    cal = calibrate_logs(data)
    requests = 4000
    retried = cal.calls / requests - 1  # fallbacks add calls (1.4 % here): shares are of calls, not of requests
    for task, share in zip(truth.tasks, truth.shares, strict=True):
        cat = cal.category(task.name)
        assert abs(cat.share - share) <= 4 * math.sqrt(share * (1 - share) / requests) + share * retried, task.name
        for band, fit in ((task.tokens_in, cat.tokens_in), (task.tokens_out, cat.tokens_out)):
            assert fit is not None and fit.p50 is not None and fit.p95 is not None
            assert abs(fit.p50 - band.p50) <= _quantile_tol(band.sigma, 0.5, fit.n, band.p50), (task.name, fit)
            assert abs(fit.p95 - band.p95) <= _quantile_tol(band.sigma, 0.95, fit.n, band.p95), (task.name, fit)
    assert {m.name for m in cal.models} == {"gpt-4.1-mini", "gpt-4.1", "claude-sonnet-4"}  # tiered+fallback's
    for m in cal.models:
        f = truth.model(m.name).failure_rate
        assert abs(m.failure_rate - f) <= 4 * math.sqrt(f * (1 - f) / m.calls), m.name
    # the overlay's changes are the ones a reader should see: disputes up (5 % -> 8 %), refund threads longer
    assert cal.category("dispute").share > 0.05 + 4 * math.sqrt(0.05 * 0.95 / requests)
    assert cal.category("refund").tokens_in.p50 > 3000  # type: ignore[union-attr]
    [(day, _)] = cal.profile.spikes
    assert day == 7
    # the truth has no growth; two weeks of 4,000 requests fit a slope of about -5 %/month, far inside its own
    # sampling error (about ±25 % at 2 standard errors), so it is written as 0 and the note says why
    assert cal.profile.growth_per_month == 0
    assert any("within its sampling error" in n for n in cal.profile.notes)


@pytest.mark.slow  # draws 60,000 requests in 7 parts and reads them back (about 3 s)
def test_a_log_drawn_in_parts_is_one_period(known: routecalc.Worksheet, tmp_path: Path) -> None:
    # gen_logs draws large logs in parts: each part must get its slice's share of the month (weekdays, growth and
    # the spike counted over the whole period), or the joined log has a saw-tooth growth and lost spikes
    import importlib.util

    spec = importlib.util.spec_from_file_location("gen_logs", ROOT / "scripts" / "gen_logs.py")
    gen = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
    spec.loader.exec_module(gen)  # type: ignore[union-attr]
    out = tmp_path / "parts.jsonl"
    args = [str(SHEET), "-o", str(out), "--policy", "today", "--requests", str(N), "--days", str(DAYS)]
    assert gen.main([*args, "--shape", "generic", "--part", str(N // 7 + 1), "--seed", "3"]) == 0
    p = calibrate_logs(read_logs(out)).profile
    truth = known.volume.profile
    t = np.arange(DAYS) / (365 / 12)
    se = 1 / math.sqrt(N / DAYS * ((t - t.mean()) ** 2).sum())  # as in test_profile
    assert abs(math.log1p(p.growth_per_month) - math.log1p(truth.growth_per_month)) <= 4 * se
    assert [d for d, _ in p.spikes] == [s.day for s in truth.spikes]
