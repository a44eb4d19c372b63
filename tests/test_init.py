"""routecalc init: a starter worksheet from the price map, and a worksheet from a LiteLLM proxy config whose
`today` policy exports back to the same config (export -> import -> export)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

import routecalc
from routecalc.cli import app
from routecalc.errors import InputError
from routecalc.init import from_litellm, starter
from tests.conftest import ROOT

runner = CliRunner()
PRICES = ROOT / "tests" / "data" / "prices-small.json"
FAST = ["--samples", "20000"]


def price_map() -> dict:
    return json.loads(PRICES.read_text())


def a_key(pm: dict, provider: str = "openai") -> str:
    return next(k for k, e in pm.items() if isinstance(e, dict) and e.get("litellm_provider") == provider)


def test_starter_has_real_prices_and_marks_every_guess() -> None:
    pm = price_map()
    key = a_key(pm)
    entry = pm[key]
    s = starter([key, "not-a-model"], categories=2, price_map=pm, label="test map")
    ws = routecalc.validate_worksheet(yaml.safe_load(s.text))
    m = ws.model(key) if hasattr(ws, "model") else next(x for x in ws.models if x.name == key)
    assert m.price_in == pytest.approx(entry["input_cost_per_token"] * 1e6)  # per 1M tokens
    assert m.price_out == pytest.approx(entry["output_cost_per_token"] * 1e6)
    if "max_input_tokens" in entry:
        assert m.context_window == entry["max_input_tokens"]
    missing = next(x for x in ws.models if x.name == "not-a-model")
    assert missing.price_in == 0 and missing.price_out == 0
    assert len(ws.tasks) == 2 and sum(t.traffic_share for t in ws.tasks) == pytest.approx(1)
    lines = s.text.splitlines()
    for fld in ("traffic_share", "tokens_in", "tokens_out", "quality_threshold", "latency_budget_s", "latency:",
                "failure_rate", "requests_per_month"):  # fmt: skip
        assert all("GUESS" in line for line in lines if line.strip().startswith(fld)), fld
    assert any("price_in: 0" in line and "GUESS: not in the price map" in line for line in lines)
    assert s.notes == ["not-a-model: not in test map: prices are 0 until you fill them in"]  # nothing like it


def test_a_misspelt_model_gets_the_close_keys_suggested() -> None:
    pm = {"gpt-4.1-mini": {"input_cost_per_token": 4e-7, "output_cost_per_token": 1.6e-6}, "claude-x": {}}
    s = starter(["gpt-4.1-mni"], categories=1, price_map=pm, label="test map")
    assert s.notes == ["gpt-4.1-mni: not in test map: prices are 0 until you fill them in (did you mean gpt-4.1-mini?)"]


def test_starter_runs_with_compare(tmp_path: Path) -> None:
    out = tmp_path / "w.yaml"
    result = runner.invoke(app, ["init", "--from", str(PRICES), "--categories", "4", "-o", str(out)])
    assert result.exit_code == 0, result.output
    run = runner.invoke(app, ["compare", str(out), *FAST, "-f", "json"])
    assert run.exit_code == 0, run.output
    names = {p["name"] for p in json.loads(run.stdout)["policies"]}
    assert "cheap-first" in names
    assert runner.invoke(app, ["init", "-o", str(out)]).exit_code == 3  # never over an existing file


@pytest.mark.parametrize("categories", ["0", "101"])
def test_init_refuses_bad_category_counts(categories: str) -> None:
    assert runner.invoke(app, ["init", "--categories", categories]).exit_code == 2


def test_init_example_copies_a_shipped_worksheet(support_path: Path) -> None:
    result = runner.invoke(app, ["init", "--example", "support-triage"])
    assert result.exit_code == 0 and result.stdout == support_path.read_text()


CONFIG = """
model_list:
  - model_name: fast
    litellm_params: {model: openai/gpt-4.1-mini, timeout: 12, rpm: 500, tpm: 200000}
  - model_name: strong
    litellm_params: {model: openai/gpt-4.1, input_cost_per_token: 0.0000025, output_cost_per_token: 0.00001}
    model_info: {max_input_tokens: 128000}
  - model_name: backup
    litellm_params: {model: azure/my-deployment, api_base: "https://x.example", input_cost_per_token: 0.000002,
                     output_cost_per_token: 0.000008}
router_settings:
  num_retries: 2
  timeout: 30
  allowed_fails: 5
  cooldown_time: 20
  fallbacks: [{strong: [backup]}, {fast: [strong]}]
  model_group_alias: {route-triage: fast, summaries: strong}
