"""Reading eval files: layouts, formats, every kind of bad row with its line number, duplicates, determinism."""

from __future__ import annotations

import functools
import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from routecalc.data import evals
from routecalc.data.evals import EvalOptions, read_evals
from routecalc.data.pivot import KeyCollision, Rows, pivot
from routecalc.errors import InputError

# line 1 is the header; the comment after each row says what is wrong with it
BAD_CSV = """prompt_id,category,model,passed,tokens_in,latency_s
p1,a,small,1,10,0.5
p1,a,large,1,12,1.0
p2,a,small,yes,10,0.5
,a,large,1,10,0.5
p3,a,small,0,-5,0.5

p3,a,large,1,10,abc
p4,a,small,1,10,0.5
p4,a,small,0,10,0.5
p4,a,large,1,10,0.5
p4,a,large,1,11,0.5
p5,b,small,1,10,0.5
p5,c,large,1,10,0.5
p6,b,huge,1,10,0.5
"""
# line 4: passed 'yes'; 5: no id; 6: negative tokens; 7: blank; 8: latency 'abc'; 9-10: p4/small 1 then 0;
# 11-12: p4/large twice with the same outcome (12 collapsed into 11); 14: p5 says category c, its first row b;
# 15: model 'huge' (unknown once small and large are the known models)


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def kinds(data: evals.EvalData) -> dict[str, tuple[int, tuple[int, ...]]]:
    return {b.key: (b.count, b.first) for b in data.report.bad}


def test_every_bad_row_is_counted_with_its_line(tmp_path: Path) -> None:
    d = read_evals(write(tmp_path, "e.csv", BAD_CSV), EvalOptions(models=["small", "large"]))
    assert kinds(d) == {
        "missing_id": (1, (5,)),
        "unknown_model": (1, (15,)),
        "bad_passed": (1, (4,)),
        "bad_tokens": (1, (6,)),
        "bad_latency": (1, (8,)),
        "category_conflict": (1, (14,)),
        "outcome_conflict": (2, (9, 10)),
    }
    assert d.report.duplicates_collapsed == 1 and d.report.duplicate_examples == (12,)
    assert d.report.blank_lines == 1 and d.report.records == 13  # 14 lines after the header, one blank
    # prompts p1, p4, p5 (p2 and p3 have no valid row); p4/small conflicts: no outcome
    assert d.models == ("small", "large") and d.categories == ("a", "b")
    assert d.passed.tolist() == [[1, 1], [-1, 1], [1, -1]]
    assert d.category.tolist() == [0, 0, 1]
    # the collapsed duplicate keeps its first row's numbers (line 11: 10 tokens, not line 12's 11)
    assert d.tokens_in[0].tolist() == [10, 12] and d.tokens_in[1].tolist() == [10, 10]
    assert d.tokens_in[2, 0] == 10 and np.isnan(d.tokens_in[2, 1])


def test_without_a_model_list_every_model_is_read(tmp_path: Path) -> None:
    d = read_evals(write(tmp_path, "e.csv", BAD_CSV))
    assert d.models == ("small", "large", "huge")  # order of first appearance
    assert "unknown_model" not in kinds(d)


def test_jsonl_lines_count_blank_and_broken_lines(tmp_path: Path) -> None:
    lines = [
        {"prompt_id": "p1", "category": "a", "model": "m", "passed": 1},
        "",
        '{"prompt_id": "p2", "category": ',  # line 3: not JSON
        {"prompt_id": "p2", "category": "a", "model": "m", "passed": True},
        {"prompt_id": "p3", "category": "a", "model": "m", "passed": 2},  # line 5: passed 2
        "[1, 2]",  # line 6: not an object
    ]
    text = "\n".join(json.dumps(x) if isinstance(x, dict) else x for x in lines) + "\n"
    d = read_evals(write(tmp_path, "e.jsonl", text))
    assert kinds(d) == {"not_json": (2, (3, 6)), "bad_passed": (1, (5,))}
    assert d.report.blank_lines == 1
    assert d.passed.tolist() == [[1], [1]]


