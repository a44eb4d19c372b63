"""calibrate evals, calibrate logs, backtest and replay: worksheets grounded in eval results and request logs."""

from __future__ import annotations

import sys
from dataclasses import replace
from pathlib import Path
from typing import Annotated, Any

import typer

from routecalc.cli.common import (
    EvalFormat,
    EvalLayout,
    ForceOpt,
    JointMode,
    LogShape,
    SeedOpt,
    ShowFormat,
    app,
    calibrate_app,
)
from routecalc.cli.support import (
    _done,
    _editable,
    _load,
    _read_ws,
    _warn,
    console,
    err_console,
)
from routecalc.format import printable


def _write_new(text: str, out: Path | None, say: Any, note: str) -> None:
    """A new worksheet to ``out`` (atomically) or stdout, then what in it is a guess."""
    from routecalc.outputs import write_atomic

    if out is None:
        sys.stdout.write(text)
    else:
        write_atomic(out, text)
        _done(f"wrote {printable(str(out))}")
    say.print(note, highlight=False)


@calibrate_app.command("evals")
def calibrate_evals(
    file: Annotated[
        Path, typer.Argument(help="Eval results: CSV, TSV, JSONL or Parquet (README: Eval files).", show_default=False)
    ],
    worksheet: Annotated[
        Path | None,
        typer.Option(
            "--worksheet", "-w", help="Update this worksheet (dry run unless --out or --in-place).", show_default=False
        ),
    ] = None,
    out: Annotated[
        Path | None, typer.Option("--out", "-o", help="Write the worksheet here (atomically).", show_default=False)
    ] = None,
    in_place: Annotated[bool, typer.Option("--in-place", help="Rewrite the -w worksheet itself.")] = False,
    model_map: Annotated[
        str | None,
        typer.Option(
            "--model-map", help="Eval model name = catalog model name, comma-separated: a=b,c=d.", show_default=False
        ),
    ] = None,
    columns: Annotated[
        str | None,
        typer.Option(
            "--columns",
            help="Column names for roles, comma-separated: prompt_id=id,category=subject,passed=correct ...",
            show_default=False,
        ),
    ] = None,
    layout: Annotated[
        EvalLayout, typer.Option("--layout", help="long (a model column) or wide (a column per model).")
    ] = EvalLayout.auto,
    fmt: Annotated[
        EvalFormat, typer.Option("--format", help="File format (default: from the extension).")
    ] = EvalFormat.auto,
    pass_threshold: Annotated[
        float | None,
        typer.Option("--pass-threshold", help="Read the score column: score >= X passes.", show_default=False),
    ] = None,
    strict: Annotated[bool, typer.Option("--strict", help="Any bad row is an error (exit 2).")] = False,
    joint: Annotated[
        JointMode,
        typer.Option(
            "--joint",
            help="How to write each category's joint pass/fail: the outcome table, one fitted latent-difficulty "
            "correlation, or nothing (independent).",
        ),
    ] = JointMode.table,
    force: ForceOpt = False,
) -> None:
    """Calibrate a worksheet from per-prompt eval results: pass rates with counts, joint outcome tables, token bands
    and latency per model.

    With -w, updates that worksheet and shows what changes (a dry run unless --out or --in-place). Without -w,
    writes a new worksheet (to --out, or stdout) with every guess marked. Bad rows are reported with line numbers.
    """
    from routecalc.data import calibrate_yaml as cy
    from routecalc.data.calibrate import MIN_PROMPTS, calibrate, with_joint
    from routecalc.data.evals import EvalOptions, parse_mapping, read_evals
    from routecalc.errors import InputError
    from routecalc.examples import is_example
    from routecalc.outputs import check_new_file, write_atomic
    from routecalc.report.calibrate import changes_table
    from routecalc.worksheet import load_worksheet

    if in_place and worksheet is None:
        raise InputError("--in-place needs -w WORKSHEET")
    if in_place and out is not None:
        raise InputError("give either --out or --in-place, not both")
    if out is not None:
        check_new_file(out, force)
    if in_place and worksheet is not None and is_example(str(worksheet)):
        raise InputError("--in-place would rewrite a shipped example: give --out W2")
    if worksheet is not None:
        worksheet = _editable(worksheet, "calibrate evals -w")
    ws = load_worksheet(worksheet) if worksheet is not None else None
    mapping = cy.model_mapping(None, parse_mapping(model_map, "--model-map"), ws)
    options = EvalOptions(
        columns=parse_mapping(columns, "--columns"),
        layout=layout.value,
        fmt=fmt.value,
        models=list(mapping) if mapping is not None else None,
        pass_threshold=pass_threshold,
    )
    data = read_evals(file, options)
    report = data.report
    if strict and report.bad_rows:
        raise InputError(f"{file}: {report.bad_rows:,} bad row(s) (--strict):\n  " + "\n  ".join(report.lines()))
    cal = with_joint(calibrate(data, mapping), joint.value)
    to_stdout = worksheet is None and out is None  # the YAML goes to stdout: everything else to stderr
    say = err_console if to_stdout else console
    say.print(
        f"read {printable(str(file))}: {report.records:,} rows, {data.n_prompts:,} prompts, "
        f"{len(data.categories)} categories, models {printable(', '.join(data.models))}",
        highlight=False,
    )
    _warn(report.lines(), stderr=to_stdout)
    if cal.small:
        listed = ", ".join(f"{printable(n)} ({c})" for n, c in cal.small)
        _warn([f"{len(cal.small)} categories have fewer than {MIN_PROMPTS} prompts: {listed}"], stderr=to_stdout)
    left = [(c.name, c.left_out) for c in cal.categories if c.left_out]
    if left:
        listed = ", ".join(f"{n} ({k})" for n, k in left)
        _warn([f"prompts left out of outcome tables (some model has no outcome on them): {listed}"], stderr=to_stdout)
    if ws is None:
        text = cy.checked_new_worksheet(cal, f"Calibrated from {file.name}")
        _write_new(
            text,
            out,
            say,
            "Prices are placeholders (0) and every line marked GUESS is a guess: fill them in before trusting costs.",
        )
        return
    assert worksheet is not None
    update = cy.plan_update(worksheet, ws, cal)
    console.print(changes_table(update))
    _warn([f"not in the worksheet (skipped): {', '.join(update.skipped)}"] if update.skipped else [])
    target = out if out is not None else (worksheet if in_place else None)
    if target is None:
        console.print(
            f"dry run: {update.n_changes} change(s); nothing written. Use --out W2 (or --in-place) to write.",
            highlight=False,
        )
        return
    write_atomic(target, update.text)
    _done(f"wrote {printable(str(target))} ({update.n_changes} change(s))")


