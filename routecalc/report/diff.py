"""Render a WorksheetDiff: a rich screen for the terminal, JSON for machines, a Markdown section for reports."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from rich import box
from rich.console import Group
from rich.table import Table
from rich.text import Text

from routecalc.diff import MAX_MOVERS, UNIT_LABEL, InputEffect, PolicyDelta, WorksheetDiff
from routecalc.format import count, money, pct, printable, seconds, signed_money, signed_pct
from routecalc.results import STALE_AFTER_DAYS


def _arrow(a: str, b: str) -> str:
    return a if a == b else f"{a} → {b}"


def _targets(v: bool | None) -> str:
    return "—" if v is None else ("✓" if v else "✗")


def _cells(d: WorksheetDiff, p: PolicyDelta) -> list[str]:
    """Table cells of one policy: before → after (one value when equal), change in money and %."""
    cur = d.currency
    p95 = _arrow(seconds(p.p95_before_s), seconds(p.p95_after_s))
    if p.p95_is_noise:
        p95 += " ≈"
    change = "—"
    if p.change_monthly is not None:
        change = f"{signed_money(p.change_monthly, cur)} ({signed_pct(p.change_pct)})"
    return [
        _arrow(money(p.monthly_before, cur), money(p.monthly_after, cur)),
        change,
        "—"
        if p.name == d.baseline_after == d.baseline_before
        else _arrow(_signed(p.vs_baseline_before, cur), _signed(p.vs_baseline_after, cur)),
        _arrow(pct(p.quality_before, 2), pct(p.quality_after, 2)),
        p95,
        _arrow(_targets(p.meets_before), _targets(p.meets_after)),
    ]


def _signed(v: float | None, cur: str) -> str:
    return "n/a" if v is None else signed_money(v, cur)


def _policy_label(d: WorksheetDiff, name: str) -> str:
    if name == d.winner_after:
        return f"{name} ★"
    if name == d.winner_before:
        return f"{name} ☆"
    return name


def _headers(d: WorksheetDiff) -> list[str]:
    """Short headers (one screen); money cells carry the currency, the title says it is per month."""
    base = d.baseline_after or "baseline"
    return ["Policy", "Monthly cost", "Change /month", f"vs {base} /month", "Quality", "P95", "Targets"]


def _effect_cell(d: WorksheetDiff, m: InputEffect, policy: str) -> str:
    if not m.attributed:
        return "not attributed"
    c, q = m.cost_effect.get(policy), m.quality_effect.get(policy, 0.0)
    if c is None:
        return "—"
    parts = ["no cost change" if abs(c) < 0.005 else signed_money(c, d.currency, "/mo")]
    if abs(q) >= 5e-5:
        parts.append(f"{q * 100:+.2f} pp quality")
    return ", ".join(parts)


def _mover_rows(d: WorksheetDiff, limit: int | None = MAX_MOVERS) -> list[list[str]]:
    shown = d.movers if limit is None else d.movers[:limit]
    return [[m.input, *(_effect_cell(d, m, n) for n in d.focus), m.detail] for m in shown]


def _interaction_row(d: WorksheetDiff) -> list[str] | None:
    if not any(abs(v) >= 0.01 for v in d.interaction.values()):
        return None
    cells = [signed_money(d.interaction.get(n, 0.0), d.currency, "/mo") for n in d.focus]
    return ["interaction", *cells, "what the one-at-a-time effects do not add up to"]


_PRICE_COLUMNS = (
    ("price_in", "Input"),
    ("price_out", "Output"),
    ("price_cache", "Cache read"),
    ("price_cache_write", "Cache write"),
    ("price_reasoning", "Reasoning"),
    ("price_in_batch", "Batch input"),
    ("price_out_batch", "Batch output"),
    ("long_context.above_tokens", "Long context above"),
    ("long_context.price_in", "Long input"),
    ("long_context.price_out", "Long output"),
    ("long_context.price_cache", "Long cache read"),
    ("long_context.price_cache_write", "Long cache write"),
)
_TOKEN_FIELDS = ("context_window", "long_context.above_tokens")


def _price_columns(d: WorksheetDiff) -> list[tuple[str, str]]:
    """The price-table columns that have at least one change."""
    present = {f.field for c in d.price_changes for f in c.fields}
    return [c for c in (*_PRICE_COLUMNS, ("context_window", "Context window")) if c[0] in present]


def _price_rows(d: WorksheetDiff) -> list[list[str]]:
    rows = []
    for c in d.price_changes:
        cells = [c.model]
        for fld, _ in _price_columns(d):
            f = next((x for x in c.fields if x.field == fld), None)
            if f is None:
                cells.append("")
            elif fld in _TOKEN_FIELDS:
                cells.append(f"{_tokens(f.old)} → {_tokens(f.new)}")
            else:
                text = f"{_fmt_opt_money(f.old, d.currency)} → {_fmt_opt_money(f.new, d.currency)}"
                if f.pct is not None:
                    text += f" ({signed_pct(f.pct, 0)})"
                cells.append(text)
        rows.append(cells)
    return rows


def _fmt_opt_money(v: float | None, cur: str) -> str:
    return "none" if v is None else money(v, cur)


def _tokens(v: float | None) -> str:
    return "none" if v is None else f"{v:,.0f} tokens"


def _footnote(d: WorksheetDiff) -> str:
    return (
        f"★ = winner, ☆ = winner before (cheapest policy meeting every target). Changes are after minus before, or policy minus baseline: + costs more, - saves. "
        "Costs and quality: expected-value engine "
        f"(exact under the model). P95: Monte Carlo, the same {count(d.samples)} requests and seed {d.seed} on both "
        f"sides (common random numbers); changes marked ≈ are below its resolution (one histogram bin, "
        f"{d.hist_rel_error:.1%}, plus the P95's 95% CI) and are noise. Inputs: one changed at a time from the old worksheet."
    )


def _title(d: WorksheetDiff) -> str:
    vol = count(d.requests_per_month_after)
    if d.requests_per_month_after != d.requests_per_month_before:
        vol = f"{count(d.requests_per_month_before)} → {vol}"
    return (
        f"Re-estimate of {d.worksheet}: {d.old_label} → {d.new_label} ({vol} requests/month; money in {d.currency}, "
        "costs and cost changes per month)"
    )


def _stale_lines(d: WorksheetDiff) -> list[str]:
    return [
        f"{s.name}: pass rates last reviewed {s.last_reviewed.isoformat()} ({s.age_days} days ago, > "
        f"{STALE_AFTER_DAYS}); re-run its evals before trusting this decision."
        for s in d.stale
    ]


def _table(title: str | None = None) -> Table:
    return Table(
        title=Text(title) if title is not None else None, title_justify="left", header_style="bold", box=box.SIMPLE_HEAD
    )


NARROW = 100  # below this many columns the vs-baseline column is left out of the table (it stays in JSON/Markdown)


def render_diff(d: WorksheetDiff, width: int | None = None) -> Group:
    """Everything ``routecalc diff`` prints, as one rich renderable: verdict first, sized for one screen
    of ``width`` columns (narrower than 100: without the vs-baseline column)."""
    parts: list[Any] = [Text(printable(_title(d)), style="bold")]
    for i, r in enumerate(d.reasons):
        parts.append(Text(r, style=("bold yellow" if d.flips else "bold green") if i == 0 else ""))
    table = _table()
    keep = [i for i in range(len(_headers(d))) if not (width is not None and width < NARROW and i == 3)]
    for i in keep:
        table.add_column(Text(_headers(d)[i]), justify="left" if i == 0 else "right", no_wrap=i == 0)
    for p in d.policies:
        style = "bold" if p.name == d.winner_after else None
        cells = [_policy_label(d, p.name), *_cells(d, p)]
        table.add_row(*(Text(cells[i]) for i in keep), style=style)
    parts.append(table)
    if d.movers:
        movers = _table(f"What moved, one input at a time ({d.currency}/month, expected values)")
        movers.add_column("Input", no_wrap=True)
        for n in d.focus:
            movers.add_column(Text(f"on {n}"), justify="right")
        movers.add_column("Change", ratio=1)
        for row in _mover_rows(d):
            movers.add_row(*map(Text, row))
        if (row := _interaction_row(d)) is not None:
            movers.add_row(*map(Text, row), style="dim")
        if len(d.movers) > MAX_MOVERS:
            movers.caption = f"{len(d.movers) - MAX_MOVERS} more input(s) in --format json or md"
        parts.append(movers)
    if d.price_changes:
        prices = _table(f"Prices changed ({d.currency} {UNIT_LABEL[d.price_unit]})")
        prices.add_column("Model", no_wrap=True)
        for _, h in _price_columns(d):
            prices.add_column(h, justify="right")
        for row in _price_rows(d):
            prices.add_row(*map(Text, row))
        parts.append(prices)
    for line in _stale_lines(d):
        parts.append(Text.assemble(("stale:", "yellow"), f" {line}"))
    for w in d.warnings:
        parts.append(Text.assemble(("warning:", "yellow"), f" {printable(w)}"))
    parts.append(Text(_footnote(d), style="dim"))
    parts += [Text(printable(line), style="dim") for line in _price_sources(d)]
    return Group(*parts)


def _price_sources(d: WorksheetDiff) -> list[str]:
    """Where each side's prices come from: one line when both sides agree, else one per side."""
    texts = [p.detail if p is not None else None for p in (d.prices_before, d.prices_after)]
    if texts[0] == texts[1]:
        return [f"Prices: {texts[1]}"] if texts[1] else []
    return [f"Prices {side}: {t}" for side, t in zip(("before", "after"), texts, strict=True) if t]


