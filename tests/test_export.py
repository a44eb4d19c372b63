"""Export without router libraries: golden files, the fallback-graph checks, grouping, schemas, the CLI.

Regenerate the golden files after an intended change with ``ROUTECALC_UPDATE_GOLDEN=1 pytest tests/test_export.py``
and review the diff.
"""

from __future__ import annotations

import copy
import json
import os
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from typer.testing import CliRunner

import routecalc
from routecalc.cli import app
from routecalc.errors import ExportError, PolicyError
from routecalc.export import export_policy
from routecalc.export.graph import check_fallbacks
from routecalc.export.litellm import choose_grouping
from routecalc.export.plan import Source, api_key_env, build_plan
from routecalc.worksheet import MAX_CHAIN, file_sha256, read_yaml

ROOT = Path(__file__).resolve().parent.parent
GOLDEN = Path(__file__).resolve().parent / "golden"
SUPPORT_REL = "worksheets/support-triage.yaml"
UPDATE = os.environ.get("ROUTECALC_UPDATE_GOLDEN") == "1"
POLICY_SCHEMA = json.loads((ROOT / "routecalc/schema/policy-export.schema.json").read_text())
PORTKEY_SCHEMA = json.loads((Path(__file__).parent / "data/portkey-config.schema.json").read_text())

GOLDEN_CASES = [
    ("litellm", "cheap-first"),
    ("litellm", "tiered+fallback"),
    ("litellm", "cheap-first-routine"),
    ("portkey", "cheap-first"),
    ("portkey", "tiered+fallback"),
    ("json", "cheap-first"),
    ("json", "tiered+fallback"),
]


def support_source() -> Source:
    return Source(SUPPORT_REL, file_sha256(ROOT / SUPPORT_REL))


def golden_source() -> Source:
    """A fixed hash, so a golden file changes only when the export of the worksheet's content changes."""
    return Source(SUPPORT_REL, "0" * 64)


def support_data() -> dict[str, Any]:
    return copy.deepcopy(read_yaml(ROOT / SUPPORT_REL))


def sheet(data: dict[str, Any]) -> routecalc.Worksheet:
    return routecalc.validate_worksheet(data, "test")


@pytest.mark.parametrize(("target", "policy"), GOLDEN_CASES)
def test_golden(support_ws: routecalc.Worksheet, target: str, policy: str) -> None:
    result = export_policy(support_ws, None, policy, target, golden_source())
    ext = "yaml" if target == "litellm" else "json"
    path = GOLDEN / f"support-triage.{policy.replace('+', '_')}.{target}.{ext}"
    if UPDATE:
        path.write_text(result.text, encoding="utf-8")
    assert path.exists(), f"missing golden file {path.name}: run with ROUTECALC_UPDATE_GOLDEN=1"
    assert result.text == path.read_text(encoding="utf-8")


ROUTING_REL = "worksheets/support-routing.yaml"


@pytest.mark.parametrize("target", ["litellm", "portkey", "json"])
def test_golden_routing_patterns(target: str) -> None:
    """Every routing pattern (split, rules, classifier, tool, deadline, per-error-type failover) in each target."""
    ws = routecalc.load_worksheet(ROOT / ROUTING_REL)
    result = export_policy(ws, None, "patterns", target, Source(ROUTING_REL, "0" * 64))
    ext = "yaml" if target == "litellm" else "json"
    path = GOLDEN / f"support-routing.patterns.{target}.{ext}"
    if UPDATE:
        path.write_text(result.text, encoding="utf-8")
    assert path.exists(), f"missing golden file {path.name}: run with ROUTECALC_UPDATE_GOLDEN=1"
    assert result.text == path.read_text(encoding="utf-8")
    if target == "json":
        jsonschema.Draft202012Validator(POLICY_SCHEMA).validate(result.data)
    if target == "portkey":
        jsonschema.Draft202012Validator(PORTKEY_SCHEMA).validate(result.data)


