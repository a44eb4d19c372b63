"""Render a simulated month (``routecalc simulate``): the daily table, what each time effect did, JSON, CSV, and
the report section."""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from dataclasses import asdict, fields

from rich.console import Group
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from routecalc.format import count, money, pct, printable, seconds, signed_money
from routecalc.month import DayRow, MonthResult, Period
from routecalc.report.document import Block, Chart, Heading, Paragraph, runs
from routecalc.report.document import Table as DocTable

MONTH_HTML = "month.html"
MONTH_MD = "month.md"
CHART_SLUGS = ("month-traffic", "month-spend", "month-breaker", "month-spill")
MONTH_FILES = (MONTH_HTML, MONTH_MD, *(f"{s}.{ext}" for s in CHART_SLUGS for ext in ("png", "svg")))
EFFECT_TITLES = {
    "breaker": "Circuit breaker",
    "limits": "Rate limits",
    "budget": "Budget rule",
    "load": "Load-adaptive routing",
}


def _pp(before: float, after: float) -> str:
    d = (after - before) * 100
    return f"{d:+.2f} pp"


def _hhmm(seconds_of_day: float) -> str:
    m = int(seconds_of_day // 60) % (24 * 60)
    return f"{m // 60:02d}:{m % 60:02d}"


def columns(r: MonthResult) -> list[tuple[str, Callable[[Period], str]]]:
    """(header with unit, formatter) of the daily table; only the columns of the effects that are on."""
    cur = r.currency
    on = {name for name, is_on in r.effects_on.items() if is_on}
    cols: list[tuple[str, Callable[[Period], str]]] = [
        ("Requests", lambda p: count(p.requests)),
        (f"Spend ({cur})", lambda p: money(p.spend, cur)),
    ]
    if "budget" in on:
        cols.append((f"Budget ({cur})", lambda p: money(p.budget, cur)))
    cols += [
        ("Quality", lambda p: pct(p.quality, 2)),
        ("Failed", lambda p: pct(p.failed, 3)),
        ("P95", lambda p: seconds(p.p95_s)),
        ("P99", lambda p: seconds(p.p99_s)),
    ]
    if "breaker" in on:
        cols.append(("Breaker open (min)", lambda p: f"{p.breaker_open_min:,.0f}"))
    if "limits" in on:
        cols.append(("Spilled", lambda p: pct(p.spilled, 2)) if not r.queue else ("Queued", lambda p: pct(p.queued, 2)))
    if "budget" in on:
        cols.append(("Downgraded", lambda p: pct(p.downgraded, 1)))
    if "load" in on:
        cols.append(("Load-routed", lambda p: pct(p.load_routed, 1)))
    if r.outages:
        cols.append(("Outage timeouts", lambda p: count(p.outage_timeouts)))
    return cols


def _n(value: float, noun: str) -> str:
    """``1 request``, ``2 requests``."""
    return f"{count(value)} {noun}{'' if round(value) == 1 else 's'}"


def _day_label(d: DayRow) -> str:
    return f"{d.day:>2} {d.weekday}" + (f" {d.date}" if d.date else "")


def daily_table(r: MonthResult) -> Table:
    cols = columns(r)
    t = Table(
        title=f"{r.worksheet} — {r.policy}, {r.days} days: a row per day (UTC)",
        title_justify="left",
        header_style="bold",
    )
    t.add_column("Day", no_wrap=True)
    for head, _ in cols:
        t.add_column(head, justify="right")
    for d in r.days_rows:
        t.add_row(Text(_day_label(d)), *(Text(fmt(d)) for _, fmt in cols))
    t.add_section()
    t.add_row(Text(f"{r.days} days", style="bold"), *(Text(fmt(r.total), style="bold") for _, fmt in cols))
    return t


def effect_lines(r: MonthResult) -> list[str]:
    """One paragraph per time effect: the month with it against the same month without it."""
    cur = r.currency
    out = []
    for e in r.effects:
        on, off, n = e.on, e.off, e.notes
        base = (
            f"spend {money(off.spend, cur)} → {money(on.spend, cur)} ({signed_money(on.spend - off.spend, cur)}), "
            f"quality {pct(off.quality, 2)} → {pct(on.quality, 2)} ({_pp(off.quality, on.quality)}), "
            f"failed {pct(off.failed, 4)} → {pct(on.failed, 4)}, P99 {seconds(off.p99_s)} → {seconds(on.p99_s)}"
        )
        if e.name == "breaker":
            text = (
                f"opened {_n(n['openings'], 'time')} ({on.breaker_open_min:,.0f} min open in all); "
                f"{_n(n['requests_skipping_a_model'], 'request')} skipped a model while its breaker was open. "
                f"Against no breaker: timeouts paid to down models {count(n['timeouts_paid_off'])} → "
                f"{count(n['timeouts_paid_on'])}, requests that called a down model "
                f"{count(n['requests_calling_a_down_model_off'])} → {count(n['requests_calling_a_down_model_on'])}, "
                f"requests failed during outages {count(off.outage_failed)} → {count(on.outage_failed)}; {base}."
            )
        elif e.name == "limits" and not r.queue:
            start = n["start_hour"]
            when = (
                f"from {start:02d}:00 UTC (the first hour of day with at least 1 % spilled)"
                if start is not None
                else ""
            )
            text = (
                f"{pct(on.spilled, 2)} of requests spilled to the next step {when}; "
                f"{count(n['minutes_filled'])} model-minutes reached their limit. Against no limits: {base}."
            )
        elif e.name == "limits":
            start = n["start_hour"]
            when = f" from {start:02d}:00 UTC" if start is not None else ""
            text = (
                f"{pct(on.queued, 2)} of requests queued for a minute with room{when}, "
                f"{seconds(n['mean_wait_s'])} on average. Against no limits: {base}."
            )
        elif e.name == "budget":
            text = (
                f"over pace on {n['days_in_downgrade']} of {r.days} days: {_n(n['requests_downgraded'], 'request')} "
                f"({pct(on.downgraded, 1)}) took {n['policy']}'s routes (budget {money(on.budget, cur)} for these "
                f"days). Against no rule: {base}."
            )
        else:
            text = (
                f"{_n(n['requests_load_routed'], 'request')} ({pct(on.load_routed, 1)}) took {n['policy']}'s routes "
                f"above {n['above_rpm']:g} requests/minute; mean latency {seconds(off.latency_mean_s)} → "
                f"{seconds(on.latency_mean_s)}. Against no load routing: {base}."
            )
        out.append(f"{EFFECT_TITLES[e.name]}: {text}")
    return out


def outage_rows(r: MonthResult) -> list[tuple[str, ...]]:
    return [
        (o["model"], str(o["day"]), _hhmm(o["start_s"] % 86400), f"{o['minutes']:.0f}", o["error"]) for o in r.outages
    ]


def footnote(r: MonthResult) -> str:
    day1 = f"day 1 is {r.start}" if r.start else "day 1 is a Monday (--start sets the date)"
    ev = r.ev
    return (
        f"Simulated request by request in arrival order ({count(r.total.requests)} requests; expected "
        f"{count(r.expected_requests)} from the volume and its profile), seed {r.seed}, {r.bucket_s:g}-s buckets; "
        f"{day1}; days in UTC. The effects are compared on the same month (same requests, outages and random "
        f"numbers) with each switched off. Percentiles from a log histogram (±{r.hist_rel_error:.1%}). Without "
        f"time effects the per-request engines expect {money(ev['cost'], r.currency)} and "
        f"{pct(ev['quality'], 2)} quality per request (here: {money(r.total.spend / max(r.total.requests, 1), r.currency)}"
        f", {pct(r.total.quality, 2)})."
    )


def render_month(r: MonthResult) -> Group:
    parts: list = [daily_table(r)]
    lines = effect_lines(r)
    if lines:
        parts.append(Text("What each time effect did (the same month with it switched off → with it):", style="bold"))
        parts += [Text(f"  {line}") for line in lines]
    if r.outages:
        t = Table(title="Outages", title_justify="left", header_style="bold")
        for col in ("Model", "Day", "From (UTC)", "Minutes", "Every try"):
            t.add_column(col, justify="left" if col in ("Model", "Every try") else "right")
        for row in outage_rows(r):
            t.add_row(*(Text(printable(c)) for c in row))
        parts.append(t)
    parts += [Text.from_markup(f"[yellow]warning:[/] {escape(printable(w))}", emoji=False) for w in r.warnings]
    parts.append(Text(footnote(r), style="dim"))
    return Group(*parts)


def month_json(r: MonthResult) -> str:
    """The ``simulate`` output document (``routecalc schema --output simulate``)."""
    from routecalc.contract import dumps

    return dumps("simulate", r.to_dict())


CSV_FIELDS = ("day", "date", "weekday", *(f.name for f in fields(Period)))


def month_csv(r: MonthResult) -> str:
    """One row per day (money in the worksheet currency, shares as fractions, seconds)."""
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=CSV_FIELDS, lineterminator="\n")
    w.writeheader()
    for d in r.days_rows:
        row = asdict(d)
        w.writerow({k: ("" if row[k] is None else row[k]) for k in CSV_FIELDS})
    return buf.getvalue()