def test_wide_layout_and_parquet_read_like_long(tmp_path: Path) -> None:
    import polars as pl

    long = write(
        tmp_path,
        "long.csv",
        "prompt_id,category,model,passed\nq1,x,a,1\nq1,x,b,0\nq2,y,a,0\nq2,y,b,1\n",
    )
    wide = write(tmp_path, "wide.csv", "prompt_id,category,a,b\nq1,x,1,0\nq2,y,0,1\n")
    pq = tmp_path / "wide.parquet"
    pl.read_csv(wide).write_parquet(pq)
    ref = read_evals(long)
    for path in (wide, pq):
        d = read_evals(path)
        assert d.layout == "wide" and d.models == ref.models
        assert d.passed.tolist() == ref.passed.tolist() == [[1, 0], [0, 1]]
        assert d.categories == ref.categories


def test_scores_with_a_threshold(tmp_path: Path) -> None:
    path = write(tmp_path, "s.csv", "prompt_id,category,model,score\nq1,x,a,0.7\nq2,x,a,0.4\nq3,x,a,high\n")
    d = read_evals(path, EvalOptions(pass_threshold=0.5))
    assert d.passed.tolist() == [[1], [0]]
    assert kinds(d) == {"bad_score": (1, (4,))}
    with pytest.raises(InputError, match="give --pass-threshold"):
        read_evals(path)


def test_column_mapping(tmp_path: Path) -> None:
    path = write(tmp_path, "m.csv", "id,subject,llm,correct\nq1,x,a,1\n")
    cols = {"prompt_id": "id", "category": "subject", "model": "llm", "passed": "correct"}
    assert read_evals(path, EvalOptions(columns=cols)).passed.tolist() == [[1]]
    with pytest.raises(InputError, match="missing column"):
        read_evals(path)


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("empty.csv", b"", "empty file"),
        ("header.csv", b"prompt_id,category,model,passed\n", "no usable rows"),
        ("cols.csv", b"a,b\n1,2\n", "missing column"),
        ("jsonl.csv", b'{"prompt_id": "p", "category": "c", "model": "m", "passed": 1}\n', "missing column"),
        ("csv.jsonl", b"prompt_id,category,model,passed\np,c,m,1\n", "line 1: not JSON"),
        ("garbage.csv", bytes(range(256)) * 8, "not UTF-8"),
        ("ragged.csv", b"prompt_id,category,model,passed\np,c,m,1,9,9\n", "line 2: 6 fields"),
        ("dup.csv", b"prompt_id,prompt_id,category,model,passed\n", "named twice"),
        ("x.txt", b"a\n", "cannot tell the format"),
    ],
)
def test_unusable_files_are_input_errors(tmp_path: Path, name: str, content: bytes, message: str) -> None:
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(InputError, match=message):
        read_evals(path)


def test_a_5000_digit_number_is_a_bad_row(tmp_path: Path) -> None:
    big = "9" * 5000
    path = write(
        tmp_path, "big.csv", f"prompt_id,category,model,passed,tokens_in\np,c,m,1,{big}\np,c,n,{big},1\nq,c,m,1,1\n"
    )
    d = read_evals(path)
    assert kinds(d) == {"bad_passed": (1, (3,)), "bad_tokens": (1, (2,))}
    with pytest.raises(InputError, match="no usable rows"):
        read_evals(write(tmp_path, "big2.csv", f"prompt_id,category,model,passed\np,c,m,{big}\n"))


def test_missing_file() -> None:
    with pytest.raises(InputError, match="no such file"):
        read_evals("no/such/file.csv")


