"""Render a Comparison: rich tables for the terminal, CSV and JSON for machines, Markdown for reports."""

from __future__ import annotations

import io
import math
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from rich.cells import cell_len
from rich.console import Console, ConsoleOptions, Group, RenderResult
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from routecalc.chains import STRONGEST
from routecalc.format import count, csv_cell, money, pct, seconds, signed_money, signed_pct
from routecalc.results import CategoryResult, Comparison, PolicyResult
from routecalc.worksheet import DAYS_PER_MONTH

if TYPE_CHECKING:
    from routecalc.decide.uncertainty import Uncertainty
    from routecalc.decide.whatif import PatternEffects
    from routecalc.gate import CheckResult


def _header(c: Comparison, p: PolicyResult) -> str:
    return c.label(p, winner_mark="★ winner", sep="\n")


def _delta_pct(p: PolicyResult) -> str:
    if p.cost_change_pct is None or p.is_baseline:
        return "—"
    return signed_pct(p.cost_change_pct)


def _delta_money(c: Comparison, p: PolicyResult) -> str:
    if p.cost_change_monthly is None or p.is_baseline:
        return "—"
    return signed_money(p.cost_change_monthly, c.currency, "/mo")


def metric_rows(c: Comparison) -> list[tuple[str, Callable[[PolicyResult], str]]]:
    """(label with unit, formatter) for every row of the side-by-side table; cells stay short."""
    cur = c.currency
    base = c.baseline or "baseline"
    joint = any(p.quality_if_independent is not None for p in c.policies)
    independent = [
        (
            "Quality if independent",
            lambda p: "—" if p.quality_if_independent is None else pct(p.quality_if_independent, 2),
        )
    ]

    def when(attr: str, rows: list[tuple[str, Callable[[PolicyResult], str]]]) -> list:
        return rows if any(getattr(p, attr) for p in c.policies) else []

    return [
        ("Kind", lambda p: p.kind),
        (f"Cost / request ({cur})", lambda p: money(p.cost_per_request, cur)),
        (f"Monthly cost ({cur})", lambda p: money(p.monthly_cost, cur, "/mo")),
        (f"Cost change vs {base} (%)", _delta_pct),
        (f"Cost change vs {base} ({cur})", lambda p: _delta_money(c, p)),
        ("Quality (good answers)", lambda p: pct(p.quality, 2)),
        *(independent if joint else []),
        ("Delivered bad", lambda p: pct(p.delivered_bad, 2)),
        ("Failed (no answer)", lambda p: pct(p.failed, 2)),
        *when("overflow", [("Overflow (prompt > a context window)", lambda p: pct(p.overflow, 2))]),
        *when("late", [("Abandoned at a deadline", lambda p: pct(p.late, 2))]),
        *when(
            "deadline_waste_monthly",
            [(f"Spend on abandoned tries ({cur})", lambda p: money(p.deadline_waste_monthly, cur, "/mo"))],
        ),
        *when(
            "router_cost_monthly",
            [(f"Classifier cost ({cur})", lambda p: money(p.router_cost_monthly, cur, "/mo"))],
        ),
        ("Latency P50", lambda p: seconds(p.p50_s)),
        ("Latency P95", lambda p: seconds(p.p95_s)),
        ("Latency P99", lambda p: seconds(p.p99_s)),
        ("Latency mean", lambda p: seconds(p.latency_mean_s)),
        ("Escalation rate", lambda p: pct(p.escalation)),
        ("Fallback rate (→ next step)", lambda p: pct(p.fallback, 2) if p.fallback_route else "none"),
        (f"Op. risk: bad + failed ({cur})", lambda p: money(p.risk_monthly, cur, "/mo")),
        ("Meets every target", lambda p: "✓ yes" if p.meets_targets else f"✗ {_n_missed(p)}"),
        (
            "MC cost/request (95% CI)",
            lambda p: f"{money(p.cost_per_request_mc, cur)} ±{_rel(p.cost_ci95, p.cost_per_request_mc)}",
        ),
        ("MC quality (95% CI)", lambda p: f"{pct(p.quality_mc, 2)} ±{p.quality_ci95 * 100:.2f}pp"),
    ]


def _n_missed(p: PolicyResult) -> str:
    n = sum(not c.ok for c in p.categories)
    return f"{n} categor{'y' if n == 1 else 'ies'}"


def _rel(half: float, mean: float) -> str:
    return f"{half / mean:.1%}" if mean else "n/a"


