"""Worksheet loading: strict, every problem at once, each with its field path."""

from __future__ import annotations

import copy
import math
from pathlib import Path

import pytest

import routecalc
from routecalc.errors import InputError, WorksheetError
from routecalc.worksheet import Band, apply_overlay, json_schema, load_worksheet, parse_yaml
from tests.conftest import shipped_worksheets
from tests.helpers import two_model_sheet, with_policies


def problems_of(sheet: dict) -> dict[str, str]:
    with pytest.raises(WorksheetError) as info:
        routecalc.validate_worksheet(sheet)
    return {p.path: p.message for p in info.value.problems}


@pytest.mark.parametrize("path", shipped_worksheets(), ids=lambda p: p.name)
def test_shipped_worksheets_are_valid(path: Path) -> None:
    ws = load_worksheet(path)
    assert math.isclose(sum(ws.shares), 1.0, abs_tol=1e-9)
    assert ws.policies


def test_band_lognormal_mean_is_not_the_median() -> None:
    band = Band(p50=1000, p95=3000)
    # sigma = ln(3000/1000)/1.6449 = 1.0986/1.6449 = 0.6679; mean = 1000 * exp(0.6679^2 / 2) = 1249.8
    assert band.sigma == pytest.approx(0.66790, rel=1e-4)
    assert band.expected == pytest.approx(1249.8, rel=1e-4)
    assert Band.model_validate(700).expected == 700  # a number is a fixed value
    assert Band.model_validate({"mean": 5}).sigma == 0


def test_every_problem_reported_at_once_with_field_paths() -> None:
    sheet = with_policies(
        two_model_sheet(),
        {"name": "p", "kind": "static", "routes": {"t": "missing-model"}},
        {"name": "q", "kind": "cascade", "routes": {"nope": ["small", "large"]}},
    )
    sheet["models"][0]["price_in"] = -1
    sheet["models"][1]["latency"] = {"ttft_s": {"p50": 2, "p95": 1}, "tpot_s": 0.01}
    sheet["tasks"][0]["pass_rates"]["small"] = 1.2
    sheet["tasks"][0]["traffic_sharee"] = 1  # typo
    sheet["baseline"] = "nonexistent"
    got = problems_of(sheet)
    assert "should be greater than or equal to 0 (got -1)" in got["models[0].price_in"]
    assert "p95 (1) is below p50 (2)" in got["models[1].latency.ttft_s"]
    assert "less than or equal to 1" in got["tasks[0].pass_rates.small"]
    assert got["tasks[0].traffic_sharee"] == "unknown key (typo?)"
    assert "unknown model 'missing-model'" in got["policies[0].routes.t[0].model"]
    assert "unknown category 'nope'" in got["policies[1].routes.nope"]
    assert "skips category 't'" in got["policies[1].routes"]
    assert "names no policy" in got["baseline"]


def test_shares_must_sum_to_one_no_silent_renormalisation() -> None:
    sheet = two_model_sheet()
    second = copy.deepcopy(sheet["tasks"][0]) | {"name": "u", "traffic_share": 0.3}
    sheet["tasks"].append(second)  # 1.0 + 0.3
    assert "shares sum to 1.3" in problems_of(sheet)["tasks[*].traffic_share"]


def test_percent_shares() -> None:
    sheet = two_model_sheet(share_unit="percent")
    sheet["tasks"][0]["traffic_share"] = 100
    assert routecalc.validate_worksheet(sheet).shares == [1.0]


def test_pair_without_pass_rate_and_gate_without_validator() -> None:
    sheet = with_policies(two_model_sheet(), {"name": "c", "kind": "cascade", "routes": {"t": ["small", "large"]}})
    del sheet["tasks"][0]["pass_rates"]["large"]
    del sheet["tasks"][0]["validator"]
    got = problems_of(sheet)
    assert "no pass rate for ('t', 'large')" in got["policies[0].routes.t[1].model"]
    assert "needs tasks[t].validator" in got["policies[0].routes.t[0]"]