LogFileArg = Annotated[
    Path,
    typer.Argument(help="Request log: CSV, TSV, JSONL or Parquet (README: Request logs).", show_default=False),
]
LogShapeOpt = Annotated[
    LogShape,
    typer.Option("--shape", help="litellm (spend logs), openai (usage export) or generic; default: from the columns."),
]
LogFormatOpt = Annotated[EvalFormat, typer.Option("--format", help="File format (default: from the extension).")]
CategoryFromOpt = Annotated[
    str | None,
    typer.Option(
        "--category-from",
        help="Where the category is: a column, or a path into one (metadata.tags[0], request_tags[0], "
        "metadata.spend_logs_metadata.category).",
        show_default=False,
    ),
]
CategoryMapOpt = Annotated[
    str | None,
    typer.Option("--category-map", help="Logged value = category name, comma-separated: a=b,c=d.", show_default=False),
]
LogColumnsOpt = Annotated[
    str | None,
    typer.Option(
        "--columns",
        help="Paths for roles, comma-separated: timestamp=ts,model=deployment,cost=usd ... (README: Request logs).",
        show_default=False,
    ),
]
LogModelMapOpt = Annotated[
    str | None,
    typer.Option("--model-map", help="Logged model name = catalog model name: a=b,c=d.", show_default=False),
]
MaxSkewOpt = Annotated[
    float,
    typer.Option("--max-skew", min=0, help="Seconds a row's timestamp may fall behind an earlier row's."),
]
StrictOpt = Annotated[bool, typer.Option("--strict", help="Any bad row is an error (exit 2).")]


def _read_log(
    file: Path,
    ws: Any,
    shape: LogShape,
    fmt: EvalFormat,
    category_from: str | None,
    category_map: str | None,
    columns: str | None,
    model_map: str | None,
    max_skew: float,
    strict: bool,
) -> Any:
    """Read a request log with the CLI's options (model names mapped to ``ws``'s catalog when given)."""
    from routecalc.data.evals import parse_mapping
    from routecalc.data.logcal import catalog_aliases
    from routecalc.data.logs import LogOptions, read_logs
    from routecalc.errors import InputError

    roles = parse_mapping(columns, "--columns")
    if category_from is not None:
        roles["category"] = category_from
    names = parse_mapping(model_map, "--model-map")
    data = read_logs(
        file,
        LogOptions(
            fmt=fmt.value,
            shape=shape.value,
            columns=roles,
            category_map=parse_mapping(category_map, "--category-map") or None,
            model_map=catalog_aliases(ws.models, names) if ws is not None else names or None,
            max_skew_s=max_skew,
        ),
    )
    if strict and data.report.bad_rows:
        raise InputError(
            f"{file}: {data.report.bad_rows:,} bad row(s) (--strict):\n  " + "\n  ".join(data.report.lines())
        )
    return data