def test_routing_plan_reads_the_compiled_lanes() -> None:
    """The plan's lanes, shares and per-type targets are the compiled arrays', checked by hand."""
    ws = routecalc.load_worksheet(ROOT / ROUTING_REL)
    plan = build_plan(ws, "patterns")
    cats = {c.name: c for c in plan.categories}
    classify = cats["classify"]
    assert [lane.key for lane in classify.lanes] == ["arm1", "arm2"]
    assert [round(lane.share, 12) for lane in classify.lanes] == [0.9, 0.1]
    assert classify.lanes[0].steps[0].deadline_s == 2 and classify.lanes[0].steps[0].on_deadline == 1
    refund = cats["refund"]  # P(predicted simple) = 0.6 x 0.85 + 0.4 x 0.10 = 0.55
    assert [lane.key for lane in refund.lanes] == ["simple", "complex"]
    assert refund.lanes[0].share == pytest.approx(0.55) and refund.lanes[1].share == pytest.approx(0.45)
    dispute = cats["dispute"].steps[0]
    assert dict(dispute.on_failure) == {"timeout": 1, "5xx": 1, "429": 2, "content_filter": 1}
    faq = cats["faq"].lanes[0]
    assert faq.steps[0].tool == "kb-search" and faq.entry == 1 and faq.failure_path() == [1]
    summarize = cats["summarize"]
    assert [lane.key for lane in summarize.lanes] == ["rule1", "else"]
    assert summarize.lanes[1].steps[0].on_overflow == 1  # claude-sonnet-4's 200k window: next step
    assert summarize.route.startswith("if input > 150,000 tokens: (gpt-4.1); else:")


def test_routes_without_fallback_are_listed_for_both_routers() -> None:
    """faq (kb-search, then gpt-4.1 alone) and summarize's long-prompt rule (gpt-4.1 alone) have one model on
    their router path: a provider failure there fails the request; both exports say so, the other lanes do not."""
    ws = routecalc.load_worksheet(ROOT / ROUTING_REL)
    lonely = "faq: gpt-4.1; summarize [rule 1]: gpt-4.1"
    lite = export_policy(ws, None, "patterns", "litellm").text
    assert (
        "# No fallback (a provider failure fails the request):\n#   faq: gpt-4.1\n#   summarize [rule 1]: gpt-4.1\n"
        in lite
    )
    portkey = export_policy(ws, None, "patterns", "portkey").warnings
    assert [w for w in portkey if w.startswith("no fallback")] == [
        f"no fallback (a provider failure fails the request): {lonely}"
    ]
    support = routecalc.load_worksheet(ROOT / SUPPORT_REL)  # every tiered+fallback chain has a second model
    assert not [w for w in export_policy(support, None, "tiered+fallback", "portkey").warnings if "no fallback" in w]
    assert "No fallback" not in export_policy(support, None, "tiered+fallback", "litellm").text


def test_exports_are_deterministic(support_ws: routecalc.Worksheet, support_cmp: routecalc.Comparison) -> None:
    for target in ("litellm", "portkey", "json"):
        a = export_policy(support_ws, support_cmp, "cheap-first", target, support_source())
        b = export_policy(support_ws, support_cmp, "cheap-first", target, support_source())
        assert a.text == b.text


# ---------------------------------------------------------------------------------------------------------
# Fallback graph validation


def test_cycle_refused() -> None:
    with pytest.raises(ExportError, match=r"cycle a -> b -> c -> a"):
        check_fallbacks(["a", "b", "c"], {"a": ["b"], "b": ["c"], "c": ["a"]})
    with pytest.raises(ExportError, match="cycle a -> a"):
        check_fallbacks(["a"], {"a": ["a"]})


