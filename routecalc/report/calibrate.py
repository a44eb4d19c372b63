"""The table ``routecalc calibrate evals -w`` prints: what calibration changes in a worksheet."""

from __future__ import annotations

from rich.table import Table

from routecalc.data.calibrate_yaml import Update
from routecalc.format import pct


def _rate(rate: float | None, counts: tuple[int, int] | None) -> str:
    if rate is None:
        return "—"
    text = pct(rate)
    return f"{text} ({counts[0]:,}/{counts[1]:,})" if counts is not None else text


def changes_table(update: Update) -> Table:
    """One row per change: pass rates (old -> new, with counts), outcome tables, token bands, latencies."""
    table = Table(title="Calibration: what changes in the worksheet", title_justify="left", header_style="bold")
    for h in ("Category / model", "Field", "Worksheet", "Eval file"):
        table.add_column(h, justify="right" if h in ("Worksheet", "Eval file") else "left", overflow="fold")
    for r in update.rates:
        if r.old == r.new and r.old_counts == r.new_counts:
            continue
        table.add_row(f"{r.category} / {r.model}", "pass rate", _rate(r.old, r.old_counts), _rate(r.new, r.new_counts))
    for cat, what, note in update.tables:
        table.add_row(cat, "outcome table", "—" if what == "added" else "given", f"{what}: {note}")
    for cat, key, old, new in update.bands:
        table.add_row(cat, f"{key} (tokens)", old, new)
    for model, old, new in update.latencies:
        table.add_row(model, "latency (s)", old, new)
    if not table.rows:
        table.add_row("(nothing)", "", "", "")
    return table
