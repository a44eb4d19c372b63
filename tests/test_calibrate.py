"""``routecalc calibrate evals``: the numbers, the worksheets it writes, the CLI and its error paths."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

import routecalc
from routecalc.cli import app
from routecalc.data.calibrate import calibrate
from routecalc.data.evals import EvalOptions, read_evals
from routecalc.errors import WorksheetError

MMLU = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "evals" / "routellm-mmlu.csv"
needs_mmlu = pytest.mark.skipif(not MMLU.exists(), reason=f"eval data not found at {MMLU}")
runner = CliRunner()

# category x: 4 prompts with both models; y: 2 prompts, q3 has no row for model b
EVALS = """prompt_id,category,model,passed,tokens_in,tokens_out,latency_s
q1,x,a,1,100,10,1.0
q1,x,b,1,100,20,2.0
q2,x,a,0,200,10,1.0
q2,x,b,1,200,20,2.0
q3,y,a,0,300,10,1.0
q4,y,a,1,400,10,3.0
q4,y,b,0,400,20,2.0
q5,x,a,0,100,10,1.0
q5,x,b,0,100,20,4.0
q6,x,a,1,100,10,1.0
q6,x,b,1,100,20,2.0
"""

SHEET = """# a hand-written worksheet: this comment must survive
schema_version: 1
name: two models
volume:
  requests_per_month: 1000   # traffic
models:
  - name: small
    eval_name: a
    provider: p
    price_in: 1
    price_out: 2
    latency: {ttft_s: 0.5, tpot_s: 0.01}
  - name: large
    provider: p
    price_in: 10
    price_out: 20
    latency: {ttft_s: 1.0, tpot_s: 0.02}
tasks:
  - name: x
    traffic_share: 0.75   # most traffic
    tokens_in: 1000
    tokens_out: 500
    quality_threshold: 0.9
    pass_rates: {small: 0.8, large: 0.95}
    validator: {catch: 0.9, false_reject: 0.1}
  - name: y
    traffic_share: 0.25
    tokens_in: 1000
    tokens_out: 500
    quality_threshold: 0.9
    pass_rates: {small: 0.8, large: 0.95}
    outcomes: {conditional: {model: large, given_failed: small, pass_rate: 0.8}}
    validator: {catch: 0.9, false_reject: 0.1}
policies:
  - name: cascade
    kind: cascade
    routes: {x: [small, large], y: [small, large]}
