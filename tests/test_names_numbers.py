"""Names without control characters, plausible finite prices and numbers, seeds in range: refused at load with a
field path (exit 2), or warned about, never carried into an overflow, a terminal escape or an export."""

from __future__ import annotations

import copy
import datetime as dt
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

import routecalc
from routecalc import limits
from routecalc.cli import app
from routecalc.errors import InputError, WorksheetError
from routecalc.worksheet import read_yaml
from routecalc.worksheet.names import secret_like
from tests.conftest import WORKSHEETS
from tests.helpers import two_model_sheet, with_policies

SUPPORT = WORKSHEETS / "support-triage.yaml"
runner = CliRunner()


def problems_of(sheet: dict) -> dict[str, str]:
    """Field path -> its problems (joined by " | ")."""
    with pytest.raises(WorksheetError) as info:
        routecalc.validate_worksheet(sheet)
    out: dict[str, str] = {}
    for p in info.value.problems:
        out[p.path] = f"{out[p.path]} | {p.message}" if p.path in out else p.message
    return out


def sheet_with_policy() -> dict:
    return with_policies(two_model_sheet(), {"name": "p", "kind": "fallback", "routes": {"t": ["small", "large"]}})


BAD = ["a\x1bb", "a\nb", "a\rb", "a\u2028b", "a\u2029b", "a\x00b", "a\x7fb", "a\x85b", "a\tb", "a\u202eb"]


@pytest.mark.parametrize("bad", BAD, ids=lambda s: f"U+{ord(s[1]):04X}")
@pytest.mark.parametrize(
    ("where", "path"),
    [
        (lambda s, v: s.update(name=v), "name"),
        (lambda s, v: s["models"][0].update(name=v), "models[0].name"),
        (lambda s, v: s["models"][0].update(provider=v), "models[0].provider"),
        (lambda s, v: s["models"][0].update(litellm_model=v), "models[0].litellm_model"),
        (lambda s, v: s["tasks"][0].update(name=v), "tasks[0].name"),
        (lambda s, v: s["policies"][0].update(name=v), "policies[0].name"),
        (lambda s, v: s["policies"][0]["routes"]["t"].__setitem__(0, v), "policies[0].routes.t[0].model"),
        (lambda s, v: s.update(baseline=v), "baseline"),
    ],
)
def test_control_characters_in_names_are_refused_with_field_path(bad: str, where: object, path: str) -> None:
    sheet = sheet_with_policy()
    where(sheet, bad)  # type: ignore[operator]
    got = problems_of(sheet)
    assert f"contains the control character U+{ord(bad[1]):04X} at position 2" in got[path], got


def test_control_characters_in_name_keys_are_refused() -> None:
    sheet = sheet_with_policy()
    sheet["tasks"][0]["pass_rates"]["sm\x1ball"] = 0.5
    sheet["policies"][0]["routes"]["t\u2028"] = ["small"]
    got = problems_of(sheet)
    assert "U+001B" in got["tasks[0].pass_rates.sm\\x1ball.[key]"]  # the path itself shows the escape
    assert "U+2028" in got["policies[0].routes.t\\u2028.[key]"]


def test_descriptions_may_have_newlines_but_no_other_controls() -> None:
    sheet = sheet_with_policy()
    sheet["description"] = "line one\n\tline two"
    sheet["policies"][0]["description"] = "ok"
    routecalc.validate_worksheet(sheet)
    sheet["description"] = "x\u2028# injected: yes"  # U+2028 ends a YAML comment line: config injection
    sheet["policies"][0]["description"] = "x\x1b[2J"
    got = problems_of(sheet)
    assert "U+2028" in got["description"] and "U+001B" in got["policies[0].description"]


@pytest.mark.parametrize("name", ["Tier $ vs $$", "[bold]x[/bold]", ":smile:", "=cmd|' /C calc'!A0", "é 模型 🚀"])
def test_printable_odd_names_are_allowed(name: str) -> None:
    sheet = sheet_with_policy()
    sheet["policies"][0]["name"] = name
    sheet["name"] = name
    assert routecalc.validate_worksheet(sheet).policies[0].name == name


def test_every_character_a_name_refuses_is_non_printable() -> None:
    # names.py skips its search for a printable name (str.isprintable): that is only right if no character the
    # search refuses is printable. Checked over every code point.
    import sys

    from routecalc.worksheet.names import _FORBIDDEN

    refused = [c for c in map(chr, range(sys.maxunicode + 1)) if _FORBIDDEN.search(c)]
    assert len(refused) > 60  # C0, DEL, C1, U+2028/9, bidi controls
    assert not [c for c in refused if c.isprintable()]


def test_names_longer_than_the_limit_are_refused() -> None:
    sheet = sheet_with_policy()
    sheet["policies"][0]["name"] = "p" * (limits.MAX_NAME_CHARS + 1)
    assert "at most 200 characters" in problems_of(sheet)["policies[0].name"]