def test_unknown_group_refused() -> None:
    with pytest.raises(ExportError, match="unknown group 'ghost'"):
        check_fallbacks(["a", "b"], {"a": ["ghost"]})
    with pytest.raises(ExportError, match="'ghost' is not a model group"):
        check_fallbacks(["a", "b"], {"ghost": ["a"]})


def test_chain_length_limited() -> None:
    groups = [f"g{i}" for i in range(MAX_CHAIN + 1)]
    ok = {groups[i]: [groups[i + 1]] for i in range(MAX_CHAIN - 1)}
    assert check_fallbacks(groups, ok) == MAX_CHAIN
    too_long = {groups[i]: [groups[i + 1]] for i in range(MAX_CHAIN)}
    with pytest.raises(ExportError, match=f"could try {MAX_CHAIN + 1} groups; at most {MAX_CHAIN}"):
        check_fallbacks(groups, too_long)
    # a list fans out: a -> [b, c] where b -> d tries a, b, d, c
    assert check_fallbacks("abcd", {"a": ["b", "c"], "b": ["d"]}) == 4
    with pytest.raises(ExportError, match="could try 4 groups; at most 3"):
        check_fallbacks("abcd", {"a": ["b", "c"], "b": ["d"]}, max_chain=3)


def test_portkey_and_json_validation_refuse_bad_documents(support_ws: routecalc.Worksheet) -> None:
    from routecalc.export import portkey, routecalc_json

    cfg = export_policy(support_ws, None, "tiered+fallback", "portkey").data
    bad = copy.deepcopy(cfg)
    bad["strategy"]["conditions"][0]["then"] = "route-missing"
    with pytest.raises(ExportError, match="unknown target 'route-missing'"):
        portkey.validate(bad)
    bad = copy.deepcopy(cfg)
    bad["targets"][0]["targets"] *= 5
    with pytest.raises(ExportError, match="chain of 10 targets"):
        portkey.validate(bad)
    doc = export_policy(support_ws, None, "cheap-first", "json").data
    bad = copy.deepcopy(doc)
    bad["categories"][0]["lanes"][0]["steps"][1]["on_failure"]["5xx"] = 0
    with pytest.raises(ExportError, match="is not a later step"):
        routecalc_json.validate(bad)


# ---------------------------------------------------------------------------------------------------------
# Plan and grouping


def test_grouping_follows_model_md(support_ws: routecalc.Worksheet) -> None:
    per_model = choose_grouping(build_plan(support_ws, "cheap-first-routine"))
    assert per_model.per_model
    cfg = export_policy(support_ws, None, "cheap-first-routine", "litellm").data
    rs = cfg["router_settings"]
    assert rs["model_group_alias"]["route-classify"] == "gpt-4.1-mini"
    assert rs["model_group_alias"]["route-refund"] == "claude-sonnet-4"
    # LiteLLM looks fallbacks up by the requested (alias) name: the alias has its own entry
    assert {"route-classify": ["gpt-4.1"]} in rs["fallbacks"]
    assert {"gpt-4.1-mini": ["gpt-4.1"]} in rs["fallbacks"]
    assert sorted(d["model_name"] for d in cfg["model_list"]) == ["claude-sonnet-4", "gpt-4.1", "gpt-4.1-mini"]

    per_cat = choose_grouping(build_plan(support_ws, "cheap-first"))
    assert not per_cat.per_model
    assert "gpt-4.1-mini falls back to gpt-4.1 in classify but to claude-sonnet-4 in refund" in per_cat.reason
    text = export_policy(support_ws, None, "cheap-first", "litellm").text
    assert "# Grouping: one group per category step." in text
    assert "rpm/tpm limits and cooldowns count per group" in text


