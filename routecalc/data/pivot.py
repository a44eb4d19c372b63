"""Valid eval rows -> per-prompt outcome matrix, in numpy: one sort, then run boundaries and ``ufunc.at``.

Rows are sorted by (prompt key, record index); a prompt is a run of equal keys, and its first record defines its
category and router score. Rows that disagree with their prompt's first row are conflicts; (prompt, model) pairs
with several rows collapse when the outcomes agree (the first row's numbers are kept) and lose their outcome when
they do not. Cost: one ``lexsort`` of the rows plus a few linear passes; no Python loop over rows.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


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