@pytest.mark.parametrize("value", ["os.environ/SECRET_MODEL", "OS.ENVIRON/x", " os.environ/x"])
def test_litellm_model_from_the_environment_is_refused(value: str) -> None:
    sheet = two_model_sheet()
    sheet["models"][0]["litellm_model"] = value
    msg = problems_of(sheet)["models[0].litellm_model"]
    assert "LiteLLM reads 'os.environ/...' as an environment variable" in msg


def test_litellm_model_refusal_is_exit_2_in_the_cli(tmp_path: Path) -> None:
    data = read_yaml(SUPPORT)
    data["models"][1]["litellm_model"] = "os.environ/SECRET"
    path = tmp_path / "w.yaml"
    path.write_text(yaml.safe_dump(data))
    result = runner.invoke(app, ["export", str(path), "-t", "litellm"])
    assert result.exit_code == 2 and "models[1].litellm_model" in result.stderr


# ---------------------------------------------------------------------------------------------------------
# Secrets


@pytest.mark.parametrize(
    "text",
    [
        "call with sk-proj-abcdefghijklmnopqrstuvwx",
        "sk-ant-api03-abcdefghijklmnop",
        "AKIAIOSFODNN7EXAMPLE",
        "token ghp_aBcDeFgHiJkLmNoPqRsTuVwXyZ0123456789",
        "key: Xk9mP2vL8qR4tW7zN3bJ6hF1dS5aG0cY",  # 32 random letters and digits, ~4.9 bits per character
        "Xk9mP2vL8qR4tW7z/N3bJ6hF1dS5aG0cY+Qw",  # base64 with separators: unbroken runs of 16
    ],
)
def test_key_like_strings_are_recognised(text: str) -> None:
    assert secret_like(text) is not None


@pytest.mark.parametrize(
    "text",
    [
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",  # SHA-256 hex: 4.0 bits at most
        "123e4567-e89b-12d3-a456-426614174000",  # a UUID
        "cheap-first-routine-with-fallback-to-strongest-model",  # long, but words
        "anthropic/claude-sonnet-4-20250514",
        "together_ai/mistralai/Mixtral-8x7B-Instruct-v0.1",  # mixed case and digits, but short words (mmlu-cascade)
        "Customer-support inbox. Most tickets are routine; refunds need care.",
    ],
)
def test_ordinary_text_is_not_a_secret(text: str) -> None:
    assert secret_like(text) is None


def test_key_in_a_description_warns_on_stderr(tmp_path: Path) -> None:
    data = read_yaml(SUPPORT)
    data["description"] = "use key sk-proj-abcdefghijklmnopqrstuvwx for the eval run"
    path = tmp_path / "w.yaml"
    path.write_text(yaml.safe_dump(data))
    result = runner.invoke(app, ["validate", str(path)])
    assert result.exit_code == 0
    assert "description holds something that looks like an API key or token (sk-pro...)" in " ".join(
        result.stderr.split()
    )
    assert "abcdefghijklmnop" not in result.stderr  # the warning does not repeat the key


def test_key_used_as_a_name_is_not_repeated_in_its_warning() -> None:
    sheet = sheet_with_policy()
    sheet["policies"][0]["name"] = "sk-proj-abcdefghijklmnopqrstuvwx"
    (warning,) = routecalc.worksheet.worksheet_warnings(routecalc.validate_worksheet(sheet))
    assert warning.startswith("policies[0].name holds something that looks like an API key or token (sk-pro...)")
    assert "abcdefghijklmnop" not in warning


# ---------------------------------------------------------------------------------------------------------
# Prices and magnitudes


@pytest.mark.parametrize(
    ("unit", "price", "per_1m"),
    [("per_1m", 1e300, None), ("per_1m", 2e6, "2,000,000"), ("per_1k", 1001, "1,001,000")],
)
def test_prices_past_the_hard_cap_are_refused(unit: str, price: float, per_1m: str | None) -> None:
    sheet = two_model_sheet(price_unit=unit)
    sheet["models"][1]["price_out"] = price
    msg = problems_of(sheet)["models[1].price_out"]
    if per_1m is None:  # also past MAX_NUMBER: the schema says so first
        assert "less than or equal to 1000000000000000" in msg
    else:
        assert msg.startswith(f"{per_1m} per 1M tokens; at most 1,000,000 (one currency unit per token)")


