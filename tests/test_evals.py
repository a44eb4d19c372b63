"""Reading eval files: layouts, formats, every kind of bad row with its line number, duplicates, determinism."""

from __future__ import annotations

import json
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
