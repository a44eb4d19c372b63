"""One request-log row as values: log shapes and their columns, paths into JSON, timestamps, status and error types.

Builds the lazy per-row frame that :mod:`routecalc.data.logs` aggregates. Everything is a Polars expression
(no Python per row), evaluated in stages: each raw value is extracted and cleaned once into a column, and the
checks read those columns, so no expression is computed twice per row.

**Shapes** (:data:`SHAPE_ROLES`): ``litellm`` (LiteLLM 1.110's ``LiteLLM_SpendLogs`` rows: ``startTime``,
``endTime``, ``completionStartTime``, ``model_group``/``model``, ``prompt_tokens``, ``completion_tokens``,
``spend``, ``status`` success/failure, ``metadata.error_information.{error_code, error_class, error_message}``,
category from ``metadata.spend_logs_metadata.category``); ``openai`` (the Completions Usage API's results flattened
to one row per bucket and group: ``start_time``, ``end_time``, ``model``, ``input_tokens``, ``output_tokens``,
``num_model_requests``; a category column must be named); ``generic`` (``timestamp, category, model, tokens_in,
tokens_out, latency_s, ttft_s, status, error, cost``).

**Paths**: a role names a column, then ``.key`` and ``[i]`` steps into JSON text (CSV, JSONL, a JSON string in a
Parquet column) or into Parquet structs and lists: ``metadata.tags[0]``, ``request_tags[0]``.

**Outcome of a row** (:data:`OUTCOMES`): success when the status says so (success, succeeded, ok, completed, or
an HTTP code below 400); a failure (failure, failed, fail, error, a code of 400 or more; or no status but error
information) is typed, first match wins: *content filter* (class or message mentions a content filter/policy,
e.g. ``ContentPolicyViolationError``), *429* (code 429, "rate limit", "too many requests"), *timeout* (408, 504,
"timeout", "timed out"), *5xx* (500-599, "internal server error", "service unavailable", "bad gateway",
"connection error", "overloaded"), *client error* (any other 4xx, "bad request", "authentication", "not found",
"context window", "budget": the request's own fault, not a provider failure), else *other error*.

**Numbers**: ``NaN`` is a missing value (data frames write one so); infinities and text are bad values.

**Timestamps** are UTC: ISO 8601 with or without an offset (naive ones are read as UTC) or a date; epoch
seconds, milliseconds or microseconds (told apart by size); Parquet datetimes as they are.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from routecalc.data.evals import _list
from routecalc.errors import InputError

SHAPES = ("litellm", "openai", "generic")
ROLES = (
    "timestamp",  # the call's start (a bucket's start in an OpenAI export)
    "end",  # the call's end (a bucket's end)
    "first_token",  # when the first token arrived (streaming): ttft = first_token - timestamp
    "category",
    "model",
    "model_alt",  # LiteLLM: the deployment's model, used when model_group is empty or not a catalog name
    "tokens_in",
    "tokens_out",
    "latency_s",
    "ttft_s",
    "status",
    "error",  # error type, code, class or message (free text)
    "error_code",
    "error_class",
    "cost",
    "requests",  # requests a row stands for (an aggregated usage export); 1 without it
)
SHAPE_ROLES: dict[str, dict[str, str]] = {
    "litellm": {
        "timestamp": "startTime",
        "end": "endTime",
        "first_token": "completionStartTime",
        "category": "metadata.spend_logs_metadata.category",
        "model": "model_group",
        "model_alt": "model",
        "tokens_in": "prompt_tokens",
        "tokens_out": "completion_tokens",
        "status": "status",
        "error": "metadata.error_information.error_message",
        "error_code": "metadata.error_information.error_code",
        "error_class": "metadata.error_information.error_class",
        "cost": "spend",
    },
    "openai": {
        "timestamp": "start_time",
        "end": "end_time",
        "category": "category",
        "model": "model",
        "tokens_in": "input_tokens",
        "tokens_out": "output_tokens",
        "requests": "num_model_requests",
    },
    "generic": {r: r for r in ("timestamp", "category", "model", "tokens_in", "tokens_out", "latency_s", "ttft_s")}
    | {r: r for r in ("status", "error", "cost")},
}
REQUIRED = ("timestamp", "category", "model")

OUTCOMES = ("success", "timeout", "5xx", "429", "content_filter", "client_error", "other_error")
SUCCESS, TIMEOUT, E5XX, E429, CONTENT, CLIENT, OTHER = range(len(OUTCOMES))
PROVIDER_ERRORS = (TIMEOUT, E5XX, E429, CONTENT)  # what a worksheet's failure_rate counts
SUCCESS_WORDS = ("success", "succeeded", "ok", "completed")
FAILURE_WORDS = ("failure", "failed", "fail", "error")
_CONTENT = r"content[ _-]?(filter|policy|management)|contentpolicy|responsible ?ai"
_RATE = r"rate[ _-]?limit|too many requests"
_TIMEOUT = r"time[ _-]?out|timed out"
_SERVER = r"5xx|internal ?server|service ?unavailable|bad ?gateway|apiconnection|connection error|overloaded"
_CLIENT = r"bad ?request|authentication|permission ?denied|not ?found|context ?window|unprocessable|budget"

BAD_KINDS: tuple[tuple[str, str], ...] = (
    ("not_json", "not a JSON object"),
    ("missing_timestamp", "timestamp missing"),
    ("bad_timestamp", "timestamp is not a date-time (ISO 8601) or an epoch number"),
    ("missing_category", "category missing"),
    ("missing_model", "model missing"),
    ("missing_status", "status missing"),
    ("unknown_status", "status is not success/failure or an HTTP status code"),
    ("bad_tokens", "tokens missing on a success, or not a non-negative number"),
    ("bad_latency", "latency is not a non-negative number (or the call ends before it starts)"),
    ("bad_cost", "cost is not a non-negative number"),
    ("bad_requests", "request count is not a non-negative whole number"),
    ("out_of_order", "timestamp earlier than a previous row's by more than the allowed skew"),
)
CODE = {key: i + 1 for i, (key, _) in enumerate(BAD_KINDS)}  # 0: a good row
BLANK = 255  # a blank line: counted, not a row


def detect_shape(columns: Sequence[str]) -> str:
    """``litellm`` (``startTime`` with ``spend`` or ``prompt_tokens``), ``openai`` (``start_time`` and
    ``num_model_requests``), ``generic`` (``timestamp``); InputError otherwise."""
    cols = set(columns)
    if "startTime" in cols and ({"spend", "prompt_tokens"} & cols):
        return "litellm"
    if "num_model_requests" in cols and "start_time" in cols:
        return "openai"
    if "timestamp" in cols:
        return "generic"
    raise InputError(
        f"cannot tell the log's shape from its columns ({_list(list(columns))}): expected LiteLLM spend logs "
        "(startTime, spend, ...), an OpenAI usage export (start_time, num_model_requests, ...) or the generic shape "
        "(timestamp, category, model, ...); give --shape, and map columns with --columns role=column"
    )


_STEP = re.compile(r"\.([^.\[\]]+)|\[(\d+)\]")


def split_path(path: str, columns: Sequence[str]) -> tuple[str, tuple[str | int, ...]] | None:
    """``metadata.tags[0]`` -> (``metadata``, ("tags", 0)): the longest prefix that is a column, then its steps.
    None when no prefix names a column; InputError when the steps cannot be read."""
    cuts = sorted({len(path)} | {m.start() for m in re.finditer(r"[.\[]", path)}, reverse=True)
    for end in cuts:
        col = path[:end]
        if col not in columns:
            continue
        rest, steps, pos = path[end:], [], 0
        while pos < len(rest):
            m = _STEP.match(rest, pos)
            if m is None:
                raise InputError(f"{path!r}: cannot read the steps after column {col!r} (use .key and [index])")
            steps.append(m.group(1) if m.group(1) is not None else int(m.group(2)))
            pos = m.end()
        return col, tuple(steps)
    return None


def resolve_roles(shape: str, columns: Sequence[str], given: Mapping[str, str] | None) -> dict[str, str]:
    """role -> path for the roles the file has: the shape's defaults, overridden by ``given`` (which must exist)."""
    given = dict(given or {})
    unknown = sorted(set(given) - set(ROLES))
    if unknown:
        raise InputError(f"--columns: unknown role(s) {', '.join(unknown)} (roles: {', '.join(ROLES)})")
    absent = [f"{r}={p}" for r, p in given.items() if split_path(p, columns) is None]
    if absent:
        raise InputError(f"no column for {', '.join(absent)} in the file (columns: {_list(list(columns))})")
    paths = {**SHAPE_ROLES[shape], **given}
    return {r: p for r, p in paths.items() if split_path(p, columns) is not None}