"""


def files(tmp_path: Path) -> tuple[Path, Path]:
    ev = tmp_path / "evals.csv"
    ev.write_text(EVALS, encoding="utf-8")
    ws = tmp_path / "ws.yaml"
    ws.write_text(SHEET, encoding="utf-8")
    return ev, ws


def test_counts_tables_and_bands(tmp_path: Path) -> None:
    ev, _ = files(tmp_path)
    cal = calibrate(read_evals(ev))
    x, y = cal.categories
    # x: q1 both, q2 only b, q5 neither, q6 both -> a 2/4, b 3/4
    assert x.pass_counts == {"a": (2, 4), "b": (3, 4)}
    assert x.patterns == ((("a", "b"), 2), (("a",), 0), (("b",), 1), ((), 1))
    assert x.left_out == 0
    # y: q3 has no row for b, so it is left out of the table and the pass rates (q4 only: a 1/1, b 0/1)
    assert y.pass_counts == {"a": (1, 1), "b": (0, 1)} and y.left_out == 1 and y.prompts == 2
    # tokens_in of x pools 8 values (100, 100, 200, 200, 100, 100, 100, 100): p50 100, p95 200
    assert (x.tokens_in.p50, x.tokens_in.p95, x.tokens_in.n) == (100.0, 200.0, 8)
    # latency of b: 2, 2, 2, 4, 2 -> p50 2, p95 = 2 + 0.8 * 2 = 3.6 (linear interpolation at rank 3.8 of 0..4)
    assert (cal.latency["b"].p50, cal.latency["b"].p95) == (2.0, 3.6)
    assert cal.small == [("x", 4), ("y", 2)]


def test_new_worksheet_loads_and_round_trips_the_counts(tmp_path: Path) -> None:
    ev, _ = files(tmp_path)
    out = tmp_path / "new.yaml"
    result = runner.invoke(app, ["calibrate", "evals", str(ev), "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert "fewer than 30 prompts: x (4), y (2)" in result.output.replace("\n", " ")
    ws = routecalc.load_worksheet(out)
    cal = calibrate(read_evals(ev))
    for cat in cal.categories:
        task = next(t for t in ws.tasks if t.name == cat.name)
        got = {m: (r.k, r.n) for m, r in task.pass_rates.items()}
        assert got == cat.pass_counts
    assert sum(ws.shares) == pytest.approx(1.0, abs=1e-12)
    assert "# GUESS" in out.read_text()
    assert runner.invoke(app, ["validate", str(out)]).exit_code == 0


def test_update_keeps_the_rest_and_prints_what_changed(tmp_path: Path) -> None:
    ev, ws = files(tmp_path)
    out = tmp_path / "ws2.yaml"
    dry = runner.invoke(app, ["calibrate", "evals", str(ev), "-w", str(ws), "--model-map", "b=large"])
    assert dry.exit_code == 0, dry.output
    assert "dry run" in dry.output and not out.exists()
    assert "80.0%" in dry.output and "50.0% (2/4)" in dry.output  # x / small: 0.8 -> 2 of 4
    result = runner.invoke(
        app, ["calibrate", "evals", str(ev), "-w", str(ws), "--model-map", "b=large", "-o", str(out)]
    )
    assert result.exit_code == 0, result.output
    text = out.read_text()
    assert "this comment must survive" in text and "# most traffic" in text and "# traffic" in text
    new = routecalc.load_worksheet(out)
    x, y = new.tasks
    assert (x.pass_rates["small"].k, x.pass_rates["small"].n) == (2, 4)
    assert x.outcomes is not None and x.outcomes.models == ["small", "large"]
    assert x.traffic_share == 0.75 and new.policies[0].name == "cascade"
    # y's conditional tied small and large, whose pass rates changed: replaced by the table
    assert y.outcomes is not None and y.outcomes.patterns is not None
    # everything not calibrated is as it was
    old, got = yaml.safe_load(SHEET), yaml.safe_load(text)
    for key in ("name", "volume", "policies"):
        assert got[key] == old[key]
    assert got["models"][0]["price_in"] == 1 and got["models"][1]["latency"] == {"e2e_s": {"p50": 2.0, "p95": 3.6}}


def test_in_place_and_overwrite_refusal(tmp_path: Path) -> None:
    ev, ws = files(tmp_path)
    args = ["calibrate", "evals", str(ev), "-w", str(ws), "--model-map", "b=large"]
    assert runner.invoke(app, [*args, "-o", str(ws)]).exit_code == 3  # exists, routecalc did not write it
    assert runner.invoke(app, [*args, "--in-place"]).exit_code == 0
    assert routecalc.load_worksheet(ws).tasks[0].pass_rates["small"].n == 4


def test_same_input_same_bytes(tmp_path: Path) -> None:
    ev, _ = files(tmp_path)
    a = runner.invoke(app, ["calibrate", "evals", str(ev)])
    b = runner.invoke(app, ["calibrate", "evals", str(ev)])
    assert a.exit_code == 0 and a.stdout == b.stdout and a.stdout.startswith("# Written by")


def test_strict_makes_bad_rows_fatal(tmp_path: Path) -> None:
    ev, _ = files(tmp_path)
    ev.write_text(EVALS + "q7,x,a,maybe,1,1,1\n", encoding="utf-8")
    assert runner.invoke(app, ["calibrate", "evals", str(ev)]).exit_code == 0
    result = runner.invoke(app, ["calibrate", "evals", str(ev), "--strict"])
    assert result.exit_code == 2 and "line 13" in result.output


@pytest.mark.parametrize(
    ("content", "extra", "message"),
    [
        (None, [], "no such file"),
        (b"", [], "empty file"),
        (b"id,x\n1,2\n", [], "missing column"),
        (b'{"prompt_id": 1}\n', [], "missing column"),
        (b"prompt_id,category,model,passed\nq,c,m," + b"1" * 5000 + b"\n", [], "no usable rows"),
        (bytes(range(256)) * 4, [], "not UTF-8"),
        (EVALS.encode(), ["--model-map", "nonsense"], "not NAME=NAME"),
        (EVALS.encode(), ["--columns", "colour=x"], "unknown role"),
        (EVALS.encode(), ["--in-place"], "needs -w"),
    ],
)
def test_error_paths_exit_2(tmp_path: Path, content: bytes | None, extra: list[str], message: str) -> None:
    path = tmp_path / "evals.csv"
    if content is not None:
        path.write_bytes(content)
    result = runner.invoke(app, ["calibrate", "evals", str(path), *extra])
    assert result.exit_code == 2, result.output
    assert message in result.output.replace("\n", " ")
    assert "Traceback" not in result.output


def test_unknown_model_is_a_bad_row_with_a_worksheet(tmp_path: Path) -> None:
    ev, ws = files(tmp_path)
    result = runner.invoke(app, ["calibrate", "evals", str(ev), "-w", str(ws)])  # b maps to nothing
    assert result.exit_code == 0
    assert "5 bad row(s): model not in the catalog or model map (lines 3, 5, 8, 10, 12)" in result.output.replace(
        "\n", " "
    )


def test_the_new_worksheet_is_validated_before_it_is_written(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # names from the file go through the worksheet's own validation; a worksheet it rejects is never written
    from routecalc.data import calibrate_yaml
    from routecalc.errors import Problem

    def reject(text: str, source: str, *args: object) -> None:
        raise WorksheetError(source, [Problem("tasks[0].name", "not a valid name")])

    ev, _ = files(tmp_path)
    out = tmp_path / "new.yaml"
    monkeypatch.setattr(calibrate_yaml, "load_worksheet_text", reject)
    result = runner.invoke(app, ["calibrate", "evals", str(ev), "-o", str(out)])
    assert result.exit_code == 2 and "tasks[0].name: not a valid name" in result.output
    assert not out.exists()


def test_eval_name_must_be_unique() -> None:
    data = yaml.safe_load(SHEET)
    data["models"][1]["eval_name"] = "a"
    with pytest.raises(WorksheetError) as info:
        routecalc.validate_worksheet(data)
    assert any(p.path == "models[1].eval_name" for p in info.value.problems)


def _mmlu_counts() -> tuple[int, int, int, int]:
    """Independently of routecalc: (prompts, strong passes, small failures, strong passes among them)."""
    rows: dict[str, dict[str, int]] = {}
    with MMLU.open(newline="") as fh:
        for r in csv.DictReader(fh):
            rows.setdefault(r["prompt_id"], {})[r["model"]] = int(r["passed"])
    small_failed = [o for o in rows.values() if o["mixtral-8x7b-instruct"] == 0]
    strong = sum(o["gpt-4-1106-preview"] for o in rows.values())
    return len(rows), strong, len(small_failed), sum(o["gpt-4-1106-preview"] for o in small_failed)


@needs_mmlu
def test_mmlu_tables_reproduce_806_and_557(tmp_path: Path) -> None:
    out = tmp_path / "mmlu.yaml"
    result = runner.invoke(app, ["calibrate", "evals", str(MMLU), "-o", str(out)])
    assert result.exit_code == 0, result.output
    ws = routecalc.load_worksheet(out)
    small, strong = "mixtral-8x7b-instruct", "gpt-4-1106-preview"
    both = only_small = only_strong = neither = 0
    for t in ws.tasks:
        assert t.outcomes is not None and t.outcomes.models == [small, strong]
        counts = {frozenset(p.passed): p.count for p in t.outcomes.patterns}
        both += counts[frozenset([small, strong])]
        only_small += counts[frozenset([small])]
        only_strong += counts[frozenset([strong])]
        neither += counts[frozenset()]
    n, strong_pass, small_fail, strong_given_fail = _mmlu_counts()
    assert (both + only_small + only_strong + neither, both + only_strong) == (n, strong_pass) == (14042, 11315)
    assert (only_strong + neither, only_strong) == (small_fail, strong_given_fail)
    assert round(100 * strong_pass / n, 1) == 80.6
    assert round(100 * only_strong / (only_strong + neither), 1) == 55.7
    assert len(ws.tasks) == 57


def test_options_reach_the_reader(tmp_path: Path) -> None:
    ev = tmp_path / "e.tsv"
    ev.write_text("id\tsubject\tllm\tscore\nq\tx\ta\t0.9\n", encoding="utf-8")
    cols = "prompt_id=id,category=subject,model=llm"
    result = runner.invoke(app, ["calibrate", "evals", str(ev), "--columns", cols, "--pass-threshold", "0.5"])
    assert result.exit_code == 0, result.output
    assert "a: {passed: 1, of: 1}" in result.stdout
    assert read_evals(
        ev, EvalOptions(columns=dict(c.split("=") for c in cols.split(",")), pass_threshold=0.95)
    ).passed.tolist() == [[0]]
