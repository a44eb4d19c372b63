"""Reading request logs: shapes, paths, timestamps, status and error types, bad rows with line numbers, chunking."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from routecalc.data.logcal import percentiles
from routecalc.data.logrows import OUTCOMES, detect_shape, split_path
from routecalc.data.logs import LogOptions, read_logs
from routecalc.errors import InputError

HEADER = "timestamp,category,model,tokens_in,tokens_out,latency_s,status,error,cost\n"
# one good row per line unless the comment says otherwise; line numbers count the header as line 1
GENERIC = (
    HEADER
    + "2026-10-01T00:00:01Z,faq,a,100,10,1.5,success,,0.001\n"  # 2
    + "2026-10-01 00:00:02,faq,b,200,20,2.5,200,,0.002\n"  # 3: HTTP 200 is a success, naive time is UTC
    + "\n"  # 4: blank, skipped
    + "2026-10-01T00:00:03+00:00,refund,a,300,,3,failure,Request timed out,0\n"  # 5: a timeout (no output: fine)
    + "1790812804,refund,b,-1,5,1,success,,0.001\n"  # 6: negative tokens
    + "garbage,refund,b,1,5,1,success,,0.001\n"  # 7: bad timestamp
    + "2026-10-01T00:00:05Z,,b,1,5,1,success,,0.001\n"  # 8: no category
    + "2026-09-01T00:00:05Z,faq,b,1,5,1,success,,0.001\n"  # 9: a month before line 5: out of order
    + "2026-10-01T00:00:06Z,faq,b,1,5,1,429,,0\n"  # 10: HTTP 429
    + "2026-10-01T00:00:07Z,faq,b,1,5,1,weird,,0\n"  # 11: unknown status
    + "2026-10-01T00:00:08Z,faq,a,1,5,1,failure,ContentPolicyViolationError,0\n"  # 12: content filter
    + "2026-10-01T00:00:09Z,faq,a,1,5,-2,success,,0\n"  # 13: negative latency
    + "2026-10-01T00:00:10Z,faq,a,1,5,1,success,,-0.5\n"  # 14: negative cost
    + "2026-10-01T00:00:11Z,faq,,1,5,1,success,,0\n"  # 15: no model
    + "2026-10-01T00:00:12Z,faq,a,1,5,1,,,0\n"  # 16: no status, no error
    + "2026-10-01T00:00:13Z,faq,a,1,5,1,500,,0\n"  # 17: HTTP 500
)
EXPECTED_BAD = {
    "bad_tokens": (1, (6,)),
    "bad_timestamp": (1, (7,)),
    "missing_category": (1, (8,)),
    "out_of_order": (1, (9,)),
    "unknown_status": (1, (11,)),
    "bad_latency": (1, (13,)),
    "bad_cost": (1, (14,)),
    "missing_model": (1, (15,)),
    "missing_status": (1, (16,)),
}


def _write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def _jsonl_of(csv_text: str) -> str:
    """The same rows as JSON objects, one per line (empty cells left out; the blank line kept)."""
    lines = csv_text.splitlines()
    keys = lines[0].split(",")
    out = []
    for line in lines[1:]:
        if not line:
            out.append("")
            continue
        out.append(json.dumps({k: v for k, v in zip(keys, line.split(","), strict=True) if v != ""}))
    return "\n".join(out) + "\n"


@pytest.mark.parametrize("fmt", ["csv", "jsonl"])
def test_every_bad_row_is_counted_with_its_line(tmp_path: Path, fmt: str) -> None:
    text = GENERIC if fmt == "csv" else _jsonl_of(GENERIC)
    data = read_logs(_write(tmp_path, f"log.{fmt}", text))
    offset = 0 if fmt == "csv" else -1  # JSONL has no header line: every line number is one less
    got = {b.key: (b.count, b.first) for b in data.report.bad}
    assert got == {k: (n, tuple(x + offset for x in first)) for k, (n, first) in EXPECTED_BAD.items()}
    assert data.report.blank_lines == 1
    assert data.report.records == 15  # 16 data lines, one blank
    # good rows: lines 2, 3 (success), 5 (timeout), 10 (429), 12 (content filter), 17 (5xx)
    by_outcome = data.requests.sum(axis=(0, 1))
    assert dict(zip(OUTCOMES, by_outcome.tolist(), strict=True)) == {
        "success": 2,
        "timeout": 1,
        "5xx": 1,
        "429": 1,
        "content_filter": 1,
        "client_error": 0,
        "other_error": 0,
    }
    assert data.categories == ("faq", "refund")
    assert data.models == ("a", "b")
    assert data.shape == "generic"


def test_jsonl_line_that_is_not_json(tmp_path: Path) -> None:
    text = '{"timestamp": "2026-10-01T00:00:00Z", "category": "x", "model": "m"}\nnot json\n[1, 2]\n'
    data = read_logs(_write(tmp_path, "log.jsonl", text))
    (bad,) = data.report.bad
    assert (bad.key, bad.count, bad.first) == ("not_json", 2, (2, 3))


@pytest.mark.parametrize(
    ("status", "error", "outcome"),
    [
        ("success", "", "success"),
        ("OK", "", "success"),
        ("204", "", "success"),
        ("failure", "litellm.Timeout: Request timed out", "timeout"),
        ("408", "", "timeout"),
        ("504", "", "timeout"),
        ("failure", "RateLimitError", "429"),
        ("error", "Too Many Requests", "429"),
        ("503", "", "5xx"),
        ("failure", "InternalServerError", "5xx"),
        ("failure", "the model is overloaded", "5xx"),
        ("400", "content_filter", "content_filter"),
        ("failure", "ContentPolicyViolationError", "content_filter"),
        ("failure", "ContextWindowExceededError", "client_error"),
        ("401", "", "client_error"),
        ("failure", "something odd", "other_error"),
        ("", "503", "5xx"),  # no status, but an error: a failure typed by its code
    ],
)
def test_status_and_error_types(tmp_path: Path, status: str, error: str, outcome: str) -> None:
    text = HEADER + f"2026-10-01T00:00:00Z,x,m,10,1,1,{status},{error},0\n"
    data = read_logs(_write(tmp_path, "log.csv", text))
    assert not data.report.bad
    assert OUTCOMES[int(np.flatnonzero(data.requests[0, 0])[0])] == outcome


@pytest.mark.parametrize(
    ("stamp", "epoch"),
    [
        ("2026-10-01T12:00:00Z", 1790856000),
        ("2026-10-01T12:00:00.250000Z", 1790856000.25),
        ("2026-10-01 12:00:00", 1790856000),  # naive: UTC
        ("2026-10-01T14:00:00+02:00", 1790856000),
        ("2026-10-01", 1790812800),
        ("1790856000", 1790856000),  # epoch seconds
        ("1790856000000", 1790856000),  # milliseconds
        ("1790856000000000", 1790856000),  # microseconds
    ],
)
def test_timestamps(tmp_path: Path, stamp: str, epoch: float) -> None:
    text = "timestamp,category,model\n" + f"{stamp},x,m\n"
    data = read_logs(_write(tmp_path, "log.csv", text))
    assert not data.report.bad
    assert data.first == pytest.approx(epoch)
    assert data.notes  # no status column: every row a success, and it says so


def _litellm_rows() -> list[dict]:
    """Three LiteLLM spend-log rows (field names of LiteLLM 1.110's SpendLogsPayload)."""
    base = {
        "request_id": "r",
        "call_type": "acompletion",
        "api_key": "",
        "total_tokens": 0,
        "model_id": "",
        "custom_llm_provider": "openai",
        "request_tags": ["refund", "web"],
    }
    return [
        base
        | {
            "spend": 0.002,
            "prompt_tokens": 1000,
            "completion_tokens": 250,
            "startTime": "2026-10-01T00:00:00.000000Z",
            "completionStartTime": "2026-10-01T00:00:00.500000Z",
            "endTime": "2026-10-01T00:00:03.000000Z",
            "model": "gpt-4.1-mini-2025-04-14",
            "model_group": "small",
            "status": "success",
            "metadata": {"spend_logs_metadata": {"category": "refund"}},
        },
        base
        | {
            "spend": 0.0,
            "prompt_tokens": 0,
            "completion_tokens": 0,
            "startTime": "2026-10-01T00:00:01.000000Z",
            "completionStartTime": None,
            "endTime": "2026-10-01T00:00:21.000000Z",
            "model": "gpt-4.1-mini-2025-04-14",
            "model_group": "",
            "status": "failure",
            "metadata": {
                "spend_logs_metadata": {"category": "refund"},
                "error_information": {"error_code": "429", "error_class": "RateLimitError", "error_message": "x"},
            },
        },
        base
        | {
            "spend": 0.01,
            "prompt_tokens": 2000,
            "completion_tokens": 100,
            "startTime": "2026-10-01T00:00:02.000000Z",
            "completionStartTime": "2026-10-01T00:00:04.000000Z",
            "endTime": "2026-10-01T00:00:04.000000Z",  # not streamed: first token at the end, no ttft
            "model": "gpt-4.1",
            "model_group": "large",
            "status": "success",
            "metadata": {"spend_logs_metadata": {"category": "faq"}},
            "request_tags": ["faq"],
        },
    ]


def _litellm_file(tmp_path: Path, fmt: str) -> Path:
    rows = _litellm_rows()
    path = tmp_path / f"spend.{fmt}"
    if fmt == "jsonl":
        path.write_text("\n".join(json.dumps(r) for r in rows) + "\n", encoding="utf-8")
    elif fmt == "csv":  # a database export: JSON columns as JSON text
        frame = pl.DataFrame(
            [{k: json.dumps(v) if isinstance(v, dict | list) else v for k, v in r.items()} for r in rows]
        )
        frame.write_csv(path)
    else:
        pl.DataFrame(rows).write_parquet(path)
    return path


@pytest.mark.parametrize("fmt", ["jsonl", "csv", "parquet"])
def test_litellm_spend_logs(tmp_path: Path, fmt: str) -> None:
    data = read_logs(_litellm_file(tmp_path, fmt))
    assert data.shape == "litellm"
    assert not data.report.bad
    assert data.categories == ("refund", "faq")
    # model_group names the model; an empty group falls back to the deployment's model
    assert data.models == ("small", "gpt-4.1-mini-2025-04-14", "large")
    assert data.requests[0, 1, OUTCOMES.index("429")] == 1
    assert data.cost is not None and data.cost.sum() == pytest.approx(0.012)
    assert data.latency_hist is not None
    assert data.latency_hist[:, 0].sum() == 2  # two answers (3 s and 2 s), one 429 after 20 s
    assert data.latency_hist[1, 2].sum() == 1
    assert data.ttft_hist is not None and data.ttft_hist.sum() == 1  # only the streamed answer has a ttft


@pytest.mark.parametrize("fmt", ["jsonl", "csv", "parquet"])
@pytest.mark.parametrize(("path", "expected"), [("request_tags[0]", ("refund", "faq")), ("request_tags[1]", ("web",))])
def test_category_from_a_path(tmp_path: Path, fmt: str, path: str, expected: tuple) -> None:
    data = read_logs(_litellm_file(tmp_path, fmt), LogOptions(columns={"category": path}))
    assert data.categories == expected
    missing = {b.key: b.count for b in data.report.bad}
    assert missing == ({} if path.endswith("[0]") else {"missing_category": 1})


def test_model_map_prefers_the_group_then_the_deployment(tmp_path: Path) -> None:
    options = LogOptions(model_map={"small": "mini", "gpt-4.1-mini-2025-04-14": "mini", "gpt-4.1": "big"})
    data = read_logs(_litellm_file(tmp_path, "jsonl"), options)
    assert data.models == ("mini", "big")  # "large" is not mapped, but its deployment gpt-4.1 is


def test_openai_usage_export_is_aggregated(tmp_path: Path) -> None:
    rows = [
        {"start_time": 1790812800, "end_time": 1790899200, "model": "gpt-4o", "input_tokens": 30000,
         "output_tokens": 6000, "num_model_requests": 30, "project_id": "proj_a"},
        {"start_time": 1790899200, "end_time": 1790985600, "model": "gpt-4o", "input_tokens": 10000,
         "output_tokens": 1000, "num_model_requests": 10, "project_id": "proj_b"},
    ]  # fmt: skip
    path = _write(tmp_path, "usage.jsonl", "\n".join(json.dumps(r) for r in rows) + "\n")
    with pytest.raises(InputError, match="category-from"):
        read_logs(path)
    data = read_logs(path, LogOptions(columns={"category": "project_id"}))
    assert data.shape == "openai"
    assert data.requests.sum() == 40 and data.rows.sum() == 2
    assert data.token_values is None and data.bucket_s == 86400
    assert data.last - data.first == 2 * 86400  # first bucket's start to the last bucket's end


@pytest.mark.parametrize("batch", [3, 1000])
def test_chunks_give_the_same_numbers(tmp_path: Path, batch: int) -> None:
    """Reading in chunks of 3 rows (blocks of 4 KiB for text) changes nothing, quoted newlines included."""
    rng = np.random.default_rng(0)
    lines = [HEADER]
    for i in range(400):
        t = 1790812800 + i * 60 - (700 if i == 250 else 0)  # row 250 is 700 s late: out of order
        error = '"a message\nover two lines"' if i % 7 == 0 else ""
        status = "failure" if error else "success"
        cat, model = ["a", "b", "c"][i % 3], ["m", "n"][i % 2]
        lines.append(f"{t},{cat},{model},{rng.integers(1, 900)},{rng.integers(1, 90)},1.5,{status},{error},0.01\n")
    path = _write(tmp_path, "log.csv", "".join(lines))
    small = read_logs(path, LogOptions(batch_rows=batch))
    whole = read_logs(path)
    np.testing.assert_array_equal(small.requests, whole.requests)
    assert small.report == whole.report
    assert [b.key for b in whole.report.bad] == ["out_of_order"]
    assert small.token_values is not None and whole.token_values is not None
    for name in whole.categories:
        for a, b in zip(small.token_values[name], whole.token_values[name], strict=True):
            np.testing.assert_array_equal(a[0], b[0])


def test_shape_detection_and_paths() -> None:
    assert detect_shape(["startTime", "spend", "model"]) == "litellm"
    assert detect_shape(["start_time", "num_model_requests"]) == "openai"
    assert detect_shape(["timestamp", "model"]) == "generic"
    with pytest.raises(InputError, match="shape"):
        detect_shape(["when", "who"])
    assert split_path("metadata.tags[0]", ["metadata"]) == ("metadata", ("tags", 0))
    assert split_path("metadata.tags", ["metadata.tags", "metadata"]) == ("metadata.tags", ())
    assert split_path("nope.x", ["metadata"]) is None


@pytest.mark.parametrize(
    ("name", "content", "options", "message"),
    [
        ("missing.csv", None, {}, "no such file"),
        ("empty.csv", "", {}, "empty file"),
        ("log.txt", "timestamp\n1\n", {}, "extension"),
        ("shape.csv", "when,who\n1,2\n", {}, "cannot tell the log's shape"),
        ("role.csv", "timestamp,category,model\n1,a,b\n", {"columns": {"colour": "x"}}, "unknown role"),
        ("col.csv", "timestamp,category,model\n1,a,b\n", {"columns": {"cost": "usd"}}, "no column for cost=usd"),
        ("nocat.csv", "timestamp,model\n1,b\n", {}, "no category"),
        ("allbad.csv", "timestamp,category,model\n,a,b\n", {}, "no usable rows"),
        ("ragged.csv", "timestamp,category,model\n1,a,b\n2,a,b,c\n", {}, "line 3: 4 fields, the header has 3"),
        ("rule.jsonl", '{"timestamp": 1, "model": "m", "meta": {}}\n', {"columns": {"category": "meta.c"}}, "found nothing"),
        ("dup.csv", "timestamp,model,model\n1,a,b\n", {}, "named twice"),
    ],
)  # fmt: skip
def test_unreadable_logs_are_input_errors(
    tmp_path: Path, name: str, content: str | None, options: dict, message: str
) -> None:
    path = tmp_path / name
    if content is not None:
        path.write_text(content, encoding="utf-8")
    with pytest.raises(InputError, match=message):
        read_logs(path, LogOptions(**options))


def test_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "log.csv"
    path.write_bytes(b"timestamp,category,model\n1,\xff\xfe,b\n")
    with pytest.raises(InputError, match="UTF-8"):
        read_logs(path)


def test_too_many_categories_means_a_wrong_rule(tmp_path: Path) -> None:
    rows = "".join(f"{1790812800 + i},req-{i},m\n" for i in range(1100))
    with pytest.raises(InputError, match="more than 1,000 distinct categories"):
        read_logs(_write(tmp_path, "log.csv", "timestamp,category,model\n" + rows))


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(0, 50), min_size=1, max_size=40), st.floats(0, 1))
def test_percentiles_of_counts_match_numpy(values: list[int], q: float) -> None:
    data = np.array(values, dtype=float)
    distinct, counts = np.unique(data, return_counts=True)
    assert percentiles(distinct, counts.astype(float), [q])[0] == pytest.approx(np.percentile(data, q * 100))


