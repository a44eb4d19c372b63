"""What ``routecalc calibrate logs`` and ``routecalc backtest`` print: what the log says next to the estimate, with
units and the rows behind each number."""

from __future__ import annotations

import datetime as dt
from typing import Any

from rich.table import Table

from routecalc.data.backtest import Backtest, Line, relative
from routecalc.data.calibrate import BandFit
from routecalc.data.logcal import LogCalibration, ModelReliability
from routecalc.data.logcal_yaml import LogUpdate
from routecalc.format import count, money, pct, printable, seconds

SHAPE_NAMES = {"litellm": "LiteLLM spend logs", "openai": "OpenAI usage export", "generic": "generic request log"}
WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")


def _when(t: float) -> str:
    return dt.datetime.fromtimestamp(t, dt.UTC).strftime("%Y-%m-%d %H:%M")


def _tokens(fit: BandFit | None) -> str:
    if fit is None:
        return "—"
    num = lambda x: f"{x:,.0f}" if x >= 100 else f"{x:.3g}"
    if fit.mean is not None:
        return f"{num(fit.mean)} (mean)"
    return f"{num(fit.p50)} / {num(fit.p95)}"


def _latency(m: ModelReliability) -> str:
    if not m.latency:
        return "—"
    if "e2e_s" in m.latency:
        f = m.latency["e2e_s"]
        return f"e2e {seconds(f.p50)} / {seconds(f.p95)}" if f.mean is None else f"e2e {seconds(f.mean)}"
    parts = []
    for key, label, scale, unit in (("ttft_s", "ttft", 1.0, " s"), ("tpot_s", "tpot", 1000.0, " ms/token")):
        f = m.latency.get(key)
        if f is None:
            continue
        if f.mean is not None:
            parts.append(f"{label} {f.mean * scale:.3g}{unit}")
        else:
            parts.append(f"{label} {f.p50 * scale:.3g}/{f.p95 * scale:.3g}{unit}")  # type: ignore[operator]
    return ", ".join(parts)


def read_line(cal: LogCalibration) -> str:
    """``read FILE (shape, format): N rows used of M; start -> end UTC (D days)``."""
    d = cal.data
    used = d.good_rows
    rows = d.report.records
    period = f"{_when(cal.start)} → {_when(cal.end)} UTC ({cal.days:,.2f} days)"
    return (
        f"read {cal.source} ({SHAPE_NAMES.get(cal.shape, cal.shape)}, {d.fmt}): {used:,} of {rows:,} rows used; "
        f"{period}"
    )


def calibration_summary(cal: LogCalibration) -> list[Any]:
    """The renderables: read line, volume, categories, models, profile, notes."""
    out: list[Any] = [read_line(cal)]
    out.append(
        f"Volume: {count(cal.calls_per_month)} calls/month ({count(cal.calls)} calls over {cal.days:,.2f} days; "
        "1 month = 30.4167 days)"
    )
    cats = Table(title="Traffic by category", title_justify="left", header_style="bold")
    for h, right in (("Category", False), ("Calls", True), ("Share", True), ("Tokens in p50/p95", True)):
        cats.add_column(h, justify="right" if right else "left")
    cats.add_column("Tokens out p50/p95", justify="right")
    for c in cal.categories:
        cats.add_row(printable(c.name), count(c.calls), pct(c.share), _tokens(c.tokens_in), _tokens(c.tokens_out))
    out.append(cats)
    models = Table(title="Models: failures per call, latency of successful calls", title_justify="left")
    for h in ("Model", "Calls", "Failure rate", "Failures by type", "Latency p50/p95", "Timeout / fast error"):
        models.add_column(h, justify="left" if h in ("Model", "Failures by type") else "right")
    for m in cal.models:
        f = m.failures
        kinds = ", ".join(f"{count(v)} {k.replace('_', ' ')}" for k, v in f.items() if v) or "none"
        err = f"{seconds(m.timeout_s)} / {seconds(m.error_latency_s)}"
        rate = pct(m.failure_rate, 2) if cal.data.has_outcomes else "n/a"
        kinds = kinds if cal.data.has_outcomes else "not in the log"
        models.add_row(printable(m.name), count(m.calls), rate, kinds, _latency(m), err)
    out.append(models)
    if any(m.failures["client_error"] + m.failures["other_error"] for m in cal.models):
        out.append(
            "client errors (4xx other than 429) and other errors are not provider failures: they stay out of the "
            "failure rate"
        )
    out.append(profile_line(cal))
    return out


def profile_line(cal: LogCalibration) -> str:
    p = cal.profile
    parts = []
    if p.hourly is not None:
        peak = max(range(24), key=lambda h: p.hourly[h])  # type: ignore[index]
        low = min(range(24), key=lambda h: p.hourly[h])  # type: ignore[index]
        parts.append(
            f"busiest hour {peak:02d}:00 UTC ({p.hourly[peak]:.2f}x the mean), quietest {low:02d}:00 "
            f"({p.hourly[low]:.2f}x)"
        )
    if p.weekly is not None:
        parts.append("weekdays " + " ".join(f"{d} {w:.2f}" for d, w in zip(WEEKDAYS, p.weekly, strict=True)))
    parts.append(f"growth {p.growth_per_month * 100:+.1f}%/month")
    if p.spikes:
        parts.append("spike days " + ", ".join(f"{d} (x{f:g})" for d, f in p.spikes))
    return "Profile: " + "; ".join(parts)


def notes(cal: LogCalibration) -> list[str]:
    return list(cal.notes) + list(cal.profile.notes)