@calibrate_app.command("logs")
def calibrate_logs(
    file: LogFileArg,
    worksheet: Annotated[
        Path | None,
        typer.Option("--worksheet", "-w", help="Update this worksheet (dry run unless --out).", show_default=False),
    ] = None,
    out: Annotated[
        Path | None, typer.Option("--out", "-o", help="Write the worksheet here (atomically).", show_default=False)
    ] = None,
    strict: StrictOpt = False,
    shape: LogShapeOpt = LogShape.auto,
    fmt: LogFormatOpt = EvalFormat.auto,
    category_from: CategoryFromOpt = None,
    category_map: CategoryMapOpt = None,
    columns: LogColumnsOpt = None,
    model_map: LogModelMapOpt = None,
    max_skew: MaxSkewOpt = 600.0,
    force: ForceOpt = False,
) -> None:
    """Calibrate a worksheet from request logs: volume and traffic profile, shares and token bands per category,
    failure rates by error type and latency per model.

    With -w, shows what changes in that worksheet (a dry run unless --out W2). Without -w, writes a starter
    worksheet (to --out, or stdout) with every guess marked. Bad rows are reported with line numbers.
    """
    from routecalc.data import logcal_yaml as ly
    from routecalc.data.logcal import calibrate_logs as derive
    from routecalc.outputs import check_new_file, write_atomic
    from routecalc.report import logs as rl

    if out is not None:
        check_new_file(out, force)
    if worksheet is not None:
        worksheet = _editable(worksheet, "calibrate logs -w")
    ws = _load(worksheet) if worksheet is not None else None
    data = _read_log(file, ws, shape, fmt, category_from, category_map, columns, model_map, max_skew, strict)
    cal = derive(data)
    to_stdout = worksheet is None and out is None  # the YAML goes to stdout: everything else to stderr
    say = err_console if to_stdout else console
    for item in rl.calibration_summary(cal):
        say.print(printable(item) if isinstance(item, str) else item, highlight=False)
    _warn(data.report.lines() + rl.notes(cal), stderr=to_stdout)
    if ws is None:
        text = ly.checked_starter(cal, f"Calibrated from {file.name}")
        _write_new(
            text,
            out,
            say,
            "Pass rates, quality thresholds and policies are not in a log: every line marked GUESS is a guess.",
        )
        return
    assert worksheet is not None
    update = ly.plan_update(worksheet, ws, cal)
    console.print(rl.changes_table(update))
    skipped = []
    if update.skipped_categories:
        skipped.append(f"categories not in the worksheet (skipped): {', '.join(update.skipped_categories)}")
    if update.skipped_models:
        skipped.append(
            f"models not in the worksheet (skipped; --model-map maps names): {', '.join(update.skipped_models)}"
        )
    if update.zeroed:
        skipped.append(f"worksheet categories without calls in the log get share 0: {', '.join(update.zeroed)}")
    _warn(skipped)
    if out is None:
        console.print(
            f"dry run: {update.n_changes} change(s); nothing written. Use --out W2 to write the updated worksheet.",
            highlight=False,
        )
        return
    write_atomic(out, update.text)
    _done(f"wrote {printable(str(out))} ({update.n_changes} change(s))")


