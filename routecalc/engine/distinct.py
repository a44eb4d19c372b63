"""Walk each distinct chain once: policies that route a category the same way share its Monte Carlo walk.

Every policy sees the same requests and random numbers (common random numbers), and a request's walk reads only
its own category's chain and its policy's settings (backoff, human review). So two policies whose compiled chains
are equal for a category give that category identical results, bit for bit, and only one of them needs walking.
Policy variants usually differ in a few routes: on the 500 x 50 scale benchmark, 51 policies have 25 distinct
chains per category on average and at most 29.

:func:`distinct_chains` packs the distinct (category, chain) columns into ``G`` *walk policies*: walk policy
``j`` has, in category ``c``, the ``j``-th distinct chain of ``c`` (or, past the category's last one, its
shortest chain again, walked and never read). ``owner[p, c]`` is the walk policy whose column ``c`` stands for
policy ``p``'s; the caller walks the ``G`` policies and reads each policy's results from its owners
(:meth:`Distinct.take`). Policies with different settings, or with per-step latency targets (which record more
per request) and those without, never share a walk policy.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np

from routecalc.chains import ChainTable

_PER_POLICY = ("backoff_s", "human_cost", "human_latency_s")  # (P,) settings of the whole policy
_LABELS = ("names", "kinds")  # not read by the walk


@dataclass(frozen=True, eq=False)
class Distinct:
    """The walk policies (``chains``, ``G`` of them) and, per ``(P, C)``, which one stands for each policy."""

    chains: ChainTable
    owner: np.ndarray  # (P, C) int64: walk policy whose column c is policy p's
    targeted: tuple[int, ...]  # walk policies that record per-step latencies (their policies have step targets)

    def weights(self) -> np.ndarray:
        """``(G, C)`` int64: how many policies each walk policy's column ``c`` stands for (0: walked, never read)."""
        G, C = self.chains.shape[:2]
        cols = np.broadcast_to(np.arange(C), self.owner.shape)
        return np.bincount((self.owner * C + cols).ravel(), minlength=G * C).reshape(G, C)

    def take(self, a: np.ndarray) -> np.ndarray:
        """Per-policy results ``(P, C, ...)`` from the walk policies' ``(G, C, ...)``: ``a[owner[p, c], c]``."""
        return a[self.owner, np.arange(self.owner.shape[1])]

    def take_inplace(self, a: np.ndarray, block_bytes: int = 8 * 2**20) -> None:
        """The same for an array ``(P, C, ...)`` whose first ``G`` rows hold the walk policies' results,
        overwritten in place a block of categories at a time (no second full-size array)."""
        G = self.chains.shape[0]
        C = a.shape[1]
        per_cat = max(1, G * a[0, 0].nbytes)
        step = max(1, block_bytes // per_cat)
        for c0 in range(0, C, step):
            c1 = min(C, c0 + step)
            walked = a[:G, c0:c1].copy()
            a[:, c0:c1] = walked[self.owner[:, c0:c1], np.arange(c1 - c0)]


def distinct_chains(chains: ChainTable, targeted: np.ndarray) -> Distinct | None:
    """The distinct (category, chain) columns of ``chains`` packed into as few walk policies as there are distinct
    chains in the most varied category (module docstring); None when that saves no walk.

    ``targeted`` ``(P,)`` bool: policies with per-step latency targets. Columns are equal when every compiled
    array of the chain (models, triggers, retries, hedges, deadlines, lanes and their classifiers, batch shares,
    targets) has the same bits and the policies' settings are equal.
    """
    P, C = chains.shape[:2]
    if P < 2:
        return None
    columns = []  # per array of the chain: (P x C, its values per (policy, category)) as 64-bit patterns
    settings = [targeted.astype(np.int64)[:, None]]
    for f in fields(ChainTable):
        if f.name in _LABELS:
            continue
        a = np.asarray(getattr(chains, f.name))
        bits = np.ascontiguousarray(a, dtype=np.float64).view(np.int64) if a.dtype.kind == "f" else a
        if f.name in _PER_POLICY:
            settings.append(bits.reshape(P, -1).astype(np.int64))
        else:
            columns.append(bits.reshape(P * C, -1))
    _, rep_policy, klass = np.unique(np.concatenate(settings, axis=1), axis=0, return_index=True, return_inverse=True)
    klass = klass.reshape(-1)
    # one row per (policy, category): class, category, chain; equal rows walk alike
    where = [np.repeat(klass, C)[:, None], np.tile(np.arange(C), P)[:, None]]
    first, inverse = _unique_rows(where + columns)
    u_klass, u_cat, u_policy = klass[first // C], first % C, first // C
    steps = (chains.model[u_policy, u_cat] >= 0).sum(axis=(-1, -2))  # per distinct chain
    # rank each distinct chain within its (class, category) by the first policy using it: its walk policy there
    group = u_klass * C + u_cat
    order = np.lexsort((u_policy, group))
    per_group = np.bincount(group, minlength=(klass.max() + 1) * C)
    start = np.cumsum(per_group) - per_group
    rank = np.empty(first.size, dtype=np.int64)
    rank[order] = np.arange(first.size) - start[group[order]]
    width = per_group.reshape(-1, C).max(axis=1)  # walk policies per class
    offset = np.cumsum(width) - width
    G = int(width.sum())
    if G >= P:
        return None
    # which policy's column each walk policy takes: the distinct chain of that rank, else the category's shortest
    by_steps = np.lexsort((steps, group))
    leads = by_steps[np.r_[True, group[by_steps][1:] != group[by_steps][:-1]]]  # each group's fewest steps
    shortest = np.empty(per_group.size, dtype=np.int64)
    shortest[group[leads]] = u_policy[leads]
    source = np.repeat(shortest.reshape(-1, C), width, axis=0)  # (G, C)
    source[offset[u_klass] + rank, u_cat] = u_policy
    walk_class = np.repeat(np.arange(width.size), width)
    cidx = np.arange(C)[None, :]
    values = {}
    for f in fields(ChainTable):
        a = getattr(chains, f.name)
        if f.name in _LABELS:
            values[f.name] = tuple(f"walk-{j}" for j in range(G))
        elif f.name in _PER_POLICY:
            values[f.name] = a[rep_policy[walk_class]]
        else:
            values[f.name] = a[source, cidx]
    owner = (offset[u_klass] + rank)[inverse].reshape(P, C)
    walk_targeted = tuple(int(j) for j in np.flatnonzero(targeted[rep_policy[walk_class]]))
    return Distinct(ChainTable(**values), owner, walk_targeted)


def _unique_rows(blocks: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """For rows made of integer ``blocks`` side by side (``(N, k)`` each): ``np.unique(rows, axis=0,
    return_index=True, return_inverse=True)[1:]`` (the first row of each distinct row, and each row's distinct row).

    By a 64-bit hash of each row, checked against the rows themselves, block by block (no copy of them all side by
    side); a collision, never seen in practice, falls back to sorting the rows (several times slower on 25,000 x 50).
    """
    N = blocks[0].shape[0]
    weights = _row_weights(sum(b.shape[1] for b in blocks))
    h = np.zeros(N, dtype=np.int64)
    at = 0
    with np.errstate(over="ignore"):
        for b in blocks:  # wraps modulo 2^64: a polynomial hash of the row
            h += (b * weights[at : at + b.shape[1]]).sum(axis=1, dtype=np.int64)
            at += b.shape[1]
    _, first, inverse = np.unique(h, return_index=True, return_inverse=True)
    inverse = inverse.reshape(-1)
    rep = first[inverse]
    if not all((b == b[rep]).all() for b in blocks):  # two different rows share a hash: do it exactly
        rows = np.concatenate([b.astype(np.int64) for b in blocks], axis=1)
        _, first, inverse = np.unique(rows, axis=0, return_index=True, return_inverse=True)
        inverse = inverse.reshape(-1)
    return first, inverse


def _row_weights(n: int) -> np.ndarray:
    """The hash's fixed odd 64-bit weights, one per column."""
    return np.random.default_rng(0x5EED).integers(1, 2**63, size=n, dtype=np.int64) | 1
