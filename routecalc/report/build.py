"""Assemble the design-review report: content model, charts, and the files ``routecalc report`` writes.

``build_report`` is pure apart from reading the worksheet file for its hash: it returns ``{file name: bytes}``
and leaves writing (atomic, manifest, refusal to clobber) to :func:`routecalc.outputs.write_files`.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Literal

import numpy as np

from routecalc._version import __version__
from routecalc.advice import ESCALATION, ESCALATION_WARN
from routecalc.chains import STRONGEST
from routecalc.decide.sensitivity import Sensitivity
from routecalc.decide.uncertainty import Uncertainty
from routecalc.decide.whatif import PatternEffects
from routecalc.format import count, money, pct, seconds, signed_money
from routecalc.month import MonthResult
from routecalc.report import charts, risk
from routecalc.report.appendix import router_configs
from routecalc.report.charts.classifier import classifier_curve_figure
from routecalc.report.document import (
    Block,
    Bullets,
    Chart,
    Document,
    Heading,
    Paragraph,
    Runs,
    Strong,
    Table,
    runs,
    to_html,
    to_markdown,
)
from routecalc.report.patterns import CLASSIFIER_HEADER, DEADLINE_HEADER, classifier_rows, deadline_rows
from routecalc.report.tables import footnote, metric_rows
from routecalc.results import (
    STALE_AFTER_DAYS,
    Comparison,
    PolicyResult,
    independence_warning,
    outcome_dependent,
    stale_categories,
    stale_warnings,
)
from routecalc.routes import route_text
from routecalc.worksheet import DAYS_PER_MONTH, Band, Latency, Worksheet, file_sha256, worksheet_warnings
from routecalc.worksheet.pricing import price_notes

ReportFormat = Literal["html", "md", "both"]
HTML_NAME = "report.html"
MD_NAME = "report.md"
DEFAULT_ROOT = Path("routecalc-report")


def default_out_dir(worksheet: Path) -> Path:
    """``./routecalc-report/<worksheet file name without extension>/`` (safe characters only)."""
    slug = re.sub(r"[^A-Za-z0-9._-]+", "-", worksheet.stem).strip("-.") or "worksheet"
    return DEFAULT_ROOT / slug


def build_report(
    ws: Worksheet,
    comparison: Comparison,
    worksheet_path: str | Path | None,
    fmt: ReportFormat = "both",
    generated: dt.date | None = None,
    scenarios: Sequence[str | Path] = (),
    uncertainty: Uncertainty | None = None,
    patterns: PatternEffects | None = None,
    sensitivity: Sensitivity | None = None,
    month: MonthResult | None = None,
) -> dict[str, bytes]:
    """Every file of the report: one PNG and one SVG per chart, plus report.html and/or report.md.

    ``generated`` is the report date (provenance and the 90-day review-age warnings); default today.
    ``uncertainty`` (``--uncertainty``) adds whiskers to the cost vs quality chart and the Risk section;
    ``patterns`` (:func:`routecalc.decide.whatif.pattern_effects`) a section on what classifiers and deadlines buy.
    ``sensitivity`` (``--sensitivity``) the tornado chart and the Sensitivity section.
    ``month`` (a worksheet with an operations section) adds "A month, not a mean" and its charts.
    """
    if fmt not in ("html", "md", "both"):
        raise ValueError(f"fmt must be html, md or both, not {fmt!r}")
    generated = generated or dt.date.today()
    files: dict[str, bytes] = {}
    achievable = achievable_frontier_chart(ws)
    for spec in charts.CHARTS:
        if spec.draw is charts.cost_quality_figure:
            fig = charts.cost_quality_figure(comparison, achievable)
        else:
            fig = spec.draw(comparison)  # type: ignore[operator]
        if spec.slug == "cost-vs-quality" and uncertainty is not None and uncertainty.has_counts:
            charts.add_interval_bars(fig, comparison, *risk.chart_intervals(comparison, uncertainty))
        for ext, data in charts.render_figure(fig, ("png", "svg")).items():  # one layout, both formats
            files[f"{spec.slug}.{ext}"] = data
    if patterns is not None and patterns.classifiers:
        fig = classifier_curve_figure(comparison, patterns.classifiers)
        for ext, data in charts.render_figure(fig, ("png", "svg")).items():
            files[f"{CLASSIFIER_CHART}.{ext}"] = data
    if sensitivity is not None:
        from routecalc.report.charts.sensitivity import SLUG, tornado_figure

        fig = tornado_figure(sensitivity)
        for ext, data in charts.render_figure(fig, ("png", "svg")).items():
            files[f"{SLUG}.{ext}"] = data
    month_charts: list[tuple[str, str, str]] = []
    if month is not None:
        from routecalc.report.charts.month import chart_files

        extra, month_charts = chart_files(month)
        files.update(extra)
    doc = report_document(
        ws, comparison, worksheet_path, generated, scenarios, uncertainty, patterns, sensitivity, month, month_charts
    )
    if fmt in ("html", "both"):
        files[HTML_NAME] = to_html(doc, files).encode("utf-8")
    if fmt in ("md", "both"):
        files[MD_NAME] = to_markdown(doc).encode("utf-8")
    return files


def achievable_frontier_chart(ws: Worksheet) -> charts.AchievableFrontier | None:
    """The cost-vs-quality frontier over every candidate route (``routecalc optimize``, expected values only)."""
    from routecalc.decide.optimize import achievable_frontier

    f = achievable_frontier(ws)
    if f is None:
        return None
    what = "best policy at each cost" if f.exact else "upper envelope of route mixes"
    return charts.AchievableFrontier(f.monthly_cost, f.quality, f"achievable frontier (routecalc optimize: {what})")


def report_document(
    ws: Worksheet,
    c: Comparison,
    worksheet_path: str | Path | None,
    generated: dt.date,
    scenarios: Sequence[str | Path] = (),
    uncertainty: Uncertainty | None = None,
    patterns: PatternEffects | None = None,
    sensitivity: Sensitivity | None = None,
    month: MonthResult | None = None,
    month_charts: Sequence[tuple[str, str, str]] = (),
) -> Document:
    """The report's content, once: the question, recommendation, (risk, sensitivity,) charts, (a month,) table, warnings,
    assumptions, provenance."""
    blocks: list[Block] = []
    blocks += _question(ws, c)
    blocks += _recommendation(ws, c, generated)
    if uncertainty is not None:
        blocks += risk.risk_blocks(c, uncertainty)
    if sensitivity is not None:
        from routecalc.report.sensitivity import sensitivity_blocks

        blocks += sensitivity_blocks(sensitivity)
    blocks.append(Heading(1, "Charts"))
    for spec in charts.CHARTS:
        blocks.append(
            Chart(
                png=f"{spec.slug}.png",
                title=spec.title,
                alt=f"{spec.title} chart for {c.worksheet}",
                takeaway=spec.takeaway(c),  # type: ignore[operator]
            )
        )
    if month is not None:
        from routecalc.report.timeline import month_blocks

        blocks += month_blocks(month, list(month_charts))
    blocks += _comparison_table(c)
    if patterns:
        blocks += _patterns(c, patterns)
    blocks += _warnings(ws, c, generated)
    blocks += _assumptions(ws, c)
    blocks += _provenance(c, worksheet_path, generated, scenarios)
    blocks += router_configs(ws, c, worksheet_path, scenarios)
    return Document(title=f"Routing policy review: {ws.name}", blocks=tuple(blocks))


# ---------------------------------------------------------------------------------------------------------
# Sections


def _question(ws: Worksheet, c: Comparison) -> list[Block]:
    per_day = c.requests_per_month / DAYS_PER_MONTH
    n_ws = len(ws.policies)
    extra = f" plus {STRONGEST} (every category to {c.strongest_model})" if c.strongest_model else ""
    text = (
        f"Which routing policy should {ws.name} run? Traffic: {count(c.requests_per_month)} requests/month "
        f"(about {count(per_day)}/day; 1 month = {DAYS_PER_MONTH:.4f} days) over {len(ws.tasks)} task categories; "
        f"money in {c.currency}. Candidates: {n_ws} polic{'y' if n_ws == 1 else 'ies'} from the worksheet{extra}. "
        "A policy qualifies when every category meets its quality threshold and its P95 latency budget; "
        f"the winner is the {c.winner_rule.replace(' meeting every target', '')} that qualifies."
    )
    blocks: list[Block] = [Heading(1, "The question"), Paragraph(runs(text))]
    if ws.description:
        blocks.append(Paragraph(runs(ws.description.strip())))
    items = []
    for p in c.policies:
        tags = [t for t, on in (("baseline", p.is_baseline), ("winner", p.name == c.winner)) if on]
        label = p.name + (f" ({', '.join(tags)})" if tags else "")
        items.append(runs(Strong(label), f" — {p.kind}" + (f": {p.description}" if p.description else "")))
    blocks.append(Bullets(tuple(items)))
    return blocks


def _recommendation(ws: Worksheet, c: Comparison, generated: dt.date) -> list[Block]:
    cur = c.currency
    blocks: list[Block] = [Heading(1, "Recommendation")]
    w = c.winner_result
    if w is None:
        blocks.append(
            Paragraph(
                runs(
                    Strong("No winner: "),
                    "no policy meets every category's quality threshold and P95 latency budget. "
                    "Each policy's nearest miss:",
                )
            )
        )
        blocks.append(Bullets(tuple(runs(Strong(p.name), f": {p.nearest_miss}") for p in c.policies)))
        blocks.append(
            Paragraph(
                runs(
                    "Options: relax a target the business can live with, add a stronger model or a cascade for the "
                    "missing categories, or review the pass rates and budgets behind the miss."
                )
            )
        )
        return blocks

    text: list[str | Strong] = [Strong(f"Run {w.name}"), f" ({w.kind}): {money(w.monthly_cost, cur, '/month')} "]
    text.append(f"({money(w.cost_per_request, cur)} per request), {pct(w.quality, 2)} good answers, ")
    text.append(f"P95 {seconds(w.p95_s)} over all traffic.")
    base = c.policy(c.baseline) if c.baseline else None
    if w.is_baseline:
        text.append(f" It is the baseline: no cheaper policy meets every target, so keep running {w.name}.")
    elif base is not None and w.cost_change_monthly is not None:
        s = -w.cost_change_monthly  # saved per month (negative: costs more)
        verb = "Saves" if s >= 0 else "Costs"
        more = "" if s >= 0 else " more"
        text.append(
            f" {verb} {money(abs(s), cur, '/month')}{more} ({money(abs(s) * 12, cur, '/year')}, "
            f"{abs(w.cost_change_pct or 0):.1f}%) vs {base.name}"
        )
        if s < 0 and not base.meets_targets:
            text.append(f", which misses a target ({base.nearest_miss})")
        text.append(".")
    blocks.append(Paragraph(tuple(text)))
    blocks.append(Heading(2, "What it risks"))
    blocks.append(Bullets(tuple(_risks(ws, c, w, base, generated))))
    return blocks


def _risks(ws: Worksheet, c: Comparison, w: PolicyResult, base: PolicyResult | None, today: dt.date) -> list[Runs]:
    cur = c.currency
    rows = charts.category_view(c, w.name)
    out: list[Runs] = []
    q = min(rows, key=lambda r: r.quality_margin_pp)
    out.append(
        runs(
            Strong("Quality: "),
            f"the thinnest margin is {q.category}, {pct(q.quality, 2)} against a {pct(q.threshold, 1)} threshold "
            f"({q.quality_margin_pp:+.2f} pp).",
        )
    )
    budgeted = [r for r in rows if r.budget_s is not None]
    if budgeted:
        r = max(budgeted, key=lambda r: r.p95_s / (r.budget_s or 1))
        b = r.budget_s or 0.0
        ci = f"95 % CI {seconds(r.p95_ci_s[0])} to {seconds(r.p95_ci_s[1])}"
        tail = " The CI reaches over the budget: run more samples or treat it as at risk." if r.p95_ci_s[1] > b else ""
        out.append(
            runs(
                Strong("Latency: "),
                f"{r.category} is closest to its budget, P95 {seconds(r.p95_s)} vs {seconds(b)} ({ci}).{tail}",
            )
        )
    bad = f"{pct(w.delivered_bad, 2)} of requests get a bad answer delivered and {pct(w.failed, 2)} get none"
    if w.risk_monthly > 0:
        bad += f"; their expected operational cost is {money(w.risk_monthly, cur, '/month')}"
        if base is not None and base is not w:
            bad += f" ({signed_money(w.risk_monthly - base.risk_monthly, cur, '/month')} vs {base.name})"
    out.append(runs(Strong("Wrong and missing answers: "), bad + "."))
    ix = c.problem.chains.names.index(w.name)
    note = independence_warning(c.problem)
    if note is not None and outcome_dependent(c.problem)[ix].any():
        out.append(runs(Strong("Chains: "), note))
    if w.quality_if_independent is not None:
        out.append(
            runs(
                Strong("Joint outcomes: "),
                f"with the worksheet's joint pass/fail laws {w.name} delivers {pct(w.quality, 2)} good answers; "
                f"independence would have promised {pct(w.quality_if_independent, 2)}.",
            )
        )
    stale = stale_categories(ws, today)
    if stale:
        names = ", ".join(f"{n} ({age} days)" for n, age in stale)
        out.append(
            runs(Strong("Stale evals: "), f"pass rates last reviewed more than {STALE_AFTER_DAYS} days ago: {names}.")
        )
    return out


def _comparison_table(c: Comparison) -> list[Block]:
    header = ["Metric"]
    for p in c.policies:
        tags = [t for t, on in (("winner", p.name == c.winner), ("baseline", p.is_baseline)) if on]
        header.append(p.name + (f" ({', '.join(tags)})" if tags else ""))
    rows = tuple((label, *(fmt(p) for p in c.policies)) for label, fmt in metric_rows(c))
    cat_rows = []
    for i, cat in enumerate(c.policies[0].categories):
        budget = f"≤ {cat.budget_s:g} s" if cat.budget_s is not None else "no budget"
        cells = [cat.category, pct(cat.share), f"≥ {pct(cat.threshold, 1)}, P95 {budget}"]
        for p in c.policies:
            r = p.categories[i]
            cells.append(f"{'✓' if r.ok else '✗'} {pct(r.quality, 2)}, {seconds(r.p95_s)}")
        cat_rows.append(tuple(cells))
    return [
        Heading(1, "Side by side"),
        Table(tuple(header), rows),
        Heading(2, "Targets by category"),
        Paragraph(runs("Quality (≥ threshold) and P95 latency (≤ budget) per category; ✗ marks a miss.")),
        Table(("Category", "Traffic", "Target", *(p.name for p in c.policies)), tuple(cat_rows)),
        Paragraph(runs(footnote(c)), note=True),
    ]


CLASSIFIER_CHART = "classifier-value"


def _patterns(c: Comparison, effects: PatternEffects) -> list[Block]:
    cur = c.currency
    blocks: list[Block] = [Heading(1, "What the routing patterns buy")]
    if effects.classifiers:
        best = max(effects.classifiers, key=lambda v: v.perfect_saves_monthly)
        blocks += [
            Heading(2, "Classifiers: what a better one is worth"),
            Paragraph(
                runs(
                    "Each classifier's balanced accuracy (mean recall), the policy's monthly cost with it, and with a "
                    "perfect classifier of the same cost and latency. The chart moves the confusion matrix towards "
                    "the identity (better) or towards guessing (worse)."
                )
            ),
            Table(tuple(CLASSIFIER_HEADER), tuple(tuple(r) for r in classifier_rows(effects, cur))),
            Chart(
                png=f"{CLASSIFIER_CHART}.png",
                title="Cost and quality vs classifier accuracy",
                alt=f"classifier value curve for {c.worksheet}",
                takeaway=(
                    f"A perfect {best.classifier} would change {best.policy}'s cost by "
                    f"{signed_money(-best.perfect_saves_monthly, cur, '/month')} and its quality from "
                    f"{pct(best.quality, 2)} to {pct(best.oracle_quality, 2)}."
                ),
            ),
        ]
    if effects.deadlines:
        blocks += [
            Heading(2, "Deadlines: the tail they cut and what they waste"),
            Paragraph(
                runs(
                    "Per category with a client-side deadline: latency percentiles with and without the deadlines "
                    "(same requests), the share of requests that abandoned a try, the spend on abandoned tries, and "
                    f"the cost and quality change ({cur}/month)."
                )
            ),
            Table(tuple(DEADLINE_HEADER), tuple(tuple(r) for r in deadline_rows(effects, cur))),
        ]
    return blocks


def target_misses(c: Comparison) -> list[str]:
    """Every (policy, category) that misses its quality threshold or P95 budget, as a sentence."""
    out = []
    for p in c.policies:
        for r in p.categories:
            if not r.quality_ok:
                out.append(
                    f"{p.name} / {r.category}: quality {pct(r.quality, 2)} < threshold {pct(r.threshold, 2)} "
                    f"({(r.threshold - r.quality) * 100:.2f} pp short)."
                )
            if not r.latency_ok and r.budget_s is not None:
                out.append(
                    f"{p.name} / {r.category}: P95 {seconds(r.p95_s)} > budget {seconds(r.budget_s)} "
                    f"({seconds(r.p95_s - r.budget_s)} over)."
                )
    return out


def _warnings(ws: Worksheet, c: Comparison, today: dt.date) -> list[Block]:
    reviewed = {t.name: t.last_reviewed for t in ws.tasks}
    stale = [
        f"{name}: pass rates last reviewed {reviewed[name]} — {age} days before {today.isoformat()} "
        f"(> {STALE_AFTER_DAYS}); re-run the evals."
        for name, age in stale_categories(ws, today)
    ]
    escalation = [a.text for a in c.advice if a.kind == ESCALATION]
    misses = target_misses(c)
    shown = set(escalation) | set(stale_warnings(ws, today))  # listed above in their own words
    other = [w for w in (*worksheet_warnings(ws), *c.warnings, *c.advisories) if w not in shown]
    blocks: list[Block] = [Heading(1, "Warnings")]
    for title, items, none in (
        (f"Evals older than {STALE_AFTER_DAYS} days", stale, "None: every category was reviewed recently."),
        (f"Cascades escalating more than {ESCALATION_WARN:.0%}", escalation, "None."),
        ("Missed thresholds and budgets", misses, "None: every policy meets every target."),
        ("Model notes and advice", other, "None."),
    ):
        blocks.append(Heading(2, title))
        blocks.append(Bullets(tuple(runs(i) for i in items)) if items else Paragraph(runs(none)))
    return blocks


# ---------------------------------------------------------------------------------------------------------
# Assumptions: every input that drives the result


def _num(v: float | None, unit: str = "") -> str:
    if v is None:
        return "—"
    return f"{v:,.6g}{unit}"


def band_text(b: Band | None, unit: str = "") -> str:
    """A band as the worksheet gives it, with its mean: ``p50 600 / p95 1,500 (mean 760)`` or ``fixed 20``."""
    if b is None:
        return "—"
    if b.mean is not None:
        return f"fixed {_num(b.mean, unit)}"
    return f"p50 {_num(b.p50, unit)} / p95 {_num(b.p95, unit)} (mean {_mean(b.expected, unit)})"


def _mean(v: float, unit: str) -> str:
    return f"{v:,.0f}{unit}" if abs(v) >= 100 else f"{v:.3g}{unit}"


def _retries(n: int) -> str:
    return f"{n} {'retry' if n == 1 else 'retries'}"


def latency_text(lat: Latency) -> str:
    if lat.e2e_s is not None:
        return f"end-to-end {band_text(lat.e2e_s, ' s')}"
    return f"TTFT {band_text(lat.ttft_s, ' s')}; per output token {band_text(lat.tpot_s, ' s')}"


def _route_text(ws: Worksheet, policy_name: str, category: str) -> str:
    pol = ws.policy(policy_name)
    return route_text(pol, pol.routes[category])


def _assumptions(ws: Worksheet, c: Comparison) -> list[Block]:
    cur = c.currency
    unit = "1M" if ws.price_unit == "per_1m" else "1K"
    d = ws.defaults
    general = [
        f"Volume: {count(c.requests_per_month)} requests/month (1 month = {DAYS_PER_MONTH:.4f} days).",
        f"Currency: {cur}; prices per {unit} tokens.",
        f"Defaults: {_retries(d.retries)} per step, {seconds(d.backoff_s)} backoff per retry, failed tries "
        f"{'bill' if d.bill_failed_input else 'do not bill'} their input tokens.",
        f"Monte Carlo: {count(c.samples)} requests, seed {c.seed}; latency percentiles within "
        f"±{c.mc.hist_rel_error:.1%} (histogram resolution). Means come from the closed-form expected-value engine.",
        "Budgets are P95 targets per category (failed requests included); thresholds compare with the share of "
        "a category's requests answered well (human review counts as good, failures as not good).",
    ]
    models = tuple(
        (
            m.name,
            m.provider,
            f"{_num(m.price_in)} / {_num(m.price_out)} / {_num(m.price_cache)}",
            latency_text(m.latency),
            pct(m.failure_rate, 2),
            pct(m.timeout_share, 0),
            seconds(m.timeout_s),
            seconds(m.error_latency_s),
            f"{m.output_ratio:g}×",
        )
        for m in ws.models
    )
    tasks = tuple(
        (
            t.name,
            pct(share),
            band_text(t.tokens_in),
            band_text(t.tokens_out),
            pct(t.cached_share, 0),
            pct(t.quality_threshold, 1),
            seconds(t.latency_budget_s) if t.latency_budget_s is not None else "none",
            money(t.cost_bad_answer, cur) if t.cost_bad_answer is not None else "—",
            money(t.cost_failed, cur) if t.cost_failed is not None else "—",
            t.last_reviewed.isoformat() if t.last_reviewed else "—",
        )
        for t, share in zip(ws.tasks, ws.shares, strict=True)
    )
    model_names = [m.name for m in ws.models]
    pass_rates = tuple((t.name, *(pct(t.rates[m], 1) if m in t.rates else "—" for m in model_names)) for t in ws.tasks)
    validators = tuple(
        (
            t.name,
            pct(t.validator.catch.rate, 1),
            pct(t.validator.false_reject.rate, 1),
            money(t.validator.cost_per_call, cur),
            money(t.validator.cost_per_1m_tokens, cur),
            seconds(t.validator.latency_s),
        )
        for t in ws.tasks
        if t.validator is not None
    )
    pols = list(ws.policies)
    policy_rows: list[tuple[str, ...]] = [
        ("kind", *(p.kind for p in pols)),
        ("retries", *(str(p.retries if p.retries is not None else d.retries) for p in pols)),
        ("last gate rejects →", *(p.final_reject for p in pols)),
        (
            "human review",
            *(
                f"{money(p.human_review.cost, cur)}, {seconds(p.human_review.latency_s)}" if p.human_review else "—"
                for p in pols
            ),
        ),
    ]
    policy_rows += [(t.name, *(_route_text(ws, p.name, t.name) for p in pols)) for t in ws.tasks]
    blocks: list[Block] = [
        Heading(1, "Assumptions"),
        Paragraph(runs("Every input below drives the result; change one and re-run the report.")),
        Bullets(tuple(runs(x) for x in general)),
        Heading(2, "Models"),
        Table(
            (
                "Model",
                "Provider",
                f"Price in / out / cached ({cur} per {unit} tokens)",
                "Latency of one answer",
                "Failure rate per try",
                "Timeouts (share of failures)",
                "Timeout",
                "Error latency",
                "Output ratio",
            ),
            models,
            align=("l", "l", "r", "l"),
        ),
        *_price_notes(ws),
        Heading(2, "Task categories and token bands"),
        Table(
            (
                "Category",
                "Traffic",
                "Input tokens",
                "Output tokens",
                "Cached input",
                "Quality threshold",
                "P95 budget",
                f"Cost of a bad answer ({cur})",
                f"Cost of a failure ({cur})",
                "Evals reviewed",
            ),
            tasks,
            align=("l", "r", "l", "l"),
        ),
        Heading(2, "Pass rates (share of good answers, from evals)"),
        Table(("Category", *model_names), pass_rates),
    ]
    blocks.append(Heading(2, "Validators (quality gates)"))
    if validators:
        blocks.append(
            Table(
                (
                    "Category",
                    "Catches a bad answer",
                    "Rejects a good answer",
                    f"Cost per call ({cur})",
                    f"Cost per 1M tokens read ({cur})",
                    "Latency",
                ),
                validators,
            )
        )
    else:
        blocks.append(Paragraph(runs("No category has a validator.")))
    blocks.append(Heading(2, "Policies (routes per category)"))
    if pols:
        blocks.append(Table(("", *(p.name for p in pols)), tuple(policy_rows), align=("l", *("l" for _ in pols))))
    if c.strongest_model:
        blocks.append(
            Paragraph(
                runs(
                    f"{STRONGEST}: every category to {c.strongest_model} (highest traffic-weighted pass rate), "
                    f"{_retries(d.retries)}, no fallback."
                )
            )
        )
    return blocks


def _price_notes(ws: Worksheet) -> list[Block]:
    notes = price_notes(ws)
    if not notes:
        return []
    return [Paragraph(runs("Invoice prices besides the list prices above:")), Bullets(tuple(runs(n) for n in notes))]


def _provenance(
    c: Comparison, worksheet_path: str | Path | None, generated: dt.date, scenarios: Sequence[str | Path]
) -> list[Block]:
    import matplotlib

    items = [f"routecalc {__version__} (numpy {np.__version__}, matplotlib {matplotlib.__version__})"]
    if worksheet_path is not None:
        items.append(f"Worksheet file: {Path(worksheet_path).name}, SHA-256 {file_sha256(worksheet_path)}")
    else:
        items.append("Worksheet: given in memory (no file, no hash)")
    for s in scenarios:
        items.append(f"Scenario overlay: {Path(s).name}, SHA-256 {file_sha256(s)}")
    if c.prices is not None:
        items.append(c.prices.text)
    items += [
        f"Monte Carlo: seed {c.seed}, {count(c.samples)} samples",
        f"Generated: {generated.isoformat()} (review ages counted to this date)",
        "Same worksheet, seed and samples give the same numbers.",
    ]
    return [Heading(1, "Provenance"), Bullets(tuple(runs(i) for i in items))]