def literal(*cells: str | Text) -> list[Text]:
    """Table cells as rich Text: shown as written whatever console renders them (no markup, no :emoji: codes)."""
    return [Text(c) if isinstance(c, str) else c for c in cells]


def comparison_table(c: Comparison, shown: Sequence[int] | None = None, first: bool = True, last: bool = True) -> Table:
    """One column per policy (baseline and all-to-strongest included), one row per metric; ``shown``: only those
    policies (indices), ``first``/``last``: the block that carries the title/caption."""
    policies = c.policies if shown is None else [c.policies[i] for i in shown]
    table = Table(
        title=Text(f"{c.worksheet} — {count(c.requests_per_month)} requests/month, {c.currency}") if first else None,
        title_justify="left",
        show_lines=False,
        header_style="bold",
        caption=f"★ = {c.winner_rule}" if last else None,
    )
    table.add_column("Metric", style="bold", no_wrap=True)
    for p in policies:
        style = "green" if p.name == c.winner else None
        table.add_column(Text(_header(c, p)), justify="right", style=style, overflow="fold", min_width=10)
    for label, fmt in metric_rows(c):
        table.add_row(*literal(label, *(fmt(p) for p in policies)))
    return table


COLUMN_EDGE = 3  # a table column's padding (one space each side) and its left border, in terminal cells
HEADER_FOLD = 16  # a policy's header may fold onto more lines down to this width (its cells never do)


def _column_width(cells: Sequence[str], header: str) -> int:
    """What a policy's column takes at its natural width: its widest cell line, or its header up to HEADER_FOLD."""
    widest = lambda texts: max((cell_len(line) for t in texts for line in t.split("\n")), default=0)
    return max(widest(cells), min(widest([header]), HEADER_FOLD)) + COLUMN_EDGE


class PolicyBlocks:
    """The side-by-side table laid out at the console's width: one table when every policy's column fits at its
    natural width; else consecutive blocks of policies, each with the metric labels. Squeezing 50 policies into
    80 columns would print empty columns."""

    def __init__(self, c: Comparison) -> None:
        self.c = c
        rows = metric_rows(c)
        self.fixed = max(cell_len(label) for label, _ in rows) + COLUMN_EDGE + 1  # labels, and the right border
        self.widths = [_column_width([fmt(p) for _, fmt in rows], _header(c, p)) for p in c.policies]

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        blocks = _packed(self.widths, options.max_width - self.fixed)
        for i, block in enumerate(blocks):
            yield comparison_table(self.c, None if len(blocks) == 1 else block, i == 0, i == len(blocks) - 1)


def _packed(widths: Sequence[int], room: int) -> list[list[int]]:
    """Consecutive columns in blocks of at most ``room`` cells in all (at least one column each)."""
    blocks: list[list[int]] = [[]]
    used = 0
    for i, w in enumerate(widths):
        if blocks[-1] and used + w > room:
            blocks.append([])
            used = 0
        blocks[-1].append(i)
        used += w
    return blocks


MAX_CATEGORY_ROWS = 40  # the terminal's per-category table: beyond this many categories, the ones that matter


def shown_categories(c: Comparison, limit: int | None = None) -> list[int]:
    """Indices of the categories the terminal table shows, in worksheet order: all of them up to ``limit``; else
    the ones some policy misses (by traffic share), then the biggest of the rest. A table of thousands of rows
    is unreadable in a terminal and takes rich minutes to lay out."""
    first = c.policies[0]
    n = len(first.categories)
    limit = MAX_CATEGORY_ROWS if limit is None else limit
    if n <= limit:
        return list(range(n))
    missed = [any(not p.categories[i].ok for p in c.policies) for i in range(n)]
    order = sorted(range(n), key=lambda i: (not missed[i], -first.categories[i].share, i))
    return sorted(order[:limit])


