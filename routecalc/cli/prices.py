"""prices show, prices update and diff: the price map and the monthly re-estimate."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from routecalc.cli.common import (
    DiffFormat,
    FromOpt,
    RateOpt,
    SamplesOpt,
    ScenarioOpt,
    SeedOpt,
    ShowFormat,
    TodayOpt,
    WorksheetArg,
    _today,
    app,
    prices_app,
)
from routecalc.cli.support import (
    _done,
    _editable,
    _label,
    _lit,
    _load,
    _progress,
    _warn,
    console,
    err_console,
)
from routecalc.format import printable


@prices_app.command("show")
def prices_show(
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
    from routecalc.errors import InputError
    from routecalc.prices import SHOW_FIELDS, load_price_map, map_keys, price_source, search
    from routecalc.report.prices import extra_price_table, price_table

    path, label = price_source(from_)
    pm = load_price_map(path)
    if not models:
        console.print(
            f"{printable(label)}: {printable(str(path))}\n{len(pm):,} models. Show some with: routecalc prices show "
            "MODEL...",
            highlight=False,
        )
        return
    rows, missing, notes = search(pm, models)
    for note in notes:
        err_console.print(f"[yellow]note:[/] {_lit(note)}", markup=True, highlight=False)
    if not rows:
        raise InputError(f"not in the price map ({label}): {', '.join(missing)}")
    if fmt is ShowFormat.json:
        from routecalc.contract import dumps

        shown = lambda e: [*SHOW_FIELDS, *(key for f, key in map_keys(e).items() if f.startswith("long_context."))]
        out = {k: {f: e[f] for f in shown(e) if f in e} for k, e in rows.items()}
        sys.stdout.write(dumps("prices", {"source": str(path), "currency": "USD", "models": out}) + "\n")
    else:
        console.print(price_table(rows, label))
        extra = extra_price_table(rows)
        if extra is not None:
            console.print(extra)
    _warn([f"{q!r} is not in the price map" for q in missing], stderr=True)


@prices_app.command("update")
def prices_update(
    worksheet: WorksheetArg,
    from_: FromOpt = None,
    out: Annotated[
        Path | None, typer.Option("--out", "-o", help="Write the updated worksheet here.", show_default=False)
    ] = None,
    in_place: Annotated[bool, typer.Option("--in-place", help="Rewrite WORKSHEET itself (atomically).")] = False,
    force: Annotated[bool, typer.Option("--force", help="Overwrite an existing --out file.")] = False,
    rate: RateOpt = None,
    today: Annotated[
        str | None,
        typer.Option("--today", help="Date recorded in prices_from, YYYY-MM-DD (default: today).", show_default=False),
    ] = None,
) -> None:
    """Refresh WORKSHEET's prices and context windows from a LiteLLM price map; show what changes first.

    Without --out or --in-place this is a dry run: nothing is written. Only the changed values are edited;
    comments and layout stay as they are; prices_from records the map, its version and the date. A model
    missing from the map keeps its prices (with a warning); one marked price_source: manual keeps its prices
    (shown as overridden). Map fields the estimate does not use are listed.
    """
    from routecalc.errors import InputError
    from routecalc.examples import is_example
    from routecalc.outputs import check_new_file, write_atomic
    from routecalc.prices import (
        is_bundled,
        load_price_map,
        missing_summary,
        plan_update,
        price_source,
        source_record,
        unused_summary,
    )
    from routecalc.report.prices import changes_table

    if out is not None and in_place:
        raise InputError("give either --out W2 or --in-place, not both")
    if in_place and is_example(str(worksheet)):
        raise InputError("--in-place would rewrite a shipped example: give --out W2")
    file = _editable(worksheet, "prices update")
    ws = _load(file)
    path, label = price_source(from_)
    target = out if out is not None else (file if in_place else None)
    record = source_record(from_, _today(today))
    update = plan_update(file, ws, load_price_map(path), rate, target, record)
    missing = missing_summary(update.changes, label, is_bundled(from_))
    if missing:
        console.print(f"[bold yellow]{_lit(missing)}[/]", markup=True, highlight=False)
    console.print(changes_table(update.changes, ws.currency, ws.price_unit, label))
    _warn(update.warnings)
    unused = unused_summary(update.changes)
    if unused:
        console.print(f"[cyan]note:[/] {_lit(unused)}", markup=True, highlight=False)
    if target is None:
        console.print(
            f"dry run: {update.n_values} value(s) would change (and prices_from: {record['source']} {record['version']}, "
            f"{record['date'].isoformat()}); nothing written. Use --out W2 (or --in-place) to write.",
            highlight=False,
        )
        return
    if out is not None:
        check_new_file(out, force)
    write_atomic(target, update.text)
    _done(
        f"wrote {printable(str(target))} ({update.n_values} value(s) changed; prices_from: {record['source']} "
        f"{record['version']}, {record['date'].isoformat()})"
    )


@app.command()
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
    from routecalc.diff import diff_comparisons
    from routecalc.errors import InputError
    from routecalc.prices import reprice
    from routecalc.report.diff import diff_json, diff_markdown, render_diff
    from routecalc.results import compare as run_compare

    if new is None and prices is None and not scenario:
        raise InputError("nothing to compare: give NEW, --prices FILE or --scenario FILE")
    day = _today(today)
    old_ws = _load(old)
    new_ws = _load(new or old, scenario or ())
    parts = [str(new)] if new is not None else []
    parts += [f"scenario {s}" for s in scenario or ()]
    notes: list[str] = []
    if prices is not None:
        new_ws, notes, label = reprice(new_ws, prices, rate, today=day)
        parts.append(f"prices from {label}")
    before = run_compare(old_ws, samples=samples, seed=seed, today=day, progress=_progress("before"))
    after = run_compare(new_ws, samples=samples, seed=seed, today=day, progress=_progress("after"))
    d = diff_comparisons(
        before, after, old_ws, new_ws, day, old_label=_label(old), new_label=" + ".join(parts), warnings=notes
    )
    if fmt is DiffFormat.json:
        sys.stdout.write(diff_json(d) + "\n")
    elif fmt is DiffFormat.md:
        sys.stdout.write(diff_markdown(d))
    else:
        console.print(render_diff(d, width=console.width))