@app.command()
def backtest(
    file: LogFileArg,
    worksheet: Annotated[
        Path, typer.Option("--worksheet", "-w", help="The worksheet whose estimate is checked.", show_default=False)
    ],
    policy: Annotated[str, typer.Option("--policy", "-p", help="The policy that served the logged traffic.")],
    invoice: Annotated[
        float | None,
        typer.Option(
            "--invoice", min=0, help="What the bill says the period cost (worksheet currency).", show_default=False
        ),
    ] = None,
    requests: Annotated[
        float | None,
        typer.Option(
            "--requests",
            min=0,
            help="Requests in the logged period (default: the log's calls / the policy's calls per request).",
            show_default=False,
        ),
    ] = None,
    fmt: Annotated[ShowFormat, typer.Option("--format", "-f", help="Output format.")] = ShowFormat.table,
    strict: StrictOpt = False,
    shape: LogShapeOpt = LogShape.auto,
    log_format: LogFormatOpt = EvalFormat.auto,
    category_from: CategoryFromOpt = None,
    category_map: CategoryMapOpt = None,
    columns: LogColumnsOpt = None,
    model_map: LogModelMapOpt = None,
    max_skew: MaxSkewOpt = 600.0,
    seed: SeedOpt = 0,
) -> None:
    """Check WORKSHEET's estimate against a logged period: calls, tokens and spend per model and category, failure
    rates and latency per model, and the total against the logs or an --invoice, each with its relative error.
    """
    from routecalc.data.backtest import backtest as run_backtest
    from routecalc.report.logs import backtest_json, backtest_tables

    ws = _load(worksheet)
    ws.policy(policy)
    data = _read_log(file, ws, shape, log_format, category_from, category_map, columns, model_map, max_skew, strict)
    _warn(data.report.lines(), stderr=True)
    result = run_backtest(ws, policy, data, requests=requests, invoice=invoice, seed=seed)
    if fmt is ShowFormat.json:
        sys.stdout.write(backtest_json(result) + "\n")
        return
    for item in backtest_tables(result):
        console.print(printable(item) if isinstance(item, str) else item, highlight=False)
    _warn(result.notes)


@app.command()
def replay(
    file: Annotated[Path, typer.Argument(help="Per-prompt eval results (README: Eval files).", show_default=False)],
    worksheet: Annotated[Path, typer.Option("--worksheet", "-w", help="The worksheet to replay.", show_default=False)],
    model_map: Annotated[
        str | None,
        typer.Option("--model-map", help="Eval model name = catalog model name: a=b,c=d.", show_default=False),
    ] = None,
    columns: Annotated[
        str | None, typer.Option("--columns", help="Column names for roles (as calibrate).", show_default=False)
    ] = None,
    layout: Annotated[EvalLayout, typer.Option("--layout", help="long or wide.")] = EvalLayout.auto,
    pass_threshold: Annotated[
        float | None, typer.Option("--pass-threshold", help="score >= X passes.", show_default=False)
    ] = None,
    bootstrap: Annotated[int, typer.Option("--bootstrap", help="Bootstrap resamples for the 95% intervals.")] = 1000,
    repeats: Annotated[
        int | None,
        typer.Option(
            "--repeats",
            min=1,
            max=1000,
            help="Replays per prompt (default: 200,000 replays in all).",
            show_default=False,
        ),
    ] = None,
    seed: SeedOpt = 0,
    fmt: Annotated[ShowFormat, typer.Option("--format", "-f", help="Output format.")] = ShowFormat.table,
    strict: Annotated[bool, typer.Option("--strict", help="Any bad row is an error (exit 2).")] = False,
) -> None:
    """Replay every policy of WORKSHEET on the prompts of FILE (their real outcomes per model), next to the
    worksheet's estimate, with 95 % bootstrap intervals; plus the oracle, zero router, AIQ and savings captured.
    """
    from routecalc.chains import compile_worksheet
    from routecalc.data import calibrate_yaml as cy
    from routecalc.data.evals import EvalOptions, parse_mapping, read_evals
    from routecalc.data.replay import replay as run_replay
    from routecalc.engine.ev import expected_values
    from routecalc.errors import InputError
    from routecalc.report.replay import render_replay, replay_json

    ws = _read_ws(worksheet)
    mapping = cy.model_mapping(None, parse_mapping(model_map, "--model-map"), ws)
    assert mapping is not None
    data = read_evals(
        file,
        EvalOptions(
            columns=parse_mapping(columns, "--columns"),
            layout=layout.value,
            models=list(mapping),
            pass_threshold=pass_threshold,
        ),
    )
    if strict and data.report.bad_rows:
        raise InputError(
            f"{file}: {data.report.bad_rows:,} bad row(s) (--strict):\n  " + "\n  ".join(data.report.lines())
        )
    _warn(data.report.lines(), stderr=True)
    problem = compile_worksheet(ws)
    result = run_replay(
        problem, expected_values(problem), data, mapping, seed=seed, bootstrap=bootstrap, repeats=repeats
    )
    result = replace(result, worksheet=ws.name)
    if fmt is ShowFormat.json:
        sys.stdout.write(replay_json(result) + "\n")
    else:
        console.print(render_replay(result))