def test_a_hash_collision_falls_back_to_exact_ids(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write(tmp_path, "e.csv", BAD_CSV)
    ref = read_evals(path)
    calls = []

    def colliding(rows: Rows, n_models: int):  # the first (hashed) pass "collides"
        calls.append(rows.key2 is not None)
        if rows.key2 is not None:
            raise KeyCollision
        return pivot(rows, n_models)

    monkeypatch.setattr(evals, "pivot", colliding)
    d = read_evals(path)
    assert calls == [True, False]
    assert d.passed.tolist() == ref.passed.tolist() and d.report == ref.report


def test_pivot_detects_a_collision() -> None:
    # two rows with the same key but different second hashes: two different ids collided
    rows = Rows(
        r=np.array([0, 1]),
        key=np.array([7, 7], dtype=np.uint64),
        key2=np.array([1, 2], dtype=np.uint64),
        cat=np.array([0, 0]),
        model=np.array([0, 1]),
        outcome=np.array([1, 0], dtype=np.int8),
        values={},
        rs=None,
    )
    with pytest.raises(KeyCollision):
        pivot(rows, 2)


def test_router_score_conflicts(tmp_path: Path) -> None:
    text = "prompt_id,category,model,passed,router_score\nq,x,a,1,0.3\nq,x,b,0,0.4\nr,x,a,0,\nr,x,b,1,0.9\n"
    d = read_evals(write(tmp_path, "rs.csv", text))
    assert kinds(d) == {"router_score_conflict": (1, (3,))}
    assert d.router_score.tolist() == [0.3, 0.9]  # r: its first non-missing score


def test_same_file_same_arrays(tmp_path: Path) -> None:
    path = write(tmp_path, "e.csv", BAD_CSV)
    a, b = read_evals(path), read_evals(path)
    assert a.report == b.report and np.array_equal(a.passed, b.passed) and a.models == b.models


def same_data(a: evals.EvalData, b: evals.EvalData) -> bool:
    def same(x: np.ndarray | None, y: np.ndarray | None) -> bool:
        if x is None or y is None:
            return x is y
        return x.dtype == y.dtype and np.array_equal(x, y, equal_nan=True)

    arrays = ("category", "passed", "tokens_in", "tokens_out", "latency_s", "cost", "router_score")
    report = replace(a.report, source=b.report.source)  # (the file may differ)
    return (a.models, a.categories, report) == (b.models, b.categories, b.report) and all(
        same(getattr(a, n), getattr(b, n)) for n in arrays
    )


@pytest.mark.parametrize("fmt", ["csv", "jsonl", "parquet", "wide"])
def test_rows_spilled_to_temporary_files_read_the_same(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fmt: str
) -> None:
    import os
    import tempfile

    import polars as pl

    from routecalc.data import pivot as pivot_module

    path = write(tmp_path, "e.csv", BAD_CSV.replace(",huge,", ",small,"))
    if fmt == "jsonl":
        rows = pl.read_csv(path, infer_schema=False).to_dicts()
        path = write(tmp_path, "e.jsonl", "\n".join(json.dumps({k: v for k, v in r.items() if v}) for r in rows))
    elif fmt == "parquet":
        pl.read_csv(path, infer_schema=False).write_parquet(path := tmp_path / "e.parquet")
    elif fmt == "wide":
        path = write(tmp_path, "w.csv", "prompt_id,category,a,b\nq1,x,1,0\nq2,y,0,1\nq1,x,1,1\n\nq3,x,,1\n")
    ref = read_evals(path)
    monkeypatch.setattr(pivot_module, "SPILL_ROWS", 2)  # temporary files from the third row on,
    monkeypatch.setattr(evals, "_BATCH_RECORDS", 3)  # batches of three records
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "tmp"))
    os.mkdir(tmp_path / "tmp")
    assert same_data(read_evals(path), ref)
    assert os.listdir(tmp_path / "tmp") == []  # the temporary files are gone