def category_table(c: Comparison, policies: Sequence[int] | None = None) -> Table:
    """Per category: quality vs threshold and P95 vs budget under each policy (✗ marks a miss); ``policies``: only
    those (indices, in order), and the caption says so."""
    table = Table(
        title="Targets by category: quality (≥ threshold) · P95 latency (≤ budget)",
        title_justify="left",
        header_style="bold",
    )
    table.add_column("Category", style="bold", no_wrap=True)
    table.add_column("Share", justify="right")
    table.add_column("Target", justify="right")
    shown_policies = c.policies if policies is None else [c.policies[i] for i in policies]
    for p in shown_policies:
        table.add_column(Text(p.name), justify="right", overflow="fold")
    first = c.policies[0]
    shown = shown_categories(c)
    notes = []
    if len(shown) < len(first.categories):
        notes.append(
            f"showing {len(shown)} of {len(first.categories):,} categories: those some policy misses first, then by "
            "traffic share"
        )
    if len(shown_policies) < len(c.policies):
        notes.append(
            f"showing {len(shown_policies)} of {len(c.policies)} policies: the winner, the baseline and "
            f"{STRONGEST} first, then in order"
        )
    if notes:
        what = "category" if len(notes) == 1 and len(shown_policies) == len(c.policies) else "policy and category"
        table.caption = "; ".join(notes) + f" (--format json lists every {what})"
    for i in shown:
        cat = first.categories[i]
        cells = [_category_cell(p.categories[i]) for p in shown_policies]
        table.add_row(*literal(cat.category, pct(cat.share), _target(cat), *cells))
    return table


def _target(cat: CategoryResult) -> str:
    budget = f"{cat.budget_s:g} s" if cat.budget_s is not None else "none"
    return f"≥{cat.threshold:.0%} {budget}"


def _category_cell(r: CategoryResult) -> Text:
    mark = "✓" if r.ok else "✗"
    steps = "".join(f" · step {t.step + 1} {'✓' if t.ok else '✗'}{t.p95_s:.1f}/{t.target_s:g}s" for t in r.steps)
    p95 = "no draws" if math.isnan(r.p95_s) else f"{r.p95_s:.1f}s"  # NaN: Monte Carlo drew none of the category
    text = Text(f"{mark} {r.quality:.1%} {p95}{steps}")
    if not r.ok:
        text.stylize("red")
    return text


class CategoryColumns:
    """The per-category table at the console's width: every policy when their columns fit at their natural width,
    else as many as fit, the ones the decision rests on first (winner, baseline, all-to-strongest)."""

    def __init__(self, c: Comparison) -> None:
        self.c = c
        rows = shown_categories(c)
        first = c.policies[0].categories
        self.fixed = (
            _column_width([first[i].category for i in rows], "Category")
            + _column_width([pct(first[i].share) for i in rows], "Share")
            + _column_width([_target(first[i]) for i in rows], "Target")
            + 1  # the right border
        )
        self.widths = [_column_width([_category_cell(p.categories[i]).plain for i in rows], p.name) for p in c.policies]
        names = [p.name for p in c.policies]
        first_ones = [names.index(n) for n in (c.winner, c.baseline, STRONGEST) if n in names]
        self.order = list(dict.fromkeys(first_ones + list(range(len(names)))))

    def shown(self, width: int) -> list[int]:
        """The policies (indices, in order) whose columns fit ``width`` cells."""
        chosen: list[int] = []
        used = 0
        for i in self.order:
            if chosen and used + self.widths[i] > width - self.fixed:
                break
            chosen.append(i)
            used += self.widths[i]
        return sorted(chosen)

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        shown = self.shown(options.max_width)
        yield category_table(self.c, None if len(shown) == len(self.widths) else shown)


def verdict(c: Comparison) -> str:
    """One or two sentences: the answer to "what should we run?"."""
    w = c.winner_result
    if w is None:
        return (
            "[bold red]No winner:[/] no policy meets every category's quality threshold and P95 latency budget. "
            "Each policy's nearest miss:"
        )
    text = f"[bold green]Winner: {escape(w.name)}[/] — {money(w.monthly_cost, c.currency, '/month')}"
    if w.cost_change_monthly is not None and not w.is_baseline:
        verb = "saves" if w.cost_change_monthly <= 0 else "costs"
        text += (
            f", {verb} {money(abs(w.cost_change_monthly), c.currency, '/month')} "
            f"({abs(w.cost_change_pct or 0):.1f}%) {'vs' if verb == 'saves' else 'more than'} "
            f"{escape(c.baseline or '')}"
        )
    return text + "; meets every quality threshold and latency budget."


def footnote(c: Comparison) -> str:
    return (
        f"Means from the expected-value engine (exact under the model). Percentiles and P95 budget checks from "
        f"Monte Carlo: {count(c.samples)} requests, seed {c.seed}, histogram resolution ±{c.mc.hist_rel_error:.1%}. "
        f"1 month = {DAYS_PER_MONTH:.4f} days."
    )


