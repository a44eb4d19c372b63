"""Reading per-prompt eval results into a per-prompt outcome matrix, with every bad row counted and located.

An eval file holds, per prompt and model, whether the model's answer passed. Two layouts:

* **long**: one row per (prompt, model): ``prompt_id, category, model, passed`` (0/1, true/false) or ``score``
  (with a pass threshold), optional ``tokens_in, tokens_out, latency_s, cost, router_score``;
* **wide**: one row per prompt: ``prompt_id, category``, one outcome column per model, optional ``tokens_in`` and
  ``router_score`` (per prompt).

CSV, TSV, JSONL (one JSON object per line) or Parquet, by extension or explicitly. Every column may be renamed
(``columns={"prompt_id": "id", ...}``).

The work happens in Polars (lazy scans, streaming engine): every value is read as text and validated by
expressions, duplicates and conflicts are found by group-bys, and only the per-prompt results come back as numpy
arrays. No Python object is built per row, so a 10^7-row file needs memory for its distinct prompt ids and the
per-prompt matrix, not for its rows as Python objects (see ``benchmarks/bench_evals.py``).

Bad rows are never dropped silently: each is counted under the first problem it has (in the order of
:data:`BAD_KINDS`), and the first few line numbers of each kind are kept. Line numbers count the CSV header as
line 1 (exact as long as no quoted field spans lines); JSONL lines count from 1, blank lines included; Parquet
reports row numbers from 1. Blank lines are counted and skipped: they are not rows.
Identical duplicates of a (prompt, model) row are collapsed into the first (counted, with examples); duplicates with
different outcomes are all bad rows and the pair gets no outcome.
"""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np

from routecalc.data.pivot import KeyCollision, Rows, pivot
from routecalc.errors import InputError

ROLES = (
    "prompt_id",
    "category",
    "model",
    "passed",
    "score",
    "tokens_in",
    "tokens_out",
    "latency_s",
    "cost",
    "router_score",
)
NUMERIC = ("tokens_in", "tokens_out", "latency_s", "cost")  # optional, per (prompt, model), non-negative
WIDE_ROLES = ("prompt_id", "category", "tokens_in", "router_score")  # per-prompt columns of a wide file
EXTENSIONS = {".csv": "csv", ".tsv": "tsv", ".jsonl": "jsonl", ".ndjson": "jsonl", ".parquet": "parquet"}
FORMATS = ("csv", "tsv", "jsonl", "parquet")
MAX_EXAMPLES = 5  # line numbers kept per kind of bad row

Layout = Literal["auto", "long", "wide"]
Format = Literal["auto", "csv", "tsv", "jsonl", "parquet"]

# (key, description), in the order a row's problems are checked: a row counts under its first problem
BAD_KINDS: tuple[tuple[str, str], ...] = (
    ("not_json", "not a JSON object"),
    ("missing_id", "prompt id missing"),
    ("missing_category", "category missing"),
    ("missing_model", "model missing"),
    ("unknown_model", "model not in the catalog or model map"),
    ("bad_passed", "passed is not 0/1 (or true/false)"),
    ("bad_score", "score is not a finite number"),
    ("bad_tokens", "tokens_in/tokens_out is not a non-negative number"),
    ("bad_latency", "latency_s is not a non-negative number"),
    ("bad_cost", "cost is not a non-negative number"),
    ("bad_router_score", "router_score is not a finite number"),
    ("category_conflict", "category differs from the prompt's first row"),
    ("router_score_conflict", "router_score differs from the prompt's first row"),
    ("outcome_conflict", "duplicate prompt x model with a different outcome"),
)
_CODE = {key: i + 1 for i, (key, _) in enumerate(BAD_KINDS)}  # 0: a good row
_BLANK = 255  # kind code of a blank line (counted, not a bad row)
_SEED_A, _SEED_B = 0x5EEDA11CE, 0xD1CEFACADE  # two differently seeded 64-bit hashes of a prompt id