def test_chain_targets_only_point_forward() -> None:
    steps = [{"model": "small", "gate": True, "on_reject": 0}, {"model": "large", "on_failure": "deliver"}]
    sheet = with_policies(two_model_sheet(), {"name": "loop", "kind": "chain", "routes": {"t": steps}})
    got = problems_of(sheet)
    assert "cannot loop" in got["policies[0].routes.t[0].on_reject"]
    assert "no answer to deliver" in got["policies[0].routes.t[1].on_failure"]


def test_duplicate_yaml_keys_are_an_error() -> None:
    with pytest.raises(WorksheetError) as info:
        parse_yaml("name: a\nname: b\n", "w.yaml")
    assert "duplicate key 'name'" in str(info.value)
    assert info.value.problems[0].path == "line 2, column 1"


def test_missing_file_is_an_input_error(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no such file"):
        load_worksheet(tmp_path / "absent.yaml")


def test_strict_types_no_string_numbers() -> None:
    sheet = two_model_sheet()
    sheet["models"][0]["price_in"] = "0.15"
    assert "valid number" in problems_of(sheet)["models[0].price_in"]


def test_csv_task_table_errors_carry_paths(tmp_path: Path) -> None:
    (tmp_path / "tasks.csv").write_text(
        "name,traffic_share,tokens_in,tokens_out,quality_threshold,pass_rate.small,colour\n"
        "t,1.0,1000,500,0.9,abc,blue\n"
    )
    sheet = two_model_sheet(tasks="tasks.csv")
    with pytest.raises(WorksheetError) as info:
        routecalc.validate_worksheet(sheet, base_dir=tmp_path)
    got = {p.path: p.message for p in info.value.problems}
    assert "not a number" in got["tasks[0].pass_rate.small"]
    assert "unknown column 'colour'" in got["tasks[0].colour"]


def test_overlay_merges_by_name_and_scales() -> None:
    base = two_model_sheet()
    out = apply_overlay(base, {"models": [{"name": "large", "price_out": 5.0}], "scale": {"models": {"price_in": 2}}})
    prices = {m["name"]: (m["price_in"], m["price_out"]) for m in out["models"]}
    assert prices == {"small": (2.0, 2.0), "large": (20.0, 5.0)}
    assert base["models"][1]["price_out"] == 20.0  # the base is not mutated


def test_json_schema_describes_the_format() -> None:
    schema = json_schema()
    assert schema["title"] == "routecalc worksheet"
    assert {"models", "tasks", "volume", "name"} <= set(schema["required"])
    assert "traffic_share" in schema["$defs"]["TaskSpec"]["properties"]


@pytest.mark.parametrize("path", shipped_worksheets(), ids=lambda p: p.name)
def test_shipped_worksheets_validate_against_the_json_schema(path: Path) -> None:
    """What an editor does with the schema: the shorthands users write (numbers, model names) must pass."""
    import datetime as dt
    import json

    import jsonschema
    import yaml

    data = yaml.safe_load(path.read_text())
    as_editor_sees_it = json.loads(json.dumps(data, default=lambda v: v.isoformat() if isinstance(v, dt.date) else v))
    jsonschema.validate(as_editor_sees_it, json_schema())
    broken = as_editor_sees_it | {"currency": "usd"}
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(broken, json_schema())


@pytest.mark.parametrize(
    ("profile", "path", "message"),
    [
        ({"hourly": [1] * 23}, "volume.profile.hourly", "at least 24"),
        ({"weekly": [0] * 7}, "volume.profile", "weekly weights are all zero"),
        ({"spikes": [{"day": 32, "factor": 2}]}, "volume.profile.spikes[0].day", "less than or equal to 31"),
        ({"spikes": [{"day": 3, "factor": 2}, {"day": 3, "factor": 1}]}, "volume.profile", "twice"),
        ({"growth_per_month": -1}, "volume.profile.growth_per_month", "greater than -1"),
    ],
)
def test_traffic_profile_is_checked(profile: dict, path: str, message: str) -> None:
    s = two_model_sheet()
    s["volume"]["profile"] = profile
    with pytest.raises(WorksheetError) as info:
        routecalc.validate_worksheet(s)
    assert any(p.path == path and message in p.message for p in info.value.problems), info.value.problems


def test_a_worksheet_round_trips_through_its_document() -> None:
    # diff and prices re-validate edited copies through as_document(): every feature must survive the trip
    from tests.test_patterns import everything_sheet, latency_everything_sheet

    sheets = [load_worksheet(p) for p in shipped_worksheets()]
    sheets += [routecalc.validate_worksheet(s) for s in (everything_sheet(), latency_everything_sheet())]
    for ws in sheets:
        assert routecalc.validate_worksheet(ws.as_document()) == ws, ws.name


def test_constraints_name_known_models_with_field_paths() -> None:
    """Bad optimize constraints are worksheet errors: every one at once, each at its path."""
    sheet = two_model_sheet()
    sheet["constraints"] = {"allowed_models": ["small", "typo-model"], "forbidden_models": ["large"]}
    sheet["tasks"][0]["constraints"] = {
        "allowed_models": ["large", "ghost"],  # large is forbidden worksheet-wide; ghost is unknown
        "forbidden_models": ["small"],
        "max_escalation": 1.5,
    }
    got = problems_of(sheet)
    assert got["constraints.allowed_models[1]"] == "unknown model 'typo-model'"
    assert got["tasks[0].constraints.allowed_models[1]"] == "unknown model 'ghost'"
    assert "forbidden worksheet-wide" in got["tasks[0].constraints.allowed_models[0]"]
    assert "less than or equal to 1" in got["tasks[0].constraints.max_escalation"]


def test_constraints_allowed_model_needs_a_pass_rate_and_lists_must_not_overlap() -> None:
    sheet = two_model_sheet()
    del sheet["tasks"][0]["pass_rates"]["large"]
    sheet["tasks"][0]["constraints"] = {"allowed_models": ["large"]}
    assert "no pass rate for ('t', 'large')" in problems_of(sheet)["tasks[0].constraints.allowed_models[0]"]
    sheet = two_model_sheet(constraints={"allowed_models": ["small"], "forbidden_models": ["small"]})
    assert "small both allowed and forbidden" in problems_of(sheet)["constraints"]


def test_constraints_from_a_csv_task_table(tmp_path: Path) -> None:
    (tmp_path / "tasks.csv").write_text(
        "name,traffic_share,tokens_in,tokens_out,quality_threshold,pass_rate.small,pass_rate.large,"
        "constraints.allowed_models,constraints.max_cost_per_request\n"
        "t,1.0,1000,500,0.9,0.8,0.95,small; large,0.01\n"
    )
    ws = routecalc.validate_worksheet(two_model_sheet(tasks="tasks.csv"), base_dir=tmp_path)
    cons = ws.tasks[0].constraints
    assert cons is not None and cons.allowed_models == ["small", "large"] and cons.max_cost_per_request == 0.01


def test_loading_pauses_the_garbage_collector_and_restores_it() -> None:
    # parse_yaml, validate_worksheet and compile_worksheet build big acyclic structures with the cyclic collector
    # paused (routecalc/gcpause.py); it must be running again afterwards, also when the input is refused
    import gc

    from routecalc.gcpause import gc_paused

    seen = []
    with gc_paused():
        seen.append(gc.isenabled())
        with gc_paused():
            seen.append(gc.isenabled())
        seen.append(gc.isenabled())  # the inner pause does not end the outer one
    assert seen == [False, False, False] and gc.isenabled()
    routecalc.compile_worksheet(routecalc.validate_worksheet(parse_yaml("name: x\n", "t") | two_model_sheet()))
    assert gc.isenabled()
    with pytest.raises(WorksheetError):
        parse_yaml("name: [\n", "t")  # not YAML
    assert gc.isenabled()
    with pytest.raises(WorksheetError):
        routecalc.validate_worksheet({"name": 1})  # not a worksheet
    assert gc.isenabled()
    gc.disable()
    try:  # a caller that has paused it itself keeps it paused
        routecalc.validate_worksheet(two_model_sheet())
        assert not gc.isenabled()
    finally:
        gc.enable()
