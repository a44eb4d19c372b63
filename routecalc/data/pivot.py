"""Valid eval rows -> per-prompt outcome matrix, in numpy: one sort, then run boundaries and ``ufunc.at``.

Rows are sorted by (prompt key, record index); a prompt is a run of equal keys, and its first record defines its
category and router score. Rows that disagree with their prompt's first row are conflicts; (prompt, model) pairs
with several rows collapse when the outcomes agree (the first row's numbers are kept) and lose their outcome when
they do not. Cost: one ``lexsort`` of the rows plus a few linear passes; no Python loop over rows.

Bounded memory: every decision above is about one prompt's rows, so the rows can be split by a hash of the prompt
id into parts (:class:`Partitions`: one part in memory while the rows are few, else 2**8 parts in a temporary
file), each part pivoted on its own, and the parts' prompts put back in order of their first record
(:meth:`Partitions.merged`). Memory is then one part's rows plus the per-prompt result, not every row of the file.
"""

from __future__ import annotations

import math
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from types import TracebackType

import numpy as np

from routecalc.errors import RoutecalcError

SPILL_ROWS = 1 << 18  # rows kept in memory before the partitions move to a temporary file (at most 20 MiB)
BUCKET_BITS = 8  # 256 partitions once spilled: a part of a 10^7-row file is about 40,000 rows
_CHUNK = 1 << 20  # prompts per chunk when merging the parts' results


class KeyCollision(Exception):
    """Two different prompt ids share a hashed key (detected by the second hash); redo with exact keys."""


@dataclass(frozen=True, eq=False)
class Rows:
    """Valid rows, one entry each (N rows). ``key``: prompt key; ``key2``: an independent hash of the same id (or
    None when keys are exact); ``cat``: category code; ``model``: model index (0..M-1); ``outcome``: 0/1;
    ``values``: name -> (N,) float64 (NaN: absent); ``rs``: router score (N,) or None."""

    r: np.ndarray
    key: np.ndarray
    key2: np.ndarray | None
    cat: np.ndarray
    model: np.ndarray
    outcome: np.ndarray
    values: dict[str, np.ndarray]
    rs: np.ndarray | None


@dataclass(frozen=True, eq=False)
class Pivot:
    """Per prompt (P, ordered by first record): category code, first record, outcome per model (-1: none), the
    first row's numbers per model, router score. ``bad``: conflict kind -> record indexes of its rows (sorted);
    ``collapsed``: record indexes of identical duplicates merged into their first row (ascending)."""

    cat: np.ndarray
    first_record: np.ndarray
    passed: np.ndarray
    values: dict[str, np.ndarray]
    rs: np.ndarray | None
    bad: dict[str, np.ndarray]
    collapsed: np.ndarray


def pivot(rows: Rows, n_models: int) -> Pivot:
    """Group valid rows by prompt and model (see module docstring); raise KeyCollision if keys collide.

    Rows must come in record order (ascending ``r``). One stable argsort by key finds the prompts; everything
    else runs in record order over ``prompt`` (each row's prompt index), so gathers stay cache-friendly.
    """
    n = rows.r.size
    if n and np.any(rows.r[1:] < rows.r[:-1]):
        raise ValueError("rows must be in record order")
    order = np.argsort(rows.key, kind="stable")  # stable: within a prompt, rows stay in record order
    ks = rows.key[order]
    new = np.empty(n, dtype=bool)
    new[:1] = True
    np.not_equal(ks[1:], ks[:-1], out=new[1:])
    del ks
    start = np.flatnonzero(new)
    first_row = order[start]  # each prompt's first row (record order), in key order
    by_first = np.argsort(first_row, kind="stable")
    first_row = first_row[by_first]  # prompts ordered by their first record
    p_of_run = np.empty(start.size, dtype=np.int64)
    p_of_run[by_first] = np.arange(start.size)
    prompt = np.empty(n, dtype=np.int64)
    prompt[order] = p_of_run[np.cumsum(new) - 1]
    del order, new, p_of_run, by_first
    if rows.key2 is not None and np.any(rows.key2 != rows.key2[first_row][prompt]):
        raise KeyCollision

    n_prompts = first_row.size
    cat0 = rows.cat[first_row]
    bad: dict[str, np.ndarray] = {}
    conflict = rows.cat != cat0[prompt]
    bad["category_conflict"] = rows.r[conflict]
    rs0 = None
    if rows.rs is not None:
        valid = ~np.isnan(rows.rs)
        first_valid = np.full(n_prompts, n, dtype=np.int64)
        np.minimum.at(first_valid, prompt[valid], np.flatnonzero(valid))
        rs0 = np.where(first_valid < n, rows.rs[np.minimum(first_valid, n - 1)], np.nan)
        theirs = rs0[prompt]
        rs_conflict = ~conflict & valid & ~np.isnan(theirs) & (rows.rs != theirs)
        bad["router_score_conflict"] = rows.r[rs_conflict]
        conflict |= rs_conflict
    keep = np.flatnonzero(~conflict)  # a prompt's first row never conflicts: every prompt keeps a row
    idx = np.arange(n) if keep.size == n else keep

    pair = prompt[idx] * n_models + rows.model[idx]
    cells = n_prompts * n_models
    count = np.bincount(pair, minlength=cells)
    outcome = rows.outcome[idx]
    lo = np.full(cells, 2, dtype=np.int8)
    hi = np.full(cells, -1, dtype=np.int8)
    np.minimum.at(lo, pair, outcome)
    np.maximum.at(hi, pair, outcome)
    first = np.full(cells, n, dtype=np.int64)
    np.minimum.at(first, pair, idx)  # the pair's first row (record order)
    has = count > 0
    agree = has & (lo == hi)
    passed = np.where(agree, lo, -1).astype(np.int8).reshape(n_prompts, n_models)
    bad["outcome_conflict"] = rows.r[idx[(has & (lo != hi))[pair]]]
    extra = (count[pair] > 1) & agree[pair] & (idx != first[pair])
    collapsed = rows.r[idx[extra]]
    fi = np.minimum(first, n - 1)
    values = {name: np.where(has, v[fi], np.nan).reshape(n_prompts, n_models) for name, v in rows.values.items()}
    return Pivot(
        cat=cat0,
        first_record=rows.r[first_row],
        passed=passed,
        values=values,
        rs=rs0,
        bad={k: v for k, v in bad.items() if v.size},
        collapsed=collapsed,
    )