@dataclass(frozen=True)
class BadKind:
    """One kind of bad row: how many, and the first line (or row) numbers, ascending."""

    key: str
    description: str
    count: int
    first: tuple[int, ...]


@dataclass(frozen=True)
class RowReport:
    """What reading did with the file's rows. ``unit`` is ``line`` (CSV, TSV, JSONL) or ``row`` (Parquet)."""

    source: str
    unit: str
    records: int  # (prompt, model) records read: rows of a long file, rows x models of a wide one
    blank_lines: int
    bad: tuple[BadKind, ...]  # kinds with at least one row, in the order of BAD_KINDS
    duplicates_collapsed: int  # identical duplicate rows merged into their first
    duplicate_examples: tuple[int, ...]

    @property
    def bad_rows(self) -> int:
        return sum(b.count for b in self.bad)

    def _where(self, first: tuple[int, ...], count: int) -> str:
        listed = ", ".join(str(n) for n in first) + (", ..." if count > len(first) else "")
        return f"{self.unit}{'s' if count > 1 else ''} {listed}"

    def lines(self) -> list[str]:
        """Human-readable summary, one line per kind (for the CLI and for errors)."""
        out = []
        for b in self.bad:
            out.append(f"{b.count:,} bad row(s): {b.description} ({self._where(b.first, b.count)})")
        if self.duplicates_collapsed:
            where = self._where(self.duplicate_examples, self.duplicates_collapsed)
            out.append(f"{self.duplicates_collapsed:,} identical duplicate row(s) collapsed into the first ({where})")
        if self.blank_lines:
            out.append(f"{self.blank_lines:,} blank line(s) skipped")
        return out


@dataclass(frozen=True, eq=False)
class EvalData:
    """Per-prompt eval outcomes. Prompts are in order of their first row, categories of their first prompt.

    Shapes (P prompts, M models): ``category`` (P,) int32 index into ``categories``; ``passed`` (P, M) int8, 1 pass,
    0 fail, -1 no outcome (no row, or conflicting duplicates); ``tokens_in``, ``tokens_out``, ``latency_s``,
    ``cost`` (P, M) float64, NaN where the file gives none (``None`` when the file has no such column);
    ``router_score`` (P,) float64 (higher = send to the stronger model), NaN where missing.
    Units: tokens; seconds; cost in whatever currency the file uses.
    """

    source: str
    layout: str
    models: tuple[str, ...]
    categories: tuple[str, ...]
    category: np.ndarray
    passed: np.ndarray
    tokens_in: np.ndarray | None
    tokens_out: np.ndarray | None
    latency_s: np.ndarray | None
    cost: np.ndarray | None
    router_score: np.ndarray | None
    report: RowReport

    @property
    def n_prompts(self) -> int:
        return int(self.category.shape[0])


@dataclass(frozen=True)
class EvalOptions:
    """How to read an eval file.

    ``columns``: role -> column name, for columns not named as in :data:`ROLES`. ``models``: the eval model names
    the caller knows (from a model map or worksheet); rows naming another model are bad rows, and in a wide file
    these are the outcome columns (default: every column that is not a per-prompt role). ``pass_threshold``: read
    ``score`` and count ``score >= threshold`` as a pass (instead of ``passed``).
    """

    columns: Mapping[str, str] | None = None
    layout: Layout = "auto"
    fmt: Format = "auto"
    models: Sequence[str] | None = None
    pass_threshold: float | None = None
    max_examples: int = MAX_EXAMPLES


def parse_mapping(text: str | None, what: str) -> dict[str, str]:
    """``a=b,c=d`` -> ``{"a": "b", "c": "d"}``; InputError naming the option on a malformed or repeated entry."""
    out: dict[str, str] = {}
    if not text:
        return out
    for part in text.split(","):
        key, sep, value = part.partition("=")
        key, value = key.strip(), value.strip()
        if not sep or not key or not value:
            raise InputError(f"{what}: {part.strip()!r} is not NAME=NAME (give a comma-separated list of a=b)")
        if key in out:
            raise InputError(f"{what}: {key!r} is given twice")
        out[key] = value
    return out