def test_litellm_settings_from_worksheet(support_ws: routecalc.Worksheet) -> None:
    cfg = export_policy(support_ws, None, "tiered+fallback", "litellm").data
    rs = cfg["router_settings"]
    assert rs["num_retries"] == 1 and rs["allowed_fails"] == 3 and rs["cooldown_time"] == 30
    # router-wide timeout: the longest catalog timeout (claude-sonnet-4, 60 s)
    assert rs["enable_pre_call_checks"] is True and rs["timeout"] == 60
    assert {"route-refund": ["route-refund~2"]} in rs["fallbacks"]
    mini = next(d for d in cfg["model_list"] if d["model_info"]["id"] == "route-classify--gpt-4.1-mini")
    lp = mini["litellm_params"]
    assert lp["model"] == "openai/gpt-4.1-mini" and lp["api_key"] == "os.environ/OPENAI_API_KEY"
    assert lp["input_cost_per_token"] == 4e-7 and lp["output_cost_per_token"] == 1.6e-6
    assert lp["cache_read_input_token_cost"] == 1e-7 and lp["timeout"] == 20
    assert "sk-" not in export_policy(support_ws, None, "tiered+fallback", "litellm").text


def test_per_1k_prices_and_assumed_litellm_id() -> None:
    data = support_data()
    data["price_unit"] = "per_1k"
    data["models"][0]["price_in"] = 0.0004
    data["models"][0].pop("litellm_model")
    data["models"][0]["provider"] = "my-cloud"
    data["models"][0]["rpm"] = 500
    result = export_policy(sheet(data), None, "tiered", "litellm")
    dep = next(d for d in result.data["model_list"] if d["model_info"]["routecalc_model"] == "gpt-4.1-mini")
    assert dep["litellm_params"]["model"] == "my-cloud/gpt-4.1-mini"
    assert dep["litellm_params"]["api_key"] == "os.environ/MY_CLOUD_API_KEY"
    assert dep["litellm_params"]["input_cost_per_token"] == 4e-7
    assert dep["litellm_params"]["rpm"] == 500
    assert any("assumed LiteLLM id 'my-cloud/gpt-4.1-mini'" in w for w in result.warnings)
    assert "assumed LiteLLM id" in result.text
    assert api_key_env("together_ai") == "TOGETHER_AI_API_KEY"


def test_context_window_fallbacks_follow_the_compiled_overflow_targets() -> None:
    data = support_data()
    data["models"][0]["context_window"] = 4000  # gpt-4.1-mini; every category's band exceeds 4,000 tokens at times
    ws = sheet(data)
    result = export_policy(ws, None, "cheap-first", "litellm")
    rs = result.data["router_settings"]
    # the cascade's step 1 is gpt-4.1-mini everywhere; a prompt too long for it goes where a 5xx would (next step)
    expected = [{f"route-{c}": [f"route-{c}~2"]} for c in ("classify", "extract", "faq", "refund", "dispute")]
    assert rs["context_window_fallbacks"] == expected
    plan = build_plan(ws, "cheap-first")
    assert all(c.steps[0].on_overflow == 1 for c in plan.categories)
    assert all(c.steps[1].on_overflow is None for c in plan.categories)  # 1M-token models: never overflowed
    # a static route overflows into nothing (the estimate counts those requests failed): no fallback is invented
    data["policies"][1]["routes"]["classify"] = "gpt-4.1-mini"
    result = export_policy(sheet(data), None, "tiered", "litellm")
    assert "context_window_fallbacks" not in result.data["router_settings"]
    assert build_plan(sheet(data), "tiered").categories[0].steps[0].on_overflow == "fail"


def chain_sheet() -> dict[str, Any]:
    """support-triage plus a chain policy: classify's step 2 is reached only on reject; step 1 fails hard."""
    data = support_data()
    routes: dict[str, Any] = {t["name"]: "gpt-4.1" for t in data["tasks"]}
    routes["classify"] = [
        {"model": "gpt-4.1-mini", "gate": True, "on_reject": 2, "on_failure": 1},
        {"model": "claude-3-5-haiku", "on_failure": "fail"},
        {"model": "gpt-4.1"},
    ]
    data["policies"].append({"name": "chainy", "kind": "chain", "routes": routes})
    return data


