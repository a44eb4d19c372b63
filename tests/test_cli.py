"""The CLI, in process (typer.testing.CliRunner): output, formats, exit codes, no tracebacks."""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from routecalc.cli import app
from tests.conftest import shipped_worksheets

runner = CliRunner()
FAST = ["--samples", "20000", "--today", "2026-11-25"]


@pytest.mark.parametrize("path", shipped_worksheets(), ids=lambda p: p.name)
def test_compare_table_on_every_shipped_worksheet(path: Path) -> None:
    result = runner.invoke(app, ["compare", str(path), *FAST], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    sheet = yaml.safe_load(path.read_text())
    for policy in sheet["policies"]:
        assert policy["name"] in result.output
    assert "all-to-strongest" in result.output
    assert "Winner:" in result.output or "No winner" in result.output
    assert "Monte Carlo: 20,000 requests, seed 0" in result.output


def test_compare_json_is_machine_readable(support_path: Path) -> None:
    result = runner.invoke(app, ["compare", str(support_path), "--format", "json", *FAST])
    assert result.exit_code == 0
    data = json.loads(result.stdout)
    assert data["monte_carlo"] == {
        "samples": 20000,
        "seed": 0,
        "percentile_histogram_relative_error": pytest.approx(0.0058, abs=1e-4),
    }
    winner = [p for p in data["policies"] if p["name"] == data["winner"]]
    assert len(winner) == 1 and winner[0]["meets_targets"] is True


def test_compare_csv(support_path: Path) -> None:
    result = runner.invoke(app, ["compare", str(support_path), "-f", "csv", *FAST])
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    assert {r["currency"] for r in rows} == {"USD"}
    assert sum(r["winner"] == "True" for r in rows) == 1
    assert all(float(r["monthly_cost"]) > 0 for r in rows)


def test_same_seed_same_output(support_path: Path) -> None:
    args = ["compare", str(support_path), "-f", "json", *FAST, "--seed", "5"]
    assert runner.invoke(app, args).stdout == runner.invoke(app, args).stdout


def test_scenario_overlay_changes_the_answer(support_path: Path, tmp_path: Path) -> None:
    overlay = tmp_path / "pricier.yaml"
    overlay.write_text("scale:\n  models:\n    price_in: 2\n    price_out: 2\n    price_cache: 2\n")
    base = json.loads(runner.invoke(app, ["compare", str(support_path), "-f", "json", *FAST]).stdout)
    more = json.loads(
        runner.invoke(app, ["compare", str(support_path), "-f", "json", *FAST, "--scenario", str(overlay)]).stdout
    )
    cost = {p["name"]: p["monthly_cost"] for p in base["policies"]}
    after = {p["name"]: p["monthly_cost"] for p in more["policies"]}
    for name in ("today", "tiered", "all-to-strongest"):  # no validator spend: token cost exactly doubles
        assert after[name] == pytest.approx(2 * cost[name], rel=1e-12)
    assert after["cheap-first"] < 2 * cost["cheap-first"]  # its validator's fixed cost per call does not scale


def test_validate_ok(support_path: Path) -> None:
    result = runner.invoke(app, ["validate", str(support_path)])
    assert result.exit_code == 0
    assert "valid — 5 categories, 4 models, 5 policies" in " ".join(result.output.split())


def test_validate_broken_lists_every_problem_exit_2(tmp_path: Path) -> None:
    broken = tmp_path / "broken.yaml"
    broken.write_text(
        """
name: broken
volume: {requests_per_month: 1000}
models:
  - {name: a, provider: openai, price_in: -1, price_out: 1, latency: {ttft_s: 0.5, tpot_s: 0.01}}
tasks:
  - {name: t, traffic_share: 0.7, tokens_in: 100, tokens_out: 10, quality_threshold: 0.9, pass_rates: {a: 1.5}}
  - {name: u, traffic_share: 0.2, tokens_in: 100, tokens_out: 10, quality_threshold: 0.9, pass_rates: {a: 0.5}}
policies:
  - {name: p, kind: static, routes: {t: b}}
"""
    )
    result = runner.invoke(app, ["validate", str(broken)])
    assert result.exit_code == 2
    out = result.stderr
    for path in ("models[0].price_in", "tasks[0].pass_rates.a", "policies[0].routes.t[0].model", "policies[0].routes"):
        assert path in out
    assert "skips category 'u'" in out
    assert "Traceback" not in result.output


def test_compare_missing_file_exit_2(tmp_path: Path) -> None:
    result = runner.invoke(app, ["compare", str(tmp_path / "nope.yaml")])
    assert result.exit_code == 2
    assert "no such file" in result.stderr


def test_compare_bad_today_is_an_input_error(support_path: Path) -> None:
    result = runner.invoke(app, ["compare", str(support_path), "--today", "yesterday"])
    assert result.exit_code == 2
    assert "--today" in result.stderr


def test_schema_writes_and_refuses_to_overwrite(tmp_path: Path) -> None:
    out = tmp_path / "worksheet.schema.json"
    assert runner.invoke(app, ["schema", "--out", str(out)]).exit_code == 0
    assert json.loads(out.read_text())["title"] == "routecalc worksheet"
    again = runner.invoke(app, ["schema", "--out", str(out)])
    assert again.exit_code == 3 and "--force" in again.stderr
    assert runner.invoke(app, ["schema", "--out", str(out), "--force"]).exit_code == 0


def test_shipped_json_schema_is_current() -> None:
    from routecalc.worksheet import json_schema

    shipped = Path(__file__).parent.parent / "routecalc" / "schema" / "worksheet.schema.json"
    assert json.loads(shipped.read_text()) == json_schema(), (
        "run: routecalc schema -o routecalc/schema/worksheet.schema.json --force"
    )


def test_help_and_compare_do_not_import_heavy_modules(support_path: Path) -> None:
    code = (
        "import sys; from typer.testing import CliRunner; from routecalc.cli import app; "
        f"r = CliRunner().invoke(app, ['compare', {str(support_path)!r}, '--samples', '5000']); "
        "assert r.exit_code == 0, r.output; "
        "print(sorted({m.split('.')[0] for m in sys.modules} & {'pandas', 'matplotlib', 'litellm', 'scipy'}))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_version() -> None:
    from routecalc import __version__

    assert runner.invoke(app, ["--version"]).stdout.strip() == f"routecalc {__version__}"


def test_public_api_names_resolve() -> None:
    import routecalc

    assert set(routecalc.__all__) == {"__version__", *routecalc._EXPORTS}
    for name in routecalc.__all__:
        assert getattr(routecalc, name) is not None
    with pytest.raises(AttributeError):
        _ = routecalc.not_a_name


def test_compare_objective_option(support_path: Path) -> None:
    result = runner.invoke(app, ["compare", str(support_path), "-f", "json", *FAST, "--objective", "cost+risk"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["objective"] == "cost+risk"
    table = runner.invoke(app, ["compare", str(support_path), *FAST, "--objective", "latency"], env={"COLUMNS": "200"})
    assert "★ = fastest policy (lowest mean latency) meeting every target" in table.output
    default = runner.invoke(app, ["compare", str(support_path), "-f", "json", *FAST])
    assert json.loads(default.stdout)["objective"] == "cost"  # always said (schema_version 1 of the output)
    bad = runner.invoke(app, ["compare", str(support_path), "--objective", "cheap"])
    assert bad.exit_code == 2 and "Traceback" not in bad.output