def _polars() -> Any:
    try:
        import polars as pl
    except ImportError:  # pragma: no cover - a declared dependency
        raise InputError("reading eval files needs polars: pip install polars") from None
    return pl


def detect_format(path: Path, fmt: Format) -> str:
    """The file format: given, or from the extension (``.csv``, ``.tsv``, ``.jsonl``/``.ndjson``, ``.parquet``)."""
    if fmt != "auto":
        return fmt
    found = EXTENSIONS.get(path.suffix.lower())
    if found is None:
        raise InputError(
            f"{path}: cannot tell the format from the extension {path.suffix or '(none)'!r}; "
            f"give --format ({', '.join(FORMATS)})"
        )
    return found


def _check_file(path: Path) -> None:
    if not path.exists():
        raise InputError(f"{path}: no such file")
    if not path.is_file():
        raise InputError(f"{path}: not a file")
    if path.stat().st_size == 0:
        raise InputError(f"{path}: empty file (expected a header and rows)")


def _csv_header(path: Path, sep: str) -> list[str]:
    try:
        with path.open(encoding="utf-8", newline="") as fh:
            header = next(csv.reader(fh, delimiter=sep), None)
    except UnicodeDecodeError:
        raise InputError(f"{path}: line 1: not UTF-8 text (is this a CSV file?)") from None
    except (OSError, csv.Error) as exc:
        raise InputError(f"{path}: line 1: cannot read the header ({exc})") from None
    if not header or not any(h.strip() for h in header):
        raise InputError(f"{path}: line 1: no header (expected column names)")
    return header


def _jsonl_keys(path: Path) -> list[str]:
    """Keys of the first non-blank line (the columns a JSONL file offers)."""
    try:
        with path.open(encoding="utf-8") as fh:
            for number, line in enumerate(fh, start=1):
                if not line.strip():
                    continue
                try:
                    obj = json.loads(line)
                except ValueError as exc:
                    raise InputError(f"{path}: line {number}: not JSON ({exc.args[0][:80]})") from None
                if not isinstance(obj, dict):
                    raise InputError(f"{path}: line {number}: not a JSON object (one object per line)")
                return [str(k) for k in obj]
    except UnicodeDecodeError:
        raise InputError(f"{path}: not UTF-8 text (is this a JSONL file?)") from None
    raise InputError(f"{path}: no data lines")


def _ragged_line(path: Path, sep: str, width: int) -> str:
    """Error path only: find the first CSV record whose field count differs from the header's."""
    try:
        with path.open(encoding="utf-8", newline="") as fh:
            reader = csv.reader(fh, delimiter=sep)
            for row in reader:
                if row and len(row) != width:
                    return f"line {reader.line_num}: {len(row)} fields, the header has {width}"
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        return f"cannot read ({exc})"
    return "a record has more fields than the header"


def _json_path(name: str) -> str:
    return "$['" + name.replace("\\", "\\\\").replace("'", "\\'") + "']"


def _scan(pl: Any, path: Path, fmt: str, wanted: Sequence[str]) -> tuple[Any, list[str], str]:
    """A lazy frame of the file: ``_r`` (0-based record index) and the wanted columns as text; the file's columns.

    JSONL is read as raw lines (so blank and broken lines keep their line numbers) with a ``_line`` column.
    """
    if fmt in ("csv", "tsv"):
        sep = "," if fmt == "csv" else "\t"
        columns = _csv_header(path, sep)
        dup = sorted({c for c in columns if columns.count(c) > 1})
        if dup:
            raise InputError(f"{path}: line 1: column(s) named twice: {', '.join(dup)}")
        lf = pl.scan_csv(path, separator=sep, infer_schema=False, row_index_name="_r", encoding="utf8")
        keep = [c for c in wanted if c in columns]
        return lf.select(["_r", *keep]), columns, "line"
    if fmt == "jsonl":
        columns = _jsonl_keys(path)
        lf = pl.scan_csv(
            path,
            has_header=False,
            separator="\x1f",  # never in valid JSON text (control characters must be escaped)
            quote_char=None,
            new_columns=["_line"],
            infer_schema=False,
            row_index_name="_r",
            truncate_ragged_lines=True,
            encoding="utf8",
        )
        line = pl.col("_line")
        fields = [line.str.json_path_match(_json_path(c)).alias(c) for c in wanted]
        return lf.select(["_r", "_line", *fields]), columns, "line"
    lf = pl.scan_parquet(path, row_index_name="_r")
    try:
        schema = lf.collect_schema()
    except Exception as exc:
        raise InputError(f"{path}: not a readable Parquet file ({_first_line(exc)})") from None
    columns = [c for c in schema.names() if c != "_r"]
    keep = [c for c in wanted if c in columns]
    return lf.select(["_r", *[pl.col(c).cast(pl.String) for c in keep]]), columns, "row"


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:200] if text else type(exc).__name__