@contextmanager
def _temporary_files() -> Iterator[None]:
    """Writing temporary files can fail for want of space: say so (not a traceback)."""
    try:
        yield
    except OSError as exc:
        where = tempfile.gettempdir()
        raise RoutecalcError(
            f"cannot write temporary files in {where} ({exc.strerror or exc}): a large eval file is grouped there "
            "(under 80 bytes per row); free some space or point TMPDIR elsewhere"
        ) from None


class Partitions:
    """Valid rows (a numpy structured array per batch, in record order) split so that each part holds every row
    of its prompts: the part is chosen by the top :data:`BUCKET_BITS` bits of a 64-bit hash of the prompt id.

    Rows stay in memory (one part) until there are more than ``spill_rows``; then, every ``spill_rows`` rows, the
    rows held are sorted by bucket (stably, so each bucket stays in record order) and appended to one temporary
    file as a *run*, and a part is read back as its bucket's slice of every run, in run order. Iterating yields the non-empty parts, each a
    structured array; :meth:`keep` takes each part's :class:`Pivot` (to temporary files too, once spilled) and
    :meth:`merged` puts them together. Use as a context manager: the temporary directory is removed on exit.
    """

    def __init__(self, dtype: np.dtype, spill_rows: int | None = None, bits: int = BUCKET_BITS):
        self._dtype = np.dtype(dtype)
        self._spill_rows = SPILL_ROWS if spill_rows is None else spill_rows
        self._bits = bits
        self._held: list[tuple[np.ndarray, np.ndarray]] = []  # (rows, buckets) of each batch, until spilled
        self._n_held = 0
        self._runs: list[tuple[int, list[int]]] = []  # spilled: (first row in the file, bucket boundaries)
        self._n_written = 0
        self._dir: tempfile.TemporaryDirectory[str] | None = None
        self._kept: list[Pivot] = []  # in memory: the one part's pivot
        self._columns: dict[str, tuple[np.dtype, tuple[int, ...]]] = {}  # spilled: per-prompt column files
        self._bad: dict[str, list[np.ndarray]] = {}
        self._collapsed: list[np.ndarray] = []

    def __enter__(self) -> Partitions:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self._held, self._kept = [], []
        if self._dir is not None:
            self._dir.cleanup()
            self._dir = None

    def add(self, rows: np.ndarray, hashes: np.ndarray) -> None:
        """Add a batch of rows (record order, after every earlier batch) with the prompt-id hash of each row."""
        if not rows.size:
            return
        buckets = (hashes.astype(np.uint64) >> np.uint64(64 - self._bits)).astype(np.uint16)
        self._held.append((rows, buckets))
        self._n_held += rows.size
        if self._n_held > self._spill_rows:
            if self._dir is None:
                with _temporary_files():
                    self._dir = tempfile.TemporaryDirectory(prefix="routecalc-evals-")
            self._write_run()

    def _write_run(self) -> None:
        """Append the rows held to the file as one run, sorted by bucket."""
        rows = np.concatenate([r for r, _ in self._held])
        buckets = np.concatenate([b for _, b in self._held])
        self._held, self._n_held = [], 0
        order = np.argsort(buckets, kind="stable")  # stable: each bucket keeps record order
        rows = np.take(rows, order)  # (several times faster than rows[order] on a structured array)
        bounds = [0, *np.cumsum(np.bincount(buckets, minlength=1 << self._bits)).tolist()]
        del order, buckets
        with _temporary_files(), open(self._path("rows"), "ab") as fh:
            rows.tofile(fh)
        self._runs.append((self._n_written, bounds))
        self._n_written += rows.size

    def _path(self, name: str) -> str:
        assert self._dir is not None
        return os.path.join(self._dir.name, name)

    def __iter__(self) -> Iterator[np.ndarray]:
        if self._dir is None:
            rows = [r for r, _ in self._held]
            self._held = []
            if rows:
                yield np.concatenate(rows) if len(rows) > 1 else rows[0]
            return
        if self._held:
            self._write_run()
        size = self._dtype.itemsize
        with open(self._path("rows"), "rb") as fh:
            for bucket in range(1 << self._bits):
                pieces = []
                for first, bounds in self._runs:
                    lo, hi = bounds[bucket], bounds[bucket + 1]
                    if hi > lo:
                        fh.seek((first + lo) * size)
                        pieces.append(np.fromfile(fh, dtype=self._dtype, count=hi - lo))
                if pieces:
                    yield np.concatenate(pieces) if len(pieces) > 1 else pieces[0]
        os.remove(self._path("rows"))

    def keep(self, pv: Pivot) -> None:
        """Keep one part's pivot for :meth:`merged` (its arrays go to temporary files once spilled)."""
        for kind, rec in pv.bad.items():
            self._bad.setdefault(kind, []).append(rec)
        self._collapsed.append(pv.collapsed)
        if self._dir is None:
            self._kept.append(pv)
            return
        columns = {"first_record": pv.first_record, "cat": pv.cat, "passed": pv.passed}
        columns.update({f"values.{name}": v for name, v in pv.values.items()})
        if pv.rs is not None:
            columns["rs"] = pv.rs
        for name, column in columns.items():
            self._columns.setdefault(name, (column.dtype, column.shape[1:]))
            with _temporary_files(), open(self._path(f"pivot.{name}"), "ab") as fh:
                np.ascontiguousarray(column).tofile(fh)

    def merged(self) -> Pivot:
        """The kept pivots as one: prompts in order of their first record, as if all rows were pivoted at once.

        Parts hold disjoint prompts, so this is one stable argsort of the first records, then each column is read
        back in chunks and scattered to its place: the peak is the result plus an index per prompt.
        """
        bad = {kind: np.sort(np.concatenate(recs)) for kind, recs in self._bad.items()}
        collapsed = np.sort(np.concatenate(self._collapsed)) if self._collapsed else np.empty(0, np.int64)
        if self._dir is None:
            if len(self._kept) != 1:
                raise ValueError(f"{len(self._kept)} parts kept in memory, expected 1")
            return replace(self._kept.pop(), bad=bad, collapsed=collapsed)
        if "first_record" not in self._columns:
            raise ValueError("no parts kept")
        first = np.fromfile(self._path("pivot.first_record"), dtype=np.int64)
        order = np.argsort(first, kind="stable")  # parts are runs of ascending first records
        pos = np.empty(order.size, dtype=np.int64)  # prompt i of the parts (in part order) -> its place
        pos[order] = np.arange(order.size)
        out = {"first_record": first[order]}
        del first, order
        for name, (dtype, shape) in self._columns.items():
            if name in out:
                continue
            column = out[name] = np.empty((pos.size, *shape), dtype=dtype)
            flat = column.reshape(pos.size, -1)  # (a view) one scatter per column of a (P, M) array: faster
            with open(self._path(f"pivot.{name}"), "rb") as fh:
                for start in range(0, pos.size, _CHUNK):
                    chunk = np.fromfile(fh, dtype=dtype, count=min(_CHUNK, pos.size - start) * math.prod(shape))
                    chunk = chunk.reshape(-1, flat.shape[1])
                    at = pos[start : start + _CHUNK]
                    for j in range(flat.shape[1]):
                        flat[:, j][at] = chunk[:, j]
            os.remove(self._path(f"pivot.{name}"))
        return Pivot(
            cat=out["cat"],
            first_record=out["first_record"],
            passed=out["passed"],
            values={name.split(".", 1)[1]: v for name, v in out.items() if name.startswith("values.")},
            rs=out.get("rs"),
            bad=bad,
            collapsed=collapsed,
        )