def _json_steps(steps: Sequence[str | int]) -> str:
    out = "$"
    for s in steps:
        out += f"[{s}]" if isinstance(s, int) else "['" + s.replace("\\", "\\\\").replace("'", "\\'") + "']"
    return out


def _path_expr(pl: Any, path: str, columns: Sequence[str], schema: Mapping[str, Any] | None) -> tuple[Any, Any]:
    """(the value at ``path``, its Polars dtype or None for text): structs and lists are stepped into natively,
    JSON text with a JSON path."""
    col, steps = split_path(path, columns)  # type: ignore[misc]
    e = pl.col(col)
    dtype = schema.get(col) if schema is not None else None
    i = 0
    while i < len(steps) and isinstance(dtype, pl.Struct | pl.List):
        step = steps[i]
        if isinstance(dtype, pl.Struct) and isinstance(step, str):
            inner = {f.name: f.dtype for f in dtype.fields}
            if step not in inner:
                return pl.lit(None, dtype=pl.String), None
            e, dtype = e.struct.field(step), inner[step]
        elif isinstance(dtype, pl.List) and isinstance(step, int):
            e, dtype = e.list.get(step, null_on_oob=True), dtype.inner
        else:
            return pl.lit(None, dtype=pl.String), None
        i += 1
    if i < len(steps):
        if dtype is not None and dtype != pl.String:
            e = e.cast(pl.String)
        return e.str.json_path_match(_json_steps(steps[i:])), None
    return e, dtype