def diff_json(d: WorksheetDiff) -> str:
    """The ``diff`` output document."""
    from routecalc.contract import dumps

    return dumps("diff", d.to_dict())


def _md_row(cells: Sequence[str]) -> str:
    return "| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |"


def diff_markdown(d: WorksheetDiff, level: int = 2) -> str:
    """A self-contained Markdown section ("Monthly re-estimate") a report can include as is."""
    h = "#" * level
    lines = [f"{h} Monthly re-estimate", "", f"{_title(d)}.", ""]
    lines += [f"- **{r}**" if i == 0 else f"- {r}" for i, r in enumerate(d.reasons)]
    head = _headers(d)
    lines += ["", _md_row(head), "|---|" + "---:|" * (len(head) - 1)]
    lines += [_md_row([_policy_label(d, p.name), *_cells(d, p)]) for p in d.policies]
    if d.movers:
        lines += [
            "",
            f"{h}# What moved",
            "",
            f"One input changed at a time from the old worksheet; {d.currency}/month, expected values.",
            "",
        ]
        lines += [
            _md_row(["Input", *(f"on {n}" for n in d.focus), "Change"]),
            "|---|" + "---:|" * len(d.focus) + "---|",
        ]
        lines += [_md_row(r) for r in _mover_rows(d, limit=None)]
        if (row := _interaction_row(d)) is not None:
            lines.append(_md_row(row))
    if d.price_changes:
        cols = _price_columns(d)
        lines += ["", f"{h}# Prices changed ({d.currency} {UNIT_LABEL[d.price_unit]})", ""]
        lines += [_md_row(["Model", *(c[1] for c in cols)]), "|---|" + "---:|" * len(cols)]
        lines += [_md_row(r) for r in _price_rows(d)]
    notes = [f"Stale: {s}" for s in _stale_lines(d)] + [f"Warning: {w}" for w in d.warnings]
    if notes:
        lines += [""] + [f"- {n}" for n in notes]
    lines += ["", f"_{_footnote(d)}_", ""]
    lines += [f"_{line}_" for line in _price_sources(d)] + ([""] if _price_sources(d) else [])
    return "\n".join(lines)
