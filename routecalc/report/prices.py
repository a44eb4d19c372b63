"""Tables for ``routecalc prices``: map entries (USD per 1M tokens) and what an update would change."""

from __future__ import annotations

from typing import Any

from rich.table import Table
from rich.text import Text

from routecalc.diff import UNIT_LABEL
from routecalc.format import money, printable, signed_pct
from routecalc.limits import short_repr
from routecalc.prices import PriceChange, long_threshold


def _per_1m(value: Any) -> str:
    return money(value * 1e6, "USD") if isinstance(value, int | float) else "—"


def price_table(rows: dict[str, dict[str, Any]], label: str) -> Table:
    """One row per price-map entry: provider, input/output/cache-read price per 1M tokens, context, mode."""
    table = Table(title=Text(f"{printable(label)} — USD per 1M tokens"), title_justify="left", header_style="bold")
    for h in ("Model", "Provider", "Input", "Output", "Cache read", "Context (tokens)", "Mode"):
        left = h in ("Model", "Provider", "Mode")
        table.add_column(h, justify="left" if left else "right", no_wrap=h == "Model", overflow="fold")
    for k, e in rows.items():
        ctx = e.get("max_input_tokens")
        table.add_row(
            *literal(
                k,
                _text(e.get("litellm_provider", "—")),
                _per_1m(e.get("input_cost_per_token")),
                _per_1m(e.get("output_cost_per_token")),
                _per_1m(e.get("cache_read_input_token_cost")),
                f"{ctx:,.0f}" if isinstance(ctx, int | float) else "—",
                _text(e.get("mode", "—")),
            )
        )
    return table


EXTRA_FIELDS = ("cache_creation_input_token_cost", "output_cost_per_reasoning_token", "input_cost_per_token_batches")


def extra_price_table(rows: dict[str, dict[str, Any]]) -> Table | None:
    """The entries' other prices routecalc reads: cache write, reasoning, batch and the lowest long-context tier
    (USD per 1M tokens); None when no entry has any."""
    shown = {
        k: e
        for k, e in rows.items()
        if any(f in e for f in (*EXTRA_FIELDS, "output_cost_per_token_batches")) or long_threshold(e) is not None
    }
    if not shown:
        return None
    table = Table(title=Text("More prices — USD per 1M tokens"), title_justify="left", header_style="bold")
    for h in ("Model", "Cache write", "Reasoning", "Batch in / out", "Long context: above, in / out"):
        table.add_column(h, justify="left" if h == "Model" else "right", no_wrap=h == "Model", overflow="fold")
    for k, e in shown.items():
        batch = f"{_per_1m(e.get('input_cost_per_token_batches'))} / {_per_1m(e.get('output_cost_per_token_batches'))}"
        tier = long_threshold(e)
        long = "—"
        if tier is not None:
            p_in = e.get(f"input_cost_per_token_above_{tier}k_tokens", e.get("input_cost_per_token"))
            p_out = e.get(f"output_cost_per_token_above_{tier}k_tokens", e.get("output_cost_per_token"))
            long = f"{tier * 1000:,} tokens: {_per_1m(p_in)} / {_per_1m(p_out)}"
        table.add_row(
            *literal(
                k,
                _per_1m(e.get("cache_creation_input_token_cost")),
                _per_1m(e.get("output_cost_per_reasoning_token")),
                batch,
                long,
            )
        )
    return table


def _text(value: Any) -> str:
    """A price-map string as a cell: any JSON value, cut short."""
    return short_repr(value, 40) if not isinstance(value, str) else value[:40]


def literal(*cells: str | Text) -> list[Text]:
    """Cells from a price map or worksheet: control characters escaped, no markup or emoji codes."""
    return [Text(printable(c if len(c) <= 200 else c[:199] + "…")) if isinstance(c, str) else c for c in cells]


def _value(field: str, v: float | None, currency: str) -> str:
    if v is None:
        return "none"
    if field in ("context_window", "long_context.above_tokens"):
        return f"{v:,.0f} tokens"
    return money(v, currency)


def changes_table(changes: list[PriceChange], currency: str, price_unit: str, label: str) -> Table:
    """Per model and field: the worksheet's value, the map's, and the change (only what differs)."""
    table = Table(
        title=Text(f"Price map: {printable(label)} — prices in {currency} {UNIT_LABEL[price_unit]}"),
        title_justify="left",
        header_style="bold",
    )
    for h in ("Model", "Map entry", "Field", "Worksheet", "Price map", "Change"):
        right = h in ("Worksheet", "Price map", "Change")
        table.add_column(h, justify="right" if right else "left", overflow="fold", no_wrap=h == "Field")
    for c in changes:
        rows = [(f, False) for f in c.fields] + [(f, True) for f in c.overridden]
        if rows:
            for i, (f, kept) in enumerate(rows):
                change: str | Text = signed_pct(f.pct) if f.pct is not None else ("new field" if f.old is None else "—")
                if kept:
                    change = Text(f"manual: kept ({change})", style="yellow")
                table.add_row(
                    *literal(
                        c.model if i == 0 else "",
                        (c.key or "") if i == 0 else "",
                        f.field,
                        _value(f.field, f.old, currency),
                        _value(f.field, f.new, currency),
                        change,
                    )
                )
        elif c.status == "unchanged":
            table.add_row(*literal(c.model, c.key or "", "", "", "", Text("unchanged", style="green")))
        else:
            what = "not in map" if c.status == "missing" else "no price"
            table.add_row(*literal(c.model, c.key or "—", "", "", "", Text(f"kept: {what}", style="yellow")))
    return table