def _resolve_columns(options: EvalOptions, columns: list[str], path: Path) -> dict[str, str]:
    """role -> column name for the roles present in the file."""
    given = dict(options.columns or {})
    unknown = sorted(set(given) - set(ROLES))
    if unknown:
        raise InputError(f"--columns: unknown role(s) {', '.join(unknown)} (roles: {', '.join(ROLES)})")
    names = {role: given.get(role, role) for role in ROLES}
    missing_given = [f"{r}={c}" for r, c in given.items() if c not in columns]
    if missing_given:
        raise InputError(f"{path}: no column {', '.join(missing_given)} in the file (columns: {_list(columns)})")
    return {role: col for role, col in names.items() if col in columns}


def _list(names: Sequence[str], limit: int = 12) -> str:
    shown = ", ".join(repr(n)[1:-1] if isinstance(n, str) else str(n) for n in names[:limit])
    return shown + (f", ... ({len(names)} in all)" if len(names) > limit else "") if names else "none"


def read_evals(path: str | Path, options: EvalOptions | None = None) -> EvalData:
    """Read and validate an eval file (see module docstring); raise InputError if nothing usable is in it."""
    options = options or EvalOptions()
    path = Path(path)
    _check_file(path)
    pl = _polars()
    fmt = detect_format(path, options.fmt)
    if options.pass_threshold is not None and not math.isfinite(options.pass_threshold):
        raise InputError("--pass-threshold must be a finite number")
    # first pass at the columns, to resolve roles and the layout
    _, columns, _ = _scan(pl, path, fmt, [])
    roles = _resolve_columns(options, columns, path)
    layout = options.layout
    if layout == "auto":
        layout = "long" if "model" in roles else "wide"
    try:
        return _read(pl, path, fmt, options, roles, columns, layout)
    except InputError:
        raise
    except Exception as exc:  # polars raises its own errors for unreadable input: report them as bad input
        name = type(exc).__name__
        if "more fields than defined" in str(exc) and fmt in ("csv", "tsv"):
            where = _ragged_line(path, "," if fmt == "csv" else "\t", len(columns))
            raise InputError(f"{path}: {where}") from None
        if "utf-8" in str(exc).lower() or "utf8" in str(exc).lower():
            raise InputError(f"{path}: not UTF-8 text ({_first_line(exc)})") from None
        if name.endswith("Error") and type(exc).__module__.startswith("polars"):
            raise InputError(f"{path}: cannot read as {fmt} ({_first_line(exc)})") from None
        raise


