"""Reading per-prompt eval results into a per-prompt outcome matrix, with every bad row counted and located.

An eval file holds, per prompt and model, whether the model's answer passed. Two layouts:

* **long**: one row per (prompt, model): ``prompt_id, category, model, passed`` (0/1, true/false) or ``score``
  (with a pass threshold), optional ``tokens_in, tokens_out, latency_s, cost, router_score``;
* **wide**: one row per prompt: ``prompt_id, category``, one outcome column per model, optional ``tokens_in`` and
  ``router_score`` (per prompt).

CSV, TSV, JSONL (one JSON object per line) or Parquet, by extension or explicitly. Every column may be renamed
(``columns={"prompt_id": "id", ...}``).

The work is one streaming pass: Polars reads every value as text and validates it by expressions, batch by batch
(lazy scans, streaming engine). A batch's bad rows are only counted (with their first line numbers); its good rows
become compact numpy records that go to partitions by a hash of the prompt id (in memory while few, then temporary
files), and each partition is grouped on its own (:mod:`routecalc.data.pivot`). Memory is the per-prompt result
plus a batch and a partition, not the file's rows: a 10^7-row file reads in a few hundred MiB, most of it the
result itself (see ``benchmarks/bench_evals.py``). No Python object is built per row.

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
import os
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Literal

import numpy as np

from routecalc.data.pivot import KeyCollision, Partitions, Rows, pivot
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
_NUMBERS = (*NUMERIC, "router_score")  # roles read as numbers
_BATCH_RECORDS = 1 << 16  # (prompt, model) records validated per batch
_CSV_CHUNK_BYTES = 1 << 20  # polars' CSV read chunk (see _csv_chunks)


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


def _scan(
    pl: Any, path: Path, fmt: str, wanted: Sequence[str], numbers: Sequence[str] = ()
) -> tuple[Any, list[str], str]:
    """A lazy frame of the file: ``_r`` (0-based record index) and the wanted columns as text; the file's columns.

    JSONL is read as raw lines (so blank and broken lines keep their line numbers) with a ``_line`` column. A Parquet
    column named in ``numbers`` stays a number when it is Float64 or an integer: reading it as text and back gives
    the very same float (shortest round-trip text), only slower; other types (Float32, booleans, ...) go as text.
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
    native = (pl.Float64, pl.Int8, pl.Int16, pl.Int32, pl.Int64, pl.UInt8, pl.UInt16, pl.UInt32, pl.UInt64)
    as_is = {c for c in keep if c in numbers and schema[c] in native}
    return lf.select(["_r", *[pl.col(c) if c in as_is else pl.col(c).cast(pl.String) for c in keep]]), columns, "row"


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
        lf, _, unit = _scan(pl, path, fmt, wanted, [roles[r] for r in wanted_roles if r in _NUMBERS])
        exprs = [pl.col("_r")]
        if fmt == "jsonl":
            exprs.append(pl.col("_line"))
        exprs += [pl.col(roles[r]).alias(r) for r in wanted_roles]
        source = lf.select(exprs).rename({value_role: "value"})
        model_cols: list[str] = []
        wide_roles: list[str] = []
    else:
        model_cols = _outcome_columns(options, roles, columns, path)
        wide_roles = [r for r in WIDE_ROLES if r in roles]
        wide = [roles[r] for r in wide_roles]
        lf, _, unit = _scan(pl, path, fmt, [*wide, *model_cols], [roles[r] for r in wide_roles if r in _NUMBERS])
        index = ["_r", *(["_line"] if fmt == "jsonl" else [])]
        source = lf.select(
            [*index, *(pl.col(roles[r]).alias(r) for r in wide_roles), *(pl.col(c).alias(f"m:{c}") for c in model_cols)]
        )
        wanted_roles = ["prompt_id", "category", "model", "value", *wide_roles[2:]]
    present = set(wanted_roles)
    numeric = [r for r in NUMERIC if r in present]
    has_rs = "router_score" in present
    known = list(options.models) if options.models is not None else None
    native = {c for c, dtype in source.collect_schema().items() if c in _NUMBERS and dtype != pl.String}
    records_of = _records(pl, fmt, layout, wanted_roles, model_cols, wide_roles, native, threshold, known, exact_ids)

    # one streaming pass: each batch of raw rows is validated; its bad rows are only counted, its good rows go to
    # partitions by prompt, which are pivoted one by one (see routecalc.data.pivot): no per-row array of the file
    fields = [("r", "i8"), ("key", "u8"), *([] if exact_ids else [("key2", "u8")]), ("cat", "u4"), ("model", "u4")]
    fields += [("outcome", "i1"), *((r, "f8") for r in numeric), *([("rs", "f8")] if has_rs else [])]
    tally = _Tally(options.max_examples)
    cat_names: dict[int, str] = {}
    model_names: dict[int, str] = {}
    firsts: dict[int, int] = {}  # model code -> its first good record (long layout, no model list)
    per_batch = max(1, _BATCH_RECORDS // max(1, len(model_cols)))
    with _csv_chunks(), Partitions(np.dtype(fields)) as parts:
        for df in _batches(source, records_of, layout, per_batch):
            kinds = df["kind"].to_numpy()
            records = df["_r"].to_numpy()
            tally.add_batch(kinds, records)
            good: Any = np.flatnonzero(kinds == 0)
            if not good.size:
                continue
            if layout == "wide":  # a wide batch unpivots column by column: back to line order
                good = good[np.argsort(records[good], kind="stable")]
            elif good.size == kinds.size:
                good = slice(None)  # (no copy)
            rows = np.empty(records[good].size, dtype=fields)
            for name in rows.dtype.names or ():
                column = df[{"r": "_r", "key": "key" if exact_ids else "hash"}.get(name, name)]
                if name in ("cat", "model"):
                    column = column.to_physical().fill_null(0)
                rows[name] = column.to_numpy()[good]
            for name, names in (("cat", cat_names), ("model", model_names)):
                if any(c not in names for c in np.unique(rows[name]).tolist()):  # (a query only for new names)
                    names.update(_codes(pl, df, name))
            if known is None and layout == "long":  # batches come in line order: the first seen is the first
                codes, at = np.unique(rows["model"], return_index=True)
                for code, i in zip(codes.tolist(), at.tolist(), strict=True):
                    firsts.setdefault(code, int(rows["r"][i]))
            parts.add(rows, df["hash"].to_numpy()[good])
            del df, kinds, good, rows
        if not tally.good:
            detail = "; ".join(tally.report(path, fmt, unit).lines()) or "no data rows"
            raise InputError(f"{path}: no usable rows ({detail})")
        if known is not None:
            models = list(known)
        elif layout == "wide":
            models = list(model_cols)
        else:  # order of first appearance
            models = [model_names[c] for c in sorted(firsts, key=firsts.__getitem__)]
        model_ix = np.full(max(model_names) + 1, -1, dtype=np.int64)
        for code, name in model_names.items():
            model_ix[code] = models.index(name) if name in models else -1
        merged = None
        for part in parts:
            try:
                pv = pivot(_rows(part, model_ix), len(models))
            except KeyCollision:
                break
            del part
            for kind, rec in pv.bad.items():
                tally.add(kind, rec)
            tally.add("duplicate", pv.collapsed)
            parts.keep(replace(pv, bad={}, collapsed=pv.collapsed[:0]))  # (the tally has them)
            del pv
        else:
            merged = parts.merged()
    if merged is None:  # two prompt ids share a hash: redo everything keyed by the ids themselves
        return _read(pl, path, fmt, options, roles, columns, layout, exact_ids=True)
    pv = merged
    report = tally.report(path, fmt, unit)
    cat_order = _in_order_of_appearance(pv.cat, max(cat_names) + 1)  # categories in order of their first prompt
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


def _rows(part: np.ndarray, model_ix: np.ndarray) -> Rows:
    """A part's structured rows as :class:`Rows` (contiguous columns; model codes -> model indexes)."""
    names = part.dtype.names or ()
    numeric = [r for r in NUMERIC if r in names]
    return Rows(
        r=np.ascontiguousarray(part["r"]),
        key=np.ascontiguousarray(part["key"]),
        key2=np.ascontiguousarray(part["key2"]) if "key2" in names else None,
        cat=np.ascontiguousarray(part["cat"]),
        model=model_ix[part["model"]],
        outcome=np.ascontiguousarray(part["outcome"]),
        values={r: np.ascontiguousarray(part[r]) for r in numeric},
        rs=np.ascontiguousarray(part["rs"]) if "rs" in names else None,
    )


def _records(
    pl: Any,
    fmt: str,
    layout: str,
    wanted_roles: list[str],
    model_cols: list[str],
    wide_roles: list[str],
    native: set[str],
    threshold: float | None,
    known: list[str] | None,
    exact_ids: bool,
) -> Callable[[Any], Any]:
    """A function: lazy frame of raw rows -> lazy frame of their (prompt, model) records, validated. The raw columns
    are text, but for the roles in ``native`` (numbers of a Parquet file, see :func:`_scan`).

    Columns out: ``_r`` (record index), ``kind`` (0 good, a :data:`BAD_KINDS` code, or blank), ``hash`` (of the
    prompt id), ``key`` (exact id code, with ``exact_ids``) or ``key2`` (a second hash), ``cat`` and ``model``
    (categorical), ``outcome`` (0/1, -1 if unreadable), the numbers (NaN: absent or bad) and ``rs``.
    """
    present = set(wanted_roles)
    numeric = [r for r in NUMERIC if r in present]
    has_rs = "router_score" in present
    text = ["prompt_id", "category", "model", "value", *numeric, *(["router_score"] if has_rs else [])]
    strip = [pl.col(c).str.strip_chars() for c in text if c not in native]  # null stays null (blank cells)
    parse = [pl.col(c).cast(pl.Float64, strict=False).alias(f"#{c}") for c in text[4:]]  # (native: Parquet numbers)

    empty = {r: pl.col(r).is_null() | (pl.col(r) == "") for r in ("prompt_id", "category", "model")}
    if fmt == "jsonl":
        line = pl.col("_line")
        blank = line.is_null() | (line.str.strip_chars() == "")
        not_json = ~blank & (line.str.json_path_match("$").is_null() | ~line.str.strip_chars().str.starts_with("{"))
    else:
        cells = [c for c in text if c in present]  # (a long file's outcome cell is not one of them)
        if layout == "wide":  # a wide record is one model's cell of a row: blank if the row's own cells are
            cells.remove("model")
        blank = pl.all_horizontal([pl.col(c).is_null() for c in cells])
        not_json = pl.lit(False)
    lowered = pl.col("value").str.to_lowercase()
    if threshold is None:
        outcome = (
            pl.when(lowered.is_in(["1", "1.0", "true"])).then(1).when(lowered.is_in(["0", "0.0", "false"])).then(0)
        ).cast(pl.Int8)
        bad_value = outcome.is_null()
    else:
        score = pl.col("value").cast(pl.Float64, strict=False)
        bad_value = score.is_null() | ~score.is_finite()
        outcome = (score >= threshold).cast(pl.Int8)

    def bad_number(role: str, nonneg: bool = True) -> Any:
        x = pl.col(f"#{role}")
        bad = x.is_null() | ~x.is_finite()
        if nonneg:
            bad = bad | (x < 0)
        if role in native:
            return pl.col(role).is_not_null() & bad
        return pl.col(role).is_not_null() & (pl.col(role) != "") & bad

    kind = pl.when(blank).then(_BLANK).when(not_json).then(_CODE["not_json"])
    kind = kind.when(empty["prompt_id"]).then(_CODE["missing_id"])
    kind = kind.when(empty["category"]).then(_CODE["missing_category"])
    kind = kind.when(empty["model"]).then(_CODE["missing_model"])
    if known is not None and layout == "long":
        kind = kind.when(~pl.col("model").is_in(known)).then(_CODE["unknown_model"])
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
    ident = pl.col("prompt_id")
    out = [
        pl.col("_r").cast(pl.Int64),
        kind.fill_null(0).alias("kind"),
        ident.hash(_SEED_A).alias("hash"),
        ident.cast(pl.Categorical).to_physical().cast(pl.UInt64).alias("key") if exact_ids else None,
        None if exact_ids else ident.hash(_SEED_B).alias("key2"),
        pl.col("category").cast(pl.Categorical).alias("cat"),
        pl.col("model").cast(pl.Categorical),
        outcome.fill_null(-1).alias("outcome"),
        *(pl.col(f"#{r}").fill_null(float("nan")).alias(r) for r in numeric),
        *([pl.col("#router_score").fill_null(float("nan")).alias("rs")] if has_rs else []),
    ]
    out = [e for e in out if e is not None]
    index = ["_r", *(["_line"] if fmt == "jsonl" else [])]
    unpivot = {"on": [f"m:{c}" for c in model_cols], "index": [*index, *wide_roles]}

    def records(lf: Any) -> Any:
        if layout == "wide":
            lf = lf.unpivot(**unpivot, variable_name="model", value_name="value").with_columns(
                pl.col("model").str.strip_prefix("m:")
            )
        return lf.with_columns(strip).with_columns(parse).select(out)

    return records


def _batches(source: Any, records: Callable[[Any], Any], layout: str, rows: int) -> Iterator[Any]:
    """Validated records (see :func:`_records`) batch by batch, each batch whole rows of the file, in order.

    A long file's rows are validated inside polars' streaming engine (in parallel with our use of the batches);
    a wide file is unpivoted batch by batch, so that a row's records never straddle two batches.
    """
    if layout == "long":
        yield from records(source).collect_batches(chunk_size=rows)
        return
    for raw in source.collect_batches(chunk_size=rows):
        yield records(raw.lazy()).collect()


@contextmanager
def _csv_chunks() -> Iterator[None]:
    """Let polars read CSV (and our line-wise JSONL) in 1 MiB chunks instead of 32 MiB ones, 4 of them prefetched:
    that prefetch was most of the reader's memory (about 290 MiB on a 500 MiB file, whatever the query), and the
    smaller chunks are faster on 2 cores. Scoped to one read; a value the user set is left alone."""
    name = "POLARS_CSV_CHUNK_SIZE"
    if name in os.environ:
        yield
        return
    os.environ[name] = str(_CSV_CHUNK_BYTES)
    try:
        yield
    finally:
        os.environ.pop(name, None)


def _codes(pl: Any, df: Any, column: str) -> dict[int, str]:
    """Physical code -> string of a Categorical column's values."""
    u = df.select(pl.col(column).unique().drop_nulls()).with_columns(pl.col(column).to_physical().alias("code"))
    return dict(zip(u["code"].to_list(), u[column].cast(pl.String).to_list(), strict=True))


def _in_order_of_appearance(codes: np.ndarray, n_codes: int) -> np.ndarray:
    """The distinct values of ``codes`` (integers below ``n_codes``) in order of first appearance; chunk by chunk,
    so that no sorted copy of all of ``codes`` is made."""
    first = np.full(n_codes, -1, dtype=np.int64)
    chunk = 1 << 20
    for start in range(0, codes.size, chunk):
        values, at = np.unique(codes[start : start + chunk], return_index=True)
        new = first[values] < 0
        first[values[new]] = start + at[new]
    seen = np.flatnonzero(first >= 0)
    return seen[np.argsort(first[seen], kind="stable")]


def _first(records: np.ndarray, n: int) -> tuple[int, ...]:
    """The n smallest distinct record indexes (ascending)."""
    if records.size > 4 * n:
        records = np.partition(records, 4 * n)[: 4 * n]  # distinct values among the smallest suffice
    return tuple(int(x) for x in np.unique(records)[:n])


class _Tally:
    """What the report needs, gathered batch by batch: per kind of bad row its count and first record indexes;
    blank lines; records; good records; collapsed duplicates (key ``duplicate``)."""

    def __init__(self, max_examples: int):
        self.n = max(1, int(max_examples))
        self.counts: dict[str, int] = {}
        self.first: dict[str, np.ndarray] = {}
        self.records = self.blank = self.good = 0

    def add(self, key: str, records: np.ndarray) -> None:
        if not records.size:
            return
        self.counts[key] = self.counts.get(key, 0) + int(records.size)
        if key in self.first:
            records = np.concatenate([self.first[key], records])
        self.first[key] = np.array(_first(records, self.n), dtype=np.int64)

    def add_batch(self, kinds: np.ndarray, records: np.ndarray) -> None:
        """A batch of records: ``kinds`` (0 good, a BAD_KINDS code, _BLANK) and record indexes. A batch holds
        whole rows, so a wide row's blank records are counted once as a line."""
        counts = np.bincount(kinds, minlength=256)
        if counts[_BLANK]:
            self.blank += int(np.unique(records[kinds == _BLANK]).size)
        self.records += int(kinds.size - counts[_BLANK])
        self.good += int(counts[0])
        for code in (np.flatnonzero(counts[1:_BLANK]) + 1).tolist():
            self.add(BAD_KINDS[code - 1][0], records[kinds == code])

    def report(self, path: Path, fmt: str, unit: str) -> RowReport:
        offset = 2 if fmt in ("csv", "tsv") else 1  # the CSV header is line 1; JSONL lines and Parquet rows from 1
        lines = {key: tuple(int(r) + offset for r in first) for key, first in self.first.items()}
        return RowReport(
            source=str(path),
            unit=unit,
            records=self.records,
            blank_lines=self.blank,
            bad=tuple(BadKind(key, desc, self.counts[key], lines[key]) for key, desc in BAD_KINDS if key in lines),
            duplicates_collapsed=self.counts.get("duplicate", 0),
            duplicate_examples=lines.get("duplicate", ()),
        )