@pytest.mark.parametrize("shape", ["litellm", "generic"])
@pytest.mark.parametrize("suffix", [".jsonl", ".csv", ".parquet"])
def test_synthetic_logs_read_back_exactly(tmp_path: Path, shape: str, suffix: str) -> None:
    """What the generator wrote (calls per category, model and outcome, tokens, cost) is what the reader counts."""
    import routecalc
    from routecalc.data.synth import synth_calls, write_log

    ws = routecalc.load_worksheet(Path(__file__).parent / "data" / "ws-logs.yaml")
    calls = synth_calls(ws, "today", 3000, days=3, seed=2)
    data = read_logs(write_log(calls, tmp_path / f"log{suffix}", shape))
    assert not data.report.bad and data.good_rows == calls.n
    for i, cat in enumerate(data.categories):
        for j, model in enumerate(data.models):
            sel = (np.array(calls.categories)[calls.category] == cat) & (np.array(calls.models)[calls.model] == model)
            expected = np.bincount(calls.kind[sel], minlength=5)  # success, then ERROR_ORDER
            assert data.requests[i, j, :5].tolist() == expected.tolist()
            assert data.tokens_in[i, j, 0] == calls.tokens_in[sel & (calls.kind == 0)].sum()  # type: ignore[index]
            assert data.cost[i, j].sum() == pytest.approx(calls.cost[sel].sum(), rel=1e-6)  # type: ignore[union-attr]


def test_nan_is_a_missing_number(tmp_path: Path) -> None:
    text = (
        HEADER + "2026-10-01T00:00:00Z,x,m,10,1,NaN,success,,nan\n" + "2026-10-01T00:00:01Z,x,m,10,1,inf,success,,0\n"
    )
    data = read_logs(_write(tmp_path, "log.csv", text))
    assert [(b.key, b.first) for b in data.report.bad] == [("bad_latency", (3,))]
    assert data.cost is not None and data.cost.sum() == 0 and data.latency_hist is None