"""


def test_from_litellm_reads_catalog_fallbacks_and_aliases() -> None:
    s = from_litellm(CONFIG, "config.yaml", None, "no map")
    ws = routecalc.validate_worksheet(yaml.safe_load(s.text))
    models = {m.name: m for m in ws.models}
    assert set(models) == {"gpt-4.1-mini", "gpt-4.1", "my-deployment"}
    assert (models["gpt-4.1-mini"].timeout_s, models["gpt-4.1-mini"].rpm, models["gpt-4.1-mini"].tpm) == (
        12,
        500,
        200000,
    )
    assert models["gpt-4.1"].timeout_s == 30  # the router's timeout where a deployment has none
    assert models["gpt-4.1"].price_in == pytest.approx(2.5) and models["gpt-4.1"].context_window == 128000
    assert models["my-deployment"].provider == "azure"
    assert models["gpt-4.1-mini"].price_in == 0  # no price in the config, no price map: a marked guess
    assert [t.name for t in ws.tasks] == ["triage", "summaries"]  # aliases are the entry points
    today = ws.policies[0]
    assert today.name == "today" and ws.baseline == "today"
    chains = {c: [s.names[0] for s in today.chains(c)[0]] for c in ("triage", "summaries")}
    assert chains == {"triage": ["gpt-4.1-mini", "gpt-4.1"], "summaries": ["gpt-4.1", "my-deployment"]}
    assert ws.defaults.retries == 2 and ws.defaults.allowed_fails == 5 and ws.defaults.cooldown_s == 20


def test_from_litellm_without_num_retries_assumes_litellms_default_and_says_where_prices_came_from() -> None:
    pm = price_map()
    key = a_key(pm)
    config = (
        f"model_list: [{{model_name: a, litellm_params: {{model: openai/{key}, input_cost_per_token: 0.000004}}}}]\n"
    )
    s = from_litellm(config, "c.yaml", pm, "test map")
    ws = routecalc.validate_worksheet(yaml.safe_load(s.text))
    # LiteLLM's Router retries twice when num_retries is not set: the worksheet must not assume 0
    assert ws.defaults.retries == 2 and "LiteLLM's default" in s.text
    m = ws.models[0]
    assert m.price_in == pytest.approx(4.0)  # 0.000004 per token = 4 per 1M tokens, from the config
    assert m.price_out == pytest.approx(pm[key]["output_cost_per_token"] * 1e6)  # the map fills the rest
    assert "price_in from the config; other prices from test map" in s.text


@pytest.mark.parametrize(
    ("config", "why"),
    [
        ("x: 1\n", "no model_list"),
        ("model_list: [{model_name: a}]\n", "needs model_name and litellm_params.model"),
        (
            "model_list: [{model_name: a, litellm_params: {model: openai/x}}]\n"
            "router_settings: {fallbacks: [{a: [ghost]}]}\n",
            "no such model_name",
        ),
    ],
)
def test_from_litellm_bad_configs(config: str, why: str) -> None:
    with pytest.raises(InputError, match=why):
        from_litellm(config, "c.yaml")


@pytest.mark.parametrize("policy", ["cheap-first-routine", "tiered+fallback", "today"])
def test_export_import_export_round_trips(support_path: Path, tmp_path: Path, policy: str) -> None:
    first, ws, second = tmp_path / "a.yaml", tmp_path / "w.yaml", tmp_path / "b.yaml"
    ok = lambda args: runner.invoke(app, args).exit_code == 0
    assert ok(["export", str(support_path), "-t", "litellm", "-p", policy, *FAST, "-o", str(first)])
    assert ok(["init", "--from-litellm", str(first), "--from", str(PRICES), "-o", str(ws)])
    assert ok(["export", str(ws), "-t", "litellm", "-p", "today", *FAST, "-o", str(second)])
    assert yaml.safe_load(second.read_text()) == yaml.safe_load(first.read_text())  # all but the comments


def test_a_steps_own_retries_round_trip(support_path: Path, tmp_path: Path) -> None:
    # a fallback whose first step retries 3 times (the worksheet default is 1): export writes num_retries on that
    # deployment, init reads it back as the step's retries, and the second export is the first
    sheet = yaml.safe_load(support_path.read_text())
    cats = [t["name"] for t in sheet["tasks"]]
    first_step = {"model": "gpt-4.1-mini", "retries": 3}
    sheet["policies"].append(
        {"name": "retry-first", "kind": "fallback", "routes": {c: [first_step, "gpt-4.1"] for c in cats}}
    )
    source = tmp_path / "s.yaml"
    source.write_text(yaml.safe_dump(sheet, sort_keys=False))
    first, ws, second = tmp_path / "a.yaml", tmp_path / "w.yaml", tmp_path / "b.yaml"
    ok = lambda args: runner.invoke(app, args).exit_code == 0
    assert ok(["export", str(source), "-t", "litellm", "-p", "retry-first", *FAST, "-o", str(first)])
    assert any(d["litellm_params"].get("num_retries") == 3 for d in yaml.safe_load(first.read_text())["model_list"])
    assert ok(["init", "--from-litellm", str(first), "--from", str(PRICES), "-o", str(ws)])
    today = routecalc.load_worksheet(ws).policy("today")
    assert all(r[0].retries == 3 and r[1].retries is None for r in today.routes.values())  # type: ignore[union-attr]
    assert ok(["export", str(ws), "-t", "litellm", "-p", "today", *FAST, "-o", str(second)])
    assert yaml.safe_load(second.read_text()) == yaml.safe_load(first.read_text())


def test_from_litellm_on_stdin(support_path: Path) -> None:
    config = runner.invoke(app, ["export", str(support_path), "-t", "litellm", *FAST]).stdout
    result = runner.invoke(app, ["init", "--from-litellm", "-", "--from", str(PRICES)], input=config)
    assert result.exit_code == 0, result.output
    assert "name: today" in result.stdout
