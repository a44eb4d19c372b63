"""``routecalc export``: write one policy as a LiteLLM, Portkey or routecalc JSON router config."""

from __future__ import annotations

import sys
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from routecalc.cli import SamplesOpt, ScenarioOpt, SeedOpt, WorksheetArg, console, err_console


class Target(StrEnum):
    litellm = "litellm"
    portkey = "portkey"
    json = "json"


def export(
    worksheet: WorksheetArg,
    target: Annotated[
        Target,
        typer.Option("--target", "-t", help="litellm (proxy config.yaml), portkey (gateway config JSON) or json."),
    ],
    policy: Annotated[
        str, typer.Option("--policy", "-p", help="Policy name, or 'winner' (cheapest meeting every target).")
    ] = "winner",
    out: Annotated[
        Path | None, typer.Option("--out", "-o", help="Write here (atomically) instead of stdout.", show_default=False)
    ] = None,
    force: Annotated[bool, typer.Option("--force", help="Overwrite an existing --out file.")] = False,
    samples: SamplesOpt = 200_000,
    seed: SeedOpt = 0,
    scenario: ScenarioOpt = None,
) -> None:
    """Export a policy of WORKSHEET as a router config (validated: no unknown groups, no cycles, short chains).

    The estimate runs first (for 'winner' and for the expected metrics in the file). Without --out the config
    goes to stdout; warnings (e.g. quality gates the router cannot enforce) always go to stderr.
    """
    from routecalc.export import export_policy
    from routecalc.export.plan import Source
    from routecalc.outputs import check_new_file, write_atomic
    from routecalc.results import compare
    from routecalc.worksheet import file_sha256, load_worksheet

    if out is not None:
        check_new_file(out, force)  # refuse before spending time on the estimate
    scenarios = scenario or ()
    ws = load_worksheet(worksheet, scenarios)
    source = Source(str(worksheet), file_sha256(worksheet), tuple((str(s), file_sha256(s)) for s in scenarios))
    comparison = compare(ws, samples=samples, seed=seed)
    result = export_policy(ws, comparison, policy, target.value, source)
    for w in result.warnings:
        err_console.print(f"[yellow]warning:[/] {w}", highlight=False)
    if out is None:
        sys.stdout.write(result.text)
        return
    write_atomic(out, result.text)
    console.print(f"wrote {out} ({result.target}, policy {result.policy})", highlight=False)
