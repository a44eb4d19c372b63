"""Price maps: finding the bundled one without importing litellm, reading, matching, converting, rewriting."""

from __future__ import annotations

import importlib.metadata
import importlib.util
import json
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from routecalc import prices
from routecalc.cli import app
from routecalc.errors import InputError, PriceSourceError
from routecalc.worksheet import load_worksheet, parse_yaml, validate_worksheet

DATA = Path(__file__).resolve().parent / "data"
PRICE_MAP = DATA / "prices-small.json"
WS = DATA / "ws-prices.yaml"
runner = CliRunner()


@pytest.fixture(scope="module")
def pm() -> dict:
    return prices.load_price_map(PRICE_MAP)


@pytest.fixture(scope="module")
def ws():
    return load_worksheet(WS)


def by_model(changes: list[prices.PriceChange]) -> dict[str, prices.PriceChange]:
    return {c.model: c for c in changes}


# ---------------------------------------------------------------------------------------------------------
# Units and rounding


def test_per_token_to_worksheet_units_without_float_noise() -> None:
    # 4e-7 USD/token x 1e6 = 0.39999999999999997 in floats -> 0.40 per 1M tokens
    assert prices.per_unit(4e-7, 1e6) == 0.4
    # 1.6e-6 x 1e6 = 1.5999999999999999 -> 1.60 per 1M
    assert prices.per_unit(1.6e-6, 1e6) == 1.6
    # per_1k: 4e-7 x 1e3 = 0.0004 per 1K tokens
    assert prices.per_unit(4e-7, 1e3) == 0.0004
    # a rate: 4e-7 x 1e6 x 0.9 EUR/USD = 0.36 EUR per 1M
    assert prices.per_unit(4e-7, 1e6, 0.9) == 0.36


def test_format_number_is_a_yaml_float_and_keeps_the_users_decimals() -> None:
    assert prices.format_number(2.5, "2.00") == "2.50"  # keeps 2 decimals
    assert prices.format_number(0.15, "0.50") == "0.15"
    assert prices.format_number(0.125, "0.50") == "0.125"  # does not fit 2 decimals: all digits
    assert prices.format_number(1e-7) == "0.0000001"  # never "1e-07", which YAML reads as a string
    assert parse_yaml(f"x: {prices.format_number(1e-7)}", "t")["x"] == 1e-7
    assert prices.format_number(3.0) == "3.0"
    assert prices.format_number(128000) == "128000"


# ---------------------------------------------------------------------------------------------------------
# Reading a price map


