"""The worksheet's operations section: valid examples load, every problem is reported at once with its path."""

from __future__ import annotations

import copy

import pytest

import routecalc
from routecalc.errors import WorksheetError
from tests.helpers import two_model_sheet, with_policies


def sheet(**operations) -> dict:
    base = with_policies(
        two_model_sheet(defaults={"allowed_fails": 3, "cooldown_s": 30}),
        {"name": "main", "kind": "static", "routes": {"t": "large"}},
        {"name": "cheap", "kind": "static", "routes": {"t": "small"}},
    )
    base["models"][1]["provider"] = "anthropic"
    base["models"][1]["rpm"] = 100
    base["operations"] = operations
    return base


def problems(data: dict) -> dict[str, str]:
    with pytest.raises(WorksheetError) as exc:
        routecalc.validate_worksheet(data)
    return {p.path: p.message for p in exc.value.problems}


def test_a_full_operations_section_loads() -> None:
    ws = routecalc.validate_worksheet(
        sheet(
            budget={"monthly": 50, "downgrade_above": 0.9, "resume_below": 0.8, "categories": ["t"], "policy": "cheap"},
            outages=[
                {"provider": "anthropic", "incidents_per_month": 2, "duration_min": {"p50": 20, "p95": 120}},
                {"model": "small", "day": 3, "start_hour": 14.5, "duration_min": 90, "error": "5xx"},
            ],
            breaker={"after_cooldown": "reset"},
            rate_limits={"on_limit": "queue"},
            load_routing={"above_rpm": 120, "categories": ["t"], "policy": "cheap"},
        )
    )
    ops = ws.operations
    assert ops is not None and ops.budget is not None and ops.breaker is not None
    assert ops.budget.resume == 0.8 and ops.budget.pace == "linear" and ops.budget.check_every_min == 5
    assert ops.outages[0].duration_min.p95 == 120 and ops.outages[1].duration_min.expected == 90
    assert ops.breaker.allowed_fails is None  # from defaults.allowed_fails, resolved by the time engine
    assert ops.rate_limits is not None and ops.rate_limits.on_limit == "queue"


def test_no_operations_section_is_fine() -> None:
    data = sheet()
    del data["operations"]
    assert routecalc.validate_worksheet(data).operations is None


def test_every_operations_problem_at_once() -> None:
    data = sheet(
        budget={"monthly": 50, "daily": 2, "categories": ["t", "nope"], "policy": "dearer"},
        outages=[
            {"provider": "azure", "incidents_per_month": 2, "duration_min": 30},
            {"model": "medium", "day": 3, "duration_min": 30},
            {"model": "small", "incidents_per_month": 1, "day": 2, "duration_min": 30},
            {"model": "small", "day": 2, "duration_min": {"p50": 30, "p95": 10}},
        ],
        breaker={"models": ["small", "tiny"], "window_s": 0},
        load_routing={"above_rpm": 100, "categories": ["t", "t"], "policy": "cheap"},
        surprise=1,
    )
    found = problems(data)
    assert found == {
        "operations.budget": "give exactly one of monthly, daily",
        "operations.outages[0].provider": "no model is served by 'azure' (providers: anthropic, openai)",
        "operations.outages[1].model": "unknown model 'medium'",
        "operations.outages[2]": "give incidents_per_month (random outages) or day (a scheduled one), not both",
        "operations.outages[3].duration_min": "p95 (10) is below p50 (30)",
        "operations.breaker.window_s": "Input should be greater than 0 (got 0)",
        "operations.load_routing.categories": "a category is named twice",
        "operations.surprise": "unknown key (typo?)",
    }


def test_cross_checks_of_parts_that_validate_alone() -> None:
    data = sheet(
        budget={"monthly": 50, "categories": ["nope"], "policy": "dearer"},
        breaker={"models": ["tiny"]},
        rate_limits={},
    )
    del data["models"][1]["rpm"]
    data["defaults"] = {}
    found = problems(data)
    assert found == {
        "operations.budget.categories[0]": "unknown category 'nope'",
        "operations.budget.policy": "unknown policy 'dearer'",
        "operations.breaker.allowed_fails": "give it here or in defaults.allowed_fails",
        "operations.breaker.cooldown_s": "give it here or in defaults.cooldown_s",
        "operations.breaker.models[0]": "unknown model 'tiny'",
        "operations.rate_limits": "no model has rpm or tpm: give models[..].rpm / tpm",
    }


@pytest.mark.parametrize(
    ("part", "value", "path", "message"),
    [
        ("budget", {"daily": 5, "categories": ["t"], "policy": "cheap", "resume_below": 0.95}, "operations.budget",
         "resume_below (0.95) is above downgrade_above (0.9)"),
        ("outages", [{"model": "small", "day": 1, "start_hour": 24, "duration_min": 5}],
         "operations.outages[0].start_hour", "Input should be less than 24 (got 24)"),
        ("outages", [{"model": "small", "incidents_per_month": 1, "start_hour": 3, "duration_min": 5}],
         "operations.outages[0]", "start_hour needs day"),
        ("outages", [{"model": "small", "day": 1, "duration_min": 0}], "operations.outages[0]",
         "duration_min must be positive"),
        ("rate_limits", {"on_limit": "drop"}, "operations.rate_limits.on_limit",
         "Input should be 'spill' or 'queue' (got 'drop')"),
    ],
)  # fmt: skip
def test_one_problem(part: str, value, path: str, message: str) -> None:
    data = sheet(**{part: copy.deepcopy(value)})
    assert problems(data) == {path: message}
