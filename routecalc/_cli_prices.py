"""``routecalc prices show|update`` and ``routecalc diff``: refresh prices from a LiteLLM price map and re-estimate.

Registered on the main app at the end of ``routecalc.cli`` (import that module, not this one, first).
"""

from __future__ import annotations

import sys
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table

from routecalc.cli import SamplesOpt, ScenarioOpt, SeedOpt, TodayOpt, WorksheetArg, _today, console

if TYPE_CHECKING:
    from routecalc.prices import PriceChange

BUNDLED = "bundled"  # --prices bundled: the litellm package's own copy

prices_app = typer.Typer(
    help="Read model prices and context windows from a LiteLLM price map (model_prices_and_context_window.json).",
    no_args_is_help=True,
    rich_markup_mode="rich",
)

FromOpt = Annotated[
    Path | None,
    typer.Option(
        "--from",
        help="A LiteLLM-format price map JSON (e.g. a newer download). Default: the copy bundled with litellm.",
        show_default=False,
    ),
]
RateOpt = Annotated[
    float | None,
    typer.Option(
        "--rate",
        help="Exchange rate for a non-USD worksheet: 1 USD = RATE worksheet currency (LiteLLM prices are USD).",
        show_default=False,
    ),
]


class ShowFormat(StrEnum):
    table = "table"
    json = "json"


class DiffFormat(StrEnum):
    table = "table"
    json = "json"
    md = "md"


def _source(path: Path | None) -> tuple[Path, str]:
    """The price map to read and a label saying where it came from."""
    from routecalc.prices import bundled_litellm_version, find_bundled_price_map

    if path is not None and str(path) != BUNDLED:
        return path, str(path)
    found = find_bundled_price_map()
    version = bundled_litellm_version()
    return found, f"litellm {version or '(unknown version)'} bundled map"


def _per_1m(value: Any) -> str:
    from routecalc.report.format import money

    return money(value * 1e6, "USD") if isinstance(value, int | float) else "—"


@prices_app.command("show")
def show(
    models: Annotated[
        list[str] | None,
        typer.Argument(help="Model keys or parts of them (e.g. gpt-4.1-mini, anthropic/claude).", show_default=False),
    ] = None,
    from_: FromOpt = None,
    fmt: Annotated[ShowFormat, typer.Option("--format", "-f", help="Output format.")] = ShowFormat.table,
) -> None:
    """Show prices (USD per 1M tokens) and context windows from the price map for MODEL... .

    A MODEL that is not a key lists the keys containing it. Without MODEL, shows where the map is and its size.
    """
    import json

    from routecalc.errors import InputError
    from routecalc.prices import load_price_map

    path, label = _source(from_)
    pm = load_price_map(path)
    if not models:
        console.print(f"{label}: {path}\n{len(pm):,} models. Show some with: routecalc prices show MODEL...")
        return
    rows: dict[str, dict[str, Any]] = {}
    missing = []
    limit = 25
    for query in models:
        if query in pm:
            rows[query] = pm[query]
            continue
        hits = sorted((k for k in pm if query.lower() in k.lower()), key=lambda k: (len(k), k))
        if not hits:
            missing.append(query)
        for k in hits[:limit]:
            rows[k] = pm[k]
        if len(hits) > limit:
            console.print(f"[yellow]note:[/] {len(hits)} keys contain {query!r}; showing the {limit} shortest.")
    if not rows:
        raise InputError(f"not in the price map ({label}): {', '.join(missing)}")
    if fmt is ShowFormat.json:
        keep = ("litellm_provider", "mode", "input_cost_per_token", "output_cost_per_token")
        keep += ("cache_read_input_token_cost", "max_input_tokens", "max_output_tokens")
        out = {k: {f: e[f] for f in keep if f in e} for k, e in rows.items()}
        sys.stdout.write(json.dumps({"source": str(path), "currency": "USD", "models": out}, indent=2) + "\n")
    else:
        table = Table(title=f"{label} — USD per 1M tokens", title_justify="left", header_style="bold")
        for h in ("Model", "Provider", "Input", "Output", "Cache read", "Context (tokens)", "Mode"):
            left = h in ("Model", "Provider", "Mode")
            table.add_column(h, justify="left" if left else "right", no_wrap=h == "Model", overflow="fold")
        for k, e in rows.items():
            ctx = e.get("max_input_tokens")
            table.add_row(
                k,
                str(e.get("litellm_provider", "—")),
                _per_1m(e.get("input_cost_per_token")),
                _per_1m(e.get("output_cost_per_token")),
                _per_1m(e.get("cache_read_input_token_cost")),
                f"{ctx:,.0f}" if isinstance(ctx, int | float) else "—",
                str(e.get("mode", "—")),
            )
        console.print(table)
    for q in missing:
        console.print(f"[yellow]warning:[/] {q!r} is not in the price map", highlight=False)


def _value(field: str, v: float | int | None, currency: str) -> str:
    from routecalc.report.format import money

    if v is None:
        return "none"
    if field == "context_window":
        return f"{v:,.0f} tokens"
    return money(v, currency)