def test_chain_policy_exports_failure_path_and_warns() -> None:
    ws = sheet(chain_sheet())
    lite = export_policy(ws, None, "chainy", "litellm")
    rs = lite.data["router_settings"]
    # consistent per model (mini -> haiku everywhere): one group per model, the alias has its own entry
    assert rs["fallbacks"] == [{"gpt-4.1-mini": ["claude-3-5-haiku"]}, {"route-classify": ["claude-3-5-haiku"]}]
    joined = "\n".join(lite.warnings)
    assert "step 3 (gpt-4.1) runs only when a gate rejects" in joined
    assert "step 2 (claude-3-5-haiku) fails the request on provider failure" in joined
    assert "step 1 gpt-4.1-mini: on reject -> call gpt-4.1" in lite.text
    pk = export_policy(ws, None, "chainy", "portkey").data
    legs = pk["targets"][0]["targets"]
    assert [leg["override_params"]["model"] for leg in legs] == ["gpt-4.1-mini", "claude-3-5-haiku-20241022"]
    doc = export_policy(ws, None, "chainy", "json").data
    steps = doc["categories"][0]["lanes"][0]["steps"]
    assert [s["on_failure"]["5xx"] for s in steps] == [1, "fail", "fail"]
    assert all(len(set(s["on_failure"].values())) == 1 for s in steps)  # one target for every error type
    assert [s["on_reject"] for s in steps] == [2, None, None]
    jsonschema.validate(doc, POLICY_SCHEMA)


def test_all_to_strongest_is_exportable(support_ws: routecalc.Worksheet) -> None:
    result = export_policy(support_ws, None, "all-to-strongest", "litellm")
    assert result.policy == "all-to-strongest"
    assert {d["model_info"]["routecalc_model"] for d in result.data["model_list"]} == {"claude-sonnet-4"}


def test_unknown_policy_lists_names(support_ws: routecalc.Worksheet) -> None:
    with pytest.raises(PolicyError, match=r"exportable: today, tiered, .*all-to-strongest"):
        export_policy(support_ws, None, "nope", "json")


def test_winner_and_no_winner(support_ws: routecalc.Worksheet, support_cmp: routecalc.Comparison) -> None:
    result = export_policy(support_ws, support_cmp, "winner", "json")
    assert result.policy == support_cmp.winner
    assert result.data["expected"]["monthly_cost"] == pytest.approx(support_cmp.winner_result.monthly_cost)
    data = support_data()
    for t in data["tasks"]:
        t["quality_threshold"] = 0.999
    strict = sheet(data)
    with pytest.raises(ExportError, match="no policy meets every target; name one with --policy"):
        export_policy(strict, routecalc.compare(strict, samples=2000, seed=1), "winner", "litellm")


def test_header_states_expected_metrics_and_gates(
    support_ws: routecalc.Worksheet, support_cmp: routecalc.Comparison
) -> None:
    text = export_policy(support_ws, support_cmp, "cheap-first", "litellm", support_source()).text
    res = support_cmp.policy("cheap-first")
    assert f"{res.monthly_cost:,.2f} USD/month" in text
    assert f"P95 {res.p95_s:.2f} s" in text
    classify = next(c for c in res.categories if c.category == "classify")
    assert f"expected escalation {classify.escalation * 100:.1f} %" in text
    assert "NOT ENFORCED BY THIS FILE — quality gates" in text
    assert f"sha256 {file_sha256(ROOT / SUPPORT_REL)}" in text
    header = [line for line in text.splitlines() if line.startswith("#")]
    assert all(len(line) <= 120 for line in header)


# ---------------------------------------------------------------------------------------------------------
# Schemas


