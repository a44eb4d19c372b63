"""The JSON contract: every --format json output carries schema_version and output, and validates against the
JSON Schema shipped in the package (routecalc/schema/output-<kind>.schema.json), on real outputs."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from typer.testing import CliRunner

from routecalc.cli import SCHEMA_KINDS, app
from routecalc.contract import OUTPUTS, dumps, stamp
from routecalc.contract.schemas import output_schema
from tests.conftest import ROOT, WORKSHEETS
from tests.test_replay import tiny_evals, tiny_sheet

runner = CliRunner()
SCHEMA_DIR = ROOT / "routecalc" / "schema"
FAST = ["--samples", "20000", "--today", "2026-11-25"]


def validator(kind: str) -> jsonschema.Draft202012Validator:
    schema = json.loads((SCHEMA_DIR / f"output-{kind}.schema.json").read_text())
    return jsonschema.Draft202012Validator(schema, format_checker=jsonschema.FormatChecker())


def run_json(*args: str, code: int = 0) -> dict[str, Any]:
    result = runner.invoke(app, list(args))
    assert result.exit_code == code, result.output
    return json.loads(result.stdout)


def check(kind: str, doc: dict[str, Any]) -> None:
    assert list(doc)[:2] == ["schema_version", "output"]
    assert doc["output"] == kind and doc["schema_version"] == OUTPUTS[kind]
    errors = sorted(validator(kind).iter_errors(doc), key=lambda e: list(e.absolute_path))
    assert not errors, "\n".join(f"{list(e.absolute_path)}: {e.message}" for e in errors[:10])


@pytest.mark.parametrize("kind", sorted(OUTPUTS))
def test_shipped_schema_files_are_the_generated_ones(kind: str) -> None:
    shipped = json.loads((SCHEMA_DIR / f"output-{kind}.schema.json").read_text())
    assert shipped == output_schema(kind), f"run: routecalc schema --output {kind} -o {SCHEMA_DIR}/... --force"
    jsonschema.Draft202012Validator.check_schema(shipped)


def test_every_output_kind_has_a_schema_command() -> None:
    assert sorted(SCHEMA_KINDS[1:]) == sorted(OUTPUTS)
    for kind in OUTPUTS:
        doc = run_json("schema", "--output", kind)
        assert doc["properties"]["output"] == {"const": kind, "description": "Which routecalc output this document is."}


def test_stamp_puts_version_and_kind_first_and_refuses_unknown_kinds() -> None:
    assert list(stamp("compare", {"a": 1, "output": "x"})) == ["schema_version", "output", "a"]
    with pytest.raises(KeyError):
        stamp("no-such-output", {})
    assert json.loads(dumps("validate", {"x": float("nan")}))["x"] is None  # NaN is null, never invalid JSON


def test_compare_output_with_checks_and_patterns(support_path: Path) -> None:
    doc = run_json(
        "compare", str(support_path), "-f", "json", *FAST, "--expect", "cheap-first-routine", "--require-winner"
    )
    check("compare", doc)
    assert [c["check"] for c in doc["checks"]] == ["expect", "require_winner"]
    routing = run_json("compare", str(WORKSHEETS / "support-routing.yaml"), "-f", "json", *FAST, "--uncertainty", "200")
    check("compare", routing)
    assert routing["uncertainty"]["policies"] and routing["patterns"]["classifiers"]


@pytest.mark.parametrize("path", sorted(WORKSHEETS.glob("*.yaml")), ids=lambda p: p.stem)
def test_compare_output_of_every_shipped_worksheet(path: Path) -> None:
    check("compare", run_json("compare", str(path), "-f", "json", *FAST))


def test_closed_schema_catches_an_undocumented_field(support_path: Path) -> None:
    doc = run_json("compare", str(support_path), "-f", "json", *FAST)
    doc["policies"][0]["savings_monthly"] = 1.0  # the old name: not in schema_version 1
    assert any("savings_monthly" in e.message for e in validator("compare").iter_errors(doc))
    del doc["policies"][0]["savings_monthly"]
    del doc["schema_version"]
    assert not validator("compare").is_valid(doc)


def test_diff_output(support_path: Path) -> None:
    scenario = ROOT / "scenarios" / "price-cut-gpt41.yaml"
    check("diff", run_json("diff", str(support_path), "--scenario", str(scenario), "-f", "json", *FAST))


def test_validate_output_valid_and_invalid(support_path: Path, tmp_path: Path) -> None:
    ok = run_json("validate", str(support_path), "-f", "json")
    check("validate", ok)
    assert ok["valid"] is True and ok["problems"] == [] and ok["summary"]["policies"] == 5
    bad = tmp_path / "bad.yaml"
    bad.write_text(support_path.read_text().replace("traffic_share: 0.40", "traffic_share: -1"))
    doc = run_json("validate", str(bad), "-f", "json", code=2)
    check("validate", doc)
    assert doc["valid"] is False and doc["summary"] is None
    assert {"path": "tasks[0].traffic_share", "message": "Input should be greater than or equal to 0 (got -1)"} in doc[
        "problems"
    ]
    missing = run_json("validate", str(tmp_path / "nope.yaml"), "-f", "json", code=2)
    check("validate", missing)
    assert missing["problems"][0]["path"] == "" and "no such" in missing["problems"][0]["message"]


@pytest.mark.slow
@pytest.mark.parametrize("mode", [[], ["--budget", "4000"]], ids=["per-category", "budget"])
def test_optimize_output(support_path: Path, mode: list[str]) -> None:
    check("optimize", run_json("optimize", str(support_path), "-f", "json", "--samples", "20000", *mode))


def test_replay_output(tmp_path: Path) -> None:
    import yaml

    ws = tmp_path / "ws.yaml"
    ws.write_text(yaml.safe_dump(tiny_sheet()))
    doc = run_json("replay", str(tiny_evals(tmp_path)), "-w", str(ws), "-f", "json", "--bootstrap", "200")
    check("replay", doc)


def test_prices_explain_examples_outputs(support_path: Path) -> None:
    prices = ROOT / "tests" / "data" / "prices-small.json"
    key = next(k for k in json.loads(prices.read_text()) if k != "sample_spec")
    check("prices", run_json("prices", "show", key, "--from", str(prices), "-f", "json"))
    check("explain", run_json("explain", str(support_path), "-p", "cheap-first", "-c", "refund", "-f", "json"))
    routing = str(WORKSHEETS / "support-routing.yaml")
    check("explain", run_json("explain", routing, "-p", "patterns", "-c", "refund", "-f", "json"))
    check("examples", run_json("examples", "-f", "json"))


def test_sensitivity_output(support_path: Path) -> None:
    doc = run_json("sensitivity", str(support_path), "-f", "json", "--samples", "20000", "--top", "2")
    check("sensitivity", doc)
    assert doc["swings"] and doc["break_evens"]


def test_simulate_output() -> None:
    # support-month has an operations section: effects, daily rows and hourly series are all filled
    doc = run_json(
        "simulate", str(WORKSHEETS / "support-month.yaml"), "-f", "json", "--samples", "20000", "--days", "2"
    )
    check("simulate", doc)
    assert len(doc["daily"]) == 2 and doc["effects"]


def test_backtest_output() -> None:
    # the shipped sample log against the worksheet it was drawn from (README: backtest)
    log = ROOT / "examples" / "logs" / "support-sample.jsonl"
    doc = run_json("backtest", str(log), "-w", str(WORKSHEETS / "support-triage.yaml"), "-p", "tiered+fallback",
                   "--invoice", "30", "-f", "json")  # fmt: skip
    check("backtest", doc)
    assert doc["by_model"] and doc["by_category"] and doc["invoice_error"] is not None


def test_compare_advice_records(support_path: Path) -> None:
    # every shipped worksheet's compare output passes (above); at least one of them must carry advice records,
    # or the advice schema is never exercised
    docs = [run_json("compare", str(p), "-f", "json", *FAST) for p in sorted(WORKSHEETS.glob("*.yaml"))]
    advice = [a for d in docs for a in d["advice"]]
    assert advice and all(a["text"] in d["advisories"] for d in docs for a in d["advice"])
