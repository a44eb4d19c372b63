"""Names are shown as written everywhere: no rich markup, no :emoji: codes, no terminal control sequences, and no
spreadsheet formulas in CSV cells."""

from __future__ import annotations

import copy
import csv
import io
import json
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from routecalc.cli import app
from routecalc.format import csv_cell, printable
from routecalc.worksheet import read_yaml
from tests.conftest import WORKSHEETS

SUPPORT = WORKSHEETS / "support-triage.yaml"
runner = CliRunner()
FAST = ["--samples", "2000", "--today", "2026-11-25"]
ODD = ["[bold]loud[/bold]", ":smile: :rocket:", "Tier $ vs $$", "[/]", "=cmd|' /C calc'!A0", "@SUM(1+1)", "-2+3"]


def renamed(tmp_path: Path) -> Path:
    """support-triage with its policies renamed to ODD and a category named like a formula."""
    data = read_yaml(SUPPORT)
    while len(data["policies"]) < len(ODD):
        data["policies"].append(copy.deepcopy(data["policies"][1]))
    for p, name in zip(data["policies"], ODD, strict=True):
        p["name"] = name
    data["baseline"] = ODD[0]
    data["name"] = "[red]Support[/red] :fire:"
    old = data["tasks"][4]["name"]  # dispute
    data["tasks"][4]["name"] = "+dispute"
    for p in data["policies"]:
        p["routes"]["+dispute"] = p["routes"].pop(old)
    path = tmp_path / "odd.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True))
    return path


def test_compare_table_shows_names_literally(tmp_path: Path) -> None:
    result = runner.invoke(app, ["compare", str(renamed(tmp_path)), *FAST], env={"COLUMNS": "400"})
    assert result.exit_code == 0, result.output
    out = result.stdout
    for name in [*ODD[:5], "[red]Support[/red] :fire:", "+dispute"]:
        assert name in out, name
    assert "😄" not in out and "🔥" not in out  # :smile: and :fire: were replaced by emoji before
    assert "\x1b" not in out


def test_compare_csv_escapes_formula_cells_and_only_those(tmp_path: Path) -> None:
    result = runner.invoke(app, ["compare", str(renamed(tmp_path)), *FAST, "-f", "csv"])
    assert result.exit_code == 0, result.output
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    names = [r["policy"] for r in rows]
    assert "'=cmd|' /C calc'!A0" in names and "'@SUM(1+1)" in names and "'-2+3" in names
    assert "[bold]loud[/bold]" in names and "Tier $ vs $$" in names
    assert not any(n.startswith(("=", "+", "-", "@")) for n in names)
    for r in rows:  # numbers stay numbers, even negative ones
        float(r["monthly_cost"])
        assert not r["nearest_miss"].startswith(("=", "+", "-", "@"))
    assert any(r["nearest_miss"].startswith("'+dispute") for r in rows)


def test_compare_json_keeps_names_unchanged(tmp_path: Path) -> None:
    result = runner.invoke(app, ["compare", str(renamed(tmp_path)), *FAST, "-f", "json"])
    names = [p["name"] for p in json.loads(result.stdout)["policies"]]
    assert "=cmd|' /C calc'!A0" in names  # JSON is not a spreadsheet: no escaping


@pytest.mark.parametrize(
    ("text", "cell"),
    [
        ("=1+1", "'=1+1"),
        ("+1", "'+1"),
        ("-1", "'-1"),
        ("@x", "'@x"),
        ("\tx", "'\tx"),
        ("\rx", "'\rx"),
        ("a=1", "a=1"),
        ("", ""),
    ],
)
def test_csv_cell(text: str, cell: str) -> None:
    assert csv_cell(text) == cell


def test_diff_screen_shows_names_literally(tmp_path: Path) -> None:
    path = renamed(tmp_path)
    cheaper = read_yaml(path)
    cheaper["models"][2]["price_in"] = 1.0
    new = tmp_path / "new.yaml"
    new.write_text(yaml.safe_dump(cheaper, allow_unicode=True))
    result = runner.invoke(app, ["diff", str(path), str(new), *FAST], env={"COLUMNS": "300"})
    assert result.exit_code == 0, result.output
    assert "[bold]loud[/bold]" in result.stdout and "Tier $ vs $$" in result.stdout
    assert "😄" not in result.stdout


def test_report_console_lines_show_names_literally(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # the console lines, not the charts (tests/test_charts.py draws odd names): a stand-in report keeps this fast
    monkeypatch.setattr("routecalc.report.build.build_report", lambda *a, **k: {"report.md": b"# r\n"})
    out = tmp_path / "r"
    result = runner.invoke(app, ["report", str(renamed(tmp_path)), *FAST, "-o", str(out), "-f", "md"])
    assert result.exit_code == 0, result.output
    assert "😄" not in result.stdout and "[bold]loud[/bold]" in result.stdout  # the baseline, in the verdict


def test_price_map_keys_cannot_drive_the_terminal(tmp_path: Path) -> None:
    pm = {
        "evil\x1b[2Jmodel": {"input_cost_per_token": 1e-6, "output_cost_per_token": 2e-6, "mode": "[blink]x"},
        "emoji:smile:model": {"input_cost_per_token": 1e-6, "output_cost_per_token": 2e-6, "litellm_provider": 7},
    }
    path = tmp_path / "pm.json"
    path.write_text(json.dumps(pm))
    result = runner.invoke(app, ["prices", "show", "model", "--from", str(path)], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert "\x1b" not in result.stdout
    assert "evil\\x1b[2Jmodel" in result.stdout and "[blink]x" in result.stdout and "emoji:smile:model" in result.stdout
    missing = runner.invoke(app, ["prices", "show", "nothing\x1b[31m", "--from", str(path)])
    assert missing.exit_code == 2 and "\x1b" not in missing.stderr and "nothing\\x1b[31m" in missing.stderr


def test_error_paths_never_carry_control_characters(tmp_path: Path) -> None:
    data = read_yaml(SUPPORT)
    data["tasks"][0]["pass_rates"]["x\x1b[31m"] = 0.5
    data["tasks"][1]["colour\x07"] = "red"
    path = tmp_path / "w.yaml"
    path.write_text(yaml.safe_dump(data))
    result = runner.invoke(app, ["validate", str(path)])
    assert result.exit_code == 2
    assert "\x1b" not in result.stderr and "\x07" not in result.stderr
    assert "pass_rates.x\\x1b[31m" in result.stderr and "colour\\x07" in result.stderr


def test_printable_keeps_text_and_escapes_controls() -> None:
    assert printable("café 模型 $ [b]") == "café 模型 $ [b]"
    assert printable("a\x1b[2Jb\u2028c\x9b") == "a\\x1b[2Jb\\u2028c\\x9b"
    assert printable("line\nnext", keep_newlines=True) == "line\nnext"
    assert printable("line\nnext") == "line\\nnext"