def _is_text(pl: Any, dtype: Any) -> bool:
    return dtype is None or dtype == pl.String or isinstance(dtype, pl.Categorical | pl.Enum)


def _clean(pl: Any, e: Any, dtype: Any) -> Any:
    """Text, stripped; empty -> null."""
    t = e.cast(pl.String).str.strip_chars()
    return pl.when(t == "").then(None).otherwise(t)


def _epoch_us(pl: Any, x: Any) -> Any:
    """Epoch seconds, milliseconds or microseconds (told apart by size) -> microseconds (Int64)."""
    a = x.abs()
    return (pl.when(a < 1e11).then(x * 1e6).when(a < 1e14).then(x * 1e3).when(a < 1e17).then(x).otherwise(None)).cast(
        pl.Int64
    )


class _Stages:
    """Columns computed in order: a later stage reads earlier ones by name, so nothing is evaluated twice."""

    def __init__(self, pl: Any):
        self.pl, self.stages, self._now = pl, [{}], 0

    def put(self, name: str, expr: Any, later: int = 0) -> Any:
        """Compute ``expr`` as column ``name`` in the current stage (or ``later`` stages on); its reference."""
        at = self._now + later
        while len(self.stages) <= at:
            self.stages.append({})
        self.stages[at][name] = expr
        return self.pl.col(name)

    def next(self) -> None:
        self._now += 1
        while len(self.stages) <= self._now:
            self.stages.append({})

    def apply(self, lf: Any) -> Any:
        for stage in self.stages:
            if stage:
                lf = lf.with_columns(**stage)
        return lf