def test_per_1k_price_at_the_cap_is_fine_and_warned(tmp_path: Path) -> None:
    sheet = two_model_sheet(price_unit="per_1k")
    sheet["models"][1]["price_out"] = 1000  # = 1,000,000 per 1M: the cap itself is allowed, with a warning
    ws = routecalc.validate_worksheet(sheet)
    warnings = routecalc.worksheet.worksheet_warnings(ws)
    # large's price_in of 10 per 1K is 10,000 per 1M: also warned; small's 1 and 2 per 1K (1,000 and 2,000 per 1M):
    # 1,000 is not above the line, 2,000 is
    assert warnings == [
        "small: price_out is 2,000 USD per 1M tokens (more than 1,000); is price_unit (per_1k) right?",
        "large: price_in is 10,000 USD per 1M tokens (more than 1,000); is price_unit (per_1k) right?",
        "large: price_out is 1,000,000 USD per 1M tokens (more than 1,000); is price_unit (per_1k) right?",
    ]


def test_absurd_price_used_to_overflow_and_flip_winners(tmp_path: Path) -> None:
    # 1e305 per token: finite in the YAML, inf x 0 = NaN costs in the engines. Now refused at load, exit 2.
    data = read_yaml(SUPPORT)
    data["price_unit"] = "per_1k"
    data["models"][2]["price_in"] = 1e305
    path = tmp_path / "w.yaml"
    path.write_text(yaml.safe_dump(data))
    for args in (["compare", str(path)], ["diff", str(SUPPORT), str(path), "-n", "1000"]):
        result = runner.invoke(app, args)
        assert result.exit_code == 2, result.output
        assert "models[2].price_in" in result.stderr


def test_numbers_past_max_number_are_refused() -> None:
    sheet = two_model_sheet()
    sheet["volume"] = {"requests_per_month": 1e300}
    sheet["tasks"][0]["tokens_in"] = 10**400
    sheet["models"][0]["context_window"] = 10**20
    got = problems_of(sheet)
    assert "less than or equal to 1000000000000000" in got["volume.requests_per_month"]
    assert "a valid number (got <an integer of about 401 digits>)" in got["tasks[0].tokens_in.mean"]
    assert "less than or equal to" in got["models[0].context_window"]


def test_worst_case_numbers_within_the_caps_stay_finite() -> None:
    # every quantity at its cap: the engines' products (price x tokens x output ratio x tries x volume) stay far
    # below 1.8e308, so no cost is inf or NaN
    big = limits.MAX_NUMBER
    sheet = two_model_sheet(volume={"requests_per_month": big})
    for m in sheet["models"]:
        m.update(price_in=limits.PRICE_MAX_PER_1M, price_out=limits.PRICE_MAX_PER_1M, output_ratio=big)
    sheet["tasks"][0].update(tokens_in={"p50": big / 1000, "p95": big}, tokens_out=big)
    sheet = with_policies(sheet, {"name": "c", "kind": "cascade", "routes": {"t": ["small", "large"]}})
    ws = routecalc.validate_worksheet(copy.deepcopy(sheet))
    result = routecalc.compare(ws, samples=1000, seed=1)
    for p in result.policies:
        assert p.cost_per_request > 0 and p.monthly_cost < float("inf")


# ---------------------------------------------------------------------------------------------------------
# Seeds


@pytest.mark.parametrize(
    ("seed", "why"),
    [
        ("-1", "greater than or equal to 0"),
        (str(2**63), "less than or equal to 9223372036854775807"),
        ("1e3", "a valid integer"),
    ],
)
@pytest.mark.parametrize(
    "command",
    [
        ["compare", str(SUPPORT)],
        ["report", str(SUPPORT)],
        ["export", str(SUPPORT), "-t", "json"],
        ["diff", str(SUPPORT), str(SUPPORT)],
    ],
    ids=lambda c: c[0],
)
def test_out_of_range_seeds_are_exit_2_for_every_command(command: list[str], seed: str, why: str) -> None:
    result = runner.invoke(app, [*command, "--seed", seed])
    assert result.exit_code == 2
    assert result.exception is None or isinstance(result.exception, SystemExit)
    flat = " ".join(result.stderr.replace("│", " ").split())
    assert "Invalid value for '--seed' / '-s'" in flat and why in flat


@pytest.mark.parametrize("seed", [-1, 2**63, 1.5, True])
def test_library_compare_refuses_bad_seeds(support_ws: routecalc.Worksheet, seed: object) -> None:
    with pytest.raises(InputError, match="seed must be an integer from 0 to 2"):
        routecalc.compare(support_ws, samples=1000, seed=seed)  # type: ignore[arg-type]


def test_plausibility_warnings_reach_the_report() -> None:
    from routecalc.report.build import report_document
    from routecalc.report.document import to_markdown

    data = read_yaml(SUPPORT)
    data["models"][3]["price_out"] = 1500.0  # claude-sonnet-4: 1,500 USD per 1M tokens
    ws = routecalc.validate_worksheet(data)
    md = to_markdown(report_document(ws, routecalc.compare(ws, samples=1000, seed=0), None, dt.date(2026, 11, 25)))
    assert "claude-sonnet-4: price\\_out is 1,500 USD per 1M tokens (more than 1,000)" in md  # "_" escaped
