"""The CI contract of compare: --expect, --require-winner, --max-monthly-cost and their exit codes (0 ok,
1 check failed, 2 invalid input, 3 refused overwrite)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

import routecalc
from routecalc.cli import app
from routecalc.errors import CheckFailed, InputError, OutputExistsError, PolicyError
from routecalc.gate import Checks, run_checks
from tests.helpers import two_model_sheet, with_policies

runner = CliRunner()
FAST = ["--samples", "20000", "--today", "2026-11-25"]
WINNER = "cheap-first-routine"  # support-triage: $4,685/month


def test_exit_codes_of_the_error_classes() -> None:
    assert (CheckFailed(["x"]).exit_code, InputError("x").exit_code, OutputExistsError("x").exit_code) == (1, 2, 3)


def test_expect_the_winner_passes(support_path: Path) -> None:
    result = runner.invoke(app, ["compare", str(support_path), *FAST, "--expect", WINNER, "--require-winner"])
    assert result.exit_code == 0, result.output
    assert f"✓ check expect: the winner is {WINNER}, as expected" in result.output


def test_expect_another_policy_fails_with_exit_1_after_the_full_output(support_path: Path) -> None:
    result = runner.invoke(app, ["compare", str(support_path), *FAST, "--expect", "tiered"], env={"COLUMNS": "200"})
    assert result.exit_code == 1
    assert "Winner: cheap-first-routine" in result.stdout  # the table is shown in full first
    assert "expected winner tiered, got cheap-first-routine" in result.stderr
    assert "cheap-first-routine $4,685/month vs tiered $6,827/month" in " ".join(result.stderr.split())


def test_expect_a_policy_that_misses_a_target_names_the_miss(support_path: Path) -> None:
    result = runner.invoke(app, ["compare", str(support_path), *FAST, "--expect", "cheap-first"])
    assert result.exit_code == 1
    assert "cheap-first misses a target: dispute: quality 86.49% < 90.00%" in " ".join(result.stderr.split())


def test_unknown_expected_policy_is_bad_input_before_any_estimate(support_path: Path) -> None:
    result = runner.invoke(app, ["compare", str(support_path), "--expect", "ghost"])
    assert result.exit_code == 2
    assert "--expect: unknown policy 'ghost'" in result.stderr


@pytest.mark.parametrize(
    ("limit", "code"),
    [("5000", 0), ("4000", 1)],  # the winner costs $4,685/month
)
def test_max_monthly_cost_of_the_winner(support_path: Path, limit: str, code: int) -> None:
    result = runner.invoke(app, ["compare", str(support_path), *FAST, "--max-monthly-cost", limit])
    assert result.exit_code == code, result.output
    if code:
        assert (
            "cheap-first-routine (the winner) costs $4,685/month, more than $4,000/month (by $685/month)"
            in " ".join(result.stderr.split())
        )


def test_max_monthly_cost_applies_to_the_expected_policy(support_path: Path) -> None:
    # today is $5,880/month: under $6,000, but it is not the winner
    result = runner.invoke(
        app, ["compare", str(support_path), *FAST, "-f", "json", "--expect", "today", "--max-monthly-cost", "6000"]
    )
    assert result.exit_code == 1
    checks = {c["check"]: c for c in json.loads(result.stdout)["checks"]}
    assert checks["max_monthly_cost"]["ok"] is True and checks["expect"]["ok"] is False
    assert checks["max_monthly_cost"]["message"] == "today costs $5,880/month <= $6,000/month"


@pytest.mark.parametrize("value", ["-1", "nan", "inf"])
def test_bad_cost_ceiling_is_bad_input(support_path: Path, value: str) -> None:
    result = runner.invoke(app, ["compare", str(support_path), "--max-monthly-cost", value])
    assert result.exit_code == 2, result.output


def no_winner_sheet() -> routecalc.Worksheet:
    sheet = with_policies(two_model_sheet(), {"name": "small", "kind": "static", "routes": {"t": "small"}})
    sheet["tasks"][0]["quality_threshold"] = 0.999  # nothing passes 99.9 %
    return routecalc.validate_worksheet(sheet)


def test_require_winner_fails_when_no_policy_meets_every_target() -> None:
    c = routecalc.compare(no_winner_sheet(), samples=20_000)
    assert c.winner is None
    [v] = run_checks(c, Checks(require_winner=True))
    assert not v.ok and v.message.startswith("no policy meets every target (nearest misses: small: t: quality")
    [cost] = run_checks(c, Checks(max_monthly_cost=1e9))
    assert not cost.ok and cost.message == "no winner, so nothing to hold to $1,000,000,000/month"
    assert run_checks(c, Checks()) == []


def test_require_winner_cli_exit_code(tmp_path: Path) -> None:
    import yaml

    path = tmp_path / "w.yaml"
    sheet = with_policies(two_model_sheet(), {"name": "small", "kind": "static", "routes": {"t": "small"}})
    sheet["tasks"][0]["quality_threshold"] = 0.999
    path.write_text(yaml.safe_dump(sheet))
    assert runner.invoke(app, ["compare", str(path), "--samples", "2e4"]).exit_code == 0  # no winner is not a failure
    assert runner.invoke(app, ["compare", str(path), "--samples", "2e4", "--require-winner"]).exit_code == 1


def test_checks_validate_names() -> None:
    with pytest.raises(PolicyError):
        Checks(expect="x").validate(["a", "b"])
    Checks(expect="a").validate(["a", "b"])