@pytest.mark.parametrize("layout", ["long", "wide"])
def test_parquet_numbers_read_the_same_as_their_text(tmp_path: Path, layout: str) -> None:
    # Float64 and integer columns are kept as numbers (not turned to text and back): same values, same bad rows
    import polars as pl

    n = 400
    rng = np.random.default_rng(3)
    x = rng.standard_normal(n) * 10.0 ** rng.integers(-5, 9, n)
    x[:6] = [np.nan, np.inf, -np.inf, -0.0, -1.5, 2**53 + 1]
    cols = {
        "prompt_id": [f"p{i % 150}" for i in range(n)],
        "category": [f"c{i % 150 % 4}" for i in range(n)],
        "tokens_in": pl.Series(rng.integers(-2, 10**12, n)).set(pl.Series(rng.random(n) < 0.1), None),
        "router_score": pl.Series(x).set(pl.Series(rng.random(n) < 0.1), None),
    }
    if layout == "long":
        cols |= {
            "model": [f"m{i % 3}" for i in range(n)],
            "passed": rng.integers(0, 2, n).astype(np.int8),
            "tokens_out": pl.Series(np.abs(x[::-1]).astype(np.float32)),  # Float32: read as text, as before
            "latency_s": pl.Series(np.abs(x)),
            "cost": pl.Series(rng.random(n) < 0.5).set(pl.Series(rng.random(n) < 0.95), None),  # no numbers: bad
        }
    else:
        cols |= {"a": rng.integers(0, 2, n), "b": rng.integers(0, 2, n).astype(np.uint8)}
    typed = pl.DataFrame(cols)
    typed.write_parquet(tmp_path / "typed.parquet")
    typed.select(pl.all().cast(pl.String)).write_parquet(tmp_path / "text.parquet")
    a, b = read_evals(tmp_path / "typed.parquet"), read_evals(tmp_path / "text.parquet")
    assert same_data(a, b) and a.layout == layout
    assert a.report.bad_rows > 10 and np.isfinite(a.router_score).sum() > 50  # (the values matter)
    assert (a.passed >= 0).sum() > 100 and np.any(np.isfinite(a.router_score) & (a.router_score % 1 != 0))


def test_no_room_for_temporary_files_is_an_error_not_a_traceback(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import tempfile

    from routecalc.data import pivot as pivot_module
    from routecalc.errors import RoutecalcError

    monkeypatch.setattr(pivot_module, "SPILL_ROWS", 2)
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "no-such-dir"))
    with pytest.raises(RoutecalcError, match=r"cannot write temporary files in .*no-such-dir"):
        read_evals(write(tmp_path, "e.csv", BAD_CSV))