def month_blocks(r: MonthResult, charts: list[tuple[str, str, str]]) -> list[Block]:
    """The report section: headline, the effects, the daily table, the outages, the charts (``(png, title,
    takeaway)``)."""
    cur = r.currency
    t = r.total
    blocks: list[Block] = [
        Heading(1, "A month, not a mean"),
        Paragraph(
            runs(
                f"{r.policy} simulated over {r.days} days, request by request in arrival order: "
                f"{count(t.requests)} requests, {money(t.spend, cur)} spent"
                + (f" against a budget of {money(t.budget, cur)}" if t.budget is not None else "")
                + f", {pct(t.quality, 2)} good answers, {pct(t.failed, 3)} failed, P99 {seconds(t.p99_s)}."
            )
        ),
    ]
    blocks += [Paragraph(runs(line)) for line in effect_lines(r)]
    for png, title, takeaway in charts:
        blocks.append(Chart(png=png, title=title, alt=f"{title} for {r.worksheet}", takeaway=takeaway))
    cols = columns(r)
    rows = [(_day_label(d), *(fmt(d) for _, fmt in cols)) for d in r.days_rows]
    rows.append((f"{r.days} days", *(fmt(t) for _, fmt in cols)))
    blocks.append(DocTable(header=("Day", *(h for h, _ in cols)), rows=tuple(rows), caption="Days in UTC."))
    if r.outages:
        blocks.append(
            DocTable(
                header=("Model", "Day", "From (UTC)", "Minutes", "Every try"),
                rows=tuple(outage_rows(r)),
                align=("l", "r", "r", "r", "l"),
                caption="Outages drawn for this month (and scheduled ones).",
            )
        )
    blocks += [Paragraph(runs(f"Warning: {w}"), note=True) for w in r.warnings]
    blocks.append(Paragraph(runs(footnote(r)), note=True))
    return blocks


def month_files(r: MonthResult, fmt: str = "both") -> dict[str, bytes]:
    """``routecalc simulate -o DIR``: the section as its own small report (``month.html`` and/or ``month.md``) and
    its charts (PNG and SVG)."""
    from routecalc.report.charts.month import chart_files
    from routecalc.report.document import Document, to_html, to_markdown

    files, listed = chart_files(r)
    doc = Document(title=f"A month of {r.policy}: {r.worksheet}", blocks=tuple(month_blocks(r, listed)[1:]))
    if fmt in ("html", "both"):
        files[MONTH_HTML] = to_html(doc, files).encode("utf-8")
    if fmt in ("md", "both"):
        files[MONTH_MD] = to_markdown(doc).encode("utf-8")
    return files
