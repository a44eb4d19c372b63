"""init, explain, examples and schema: a first worksheet, a number checked by hand, the published schemas."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.text import Text

from routecalc.cli.common import (
    SCHEMA_KINDS,
    ForceOpt,
    FromOpt,
    OutFileOpt,
    ScenarioOpt,
    SchemaKind,
    ShowFormat,
    WorksheetArg,
    app,
)
from routecalc.cli.support import (
    STDIN,
    _done,
    _emit,
    _load,
    _note,
    _stdin_text,
    _warn,
    console,
)
from routecalc.format import printable


@app.command()
def init(
    models: Annotated[
        str | None,
        typer.Option(
            "--models",
            "-m",
            help="Price-map keys, comma-separated (default: gpt-4.1-nano,gpt-4.1-mini,gpt-4.1).",
            show_default=False,
        ),
    ] = None,
    categories: Annotated[
        int, typer.Option("--categories", "-k", min=1, max=100, help="How many placeholder categories.")
    ] = 3,
    from_litellm: Annotated[
        Path | None,
        typer.Option(
            "--from-litellm",
            help="Start from a LiteLLM proxy config.yaml ('-': stdin): its models, prices, limits and fallbacks.",
            show_default=False,
        ),
    ] = None,
    example: Annotated[
        str | None,
        typer.Option("--example", help="Copy a shipped example instead (routecalc examples).", show_default=False),
    ] = None,
    from_: FromOpt = None,
    out: Annotated[
        Path | None, typer.Option("--out", "-o", help="Write the worksheet here (default: stdout).", show_default=False)
    ] = None,
    force: ForceOpt = False,
) -> None:
    """Write a commented starter worksheet: real prices and context windows from the price map, every guess
    marked GUESS. With --from-litellm, the catalog and a 'today' policy come from your LiteLLM proxy config
    (models, prices, rpm/tpm, timeouts, retries, fallbacks and aliases), so the baseline is what really runs."""
    from routecalc.errors import InputError, PriceSourceError
    from routecalc.outputs import check_new_file

    if out is not None:
        check_new_file(out, force)
    if sum(x is not None for x in (models, from_litellm, example)) > 1:
        raise InputError("give one of --models, --from-litellm, --example")
    if example is not None:
        from routecalc.examples import resolve

        text = resolve(f"example:{example}").read_text(encoding="utf-8")
        _emit(text, out)
        return
    from routecalc import init as starter_mod
    from routecalc.prices import load_price_map, price_source

    try:
        path, label = price_source(from_)
        price_map = load_price_map(path)
    except PriceSourceError as exc:
        if from_ is not None:
            raise
        price_map, label = None, "no price map"
        _warn([f"{exc}; prices are 0 placeholders (pip install 'routecalc[litellm]', or --from FILE)"], stderr=True)
    if from_litellm is not None:
        if str(from_litellm) == STDIN:
            config, source = _stdin_text("LiteLLM config"), "<stdin>"
        else:
            from routecalc.worksheet import read_text

            config, source = read_text(from_litellm), str(from_litellm)
        result = starter_mod.from_litellm(config, source, price_map, label)
    else:
        keys = [k.strip() for k in models.split(",") if k.strip()] if models is not None else None
        result = starter_mod.starter(keys, categories, price_map, label)
    _emit(result.text, out)
    for n in result.notes:
        _warn([n], stderr=True)
    _note("Every line marked GUESS is a placeholder: replace it, then run routecalc validate and routecalc compare.")


@app.command()
def explain(
    worksheet: WorksheetArg,
    policy: Annotated[str, typer.Option("--policy", "-p", help="The policy to work out.", show_default=False)],
    category: Annotated[str, typer.Option("--category", "-c", help="The category to work out.", show_default=False)],
    fmt: Annotated[ShowFormat, typer.Option("--format", "-f", help="Output format.")] = ShowFormat.table,
    scenario: ScenarioOpt = None,
) -> None:
    """Work out one policy in one category by hand: the chain, each step's reach, give-up, pass, accept and
    reject probabilities, and the arithmetic of the expected cost, quality and latency, next to the engine's
    numbers (routers: per lane with its share of the requests)."""
    from routecalc.explain import explain as run_explain
    from routecalc.report.explain import explanation_json, render_explanation

    ws = _load(worksheet, scenario or ())
    e = run_explain(ws, policy, category)
    if fmt is ShowFormat.json:
        sys.stdout.write(explanation_json(e) + "\n")
    else:
        console.print(render_explanation(e, console.width))


@app.command()
def examples(
    fmt: Annotated[ShowFormat, typer.Option("--format", "-f", help="Output format.")] = ShowFormat.table,
) -> None:
    """List the example worksheets shipped with routecalc: run one with routecalc compare example:NAME."""
    from routecalc.contract import dumps
    from routecalc.examples import list_examples

    found = list_examples()
    if fmt is ShowFormat.json:
        rows = [{"name": e.name, "title": e.title, "description": e.description, "path": str(e.path)} for e in found]
        sys.stdout.write(dumps("examples", {"examples": rows}) + "\n")
        return
    from rich.table import Table

    table = Table(box=None, show_header=False, pad_edge=False)
    table.add_column(style="bold", no_wrap=True)
    table.add_column()
    for e in found:
        table.add_row(Text(f"example:{e.name}"), Text(e.description or e.title))
    console.print(table)
    _note("Run one: routecalc compare example:support-triage · copy one: routecalc init --example NAME -o my.yaml")


@app.command()
def schema(
    output: Annotated[
        SchemaKind,
        typer.Option(
            "--output",
            help="Which schema: the worksheet's (default), or that of a command's JSON output: "
            + ", ".join(SCHEMA_KINDS[1:])
            + ".",
        ),
    ] = SchemaKind.worksheet,
    out: OutFileOpt = None,
    force: ForceOpt = False,
) -> None:
    """Print a JSON Schema: the worksheet's (for editor validation, e.g. yaml-language-server) or, with
    --output KIND, that of a command's --format json output (for CI and notebooks). The same files ship in the
    package: routecalc/schema/."""
    import json

    from routecalc.outputs import check_new_file, write_atomic

    if output.value == "worksheet":
        from routecalc.worksheet import json_schema

        data = json_schema()
    else:
        from routecalc.contract.schemas import output_schema

        data = output_schema(output.value)
    text = json.dumps(data, indent=2, ensure_ascii=False) + "\n"
    if out is None:
        sys.stdout.write(text)
        return
    check_new_file(out, force)
    write_atomic(out, text)
    _done(f"wrote {printable(str(out))}")