def render_comparison(c: Comparison) -> Group:
    """Everything ``compare`` prints, as one rich renderable."""
    parts: list = [PolicyBlocks(c), CategoryColumns(c), Text.from_markup(verdict(c), emoji=False)]
    for p in c.policies:
        if not p.meets_targets:
            parts.append(Text.assemble(("  ✗", "red"), f" {p.name}: nearest miss {p.nearest_miss or ''}"))
    for w in c.warnings:
        parts.append(Text.assemble(("warning:", "yellow"), f" {w}"))
    for a in c.advisories:
        parts.append(Text.assemble(("advice:", "cyan"), f" {a}"))
    parts.append(Text(footnote(c), style="dim"))
    if c.prices is not None:
        parts.append(Text(c.prices.text, style="dim"))
    return Group(*parts)


def comparison_frame(c: Comparison, uncertainty: Uncertainty | None = None) -> Any:
    """``c.to_frame()`` (policies x metrics) with, given ``uncertainty``, its intervals and probabilities as
    further columns (``routecalc.report.risk.CSV_FIELDS``)."""
    from routecalc.report import risk

    frame = c.to_frame()
    if uncertainty is not None:
        values = [risk.csv_values(uncertainty, p.name) for p in c.policies]
        for j, name in enumerate(risk.CSV_FIELDS):
            frame[name] = [row[j] for row in values]
    return frame


TEXT_COLUMNS = ("policy", "description", "nearest_miss")


def comparison_csv(c: Comparison, uncertainty: Uncertainty | None = None) -> str:
    """One row per policy (``comparison_frame``): the columns of ``to_frame()``, money in the worksheet currency
    (the ``currency`` column), rates as fractions, cost changes as policy minus baseline (positive costs more).

    Text cells that a spreadsheet would run as a formula (``=``, ``+``, ``-``, ``@``, tab, CR first) start with
    ``'`` (see ``format.csv_cell``); numbers are written as numbers (shortest round-trip repr).
    """
    frame = comparison_frame(c, uncertainty).reset_index()
    for col in TEXT_COLUMNS:
        frame[col] = [csv_cell(v) if isinstance(v, str) else v for v in frame[col]]
    return frame.to_csv(index=False, lineterminator="\n")


CATEGORY_SHEETS = ("quality", "cost_per_request", "p95_s", "ok")


def comparison_xlsx(c: Comparison, uncertainty: Uncertainty | None = None) -> bytes:
    """An Excel workbook: ``policies`` (policies x metrics, as the CSV), one sheet per per-category metric
    (categories x policies: quality, cost per request, P95, targets met) and ``about`` (worksheet, currency,
    Monte Carlo settings, winner). Needs openpyxl (``pip install routecalc[xlsx]``); no cell is ever a formula."""
    import pandas as pd

    from routecalc.errors import InputError

    try:
        import openpyxl  # noqa: F401
    except ImportError:
        raise InputError("--format xlsx needs openpyxl: pip install 'routecalc[xlsx]'") from None
    facts = {
        "worksheet": c.worksheet,
        "currency": c.currency,
        "requests_per_month": c.requests_per_month,
        "baseline": c.baseline,
        "winner": c.winner,
        "winner_rule": c.winner_rule,
        "samples": c.samples,
        "seed": c.seed,
    }
    about = pd.DataFrame({"field": list(facts), "value": list(facts.values())})
    buf = io.BytesIO()
    with pd.ExcelWriter(buf, engine="openpyxl") as writer:
        comparison_frame(c, uncertainty).to_excel(writer, sheet_name="policies")
        for metric in CATEGORY_SHEETS:
            c.to_frame("category", metric).to_excel(writer, sheet_name=metric)
        about.to_excel(writer, sheet_name="about", index=False)
        for sheet in writer.book.worksheets:  # text such as "=cmd()" stays text: openpyxl reads "=..." as a formula
            for row in sheet.iter_rows():
                for cell in row:
                    if cell.data_type == "f":
                        cell.data_type = "s"
    return buf.getvalue()


def comparison_json(
    c: Comparison,
    uncertainty: Uncertainty | None = None,
    patterns: PatternEffects | None = None,
    checks: Sequence[CheckResult] = (),
) -> str:
    """The ``compare`` output document; with ``uncertainty``, its intervals and probabilities under
    ``"uncertainty"``; with ``patterns``, what classifiers and deadlines buy under ``"patterns"``; with
    ``checks`` (compare --expect ...), each check's verdict under ``"checks"``."""
    from routecalc.contract import dumps

    data = c.to_dict()
    if uncertainty is not None:
        data["uncertainty"] = uncertainty.to_dict()
    if patterns:
        data["patterns"] = patterns.to_dict()
    if checks:
        data["checks"] = [r.to_dict() for r in checks]
    return dumps("compare", data)