def test_polars_csv_chunk_size_is_set_for_the_read_only(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    path = write(tmp_path, "e.csv", BAD_CSV)
    monkeypatch.delenv("POLARS_CSV_CHUNK_SIZE", raising=False)
    read_evals(path)
    assert "POLARS_CSV_CHUNK_SIZE" not in os.environ
    monkeypatch.setenv("POLARS_CSV_CHUNK_SIZE", "64")  # a user's own setting is kept (and still reads right)
    assert same_data(read_evals(path), read_evals(path)) and os.environ["POLARS_CSV_CHUNK_SIZE"] == "64"


# --- a large-ish messy file against a slow, obviously correct reader (csv module, one Python dict per prompt) ---

OK_VALUES = {"1": 1, "1.0": 1, "true": 1, "0": 0, "0.0": 0, "false": 0}
NAMES = ["prompt_id", "category", "model", "passed", "score", "tokens_in", "tokens_out", "latency_s", "router_score"]


def messy_csv(path: Path, rows: int, seed: int) -> None:
    """A seeded long-format CSV with every kind of bad row, blank lines, duplicates and conflicts.

    Prompt ids are drawn from rows // 3 so that most prompts have several rows (duplicates, conflicts); each cell
    is usually fine (often with stray spaces) and sometimes bad; numbers are ones Python and polars parse alike
    (no quotes, no ``+`` or ``_``)."""
    import random

    rng = random.Random(seed)

    def cell(fine: list[str], bad: list[str], p_bad: float = 0.02) -> str:
        return rng.choice(bad if rng.random() < p_bad else fine)

    lines = [",".join(NAMES)]
    for _ in range(rows):
        n = rng.randrange(rows // 3)
        cells = [
            cell([f"p{n}", f" p{n}", f"p{n} "], ["", " "], 0.005),
            cell([f"c{n % 7}"], ["", "c0", "c1 ", "c9"]),  # a prompt's own category, or maybe another
            cell(["small", "large", " large", "mid"], ["", "huge"], 0.01),
            cell(["1", "0", "true", "False", " 1.0", "0.0", "0", "1"], ["yes", "", "2"]),
            cell(["0.25", "0.75", "0.5", "1e3", "-2"], ["nan", "inf", "high", ""]),
            cell(["100", "250.5", " 7", ""], ["-3", "abc", "1e400", "nan"]),
            cell(["20", "40", ""], ["-1"]),
            cell(["0.5", "1.25", ""], ["x", "-0.1"]),
            cell([f"{(n % 10) / 10}", ""], ["0.95", "nan", "-0.5"], 0.01),  # mostly the prompt's own score
        ]
        if rng.random() < 0.003:
            lines.append("")  # a blank line
        elif rng.random() < 0.002:
            lines.append(",,,1,,,,,")  # no cell but the outcome: blank too (the outcome is not a row's own cell)
        else:
            lines.append(",".join(cells))
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def _number(cell: str) -> float | None:
    try:
        return float(cell)
    except ValueError:
        return None


@functools.cache  # (each variant is read twice, in memory and spilled)
def reference_read(path: Path, models: tuple[str, ...] | None, threshold: float | None, max_examples: int) -> dict:
    """What read_evals must give for a long CSV, computed row by row in plain Python (README "Eval files")."""
    import csv
    import math

    bad: dict[str, list[int]] = {key: [] for key, _ in evals.BAD_KINDS}
    blank = records = 0
    good = []  # (line, prompt, category, model, outcome, numbers, router score)

    def number(text: str, nonneg: bool = True) -> tuple[float, bool]:
        """(value, bad): an empty cell is NaN and not bad; else bad unless a finite (non-negative) number"""
        if not text:
            return math.nan, False
        x = _number(text)
        return (math.nan, True) if x is None else (x, not math.isfinite(x) or (nonneg and x < 0))

    fh = path.open(encoding="utf-8", newline="")
    table = csv.reader(fh)
    assert next(table) == NAMES
    for line, raw in enumerate(table, start=2):
        raw = raw or [""] * 9  # (csv gives [] for an empty line)
        if not any(raw[i] for i in (0, 1, 2, 5, 6, 7, 8)):  # the row's own cells: all but passed and score
            blank += 1
            continue
        records += 1
        pid, cat, model, passed, score, *nums = (c.strip() for c in raw)
        (t_in, bad_in), (t_out, bad_out), (lat, bad_lat) = (number(c) for c in nums[:3])
        rs, bad_rs = number(nums[3], nonneg=False)
        if threshold is None:
            outcome = OK_VALUES.get(passed.lower())
        else:
            x = _number(score)
            outcome = None if x is None or not math.isfinite(x) else int(x >= threshold)
        checks = [
            ("missing_id", pid == ""),
            ("missing_category", cat == ""),
            ("missing_model", model == ""),
            ("unknown_model", models is not None and model not in models),
            ("bad_passed" if threshold is None else "bad_score", outcome is None),
            ("bad_tokens", bad_in or bad_out),
            ("bad_latency", bad_lat),
            ("bad_router_score", bad_rs),
        ]
        problem = next((key for key, failed in checks if failed), None)
        if problem:
            bad[problem].append(line)
        else:
            good.append((line, pid, cat, model, outcome, (t_in, t_out, lat), rs))
    fh.close()

    model_list = list(models) if models is not None else list(dict.fromkeys(g[3] for g in good))
    prompts: dict[str, dict] = {}
    for line, pid, cat, model, outcome, nums, rs in good:
        p = prompts.setdefault(pid, {"cat": cat, "rs": math.nan, "rows": []})
        if math.isnan(p["rs"]) and not math.isnan(rs):
            p["rs"] = rs  # the prompt's first router score (from any of its valid rows)
        p["rows"].append((line, cat, model, outcome, nums, rs))
    collapsed: list[int] = []
    passed, values = [], {c: [] for c in NAMES[5:8]}
    for p in prompts.values():
        pairs: dict[str, list] = {}
        for line, cat, model, outcome, nums, rs in p["rows"]:
            if cat != p["cat"]:
                bad["category_conflict"].append(line)
            elif not math.isnan(rs) and not math.isnan(p["rs"]) and rs != p["rs"]:
                bad["router_score_conflict"].append(line)
            else:
                pairs.setdefault(model, []).append((line, outcome, nums))
        row_passed, row_values = [], [[], [], []]
        for model in model_list:
            same = pairs.get(model, [])
            outcomes = {o for _, o, _ in same}
            if len(outcomes) > 1:
                bad["outcome_conflict"] += [line for line, _, _ in same]
            else:
                collapsed += [line for line, _, _ in same[1:]]
            row_passed.append(outcomes.pop() if len(outcomes) == 1 else -1)
            for i in range(3):
                row_values[i].append(same[0][2][i] if same else math.nan)
        passed.append(row_passed)
        for c, row in zip(values, row_values, strict=True):
            values[c].append(row)
    categories = list(dict.fromkeys(p["cat"] for p in prompts.values()))

    def where(lines: list[int]) -> tuple[int, ...]:
        return tuple(sorted(lines)[:max_examples])

    return {
        "models": tuple(model_list),
        "categories": tuple(categories),
        "category": [categories.index(p["cat"]) for p in prompts.values()],
        "passed": passed,
        "values": values,
        "router_score": [p["rs"] for p in prompts.values()],
        "bad": {key: (len(lines), where(lines)) for key, lines in bad.items() if lines},
        "records": records,
        "blank_lines": blank,
        "collapsed": (len(collapsed), where(collapsed)),
    }


@pytest.fixture(scope="module")
def messy_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("messy") / "messy.csv"
    messy_csv(path, 200_000, seed=7)
    return path


@pytest.mark.slow
@pytest.mark.parametrize(
    ("models", "threshold", "max_examples"),
    [(None, None, 5), (["small", "large", "mid"], 0.5, 3)],
    ids=["all-models", "model-list-and-scores"],
)
@pytest.mark.parametrize("spill", [False, True], ids=["in-memory", "spilled"])
def test_a_200000_row_file_matches_a_plain_python_reader(
    messy_file: Path,
    monkeypatch: pytest.MonkeyPatch,
    models: list[str] | None,
    threshold: float | None,
    max_examples: int,
    spill: bool,
) -> None:
    from routecalc.data import pivot as pivot_module

    path = messy_file
    if spill:  # the rows go to temporary files in 256 parts after 5,000 of them, in batches of 3,000
        monkeypatch.setattr(pivot_module, "SPILL_ROWS", 5_000)
        monkeypatch.setattr(evals, "_BATCH_RECORDS", 3_000)
    d = read_evals(path, EvalOptions(models=models, pass_threshold=threshold, max_examples=max_examples))
    ref = reference_read(path, None if models is None else tuple(models), threshold, max_examples)
    assert d.models == ref["models"] and d.categories == ref["categories"]
    assert d.category.tolist() == ref["category"]
    assert d.passed.tolist() == ref["passed"]
    for name, expected in ref["values"].items():
        np.testing.assert_array_equal(getattr(d, name), np.array(expected))  # NaN == NaN here
    np.testing.assert_array_equal(d.router_score, np.array(ref["router_score"]))
    assert d.cost is None
    assert kinds(d) == ref["bad"]
    assert (d.report.records, d.report.blank_lines) == (ref["records"], ref["blank_lines"])
    assert (d.report.duplicates_collapsed, d.report.duplicate_examples) == ref["collapsed"]
    # the file is messy enough for every check to matter (else this test could not fail where it should)
    assert len(ref["bad"]) >= 9 and ref["collapsed"][0] > 100 and ref["blank_lines"] > 100
    assert d.n_prompts > 50_000 and (d.passed == -1).any()