def _outcome_columns(options: EvalOptions, roles: dict[str, str], columns: list[str], path: Path) -> list[str]:
    claimed = {roles[r] for r in WIDE_ROLES if r in roles}
    if options.models is not None:
        cols = [m for m in options.models if m in columns]
        missing = [m for m in options.models if m not in columns]
        if not cols:
            raise InputError(
                f"{path}: wide layout: no outcome column for any model ({_list(list(options.models))}); "
                f"columns: {_list(columns)}"
            )
        del missing  # a model without a column simply has no outcomes (reported by calibrate)
        return cols
    cols = [c for c in columns if c not in claimed]
    for role in ("model", "passed", "score", "tokens_out", "latency_s", "cost"):
        if role in cols:
            raise InputError(
                f"{path}: wide layout, but the file has a {role!r} column: give --layout long, or name the model "
                "columns (--model-map / a worksheet)"
            )
    if not cols:
        raise InputError(f"{path}: wide layout: no model outcome columns besides {_list(sorted(claimed))}")
    return cols


def _read(
    pl: Any,
    path: Path,
    fmt: str,
    options: EvalOptions,
    roles: dict[str, str],
    columns: list[str],
    layout: str,
    exact_ids: bool = False,
) -> EvalData:
    threshold = options.pass_threshold
    value_role = "score" if threshold is not None else "passed"
    need = ["prompt_id", "category", "model", value_role] if layout == "long" else ["prompt_id", "category"]
    if threshold is None and layout == "long" and "passed" not in roles and "score" in roles:
        raise InputError(f"{path}: the file has scores but no 'passed' column: give --pass-threshold X")
    missing = [r for r in need if r not in roles]
    if missing:
        hint = " (or map them with --columns role=column)"
        raise InputError(
            f"{path}: missing column(s) {', '.join(missing)} for the {layout} layout{hint}; columns: {_list(columns)}"
        )
    if layout == "long":
        wanted_roles = [
            r for r in ("prompt_id", "category", "model", value_role, *NUMERIC, "router_score") if r in roles
        ]
        wanted = [roles[r] for r in wanted_roles]
        lf, _, unit = _scan(pl, path, fmt, wanted)
        exprs = [pl.col("_r")]
        if fmt == "jsonl":
            exprs.append(pl.col("_line"))
        exprs += [pl.col(roles[r]).alias(r) for r in wanted_roles]
        lf = lf.select(exprs).rename({value_role: "value"})
        model_cols: list[str] = []
    else:
        model_cols = _outcome_columns(options, roles, columns, path)
        wide_roles = [r for r in WIDE_ROLES if r in roles]
        lf, _, unit = _scan(pl, path, fmt, [*(roles[r] for r in wide_roles), *model_cols])
        index = ["_r", *(["_line"] if fmt == "jsonl" else [])]
        renamed = lf.select(
            [*index, *(pl.col(roles[r]).alias(r) for r in wide_roles), *(pl.col(c).alias(f"m:{c}") for c in model_cols)]
        )
        lf = renamed.unpivot(
            on=[f"m:{c}" for c in model_cols], index=[*index, *wide_roles], variable_name="model", value_name="value"
        ).with_columns(pl.col("model").str.strip_prefix("m:"))
        wanted_roles = ["prompt_id", "category", "model", "value", *wide_roles[2:]]
    present = set(wanted_roles)
    numeric = [r for r in NUMERIC if r in present]
    has_rs = "router_score" in present
    known = list(options.models) if options.models is not None else None

    s = {r: pl.col(r).str.strip_chars() for r in ("prompt_id", "category", "model")}
    value = pl.col("value").str.strip_chars()
    empty = {r: e.is_null() | (e == "") for r, e in s.items()}
    if fmt == "jsonl":
        line = pl.col("_line")
        blank = line.is_null() | (line.str.strip_chars() == "")
        not_json = ~blank & (line.str.json_path_match("$").is_null() | ~line.str.strip_chars().str.starts_with("{"))
    else:
        cells = [c for c in ("prompt_id", "category", "model", "value", *numeric, "router_score") if c in present]
        if layout == "wide":  # a wide record is one model's cell of a row: blank if the row's own cells are
            cells = [c for c in cells if c != "model"]
        blank = pl.all_horizontal([pl.col(c).is_null() for c in cells])
        not_json = pl.lit(False)
    lowered = value.str.to_lowercase()
    if threshold is None:
        outcome = (
            pl.when(lowered.is_in(["1", "1.0", "true"])).then(1).when(lowered.is_in(["0", "0.0", "false"])).then(0)
        ).cast(pl.Int8)
        bad_value = outcome.is_null()
    else:
        score = value.cast(pl.Float64, strict=False)
        bad_value = score.is_null() | ~score.is_finite()
        outcome = (score >= threshold).cast(pl.Int8)

    def num(role: str) -> Any:
        return pl.col(role).str.strip_chars().cast(pl.Float64, strict=False)

    def present_cell(role: str) -> Any:
        c = pl.col(role).str.strip_chars()
        return c.is_not_null() & (c != "")

    def bad_number(role: str, nonneg: bool = True) -> Any:
        x = num(role)
        bad = x.is_null() | ~x.is_finite()
        if nonneg:
            bad = bad | (x < 0)
        return present_cell(role) & bad

    kind = pl.when(blank).then(_BLANK).when(not_json).then(_CODE["not_json"])
    kind = kind.when(empty["prompt_id"]).then(_CODE["missing_id"])
    kind = kind.when(empty["category"]).then(_CODE["missing_category"])
    kind = kind.when(empty["model"]).then(_CODE["missing_model"])
    if known is not None and layout == "long":
        kind = kind.when(~s["model"].is_in(known)).then(_CODE["unknown_model"])
    kind = kind.when(bad_value).then(_CODE["bad_passed" if threshold is None else "bad_score"])
    tok = [r for r in ("tokens_in", "tokens_out") if r in present]
    if tok:
        kind = kind.when(pl.any_horizontal([bad_number(r) for r in tok])).then(_CODE["bad_tokens"])
    if "latency_s" in present:
        kind = kind.when(bad_number("latency_s")).then(_CODE["bad_latency"])
    if "cost" in present:
        kind = kind.when(bad_number("cost")).then(_CODE["bad_cost"])
    if has_rs:
        kind = kind.when(bad_number("router_score", nonneg=False)).then(_CODE["bad_router_score"])
    kind = kind.otherwise(0).cast(pl.UInt8)

    # prompt ids are keyed by a 64-bit hash (grouping 10^7 strings is several times slower); a second,
    # independently seeded hash detects a collision, and then everything is redone keyed by the ids themselves
    ident = s["prompt_id"]
    key = ident.hash(_SEED_A) if not exact_ids else ident.cast(pl.Categorical).to_physical().cast(pl.UInt64)
    df = lf.select(
        pl.col("_r").cast(pl.Int64),
        kind.fill_null(0).alias("kind"),
        key.alias("key"),
        *([] if exact_ids else [ident.hash(_SEED_B).alias("key2")]),
        s["category"].cast(pl.Categorical).alias("cat"),
        s["model"].cast(pl.Categorical).alias("model"),
        outcome.fill_null(-1).alias("outcome"),
        *(num(r).alias(r) for r in numeric),
        *([num("router_score").alias("rs")] if has_rs else []),
    ).collect(engine="streaming")  # the one pass over the file; the rest works on these compact columns

    kinds = df["kind"].to_numpy()
    records = df["_r"].to_numpy()
    good = kinds == 0
    if not good.any():
        report = _report(path, fmt, unit, kinds, records, {}, np.empty(0, np.int64), options.max_examples)
        detail = "; ".join(report.lines()) or "no data rows"
        raise InputError(f"{path}: no usable rows ({detail})")
    cat_names = _codes(pl, df, "cat")
    model_names = _codes(pl, df, "model")
    if known is not None:
        models = list(known)
    elif layout == "wide":
        models = list(model_cols)
    else:  # order of first appearance
        codes = df["model"].to_physical().fill_null(0).to_numpy()[good]
        firsts = {c: int(records[good][np.argmax(codes == c)]) for c in np.unique(codes)}
        models = [model_names[c] for c in sorted(firsts, key=firsts.__getitem__)]
    model_ix = np.full(max(model_names) + 1, -1, dtype=np.int64)
    for code, name in model_names.items():
        model_ix[code] = models.index(name) if name in models else -1
    g = np.flatnonzero(good)
    if np.any(records[g][1:] < records[g][:-1]):  # a wide file unpivots column by column: back to line order
        g = g[np.argsort(records[g], kind="stable")]
    rows = Rows(
        r=records[g],
        key=df["key"].to_numpy()[g],
        key2=None if exact_ids else df["key2"].to_numpy()[g],
        cat=df["cat"].to_physical().fill_null(0).to_numpy()[g].astype(np.int64),
        model=model_ix[df["model"].to_physical().fill_null(0).to_numpy()[g]],
        outcome=df["outcome"].to_numpy()[g].astype(np.int8),
        values={r: df[r].fill_null(np.nan).to_numpy()[g] for r in numeric},
        rs=df["rs"].fill_null(np.nan).to_numpy()[g] if has_rs else None,
    )
    del df, g
    try:
        pv = pivot(rows, len(models))
    except KeyCollision:
        return _read(pl, path, fmt, options, roles, columns, layout, exact_ids=True)
    del rows
    report = _report(path, fmt, unit, kinds, records, pv.bad, pv.collapsed, options.max_examples)
    # categories in order of their first prompt
    codes, first_prompt = np.unique(pv.cat, return_index=True)
    cat_order = codes[np.argsort(first_prompt, kind="stable")]
    cat_ix = np.full(max(cat_names) + 1, -1, dtype=np.int32)
    cat_ix[cat_order] = np.arange(cat_order.size, dtype=np.int32)
    values: dict[str, np.ndarray | None] = dict.fromkeys(NUMERIC)
    values.update(pv.values)
    return EvalData(
        source=str(path),
        layout=layout,
        models=tuple(models),
        categories=tuple(cat_names[int(c)] for c in cat_order),
        category=cat_ix[pv.cat],
        passed=pv.passed,
        tokens_in=values["tokens_in"],
        tokens_out=values["tokens_out"],
        latency_s=values["latency_s"],
        cost=values["cost"],
        router_score=pv.rs,
        report=report,
    )