@pytest.mark.parametrize("policy", ["today", "tiered+fallback", "cheap-first", "cheap-first-routine"])
def test_portkey_matches_gateway_schema(support_ws: routecalc.Worksheet, policy: str) -> None:
    cfg = json.loads(export_policy(support_ws, None, policy, "portkey").text)
    jsonschema.Draft202012Validator(PORTKEY_SCHEMA).validate(cfg)
    assert cfg["strategy"]["mode"] == "conditional"
    for t in cfg["targets"]:
        legs = t["targets"] if "strategy" in t else [t]  # a one-model route is a bare leg
        if "strategy" in t:  # 408: the gateway's answer to its own request_timeout falls back like a 5xx
            assert t["strategy"] == {"mode": "fallback", "on_status_codes": [408, 429, 500, 502, 503, 504]}
        for leg in legs:
            assert "api_key" not in leg and leg["forward_headers"] in (["authorization"], ["x-api-key"])
            assert isinstance(leg["request_timeout"], int) and leg["request_timeout"] >= 1000  # ms


def test_portkey_schema_mirror_rejects_bad_configs() -> None:
    v = jsonschema.Draft202012Validator(PORTKEY_SCHEMA)
    assert not v.is_valid({"strategy": {"mode": "roundrobin"}, "targets": []})
    assert not v.is_valid({"provider": "openai", "api_key": "x", "retry": {"on_status_codes": [503]}})


@pytest.mark.parametrize("policy", ["today", "tiered+fallback", "cheap-first", "all-to-strongest"])
def test_json_export_matches_its_schema(
    support_ws: routecalc.Worksheet, support_cmp: routecalc.Comparison, policy: str
) -> None:
    jsonschema.Draft202012Validator.check_schema(POLICY_SCHEMA)
    for cmp in (None, support_cmp):
        doc = json.loads(export_policy(support_ws, cmp, policy, "json", support_source()).text)
        jsonschema.Draft202012Validator(POLICY_SCHEMA).validate(doc)


# ---------------------------------------------------------------------------------------------------------
# CLI

runner = CliRunner()
CLI_FAST = ["--samples", "2000"]


def test_cli_stdout_and_out_file(tmp_path: Path) -> None:
    ws = str(ROOT / SUPPORT_REL)
    r = runner.invoke(app, ["export", ws, "-t", "litellm", "-p", "tiered+fallback", *CLI_FAST])
    assert r.exit_code == 0, r.output
    assert yaml.safe_load(r.stdout)["router_settings"]["num_retries"] == 1
    out = tmp_path / "config.yaml"
    r = runner.invoke(app, ["export", ws, "--target", "litellm", "--out", str(out), *CLI_FAST])
    assert r.exit_code == 0, r.output
    assert "model_list" in yaml.safe_load(out.read_text())


def test_cli_refuses_overwrite_without_force(tmp_path: Path) -> None:
    ws = str(ROOT / SUPPORT_REL)
    out = tmp_path / "portkey.json"
    out.write_text("keep me")
    r = runner.invoke(app, ["export", ws, "-t", "portkey", "-p", "cheap-first", "-o", str(out), *CLI_FAST])
    assert r.exit_code == 3
    assert "use --force" in r.output
    assert out.read_text() == "keep me"
    r = runner.invoke(app, ["export", ws, "-t", "portkey", "-p", "cheap-first", "-o", str(out), "--force", *CLI_FAST])
    assert r.exit_code == 0, r.output
    assert json.loads(out.read_text())["strategy"]["mode"] == "conditional"
    assert not list(tmp_path.glob(".*.tmp"))


def test_cli_unknown_policy_exit_2() -> None:
    r = runner.invoke(app, ["export", str(ROOT / SUPPORT_REL), "-t", "json", "-p", "nope", *CLI_FAST])
    assert r.exit_code == 2
    assert "unknown policy 'nope'" in r.output and "cheap-first-routine" in r.output
    assert "Traceback" not in r.output


def test_cli_target_required() -> None:
    r = runner.invoke(app, ["export", str(ROOT / SUPPORT_REL)])
    assert r.exit_code == 2