def changes_table(update: LogUpdate) -> Table:
    """One row per changed field: where, field, worksheet value, log value."""
    table = Table(title="Calibration from the log: what changes in the worksheet", title_justify="left")
    for h in ("Where", "Field", "Worksheet", "Log"):
        table.add_column(h, justify="right" if h in ("Worksheet", "Log") else "left", overflow="fold")
    for where, key, old, new in update.changes:
        table.add_row(printable(where), printable(key), printable(old), printable(new))
    if not table.rows:
        table.add_row("(nothing)", "", "", "")
    return table


# ---------------------------------------------------------------------------------------------------------
# routecalc backtest


def _err(x: float | None) -> str:
    return "n/a" if x is None else f"{x * 100:+.1f}%"


def backtest_tables(bt: Backtest) -> list[Any]:
    """The renderables of ``routecalc backtest``: the period, spend and calls by model and by category, failure
    rates and latency by model, the totals and the invoice."""
    cur = bt.currency
    out: list[Any] = []
    how = "given" if bt.requests_given else f"the log's calls / {bt.calls_per_request:.4g} calls per request"
    out.append(
        f"Backtest of {bt.worksheet}, policy {bt.policy}, on {bt.source}: {_when(bt.start)} UTC + {bt.days:,.2f} days; "
        f"{count(bt.requests)} requests ({how}); the worksheet's volume for the period: "
        f"{count(bt.worksheet_requests)} requests ({_err(relative(bt.worksheet_requests, bt.requests))})"
    )
    for title, lines in (("By model", bt.by_model), ("By category", bt.by_category)):
        table = Table(
            title=f"{title}: logged vs estimated (relative error = (estimate - logged) / logged)", title_justify="left"
        )
        for h in (title.split()[-1].capitalize(), "Calls", "est.", "err", "Tokens in err", "Tokens out err"):
            table.add_column(h, justify="left" if h in ("Model", "Category") else "right")
        for h in (f"Spend ({cur})", "est.", "err"):
            table.add_column(h, justify="right")
        for ln in (*lines, bt.total):
            table.add_row(
                printable(ln.name) if ln is not bt.total else "total",
                count(ln.calls_log),
                count(ln.calls_est),
                _err(ln.error("calls")),
                _err(ln.error("tokens_in")),
                _err(ln.error("tokens_out")),
                money(ln.cost_log, cur),
                money(ln.cost_est, cur),
                _err(ln.error("cost")),
                end_section=ln is lines[-1],
            )
        out.append(table)
    rel = Table(title="Reliability and latency of successful calls by model", title_justify="left")
    for h in ("Model", "Calls", "Failure rate", "est.", "P50", "est.", "err", "P95", "est.", "err"):
        rel.add_column(h, justify="left" if h == "Model" else "right")
    for m in bt.models:
        rel.add_row(
            printable(m.name),
            count(m.calls),
            pct(m.failure_log, 2),
            pct(m.failure_est, 2),
            seconds(m.p50_log),
            seconds(m.p50_est),
            _err(relative(m.p50_est, m.p50_log)),
            seconds(m.p95_log),
            seconds(m.p95_est),
            _err(relative(m.p95_est, m.p95_log)),
        )
    out.append(rel)
    total = f"Total spend: estimate {money(bt.total.cost_est, cur)}"
    if bt.other_cost_est:
        total += f" (of which {money(bt.other_cost_est, cur)} gates, human review and classifiers, not in the log)"
    if bt.total.cost_log is not None:
        total += f"; logged {money(bt.total.cost_log, cur)} ({_err(bt.total.error('cost'))})"
    if bt.invoice is not None:
        total += f"; invoice {money(bt.invoice, cur)} ({_err(bt.invoice_error)})"
    out.append(total + ".")
    if bt.skipped_categories:
        listed = ", ".join(f"{c} ({count(n)} calls)" for c, n in bt.skipped_categories)
        out.append(f"Logged categories the worksheet does not have (left out): {listed}.")
    return out


def backtest_json(bt: Backtest) -> str:
    """The comparison as JSON: money in ``currency``, latency in seconds, rates and errors as fractions."""
    from routecalc.contract import dumps

    def line(ln: Line) -> dict[str, Any]:
        d = {k: v for k, v in ln.__dict__.items()}
        d["error"] = {k: ln.error(k) for k in ("calls", "tokens_in", "tokens_out", "cost")}
        return d

    doc = {
        "worksheet": bt.worksheet,
        "policy": bt.policy,
        "source": bt.source,
        "currency": bt.currency,
        "start": dt.datetime.fromtimestamp(bt.start, dt.UTC).isoformat(),
        "days": bt.days,
        "requests": bt.requests,
        "requests_given": bt.requests_given,
        "calls_per_request": bt.calls_per_request,
        "worksheet_requests": bt.worksheet_requests,
        "by_model": [line(x) for x in bt.by_model],
        "by_category": [line(x) for x in bt.by_category],
        "total": line(bt.total),
        "other_cost_est": bt.other_cost_est,
        "invoice": bt.invoice,
        "invoice_error": bt.invoice_error,
        "models": [
            m.__dict__ | {"p50_error": relative(m.p50_est, m.p50_log), "p95_error": relative(m.p95_est, m.p95_log)}
            for m in bt.models
        ],
        "skipped_categories": [{"category": c, "calls": n} for c, n in bt.skipped_categories],
        "notes": list(bt.notes),
    }
    return dumps("backtest", doc)
