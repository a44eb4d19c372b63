"""Reading request logs in one streaming pass into small aggregates, with every bad row counted and located.

A request log has one row per call to a model (LiteLLM spend logs, a gateway's own log) or, in an OpenAI usage
export, one row per (time bucket, group) carrying a request count. Three shapes, told apart by their columns
(:func:`detect_shape`) or given:

* ``litellm``: LiteLLM's ``LiteLLM_SpendLogs`` rows (``startTime``, ``endTime``, ``completionStartTime``,
  ``model_group``/``model``, ``prompt_tokens``, ``completion_tokens``, ``spend``, ``status``, ``metadata`` with
  ``error_information`` and ``spend_logs_metadata``), as exported from its database or API;
* ``openai``: the Completions Usage API's results, one row per bucket and group (``start_time``, ``end_time``,
  ``model``, ``input_tokens``, ``output_tokens``, ``num_model_requests``, ``project_id``, ...): aggregated, so
  no per-request token bands, latency or errors;
* ``generic``: ``timestamp, category, model, tokens_in, tokens_out, latency_s, ttft_s, status, error, cost``.

Any role may point elsewhere (``columns={"category": "metadata.tags[0]"}``): a column, then ``.key`` / ``[i]``
steps into JSON text (or Parquet structs and lists). CSV, TSV, JSONL or Parquet, read with Polars (lazy scan,
streaming engine) in batches; per batch only group-by aggregates are kept (counts per category x model x outcome,
token values, latency histogram bins, counts per hour), so memory is bounded by the number of distinct groups,
not by the rows (``benchmarks/bench_logs.py``). Conventions follow :mod:`routecalc.data.evals`: line numbers count
the CSV header as line 1, JSONL lines from 1 (blank lines counted and skipped), Parquet rows from 1; a bad row is
counted under its first problem (order of :data:`BAD_KINDS`) with its first few line numbers.

Status and errors (README, "Request logs"): a row is a success or a failure (``status`` success/failure, or an
HTTP code: below 400 success); a failure's type comes from its HTTP code, error class and message:
content filter, 429, timeout (408, 504, "timeout"), 5xx, client error (other 4xx: not a provider failure), or
other. Timestamps are UTC (naive ones are read as UTC): ISO 8601, or epoch seconds / milliseconds / microseconds.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np

from routecalc.data.evals import (
    MAX_EXAMPLES,
    BadKind,
    RowReport,
    _check_file,
    _csv_header,
    _first_line,
    _json_path,
    _jsonl_keys,
    _list,
    _polars,
    _ragged_line,
    detect_format,
)
from routecalc.data.logrows import (
    BAD_KINDS,
    BLANK,
    CODE,
    CONTENT,
    E5XX,
    E429,
    OUTCOMES,
    REQUIRED,
    SHAPES,
    TIMEOUT,
    detect_shape,
    resolve_roles,
    row_frame,
    split_path,
)
from routecalc.engine.histogram import BINS_PER_DECADE, DECADES, LAT_MIN_S
from routecalc.errors import InputError

Shape = Literal["auto", "litellm", "openai", "generic"]
LATENCY_CLASSES = ("success", "timeout", "fast_error")  # latency histograms: answers, timeouts, fast errors
MAX_GROUPS = 1000  # distinct categories or models: more means the category rule (or model column) is wrong
TPOT_SCALE = 1000.0  # seconds per output token are histogrammed as milliseconds (the histogram starts at 1 ms)
HIST_BINS = DECADES * BINS_PER_DECADE
# sums per (category, model, outcome): requests, rows, cost, tokens; and, for a price fit, products of them
CUBE_FIELDS = ("requests", "rows", "cost", "tin", "tout", "tin2", "tinout", "tout2", "cost_tin", "cost_tout")


@dataclass(frozen=True)
class LogOptions:
    """How to read a log. ``columns``: role -> path (``metadata.tags[0]``); ``category_map``: value -> category;
    ``model_map``: logged name -> catalog name (applied to ``model``, then ``model_alt``); ``max_skew_s``: how far
    a timestamp may fall behind the latest one before it (async writers log slightly out of order)."""

    fmt: Literal["auto", "csv", "tsv", "jsonl", "parquet"] = "auto"
    shape: Shape = "auto"
    columns: Mapping[str, str] | None = None
    category_map: Mapping[str, str] | None = None
    model_map: Mapping[str, str] | None = None
    max_skew_s: float = 600.0
    max_examples: int = MAX_EXAMPLES
    batch_rows: int = 1 << 19


@dataclass(frozen=True, eq=False)
class LogData:
    """What a log says, aggregated. C categories, M models (order of first appearance), O = len(OUTCOMES).

    ``requests``/``rows``/``cost``/``tokens_in``/``tokens_out``: ``(C, M, O)`` sums (requests a row stands for,
    rows, cost in the log's currency, tokens); ``token_values``: category -> (values, requests) of successful
    calls' input and output tokens (None for an aggregated log); ``latency_hist`` ``(M, 3, B)`` counts of
    successes' latency, timeouts' and fast errors' durations (seconds, :data:`LATENCY_CLASSES`); ``ttft_hist``,
    ``tpot_hist`` ``(M, B)`` (tpot in ms per token); ``hours`` epoch hours (UTC) with ``hour_requests``;
    ``first``/``last`` epoch seconds of the first start and last start (or bucket end); ``bucket_s`` the width of
    an aggregated log's buckets (None for per-call rows).
    """

    source: str
    fmt: str
    shape: str
    roles: dict[str, str]
    categories: tuple[str, ...]
    models: tuple[str, ...]
    requests: np.ndarray
    rows: np.ndarray
    cost: np.ndarray | None
    products: dict[str, np.ndarray]  # (C, M, O) sums of tin2, tinout, tout2, cost_tin, cost_tout (price fit)
    tokens_in: np.ndarray | None
    tokens_out: np.ndarray | None
    token_values: dict[str, tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]] | None
    latency_hist: np.ndarray | None
    ttft_hist: np.ndarray | None
    tpot_hist: np.ndarray | None
    hours: np.ndarray
    hour_requests: np.ndarray
    first: float
    last: float
    bucket_s: float | None
    report: RowReport
    notes: tuple[str, ...] = field(default_factory=tuple)

    @property
    def total_requests(self) -> float:
        return float(self.requests.sum())

    @property
    def good_rows(self) -> int:
        return int(self.rows.sum())

    @property
    def has_outcomes(self) -> bool:
        """Whether the log says which calls failed (a status or error column)."""
        return any(r in self.roles for r in ("status", "error", "error_code", "error_class"))


# ---------------------------------------------------------------------------------------------------------
# Reading in chunks: one chunk in memory at a time (Polars' own batch iterators run ahead of the consumer)

BLOCK_BYTES = 32 << 20  # text files are read in blocks of about this size, cut at record boundaries
JSONL_KEY_LINES = 1000  # a JSONL log's columns: the keys of its first lines


def _columns(pl: Any, path: Path, fmt: str) -> tuple[list[str], dict[str, Any] | None]:
    """The file's columns (CSV header, first JSONL object's keys, Parquet schema) and the Parquet schema."""
    if fmt in ("csv", "tsv"):
        columns = _csv_header(path, "," if fmt == "csv" else "\t")
        dup = sorted({c for c in columns if columns.count(c) > 1})
        if dup:
            raise InputError(f"{path}: line 1: column(s) named twice: {', '.join(dup)}")
        return columns, None
    if fmt == "jsonl":
        return _jsonl_columns(path), None
    try:
        schema = dict(pl.scan_parquet(path).collect_schema())
    except Exception as exc:
        raise InputError(f"{path}: not a readable Parquet file ({_first_line(exc)})") from None
    return list(schema), schema


def _jsonl_columns(path: Path, lines: int = JSONL_KEY_LINES) -> list[str]:
    """Keys of the first JSONL lines, in order of first appearance: optional keys (an ``error`` only on failures)
    count as columns if any of the first ``lines`` objects has them. Errors as :func:`evals._jsonl_keys`."""
    keys = dict.fromkeys(_jsonl_keys(path))
    with path.open(encoding="utf-8", errors="replace") as fh:
        for _, line in zip(range(lines), fh, strict=False):
            try:
                obj = json.loads(line)
            except ValueError:
                continue
            if isinstance(obj, dict):
                keys.update(dict.fromkeys(str(k) for k in obj))
    return list(keys)


def _cut(buf: bytes, quoted: bool) -> int:
    """Where to end a block: after the last newline outside a quoted CSV field (-1: none in ``buf``)."""
    pos = buf.rfind(b"\n")
    if not quoted:
        return pos + 1 if pos >= 0 else -1
    total = buf.count(b'"')
    while pos >= 0:
        if (total - buf.count(b'"', pos)) % 2 == 0:  # an even number of quotes before it: a record boundary
            return pos + 1
        pos = buf.rfind(b"\n", 0, pos)
    return -1


def _blocks(path: Path, header: bool, quoted: bool, size: int) -> Iterator[tuple[int, bytes]]:
    """(0-based line of the block's first line after the header, bytes): whole records, about ``size`` bytes."""
    with path.open("rb") as fh:
        if header:
            fh.readline()
        carry, line = b"", 0
        while True:
            data = fh.read(size)
            if not data:
                if carry:
                    yield line, carry
                return
            buf = carry + data
            cut = _cut(buf, quoted)
            if cut <= 0:
                carry = buf
                continue
            yield line, buf[:cut]
            line += buf.count(b"\n", 0, cut)
            carry = buf[cut:]


def _chunks(
    pl: Any, path: Path, fmt: str, columns: list[str], wanted: Sequence[str], rows: int, dtype: Any = None
) -> Iterator[Any]:
    """DataFrames of about ``rows`` records: ``_r`` (0-based record: line - 2 for CSV, exact unless a quoted field
    spans lines; line - 1 for JSONL; row - 1 for Parquet), the wanted columns (text; native for Parquet; decoded
    to ``dtype``'s structs for JSONL where every line allows) and, for JSONL, the raw ``_line``."""
    if fmt == "parquet":
        lf = pl.scan_parquet(path).select(list(wanted))
        total = pl.scan_parquet(path).select(pl.len()).collect().item()
        for off in range(0, total, rows):
            yield lf.slice(off, rows).collect().with_row_index("_r", offset=off)
        return
    size = min(BLOCK_BYTES, max(1 << 12, rows * 200))  # about 200 bytes a row
    if fmt in ("csv", "tsv"):
        sep = "," if fmt == "csv" else "\t"
        records = 0  # records, not lines: a quoted field may span lines (as in routecalc.data.evals)
        for _, block in _blocks(path, True, True, size):
            df = pl.read_csv(
                block, has_header=False, new_columns=columns, separator=sep, infer_schema=False, encoding="utf8"
            )
            yield df.select(list(wanted)).with_row_index("_r", offset=records)
            records += df.height
        return
    for line, block in _blocks(path, False, False, size):
        raw = pl.read_csv(
            block,
            has_header=False,
            separator="\x1f",  # never in valid JSON text (control characters must be escaped)
            quote_char=None,
            new_columns=["_line"],
            infer_schema=False,
            truncate_ragged_lines=True,
            encoding="utf8",
        )
        yield _decode(pl, raw, wanted, dtype).with_row_index("_r", offset=line)


def _jsonl_dtype(pl: Any, paths: Sequence[tuple[str, tuple[str | int, ...]]]) -> Any:
    """The Struct a JSONL line is decoded to: each wanted column as text, or as nested structs down to the keys
    the roles read (a list index: a list of text). None when the roles read a column both ways."""
    tree: dict = {}
    for col, steps in paths:
        node, keys = tree, [col, *steps]
        for i, key in enumerate(keys):
            last = i == len(keys) - 1
            if isinstance(key, int):
                if not last:
                    return None
                break
            nxt = keys[i + 1] if not last else None
            want: Any = "list" if isinstance(nxt, int) else ({} if nxt is not None else "text")
            have = node.setdefault(key, want)
            if (have == "text") != (want == "text") or (have == "list") != (want == "list"):
                return None
            node = have if isinstance(have, dict) else node

    def build(t: dict) -> Any:
        kinds = {"text": pl.String, "list": pl.List(pl.String)}
        return pl.Struct({k: kinds[v] if isinstance(v, str) else build(v) for k, v in t.items()})

    return build(tree)


def _decode(pl: Any, raw: Any, wanted: Sequence[str], dtype: Any) -> Any:
    """A JSONL block's wanted fields: one JSON decode per line into ``dtype`` (fast); where that fails (a broken
    line, a value of another type), a JSON-path match per field (text, slower) for the whole block."""
    line = pl.col("_line")
    if dtype is not None:
        objects = pl.when(line.str.strip_chars().str.starts_with("{")).then(line)
        try:
            decoded = raw.select("_line", objects.str.json_decode(dtype).alias("_obj"))
            return decoded.select("_line", *(pl.col("_obj").struct.field(c).alias(c) for c in wanted))
        except pl.exceptions.PolarsError:
            pass
    return raw.select("_line", *(line.str.json_path_match(_json_path(c)).alias(c) for c in wanted))


def read_logs(path: str | Path, options: LogOptions | None = None) -> LogData:
    """Read and validate a request log (module docstring) into aggregates; InputError if nothing is usable."""
    options = options or LogOptions()
    path = Path(path)
    _check_file(path)
    pl = _polars()
    fmt = detect_format(path, options.fmt)
    columns, schema = _columns(pl, path, fmt)
    shape = detect_shape(columns) if options.shape == "auto" else options.shape
    if shape not in SHAPES:
        raise InputError(f"--shape: {shape!r} is not one of {', '.join(SHAPES)}")
    roles = resolve_roles(shape, columns, options.columns)
    missing = [r for r in REQUIRED if r not in roles]
    if missing:
        hint = {
            "category": "give --category-from PATH (a column, or a path into one: metadata.tags[0], request_tags[0], "
            "metadata.spend_logs_metadata.category, project_id)",
        }
        more = "; ".join(hint.get(r, f"map it with --columns {r}=COLUMN") for r in missing)
        raise InputError(f"{path}: no {', '.join(missing)} in this {shape} log ({more}); columns: {_list(columns)}")
    wanted = sorted({split_path(p, columns)[0] for p in roles.values()})  # type: ignore[index]
    try:
        return _read(pl, path, fmt, shape, roles, columns, schema, wanted, options)
    except InputError:
        raise
    except Exception as exc:  # polars' own errors on unreadable input are bad input, not bugs
        text = str(exc)
        if "more fields than defined" in text and fmt in ("csv", "tsv"):
            where = _ragged_line(path, "," if fmt == "csv" else "\t", len(columns))
            raise InputError(f"{path}: {where}") from None
        if "utf-8" in text.lower() or "utf8" in text.lower():
            raise InputError(f"{path}: not UTF-8 text ({_first_line(exc)})") from None
        if type(exc).__module__.startswith("polars"):
            raise InputError(f"{path}: cannot read as {fmt} ({_first_line(exc)})") from None
        raise


class _Names:
    """Global Categorical codes -> dense indexes in order of first appearance (and the names)."""

    def __init__(self) -> None:
        self.names: list[str] = []
        self.lut = np.full(0, -1, dtype=np.int64)

    def index(self, pl: Any, series: Any, good: np.ndarray) -> np.ndarray:
        codes = series.to_physical().fill_null(0).to_numpy().astype(np.int64)[good]
        if codes.size == 0:
            return codes
        top = int(codes.max()) + 1
        if top > self.lut.size:
            self.lut = np.concatenate([self.lut, np.full(top - self.lut.size, -1, dtype=np.int64)])
        new = codes[self.lut[codes] < 0]
        if new.size:
            u, first = np.unique(new, return_index=True)
            u = u[np.argsort(first, kind="stable")]
            frame = pl.DataFrame({"v": series.filter(pl.Series(good))}).unique()
            names = dict(zip(frame["v"].to_physical().to_list(), frame["v"].cast(pl.String).to_list(), strict=True))
            for code in u.tolist():
                self.lut[code] = len(self.names)
                self.names.append(names[code])
        return self.lut[codes]


class _Grid:
    """Sums on a grid that grows as categories and models appear, added to by flat bincounts."""

    def __init__(self, fields: Sequence[str], ndim: int, dtype: Any = float):
        self.shape = (0,) * ndim
        self.data = {f: np.zeros(self.shape, dtype=dtype) for f in fields}

    def add(self, index: tuple[np.ndarray, ...], weights: Mapping[str, np.ndarray | None], shape: tuple) -> None:
        if any(s > c for s, c in zip(shape, self.shape, strict=True)):
            new = tuple(max(s, c) for s, c in zip(shape, self.shape, strict=True))
            pad = [(0, n - c) for n, c in zip(new, self.shape, strict=True)]
            self.data = {f: np.pad(a, pad) for f, a in self.data.items()}
            self.shape = new
        flat = np.ravel_multi_index(index, self.shape)
        size = int(np.prod(self.shape))
        for f, w in weights.items():
            a = self.data[f]
            a += np.bincount(flat, weights=w, minlength=size).reshape(self.shape).astype(a.dtype)

    def full(self, name: str, shape: tuple) -> np.ndarray:
        """The sums padded to ``shape`` (categories or models that appeared after the last addition)."""
        a = self.data[name]
        return np.pad(a, [(0, n - c) for n, c in zip(shape, a.shape, strict=True)])


def _bins(x: np.ndarray) -> np.ndarray:
    """Latency histogram bin of seconds ``x`` (edges :func:`routecalc.engine.histogram.histogram_edges`)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        b = np.floor(np.log10(np.maximum(x, LAT_MIN_S) / LAT_MIN_S) * BINS_PER_DECADE)
    return np.clip(b, 0, HIST_BINS - 1).astype(np.int64)


@dataclass
class _State:
    """What the chunks add up to."""

    cats: _Names = field(default_factory=_Names)
    models: _Names = field(default_factory=_Names)
    cube: _Grid = field(default_factory=lambda: _Grid(CUBE_FIELDS, 3))
    latency: _Grid = field(default_factory=lambda: _Grid(("n",), 3, np.int64))
    ttft: _Grid = field(default_factory=lambda: _Grid(("n",), 2, np.int64))
    tpot: _Grid = field(default_factory=lambda: _Grid(("n",), 2, np.int64))
    tokens: dict[str, list[Any]] = field(default_factory=lambda: {"tin": [], "tout": []})
    hours: dict[int, float] = field(default_factory=dict)
    widths: dict[int, int] = field(default_factory=dict)
    counts: np.ndarray = field(default_factory=lambda: np.zeros(256, dtype=np.int64))
    examples: dict[int, list[int]] = field(default_factory=dict)
    carry: int = np.iinfo(np.int64).min
    lo: float = np.inf
    hi: float = -np.inf


def _read(
    pl: Any,
    path: Path,
    fmt: str,
    shape: str,
    roles: dict[str, str],
    columns: list[str],
    schema: dict[str, Any] | None,
    wanted: list[str],
    options: LogOptions,
) -> LogData:
    unit = "row" if fmt == "parquet" else "line"
    aggregated = "requests" in roles
    st = _State()
    dtype = _jsonl_dtype(pl, [split_path(p, columns) for p in roles.values()]) if fmt == "jsonl" else None  # type: ignore[misc]
    for chunk in _chunks(pl, path, fmt, columns, wanted, options.batch_rows, dtype):
        df = row_frame(
            pl,
            chunk.lazy(),
            fmt,
            shape,
            roles,
            columns,
            dict(chunk.schema),
            wanted,
            options.category_map,
            options.model_map,
        ).collect()
        _add_chunk(pl, df, st, options, aggregated)
    report = _report(path, fmt, unit, st.counts, st.examples, options)
    if not st.cats.names:
        detail = "; ".join(report.lines()) or "no data rows"
        hint = ""
        missing_cat = st.counts[CODE["missing_category"]]
        if missing_cat and missing_cat >= st.counts[1:BLANK].max():
            hint = f" The category rule ({roles['category']}) found nothing: give --category-from PATH."
        raise InputError(f"{path}: no usable rows ({detail}).{hint}")
    return _assemble(pl, path, fmt, shape, roles, report, st, aggregated)


def _add_chunk(pl: Any, df: Any, st: _State, options: LogOptions, aggregated: bool) -> None:
    """Validate the chunk's order and add its good rows to the sums (numpy bincounts, no Python per row)."""
    kind = df["kind"].to_numpy().copy()
    records = df["_r"].to_numpy()
    has_ts = df["ts"].is_not_null().to_numpy()
    low = np.iinfo(np.int64).min
    ts = df["ts"].fill_null(low).to_numpy()
    if has_ts.any():  # a row more than the skew before the latest earlier timestamp is out of order
        running = np.maximum.accumulate(ts)
        before = np.empty_like(running)
        before[0] = st.carry
        before[1:] = np.maximum(running[:-1], st.carry)
        late = (kind == 0) & has_ts & (before > low) & (ts < before - int(options.max_skew_s * 1e6))
        kind[late] = CODE["out_of_order"]
        st.carry = max(st.carry, int(running[-1]))
    st.counts += np.bincount(kind, minlength=256)
    n_ex = max(1, int(options.max_examples))
    for k in np.unique(kind).tolist():
        have = st.examples.setdefault(k, [])
        if k not in (0, BLANK) and len(have) < n_ex:
            have += records[kind == k][: n_ex - len(have)].tolist()
    good = kind == 0
    if not good.any():
        return
    ci = st.cats.index(pl, df["cat"], good)
    mi = st.models.index(pl, df["model"], good)
    for names, what, fix in ((st.cats, "categories", "--category-from"), (st.models, "models", "--columns model=")):
        if len(names.names) > MAX_GROUPS:
            raise InputError(
                f"more than {MAX_GROUPS:,} distinct {what} (e.g. {', '.join(map(repr, names.names[:5]))}): "
                f"is the column right? Check {fix}"
            )
    C, M = len(st.cats.names), len(st.models.names)
    col = lambda name: df[name].to_numpy()[good]
    outcome = col("outcome").astype(np.int64)
    w = col("w").astype(float)
    num = lambda name: np.nan_to_num(col(name).astype(float))
    x, y, cost = num("tin"), num("tout"), num("cost")
    sums = {"requests": w, "rows": None, "cost": cost, "tin": x, "tout": y}
    sums |= {"tin2": x * x, "tinout": x * y, "tout2": y * y, "cost_tin": cost * x, "cost_tout": cost * y}
    st.cube.add((ci, mi, outcome), sums, (C, M, len(OUTCOMES)))
    gts = ts[good]
    st.lo, st.hi = min(st.lo, float(gts.min())), max(st.hi, float(gts.max()))
    hour = gts // 3_600_000_000
    h0 = int(hour.min())
    if int(hour.max()) - h0 < 1 << 20:  # a chunk spans a few hours or days: count by offset, not by sorting
        per = np.bincount(hour - h0, weights=w)
        for k in np.flatnonzero(per).tolist():
            st.hours[h0 + k] = st.hours.get(h0 + k, 0.0) + float(per[k])
    else:
        uniq, inverse = np.unique(hour, return_inverse=True)
        for h, v in zip(uniq.tolist(), np.bincount(inverse, weights=w).tolist(), strict=True):
            st.hours[h] = st.hours.get(h, 0.0) + v
    if aggregated:
        end = df["end"].to_numpy()[good]
        end = end[np.isfinite(end.astype(float))].astype(np.int64) if end.dtype.kind == "f" else end
        if end.size:
            st.hi = max(st.hi, float(end.max()))
            width, many = np.unique((end - gts[: end.size]) // 1_000_000, return_counts=True)
            for v, m in zip(width.tolist(), many.tolist(), strict=True):
                st.widths[v] = st.widths.get(v, 0) + m
        return  # an aggregated row has no per-request tokens or latency
    success = outcome == 0
    for k in ("tin", "tout"):
        x = col(k).astype(float)
        keep = success & np.isfinite(x)
        if keep.any():
            part = pl.DataFrame({"cat": ci[keep], "v": x[keep]}).group_by("cat", "v").agg(pl.len().alias("n"))
            st.tokens[k].append(part)
            if len(st.tokens[k]) >= 16:
                st.tokens[k] = [pl.concat(st.tokens[k]).group_by("cat", "v").agg(pl.col("n").sum())]
    lat = col("lat").astype(float)
    cls = np.select([outcome == 0, outcome == TIMEOUT, np.isin(outcome, [E5XX, E429, CONTENT])], [0, 1, 2], -1)
    keep = np.isfinite(lat) & (cls >= 0)
    if keep.any():
        st.latency.add((mi[keep], cls[keep], _bins(lat[keep])), {"n": None}, (M, len(LATENCY_CLASSES), HIST_BINS))
    ttft = col("ttft").astype(float)
    keep = success & np.isfinite(ttft)
    if keep.any():
        st.ttft.add((mi[keep], _bins(ttft[keep])), {"n": None}, (M, HIST_BINS))
        tout = col("tout").astype(float)
        per = keep & (tout > 0) & (lat >= ttft)
        if per.any():
            rate = (lat[per] - ttft[per]) / tout[per] * TPOT_SCALE
            st.tpot.add((mi[per], _bins(rate)), {"n": None}, (M, HIST_BINS))


def _report(
    path: Path, fmt: str, unit: str, counts: np.ndarray, examples: dict[int, list[int]], options: LogOptions
) -> RowReport:
    offset = 2 if fmt in ("csv", "tsv") else 1  # the CSV header is line 1; JSONL lines and Parquet rows from 1
    bad = []
    for i, (key, desc) in enumerate(BAD_KINDS):
        code = i + 1
        if counts[code]:
            if key == "out_of_order":
                desc = f"timestamp more than {options.max_skew_s:g} s before an earlier row's"
            first = tuple(r + offset for r in sorted(examples.get(code, []))[: options.max_examples])
            bad.append(BadKind(key, desc, int(counts[code]), first))
    return RowReport(
        source=str(path),
        unit=unit,
        records=int(counts.sum() - counts[BLANK]),
        blank_lines=int(counts[BLANK]),
        bad=tuple(bad),
        duplicates_collapsed=0,
        duplicate_examples=(),
    )


def _assemble(
    pl: Any, path: Path, fmt: str, shape: str, roles: dict[str, str], report: RowReport, st: _State, aggregated: bool
) -> LogData:
    """The sums as arrays, categories and models in order of their first row."""
    cats, models = tuple(st.cats.names), tuple(st.models.names)
    C, M = len(cats), len(models)

    cube = {f: st.cube.full(f, (C, M, len(OUTCOMES))) for f in st.cube.data}
    has = lambda role: role in roles
    values = None
    if any(st.tokens.values()):
        values = {}
        parts = {
            k: (pl.concat(v).group_by("cat", "v").agg(pl.col("n").sum()).sort("v") if v else None)
            for k, v in st.tokens.items()
        }
        for c, name in enumerate(cats):
            pair = []
            for k in ("tin", "tout"):
                df = parts[k]
                sel = df.filter(pl.col("cat") == c) if df is not None else None
                pair.append(
                    (sel["v"].to_numpy().astype(float), sel["n"].to_numpy().astype(float))
                    if sel is not None
                    else (np.empty(0), np.empty(0))
                )
            values[name] = (pair[0], pair[1])

    def hist(g: _Grid, shape: tuple) -> np.ndarray | None:
        return g.full("n", shape) if g.data["n"].any() else None

    hours = np.array(sorted(st.hours), dtype=np.int64)
    notes = []
    if not has("status") and not has("error") and not has("error_code"):
        notes.append("no status or error column: every row counts as a success (no failure rates)")
    if aggregated:
        notes.append("aggregated usage rows: token bands are per-request means; no latency, failures or cost")
    return LogData(
        source=str(path),
        fmt=fmt,
        shape=shape,
        roles=dict(roles),
        categories=cats,
        models=models,
        requests=cube["requests"],
        rows=cube["rows"],
        cost=cube["cost"] if has("cost") else None,
        products={f: cube[f] for f in CUBE_FIELDS[5:]},
        tokens_in=cube["tin"] if has("tokens_in") else None,
        tokens_out=cube["tout"] if has("tokens_out") else None,
        token_values=values,
        latency_hist=hist(st.latency, (M, len(LATENCY_CLASSES), HIST_BINS)),
        ttft_hist=hist(st.ttft, (M, HIST_BINS)),
        tpot_hist=hist(st.tpot, (M, HIST_BINS)),
        hours=hours,
        hour_requests=np.array([st.hours[h] for h in hours.tolist()], dtype=float),
        first=st.lo / 1e6,
        last=st.hi / 1e6,
        bucket_s=float(max(st.widths, key=st.widths.__getitem__)) if st.widths else None,
        report=report,
        notes=tuple(notes),
    )
