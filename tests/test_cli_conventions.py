"""CLI conventions: -q/-v, '-' for stdin, -V, shell completion, --samples 1e8 and its bounds, the progress bar,
shipped examples (example:NAME, routecalc examples), validate --format json, compare --out / xlsx."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

import routecalc
from routecalc._version import __version__
from routecalc.cli import app
from routecalc.cli import support as cli
from routecalc.engine.mc import CHUNK, simulate
from routecalc.errors import InputError
from routecalc.examples import list_examples, resolve
from routecalc.limits import MAX_SAMPLES, parse_samples
from tests.conftest import WORKSHEETS

runner = CliRunner()
FAST = ["--samples", "20000", "--today", "2026-11-25"]


@pytest.mark.parametrize("flag", ["-V", "--version"])
def test_version(flag: str) -> None:
    result = runner.invoke(app, [flag])
    assert result.exit_code == 0 and result.stdout.strip() == f"routecalc {__version__}"


def test_completion_is_offered() -> None:
    out = runner.invoke(app, ["--help"]).output
    assert "--install-completion" in out and "--show-completion" in out
    assert "Exit codes: 0 ok" in " ".join(out.split())


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("200000", 200_000),
        ("200_000", 200_000),
        ("200,000", 200_000),
        ("2e5", 200_000),
        ("1e8", 100_000_000),
        ("1E3", 1_000),
        (str(MAX_SAMPLES), MAX_SAMPLES),
    ],
)
def test_samples_as_people_write_them(text: str, value: int) -> None:
    assert parse_samples(text) == value


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("1.5e3x", "not a whole number"),
        ("2.5e3", "not a whole number"),  # 2,500.0 is whole: see below; 2.5e0 is not
        ("999", "at least 1,000"),
        ("3e9", "at most 2,147,483,647"),
        ("1e400", "not a whole number"),
        ("", "not a whole number"),
    ],
)
def test_samples_refused_with_a_reason(text: str, why: str) -> None:
    if text == "2.5e3":
        assert parse_samples(text) == 2500
        return
    with pytest.raises(InputError, match=why):
        parse_samples(text)


def test_samples_option_exit_code_and_message(support_path: Path) -> None:
    result = runner.invoke(app, ["compare", str(support_path), "--samples", "1e10"])
    assert result.exit_code == 2
    assert "at most 2,147,483,647 requests" in " ".join(result.output.split())


def test_library_refuses_samples_out_of_range(support_ws: routecalc.Worksheet) -> None:
    with pytest.raises(InputError, match="samples must be a whole number"):
        routecalc.compare(support_ws, samples=MAX_SAMPLES + 1)


@pytest.fixture
def uncached_path(support_path: Path, tmp_path: Path) -> Path:
    """support-triage without the Claude models' cache prices: classify's cached_share 0.5 then warns."""
    text = support_path.read_text()
    for price in ("0.08", "0.30"):
        assert f"    price_cache: {price}\n" in text
        text = text.replace(f"    price_cache: {price}\n", "")
    path = tmp_path / "uncached.yaml"
    path.write_text(text)
    return path


def test_quiet_drops_warnings_verbose_adds_stages(uncached_path: Path) -> None:
    support_path = uncached_path
    normal = runner.invoke(app, ["compare", str(support_path), *FAST])
    quiet = runner.invoke(app, ["-q", "compare", str(support_path), *FAST])
    verbose = runner.invoke(app, ["-v", "compare", str(support_path), *FAST])
    assert "warning:" in normal.stderr and "warning:" not in quiet.stderr
    assert quiet.stdout == normal.stdout  # the results are the same
    after = runner.invoke(app, ["compare", str(support_path), *FAST, "--quiet"])  # also after the command
    assert after.exit_code == 0 and after.stderr == quiet.stderr
    assert "5 categories, 4 models, 5 policies" in " ".join(verbose.stderr.split())
    assert "read " not in normal.stderr


def test_worksheet_from_stdin(support_path: Path) -> None:
    text = support_path.read_text()
    from_stdin = runner.invoke(app, ["compare", "-", *FAST, "-f", "json"], input=text)
    from_file = runner.invoke(app, ["compare", str(support_path), *FAST, "-f", "json"])
    assert from_stdin.exit_code == 0, from_stdin.output
    assert json.loads(from_stdin.stdout) == json.loads(from_file.stdout)
    bad = runner.invoke(app, ["validate", "-"], input="name: x\n")
    assert bad.exit_code == 2 and "<stdin>" in bad.stderr


def test_stdin_for_a_command_that_edits_the_file_is_refused() -> None:
    result = runner.invoke(app, ["prices", "update", "-"], input="x: 1\n")
    assert result.exit_code == 2 and "give a file, not '-'" in result.stderr


def test_progress_callback_reports_every_chunk_in_order(support_ws: routecalc.Worksheet) -> None:
    problem = routecalc.compile_worksheet(support_ws)
    seen: list[tuple[int, int]] = []
    samples = 2 * CHUNK + 5
    with_bar = simulate(problem, samples, np.random.default_rng(1), progress=lambda d, t: seen.append((d, t)))
    assert seen == [(CHUNK, samples), (2 * CHUNK, samples), (samples, samples)]
    without = simulate(problem, samples, np.random.default_rng(1))
    assert np.array_equal(with_bar.hist, without.hist)  # the bar never changes the numbers


def test_progress_bar_only_on_a_terminal_and_never_with_quiet(monkeypatch: pytest.MonkeyPatch) -> None:
    assert cli._progress() is None  # tests run without a terminal on stderr
    from rich.console import Console

    monkeypatch.setattr(cli, "err_console", Console(file=io.StringIO(), force_terminal=True))
    bar = cli._progress()
    assert isinstance(bar, cli._Progress)
    bar.start -= 10  # "more than a second ago"
    bar(CHUNK, 3 * CHUNK)
    assert bar.bar is not None
    bar(3 * CHUNK, 3 * CHUNK)
    monkeypatch.setattr(cli._state, "quiet", True)
    assert cli._progress() is None


def test_examples_are_listed_and_run_by_name() -> None:
    names = [e.name for e in list_examples()]
    assert names == sorted(p.stem for p in WORKSHEETS.glob("*.yaml"))
    listing = runner.invoke(app, ["examples"], env={"COLUMNS": "200"})
    assert listing.exit_code == 0
    line = next(x for x in listing.stdout.splitlines() if x.startswith("example:support-triage "))
    assert " ".join(line.split()) == (
        "example:support-triage Support triage: classification/extraction on a small model, refunds and disputes "
        "on a strong one."
    )
    result = runner.invoke(app, ["compare", "example:support-triage", *FAST, "-f", "json"])
    assert result.exit_code == 0 and json.loads(result.stdout)["worksheet"] == "Support triage"
    assert (
        resolve("example:structured-extraction").read_text() == (WORKSHEETS / "structured-extraction.yaml").read_text()
    )


def test_unknown_example_lists_the_known_ones() -> None:
    result = runner.invoke(app, ["validate", "example:nope"])
    assert result.exit_code == 2 and "examples: mmlu-cascade, rag-assistant" in result.stderr
    assert runner.invoke(app, ["validate", "example:../../etc/passwd"]).exit_code == 2


def test_examples_ship_inside_the_package() -> None:
    """pip install alone can run one: the files are package data under routecalc/examples."""
    from routecalc.examples import examples_dir

    assert examples_dir().parent == Path(routecalc.__file__).resolve().parent
    import tomllib

    data = tomllib.loads((Path(__file__).parent.parent / "pyproject.toml").read_text())
    globs = data["tool"]["setuptools"]["package-data"]["routecalc"]
    assert "examples/*.yaml" in globs and "examples/*.csv" in globs


def test_validate_lists_schema_and_cross_field_problems_in_one_run(support_path: Path, tmp_path: Path) -> None:
    text = support_path.read_text()
    text = text.replace("traffic_share: 0.40", "traffic_share: 0.50")  # shares sum to 1.1 (cross-field)
    text = text.replace("validator: {catch: 0.95, false_reject: 0.02}", "validator: {catch: 1.5, false_reject: 0.02}")
    text = text.replace("classify: gpt-4.1-mini\n", "classify: ghost\n")  # unknown model (cross-field)
    bad = tmp_path / "bad.yaml"
    bad.write_text(text)
    doc = json.loads(runner.invoke(app, ["validate", str(bad), "-f", "json"]).stdout)
    paths = {p["path"] for p in doc["problems"]}
    assert {"tasks[1].validator.catch", "tasks[*].traffic_share", "policies[1].routes.classify[0].model"} <= paths


def test_repeated_name_in_a_scenario_is_an_error(support_path: Path, tmp_path: Path) -> None:
    overlay = tmp_path / "o.yaml"
    overlay.write_text("models:\n  - {name: gpt-4.1, price_in: 1}\n  - {name: gpt-4.1, price_in: 3}\n")
    result = runner.invoke(app, ["validate", str(support_path), "--scenario", str(overlay)])
    assert result.exit_code == 2
    assert "model 'gpt-4.1' appears twice in this scenario (also models[0])" in " ".join(result.stderr.split())


def test_cached_share_without_a_cache_price_warns(uncached_path: Path, support_ws: routecalc.Worksheet) -> None:
    assert not [w for w in routecalc.worksheet.worksheet_warnings(support_ws) if "cached_share" in w]  # as shipped
    uncached = routecalc.load_worksheet(uncached_path)
    [w] = [w for w in routecalc.worksheet.worksheet_warnings(uncached) if "cached_share" in w]
    # classify has cached_share 0.5; the two Claude models have no price_cache
    assert w.startswith("tasks[0] (classify): cached_share 0.5, but claude-3-5-haiku, claude-sonnet-4 have no")


def test_compare_out_and_xlsx(support_path: Path, tmp_path: Path) -> None:
    out = tmp_path / "c.json"
    assert runner.invoke(app, ["compare", str(support_path), *FAST, "-f", "json", "-o", str(out)]).exit_code == 0
    assert json.loads(out.read_text())["output"] == "compare"
    refused = runner.invoke(app, ["compare", str(support_path), *FAST, "-f", "csv", "-o", str(out)])
    assert refused.exit_code == 3 and json.loads(out.read_text())["output"] == "compare"  # before any estimate
    forced = runner.invoke(app, ["compare", str(support_path), *FAST, "-f", "csv", "-o", str(out), "--force"])
    assert forced.exit_code == 0 and out.read_text().startswith("policy,kind,")
    assert runner.invoke(app, ["compare", str(support_path), "-f", "xlsx"]).exit_code == 2  # binary: needs --out
