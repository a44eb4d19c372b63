"""Hostile price maps and non-finite results: exit 2 with a clear message; no winner ever chosen from NaN."""

from __future__ import annotations

import dataclasses
import json
import math
import os
from pathlib import Path

import pytest
from typer.testing import CliRunner

import routecalc
from routecalc import limits, prices
from routecalc.cli import app
from routecalc.diff import diff_comparisons
from routecalc.errors import InputError, PriceSourceError, WorksheetError
from routecalc.results import pick_winner
from tests.conftest import TODAY

DATA = Path(__file__).resolve().parent / "data"
WS = DATA / "ws-prices.yaml"
PRICE_MAP = DATA / "prices-small.json"
runner = CliRunner()


def commands(pm: Path, out: Path) -> list[list[str]]:
    """Every command that reads a price map."""
    return [
        ["prices", "show", "tiny-model", "--from", str(pm)],
        ["prices", "update", str(WS), "--from", str(pm)],
        ["prices", "update", str(WS), "--from", str(pm), "--out", str(out)],
        ["diff", str(WS), "--prices", str(pm), "--samples", "1000"],
    ]


def price_map(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "pm.json"
    path.write_text(text)
    return path


def with_entry(**fields: object) -> str:
    data = json.loads(PRICE_MAP.read_text())
    data["tiny-model"].update(fields)
    return json.dumps(data)


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ('{"tiny-model": {"max_input_tokens": ' + "9" * 5000 + "}}", "an integer of 5,000 digits (at most 100)"),
        ("[" * 1000 + "]" * 1000, "nested more than 64 levels deep"),  # RecursionError in json.loads
        ("[" * 100_000 + "]" * 100_000, "nested more than 64 levels deep"),
        ('{"a": ' + "[" * 70 + "]" * 70 + "}", "nested more than 64 levels deep"),  # decodes; too deep anyway
        ('{"a": 1, ', "not valid JSON (line 1, column 10"),
        ("\ufeff{}", "not valid JSON"),
        (with_entry(input_cost_per_token=10**50), "not a non-negative number up to 1e15 (10000000000"),
        (with_entry(input_cost_per_token=float("nan")), "tiny-model.input_cost_per_token"),
        (with_entry(input_cost_per_token=1e305), "tiny-model.input_cost_per_token: not a non-negative number"),
    ],
)
def test_price_maps_the_decoder_or_the_checks_refuse_are_exit_2(tmp_path: Path, text: str, needle: str) -> None:
    pm = price_map(tmp_path, text)
    for args in commands(pm, tmp_path / "out.yaml"):
        result = runner.invoke(app, args)
        assert result.exit_code == 2, (args, result.output)
        assert result.exception is None or isinstance(result.exception, SystemExit)
        assert needle in " ".join(result.stderr.split()), (args, result.stderr)
        assert not (tmp_path / "out.yaml").exists()


def test_price_that_converts_past_the_cap_is_refused(tmp_path: Path) -> None:
    # 2 USD per token = 2,000,000 USD per 1M tokens: finite and within 1e15, but no model costs that
    pm = price_map(tmp_path, with_entry(input_cost_per_token=2.0))
    for args in commands(pm, tmp_path / "out.yaml")[1:]:
        result = runner.invoke(app, args)
        assert result.exit_code == 2, (args, result.output)
        flat = " ".join(result.stderr.split())
        assert "implausible prices in the price map (at most 1,000,000 per 1M tokens" in flat
        assert "tiny-model.input_cost_per_token: 2 per token is 2,000,000 USD per 1M tokens (for tiny)" in flat


def test_rate_that_overflows_is_refused(tmp_path: Path) -> None:
    eur = tmp_path / "eur.yaml"
    eur.write_text(WS.read_text().replace("currency: USD", "currency: EUR"))
    result = runner.invoke(app, ["prices", "update", str(eur), "--from", str(PRICE_MAP), "--rate", "1e308"])
    assert result.exit_code == 2 and "implausible prices" in result.stderr


def test_plausible_but_high_price_warns_and_still_updates(tmp_path: Path) -> None:
    # 0.002 USD per token = 2,000 USD per 1M tokens: over the 1,000 warning line, under the cap
    pm = price_map(tmp_path, with_entry(output_cost_per_token=0.002))
    out = tmp_path / "out.yaml"
    result = runner.invoke(app, ["prices", "update", str(WS), "--from", str(pm), "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "tiny: price_out is 2,000 USD per 1M tokens (more than 1,000)" in " ".join(result.output.split())
    assert "price_out: 2000.0" in out.read_text()
    diff = runner.invoke(app, ["diff", str(WS), "--prices", str(pm), "--samples", "1000", "-f", "json"])
    assert diff.exit_code == 0
    assert any("price_out is 2,000 USD per 1M tokens" in w for w in json.loads(diff.stdout)["warnings"])


@pytest.mark.parametrize("kind", ["fifo", "directory", "too-big"])
def test_price_map_must_be_a_bounded_regular_file(tmp_path: Path, kind: str) -> None:
    pm = tmp_path / "pm.json"
    if kind == "fifo":
        os.mkfifo(pm)
    elif kind == "directory":
        pm.mkdir()
    else:
        with pm.open("wb") as fh:
            fh.truncate(limits.MAX_PRICE_MAP_BYTES + 1)
    result = runner.invoke(app, ["prices", "show", "x", "--from", str(pm)])
    assert result.exit_code == 2 and "price map" in result.stderr


def test_repriced_worksheet_is_validated_again(monkeypatch: pytest.MonkeyPatch) -> None:
    # model_copy() checks nothing: a change that makes the worksheet invalid must be refused before evaluating
    ws = routecalc.load_worksheet(WS)
    bad = [prices.PriceChange("tiny", "tiny-model", "changed", (prices.FieldChange("price_in", 0.5, -1.0),))]
    monkeypatch.setattr(prices, "price_updates", lambda *a, **k: bad)
    with pytest.raises(WorksheetError) as info:
        prices.reprice(ws, PRICE_MAP)
    assert "models[0].price_in" in str(info.value) and "re-priced from" in info.value.source


# ---------------------------------------------------------------------------------------------------------
# NaN never wins


def test_pick_winner_skips_non_finite_costs(support_cmp: routecalc.Comparison) -> None:
    ok = [p for p in support_cmp.policies if p.meets_targets]
    assert len(ok) >= 2
    cheapest = min(ok, key=lambda p: p.cost_per_request)
    nan_first = [dataclasses.replace(cheapest, name="nan", cost_per_request=math.nan), *support_cmp.policies]
    assert pick_winner(nan_first) == cheapest.name  # min() over NaN used to return whatever came first
    inf = [dataclasses.replace(p, cost_per_request=math.inf) for p in support_cmp.policies]
    assert pick_winner(inf) is None
    nan_quality = [dataclasses.replace(p, quality=math.nan) for p in support_cmp.policies]
    assert pick_winner(nan_quality) is None


def test_diff_refuses_non_finite_costs_instead_of_reporting_a_flip(support_cmp: routecalc.Comparison) -> None:
    ws = routecalc.load_worksheet(DATA.parent.parent / "worksheets/support-triage.yaml")
    broken = dataclasses.replace(
        support_cmp, policies=[dataclasses.replace(p, monthly_cost=math.nan) for p in support_cmp.policies]
    )
    with pytest.raises(InputError, match="cost or quality is not a finite number for after: today"):
        diff_comparisons(support_cmp, broken, ws, ws, TODAY)


def test_price_source_error_is_an_input_error() -> None:
    assert issubclass(PriceSourceError, InputError)