def changes_table(changes: list[PriceChange], currency: str, price_unit: str, label: str) -> Table:
    """Per model and field: the worksheet's value, the map's, and the change (only what differs)."""
    from routecalc.diff import UNIT_LABEL
    from routecalc.report.format import signed_pct

    table = Table(
        title=f"Price map: {label} — prices in {currency} {UNIT_LABEL[price_unit]}",
        title_justify="left",
        header_style="bold",
    )
    for h in ("Model", "Map entry", "Field", "Worksheet", "Price map", "Change"):
        right = h in ("Worksheet", "Price map", "Change")
        table.add_column(h, justify="right" if right else "left", overflow="fold", no_wrap=h == "Field")
    for c in changes:
        if c.status == "changed":
            for i, f in enumerate(c.fields):
                change = signed_pct(f.pct) if f.pct is not None else ("new field" if f.old is None else "—")
                table.add_row(
                    c.model if i == 0 else "",
                    (c.key or "") if i == 0 else "",
                    f.field,
                    _value(f.field, f.old, currency),
                    _value(f.field, f.new, currency),
                    change,
                )
        elif c.status == "unchanged":
            table.add_row(c.model, c.key or "", "", "", "", "[green]unchanged[/]")
        else:
            what = "not in map" if c.status == "missing" else "no price"
            table.add_row(c.model, c.key or "—", "", "", "", f"[yellow]kept: {what}[/]")
    return table


@prices_app.command("update")
def update(
    worksheet: WorksheetArg,
    from_: FromOpt = None,
    out: Annotated[
        Path | None, typer.Option("--out", "-o", help="Write the updated worksheet here.", show_default=False)
    ] = None,
    in_place: Annotated[bool, typer.Option("--in-place", help="Rewrite WORKSHEET itself (atomically).")] = False,
    force: Annotated[bool, typer.Option("--force", help="Overwrite an existing --out file.")] = False,
    rate: RateOpt = None,
) -> None:
    """Refresh WORKSHEET's prices and context windows from a LiteLLM price map; show what changes first.

    Without --out or --in-place this is a dry run: nothing is written. Only the changed values are edited;
    comments and layout stay as they are. A model missing from the map keeps its prices (with a warning).
    """
    from routecalc.errors import InputError
    from routecalc.outputs import check_new_file, write_atomic
    from routecalc.prices import load_price_map, price_updates, update_worksheet_text, warnings
    from routecalc.worksheet import load_worksheet, parse_yaml, validate_worksheet

    if out is not None and in_place:
        raise InputError("give either --out W2 or --in-place, not both")
    ws = load_worksheet(worksheet)
    text = worksheet.read_bytes().decode("utf-8")  # bytes: keep the file's own line endings
    path, label = _source(from_)
    changes = price_updates(ws, load_price_map(path), rate)
    console.print(changes_table(changes, ws.currency, ws.price_unit, label))
    for w in warnings(changes):
        console.print(f"[yellow]warning:[/] {w}", highlight=False)
    n = sum(len(c.fields) for c in changes)
    target = out if out is not None else (worksheet if in_place else None)
    new_text = update_worksheet_text(text, changes, str(worksheet))
    check_path = target or worksheet
    validate_worksheet(parse_yaml(new_text, str(check_path)), str(check_path), base_dir=check_path.parent)
    if target is None:
        console.print(
            f"dry run: {n} value(s) would change; nothing written. Use --out W2 (or --in-place) to write.",
            highlight=False,
        )
        return
    if out is not None:
        check_new_file(out, force)
    write_atomic(target, new_text)
    console.print(f"wrote {target} ({n} value(s) changed)", highlight=False)


def diff(
    old: Annotated[Path, typer.Argument(help="The worksheet as it was (last month's).", show_default=False)],
    new: Annotated[
        Path | None,
        typer.Argument(
            help="The worksheet as it is now. Default: OLD with --prices/--scenario applied.", show_default=False
        ),
    ] = None,
    prices: Annotated[
        Path | None,
        typer.Option(
            "--prices",
            help="Re-price NEW (or OLD) from this LiteLLM price map; 'bundled' = the installed litellm's copy.",
            show_default=False,
        ),
    ] = None,
    rate: RateOpt = None,
    scenario: ScenarioOpt = None,
    samples: SamplesOpt = 200_000,
    seed: SeedOpt = 0,
    fmt: Annotated[DiffFormat, typer.Option("--format", "-f", help="Output format.")] = DiffFormat.table,
    today: TodayOpt = None,
) -> None:
    """Re-estimate: what moving from OLD to NEW (or to new prices) does to each policy and to the winner.

    Per policy: monthly cost, savings, quality and P95 before and after; whether the winner flips and which
    inputs moved it most; stale categories; changed prices. Both sides use the same Monte Carlo seed and
    samples, so differences are not sampling noise.
    """
    from routecalc import prices as pr
    from routecalc.diff import diff_comparisons, diff_json, diff_markdown, render_diff
    from routecalc.errors import InputError
    from routecalc.results import compare
    from routecalc.worksheet import load_worksheet

    if new is None and prices is None and not scenario:
        raise InputError("nothing to compare: give NEW, --prices FILE or --scenario FILE")
    day = _today(today)
    old_ws = load_worksheet(old)
    new_ws = load_worksheet(new or old, scenario or ())
    parts = [str(new)] if new is not None else []
    parts += [f"scenario {s}" for s in scenario or ()]
    notes: list[str] = []
    if prices is not None:
        path, label = _source(prices)
        changes = pr.price_updates(new_ws, pr.load_price_map(path), rate)
        new_ws = pr.apply_changes(new_ws, changes)
        notes += pr.warnings(changes)
        parts.append(f"prices from {label}")
    before = compare(old_ws, samples=samples, seed=seed, today=day)
    after = compare(new_ws, samples=samples, seed=seed, today=day)
    d = diff_comparisons(
        before, after, old_ws, new_ws, day, old_label=str(old), new_label=" + ".join(parts), warnings=notes
    )
    if fmt is DiffFormat.json:
        sys.stdout.write(diff_json(d) + "\n")
    elif fmt is DiffFormat.md:
        sys.stdout.write(diff_markdown(d))
    else:
        console.print(render_diff(d, width=console.width))