def _codes(pl: Any, df: Any, column: str) -> dict[int, str]:
    """Physical code -> string of a Categorical column's values."""
    u = df.select(pl.col(column).unique().drop_nulls()).with_columns(pl.col(column).to_physical().alias("code"))
    return dict(zip(u["code"].to_list(), u[column].cast(pl.String).to_list(), strict=True))


def _first(records: np.ndarray, n: int) -> tuple[int, ...]:
    """The n smallest distinct record indexes (ascending)."""
    if records.size > 4 * n:
        records = np.partition(records, 4 * n)[: 4 * n]  # distinct values among the smallest suffice
    return tuple(int(x) for x in np.unique(records)[:n])


def _report(
    path: Path,
    fmt: str,
    unit: str,
    kinds: np.ndarray,
    records: np.ndarray,
    conflicts: Mapping[str, np.ndarray],
    collapsed: np.ndarray,
    max_examples: int,
) -> RowReport:
    n_ex = max(1, int(max_examples))
    offset = 2 if fmt in ("csv", "tsv") else 1  # the CSV header is line 1; JSONL lines and Parquet rows from 1
    counts = np.bincount(kinds, minlength=256)
    blank = kinds == _BLANK
    bad = []
    for i, (key, desc) in enumerate(BAD_KINDS):
        code = i + 1
        if key in conflicts:
            rec = conflicts[key]
        elif counts[code]:
            rec = records[kinds == code]
        else:
            continue
        bad.append(BadKind(key, desc, int(rec.size), tuple(r + offset for r in _first(rec, n_ex))))
    return RowReport(
        source=str(path),
        unit=unit,
        records=int(kinds.size - counts[_BLANK]),
        blank_lines=int(np.unique(records[blank]).size) if counts[_BLANK] else 0,
        bad=tuple(bad),
        duplicates_collapsed=int(collapsed.size),
        duplicate_examples=tuple(r + offset for r in _first(collapsed, n_ex)),
    )