def test_load_skips_sample_spec(pm: dict) -> None:
    assert "sample_spec" not in pm
    assert set(pm) == {"tiny-model", "openai/big-model", "big-model", "flow", "free-model"}


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("{not json", "not valid JSON (line 1"),
        ("[1, 2]", "JSON object"),
        ('{"m": {"input_cost_per_token": "0.1"}}', "m.input_cost_per_token: not a non-negative number"),
        ('{"m": {"max_input_tokens": -5}}', "m.max_input_tokens"),
        ('{"m": {"output_cost_per_token": true}}', "m.output_cost_per_token"),
        ('{"m": 3}', "m: entry is not an object"),
    ],
)
def test_bad_price_maps_are_refused(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "p.json"
    path.write_text(text)
    with pytest.raises(PriceSourceError) as err:
        prices.load_price_map(path)
    assert message in str(err.value)


def test_missing_price_map_file(tmp_path: Path) -> None:
    with pytest.raises(PriceSourceError, match="no such price map"):
        prices.load_price_map(tmp_path / "nope.json")


# ---------------------------------------------------------------------------------------------------------
# Finding the bundled map without importing litellm


def _fake_litellm(root: Path, with_map: bool = True) -> Path:
    pkg = root / "litellm"
    pkg.mkdir(parents=True)
    (pkg / "__init__.py").write_text("raise RuntimeError('routecalc must not import litellm')\n")
    if with_map:
        (pkg / prices.BUNDLED_FILE).write_text(PRICE_MAP.read_text())
    return pkg


def test_find_bundled_price_map_does_not_import_litellm(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pkg = _fake_litellm(tmp_path / "site")
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    monkeypatch.delitem(sys.modules, "litellm", raising=False)
    found = prices.find_bundled_price_map()
    assert found == pkg / prices.BUNDLED_FILE
    assert "litellm" not in sys.modules  # found on disk, never imported (its __init__ would raise)
    assert "tiny-model" in prices.load_price_map(found)


def _not_installed(name: str) -> None:
    raise importlib.metadata.PackageNotFoundError(name)


def test_bundled_package_without_the_json(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _fake_litellm(tmp_path / "site", with_map=False)
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    monkeypatch.delitem(sys.modules, "litellm", raising=False)  # find_spec looks there first
    monkeypatch.setattr(importlib.metadata, "files", _not_installed)  # hide a real litellm install, if any
    with pytest.raises(PriceSourceError, match=r"without model_prices_and_context_window_backup\.json"):
        prices.find_bundled_price_map()


def test_no_litellm_installed_says_how_to_fix(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    monkeypatch.setattr(importlib.metadata, "files", _not_installed)
    with pytest.raises(PriceSourceError) as err:
        prices.find_bundled_price_map()
    assert "routecalc[litellm]" in str(err.value)
    assert "--from" in str(err.value)


@pytest.mark.litellm
def test_real_bundled_price_map() -> None:
    """With the routecalc[litellm] extra: the real file is found, read and matches a known OpenAI price."""
    if importlib.util.find_spec("litellm") is None:
        pytest.skip("litellm is not installed (pip install 'routecalc[litellm]')")
    pm = prices.load_price_map(prices.find_bundled_price_map())
    assert len(pm) > 1000
    assert "sample_spec" not in pm
    # gpt-4.1-mini: input_cost_per_token 4e-7 -> 0.40 per 1M tokens (litellm 1.110.2)
    assert prices.per_unit(pm["gpt-4.1-mini"]["input_cost_per_token"], 1e6) == 0.4


# ---------------------------------------------------------------------------------------------------------
# Matching and what would change


def test_lookup_order_and_provider_guard(ws, pm: dict) -> None:
    assert prices.lookup_key(pm, ws.model("tiny")) == "tiny-model"  # bare name after "openai/"
    assert prices.lookup_key(pm, ws.model("big")) == "openai/big-model"  # exact litellm_model first
    assert prices.lookup_key(pm, ws.model("flow")) == "flow"  # the worksheet name, provider acme
    assert prices.lookup_key(pm, ws.model("azure-big")) is None  # "big-model" is OpenAI's price, not Azure's
    assert prices.lookup(pm, ws.model("ghost")) is None


def test_price_updates_hand_computed(ws, pm: dict) -> None:
    changes = by_model(prices.price_updates(ws, pm))
    tiny = changes["tiny"]
    assert tiny.status == "changed"
    assert tiny.key == "tiny-model"
    # input 1.5e-7 x 1e6 = 0.15 (was 0.50: -70 %); output 1.6e-6 x 1e6 = 1.60 = the worksheet's: unchanged
    assert tiny.get("price_in") == prices.FieldChange("price_in", 0.5, 0.15)
    assert tiny.get("price_in").pct == pytest.approx(-70.0)
    assert tiny.get("price_out") is None
    # cache read 3e-8 x 1e6 = 0.03, a field the worksheet did not set; max_input_tokens 128000 (was 100000)
    assert tiny.get("price_cache") == prices.FieldChange("price_cache", None, 0.03)
    assert tiny.get("context_window") == prices.FieldChange("context_window", 100000, 128000)
    big = changes["big"]
    # output 6e-6 x 1e6 = 6.00 (was 8.00); input 2e-6 x 1e6 = 2.00 unchanged; no cache price in the map: kept
    assert [f.field for f in big.fields] == ["price_out", "context_window"]
    assert big.get("price_out").new == 6.0
    # flow: 1.1e-6 x 1e6 = 1.1 (float: 1.1000000000000001 before rounding)
    assert changes["flow"].get("price_in").new == 1.1


def test_missing_and_zero_priced_models_warn_and_keep_their_prices(ws, pm: dict) -> None:
    changes = prices.price_updates(ws, pm)
    status = {c.model: c.status for c in changes}
    assert status["ghost"] == "missing"
    assert status["azure-big"] == "missing"
    assert status["free"] == "unpriced"
    for c in changes:
        if c.status != "changed":
            assert c.fields == ()  # nothing, in particular no zero, is applied
    text = "\n".join(prices.warnings(changes))
    assert "ghost: not in the price map" in text
    assert "'big-model' is priced for provider 'openai', not 'azure'" in text
    assert "free: map entry 'free-model' has input and output prices of 0" in text
    new_ws = prices.apply_changes(ws, changes)
    assert new_ws.model("ghost").price_in == 9.0
    assert new_ws.model("free").price_in == 0.1
    assert new_ws.model("tiny").price_in == 0.15


def test_currency_refused_without_rate_and_converted_with_it(pm: dict) -> None:
    data = parse_yaml(WS.read_text(), str(WS))
    eur = validate_worksheet({**data, "currency": "EUR"})
    with pytest.raises(PriceSourceError, match="Pass --rate"):
        prices.price_updates(eur, pm)
    # 1.5e-7 USD x 1e6 x 0.9 EUR/USD = 0.135 EUR per 1M tokens
    changes = by_model(prices.price_updates(eur, pm, rate=0.9))
    assert changes["tiny"].get("price_in").new == 0.135
    usd = validate_worksheet(data)
    with pytest.raises(InputError, match="only for worksheets in another currency"):
        prices.price_updates(usd, pm, rate=0.9)


def test_per_1k_worksheet(pm: dict) -> None:
    data = parse_yaml(WS.read_text(), str(WS))
    k = validate_worksheet({**data, "price_unit": "per_1k"})
    changes = by_model(prices.price_updates(k, pm))
    # 1.5e-7 x 1e3 = 0.00015 per 1K tokens (vs the worksheet's 0.50 per 1K)
    assert changes["tiny"].get("price_in").new == 0.00015


# ---------------------------------------------------------------------------------------------------------
# Rewriting the user's YAML


def test_update_text_edits_only_the_changed_values(ws, pm: dict) -> None:
    old = WS.read_text()
    new = prices.update_worksheet_text(old, prices.price_updates(ws, pm), str(WS))
    # Exactly these edits, every other byte (comments, blank lines, spacing, flow style) as it was:
    expected = (
        old.replace("    price_in: 0.50    # was", "    price_in: 0.15    # was")  # value replaced, comment kept
        # a new field goes under its nearest preceding sibling, same indentation, the sibling's 2 decimals
        .replace(
            "    price_out: 1.60\n    context_window: 100000\n",
            "    price_out: 1.60\n    price_cache: 0.03\n    context_window: 128000\n",
        )
        .replace(
            "    price_out: 8.00\n    price_cache: 0.50\n",
            "    price_out: 6.00\n    price_cache: 0.50\n    context_window: 1047576\n",
        )
        .replace(
            "{name: flow, provider: acme, price_in: 1.0, price_out: 2.0, latency",
            "{name: flow, provider: acme, price_in: 1.1, price_out: 2.0, price_cache: 0.5, latency",
        )
    )
    assert expected != old
    assert new == expected
    reparsed = validate_worksheet(parse_yaml(new, "new"))
    assert reparsed.model("tiny").price_in == 0.15
    assert reparsed.model("big").price_out == 6.0
    assert reparsed.model("flow").price_cache == 0.5
    assert reparsed.model("ghost").price_in == 9.0


def test_update_text_without_changes_is_identity(ws) -> None:
    old = WS.read_text()
    assert prices.update_worksheet_text(old, [], str(WS)) == old


def test_update_text_keeps_crlf_line_endings(ws, pm: dict) -> None:
    old = WS.read_text().replace("\n", "\r\n")
    new = prices.update_worksheet_text(old, prices.price_updates(ws, pm), "crlf")
    assert "price_in: 0.15    # was the list price in June\r\n" in new
    assert "\n" not in new.replace("\r\n", "")


def test_update_text_refuses_when_an_alias_would_change_another_model(pm: dict) -> None:
    text = WS.read_text().replace("price_in: 0.50", "price_in: &p 0.50").replace("price_in: 9.00", "price_in: *p")
    ws = validate_worksheet(parse_yaml(text, "anchors"))
    with pytest.raises(InputError, match="anchors"):
        prices.update_worksheet_text(text, prices.price_updates(ws, pm), "anchors")


# ---------------------------------------------------------------------------------------------------------
# CLI


def test_cli_update_dry_run_writes_nothing(tmp_path: Path) -> None:
    w = tmp_path / "ws.yaml"
    w.write_bytes(WS.read_bytes())
    before = sorted(tmp_path.iterdir())
    result = runner.invoke(app, ["prices", "update", str(w), "--from", str(PRICE_MAP)])
    assert result.exit_code == 0, result.output
    assert "dry run" in result.output
    assert "ghost" in result.output and "not in the price map" in result.output
    assert w.read_bytes() == WS.read_bytes()
    assert sorted(tmp_path.iterdir()) == before


def test_cli_update_out_refuses_overwrite_without_force(tmp_path: Path) -> None:
    out = tmp_path / "w2.yaml"
    args = ["prices", "update", str(WS), "--from", str(PRICE_MAP), "--out", str(out)]
    first = runner.invoke(app, args)
    assert first.exit_code == 0, first.output
    written = out.read_text()
    assert "price_in: 0.15    # was the list price in June" in written
    out.write_text("my own file\n")
    second = runner.invoke(app, args)
    assert second.exit_code == 3
    assert "use --force" in second.output
    assert out.read_text() == "my own file\n"
    third = runner.invoke(app, [*args, "--force"])
    assert third.exit_code == 0, third.output
    assert out.read_text() == written


def test_cli_update_in_place(tmp_path: Path) -> None:
    w = tmp_path / "ws.yaml"
    w.write_bytes(WS.read_bytes())
    result = runner.invoke(app, ["prices", "update", str(w), "--from", str(PRICE_MAP), "--in-place"])
    assert result.exit_code == 0, result.output
    assert load_worksheet(w).model("tiny").price_in == 0.15
    assert [p.name for p in tmp_path.iterdir()] == ["ws.yaml"]  # no temp file left behind


@pytest.mark.parametrize(
    "args",
    [
        ["--from", "nope.json"],
        ["--from", str(PRICE_MAP), "--out", "x.yaml", "--in-place"],
        ["--from", str(PRICE_MAP), "--rate", "0.9"],
    ],
)
def test_cli_update_errors_exit_2_without_traceback(args: list[str]) -> None:
    result = runner.invoke(app, ["prices", "update", str(WS), *args])
    assert result.exit_code == 2, result.output
    assert "error:" in result.output
    assert "Traceback" not in result.output


def test_cli_show(tmp_path: Path) -> None:
    result = runner.invoke(app, ["prices", "show", "tiny-model", "big", "--from", str(PRICE_MAP)])
    assert result.exit_code == 0, result.output
    # tiny-model: 1.5e-7 x 1e6 = $0.150 per 1M input tokens; big matches "big-model" and "openai/big-model"
    assert "tiny-model" in result.output and "$0.150" in result.output
    assert "openai/big-model" in result.output
    js = runner.invoke(app, ["prices", "show", "flow", "--from", str(PRICE_MAP), "--format", "json"])
    assert js.exit_code == 0, js.output
    assert json.loads(js.stdout)["models"]["flow"]["input_cost_per_token"] == 1.1e-6


def test_cli_show_unknown_model_exit_2() -> None:
    result = runner.invoke(app, ["prices", "show", "no-such-model", "--from", str(PRICE_MAP)])
    assert result.exit_code == 2
    assert "not in the price map" in result.output
    assert "Traceback" not in result.output


def test_cli_show_json_stays_parseable_with_notes_and_misses() -> None:
    result = runner.invoke(app, ["prices", "show", "model", "no-such-model", "--from", str(PRICE_MAP), "-f", "json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)  # notes and warnings go to stderr
    assert data["currency"] == "USD" and data["models"]
    assert "'no-such-model' is not in the price map" in result.stderr