def row_frame(
    pl: Any,
    lf: Any,
    fmt: str,
    shape: str,
    roles: Mapping[str, str],
    columns: Sequence[str],
    schema: Mapping[str, Any] | None,
    wanted: Sequence[str],
    category_map: Mapping[str, str] | None = None,
    model_map: Mapping[str, str] | None = None,
) -> Any:
    """The lazy per-row frame: ``_r``, ``kind`` (0 good, :data:`BLANK`, else a :data:`CODE`; out-of-order is
    decided by the reader, which sees rows in order), ``ts`` (epoch us), ``end`` (a bucket's end, us), ``cat``,
    ``model``, ``outcome``, ``tin``, ``tout``, ``lat``, ``ttft`` (seconds), ``cost``, ``w`` (requests per row)."""
    st = _Stages(pl)
    none_f = pl.lit(None, dtype=pl.Float64)
    no = pl.lit(False)

    # stage 1: every raw value extracted and cleaned once
    raw: dict[str, tuple[Any, Any]] = {}
    for role in roles:
        e, dtype = _path_expr(pl, roles[role], columns, schema)
        if _is_text(pl, dtype):
            t = _clean(pl, e, dtype)
            if role in ("status", "error", "error_class"):
                t = t.str.to_lowercase()
            e, dtype = t, None
        raw[role] = (st.put(f"_{role}", e), dtype)
    st.next()

    # stage 2: numbers and timestamps parsed
    def number(role: str) -> tuple[Any, Any]:
        if role not in raw:
            return none_f, no
        e, dtype = raw[role]
        x = e.cast(pl.Float64, strict=False)
        # text: "NaN" is a missing value (as data frames write one); anything unparseable is bad
        bad = (e.is_not_null() & x.is_null()) if dtype is None else pl.lit(False)
        bad = bad | x.is_infinite().fill_null(False)
        x = x.fill_nan(None)
        return st.put(f"_{role}_x", x), st.put(f"_{role}_bad", bad)

    def stamp(role: str) -> tuple[Any, Any]:
        if role not in raw:
            return pl.lit(None, dtype=pl.Int64), no
        e, dtype = raw[role]
        if isinstance(dtype, pl.Datetime):
            tz = e.dt.replace_time_zone("UTC") if dtype.time_zone is None else e.dt.convert_time_zone("UTC")
            us, bad = tz.dt.epoch("us"), no
        elif isinstance(dtype, pl.Date):
            us, bad = e.cast(pl.Datetime("us")).dt.epoch("us"), no
        elif dtype is not None and dtype.is_numeric():
            us = _epoch_us(pl, e.cast(pl.Float64))
            bad = e.is_not_null() & us.is_null()
        else:  # the format Polars infers from the chunk's first value (fast); the rest, only where that fails
            fast = e.str.to_datetime(strict=False, time_unit="us", time_zone="UTC").dt.epoch("us")
            fast = st.put(f"_{role}_fast", fast)
            rest = st.put(f"_{role}_rest", pl.when(fast.is_null()).then(e), later=1)
            iso = rest.str.replace(r"^(\d{4}-\d\d-\d\d)[ T]", "${1}T").str.replace(r"(?i)z$", "+00:00")
            aware = iso.str.strptime(pl.Datetime("us", "UTC"), "%Y-%m-%dT%H:%M:%S%.f%z", strict=False)
            naive = iso.str.strptime(pl.Datetime("us"), "%Y-%m-%dT%H:%M:%S%.f", strict=False)
            day = iso.str.strptime(pl.Date, "%Y-%m-%d", strict=False).cast(pl.Datetime("us"))
            number_ = _epoch_us(pl, rest.cast(pl.Float64, strict=False))
            us = pl.coalesce(fast, aware.dt.epoch("us"), naive.dt.epoch("us"), day.dt.epoch("us"), number_)
            us = st.put(f"_{role}_us", us, later=2)
            return us, st.put(f"_{role}_bad", e.is_not_null() & us.is_null(), later=3)
        return st.put(f"_{role}_us", us, later=2), st.put(f"_{role}_bad", bad, later=3)

    ts, bad_ts = stamp("timestamp")
    end, bad_end = stamp("end")
    first, bad_first = stamp("first_token")
    tin, bad_tin = number("tokens_in")
    tout, bad_tout = number("tokens_out")
    cost, bad_cost = number("cost")
    w, bad_w = number("requests")
    lat_col, bad_lat_col = number("latency_s")
    ttft_col, bad_ttft_col = number("ttft_s")
    status = raw["status"][0] if "status" in raw else None
    http = no
    if status is not None:
        code = status.str.to_integer(strict=False)
        http = st.put("_http", pl.when((code >= 100) & (code <= 599)).then(code))
    texts = [raw[r][0] for r in ("error_class", "error") if r in raw]
    joined = pl.concat_str(texts, separator=" ", ignore_nulls=True) if texts else None
    etext = st.put("_etext", pl.when(joined != "").then(joined)) if joined is not None else None
    codes = [raw["error_code"][0].str.to_integer(strict=False)] if "error_code" in raw else []
    if etext is not None:
        codes.append(etext.str.extract(r"^(\d{3})$").str.to_integer(strict=False))
    cat = raw["category"][0]
    if category_map:
        cat = cat.replace(dict(category_map))
    st.put("cat", cat)
    model = raw["model"][0]
    alt = raw["model_alt"][0] if "model_alt" in raw else None
    names = [e for e in (model, alt) if e is not None]
    if model_map:
        mapped = [e.replace_strict(dict(model_map), default=None, return_dtype=pl.String) for e in names]
        st.put("model", pl.coalesce(*mapped, *names))
    else:
        st.put("model", pl.coalesce(*names))
    st.next()

    # stage 3: status, error code, latency
    if status is not None or codes:
        st.put("_code", pl.coalesce(*codes, http) if status is not None else pl.coalesce(*codes))
    has_error = pl.lit(False)
    if "error_code" in raw:
        has_error = has_error | raw["error_code"][0].is_not_null()
    if etext is not None:
        has_error = has_error | etext.is_not_null()
    if status is not None:
        ok = status.is_in(list(SUCCESS_WORDS)) | (http < 400).fill_null(False)
        bad = status.is_in(list(FAILURE_WORDS)) | (http >= 400).fill_null(False)
        failed = st.put("_failed", bad | (status.is_null() & has_error))
        missing_status = status.is_null() & ~has_error
        unknown_status = status.is_not_null() & ~ok & ~bad
    else:
        failed = st.put("_failed", has_error)
        missing_status = unknown_status = no
    if shape == "openai":  # a bucket's end is not a call's end
        lat, ttft = lat_col, ttft_col
    else:
        lat = pl.coalesce((end - ts) / 1e6, lat_col)
        ttft = pl.coalesce(pl.when((first > ts) & (end.is_null() | (first < end))).then((first - ts) / 1e6), ttft_col)
    st.put("lat", lat, later=2)  # the timestamps are parsed two stages on
    st.put("ttft", ttft, later=2)
    st.next()
    t = st.put("_ftext", pl.when(failed).then(etext)) if etext is not None else pl.lit(None, dtype=pl.String)
    st.next()
    st.next()  # after the timestamps' last stage

    # stage 5: the failure's type (regexes only on failed rows' text) and the row's first problem
    code = pl.col("_code") if (status is not None or codes) else pl.lit(None, dtype=pl.Int64)
    hit = lambda pattern: t.str.contains(pattern).fill_null(False)
    typed = (
        pl.when(hit(_CONTENT))
        .then(CONTENT)
        .when((code == 429).fill_null(False) | hit(_RATE))
        .then(E429)
        .when(code.is_in([408, 504]).fill_null(False) | hit(_TIMEOUT))
        .then(TIMEOUT)
        .when(((code >= 500) & (code <= 599)).fill_null(False) | hit(_SERVER))
        .then(E5XX)
        .when(((code >= 400) & (code <= 499)).fill_null(False) | hit(_CLIENT))
        .then(CLIENT)
        .otherwise(OTHER)
    )
    st.put("outcome", pl.when(failed).then(typed).otherwise(SUCCESS).cast(pl.UInt8))
    success = ~failed
    aggregated = "requests" in roles
    bad_tokens = bad_tin | bad_tout | (tin < 0).fill_null(False) | (tout < 0).fill_null(False)
    if not aggregated:
        for role, x in (("tokens_in", tin), ("tokens_out", tout)):
            if role in roles:
                bad_tokens = bad_tokens | (success & x.is_null())
    bad_latency = bad_end | bad_first | bad_lat_col | bad_ttft_col
    bad_latency = bad_latency | (pl.col("lat") < 0).fill_null(False) | (ttft_col < 0).fill_null(False)
    if fmt == "jsonl":
        line = pl.col("_line")
        blank = line.is_null() | (line.str.strip_chars() == "")
        not_json = ~blank & (line.str.json_path_match("$").is_null() | ~line.str.strip_chars().str.starts_with("{"))
    else:
        blank = pl.all_horizontal([pl.col(c).is_null() for c in wanted]) if wanted else no
        not_json = no
    kind = (
        pl.when(blank)
        .then(BLANK)
        .when(not_json)
        .then(CODE["not_json"])
        .when(ts.is_null() & ~bad_ts)
        .then(CODE["missing_timestamp"])
        .when(bad_ts)
        .then(CODE["bad_timestamp"])
        .when(pl.col("cat").is_null())
        .then(CODE["missing_category"])
        .when(pl.col("model").is_null())
        .then(CODE["missing_model"])
        .when(missing_status)
        .then(CODE["missing_status"])
        .when(unknown_status)
        .then(CODE["unknown_status"])
        .when(bad_tokens)
        .then(CODE["bad_tokens"])
        .when(bad_latency)
        .then(CODE["bad_latency"])
        .when(bad_cost | (cost < 0).fill_null(False))
        .then(CODE["bad_cost"])
        .when(bad_w | (w < 0).fill_null(False) | (w != w.floor()).fill_null(False))
        .then(CODE["bad_requests"])
        .otherwise(0)
        .cast(pl.UInt8)
    )
    st.put("kind", kind)
    return st.apply(lf).select(
        pl.col("_r").cast(pl.Int64),
        "kind",
        ts.alias("ts"),
        (end if shape == "openai" else pl.lit(None, dtype=pl.Int64)).alias("end"),
        pl.col("cat").cast(pl.Categorical),
        pl.col("model").cast(pl.Categorical),
        "outcome",
        tin.alias("tin"),
        tout.alias("tout"),
        "lat",
        "ttft",
        cost.alias("cost"),
        (w.fill_null(1.0) if aggregated else pl.lit(1.0)).alias("w"),
    )
