"""The latency histograms of the Monte Carlo and time engines: log-spaced bins, binning, percentiles.

Latency percentiles come from histograms, so memory stays flat in the number of requests: ``DECADES`` decades from
``LAT_MIN_S``, ``bins`` bins per decade (chosen from the worksheet's size so the counts fit ``HIST_BUDGET_BYTES``).
A percentile read from a histogram is within one bin (``relative_error(bins)``) of the sample's.
"""

from __future__ import annotations

from functools import cache

import numpy as np

LAT_MIN_S = 1e-3  # histogram range: 1 ms .. 1e5 s (anything outside is clipped into the end bins)
DECADES = 8
BINS_PER_DECADE = 400  # finest resolution, used whenever the histograms fit the budget
BIN_CHOICES = (400, 200, 100, 50, 25, 20, 10)
HIST_BUDGET_BYTES = 128 * 2**20  # latency histograms: int32 counts, (P, C, DECADES * bins per decade)
HIST_REL_ERROR = 10 ** (1 / BINS_PER_DECADE) - 1  # one bin at the finest resolution (~0.58 %)


def bins_per_decade(n_policies: int, n_categories: int) -> int:
    """The finest histogram resolution whose ``(P, C, bins)`` int32 counts fit ``HIST_BUDGET_BYTES``."""
    for b in BIN_CHOICES:
        if n_policies * n_categories * DECADES * b * 4 <= HIST_BUDGET_BYTES:
            return b
    return BIN_CHOICES[-1]


def relative_error(bins: int) -> float:
    """Bound on the interpolation error of a percentile read from a histogram: one bin, relative."""
    return float(10 ** (1 / bins) - 1)


def histogram_edges(bins: int = BINS_PER_DECADE) -> np.ndarray:
    """Bin edges (seconds) of the latency histogram, log-spaced."""
    return LAT_MIN_S * 10 ** (np.arange(DECADES * bins + 1) / bins)


def hist_quantiles(hist: np.ndarray, qs: np.ndarray | list[float], bins: int | None = None) -> np.ndarray:
    """Quantiles (seconds) from latency histograms ``(..., B)``; log-linear inside a bin. Shape ``(..., Q)``.

    ``bins`` is the resolution in bins per decade (default: from the histogram's length). NaN where a
    histogram is empty. Rows are processed in blocks, so memory stays bounded for many (policy, category) pairs.
    """
    hist = np.asarray(hist)
    B = hist.shape[-1]
    bins = bins or B // DECADES
    qs = np.asarray(qs, dtype=float)  # (Q,), or (..., Q) broadcasting against the histograms' leading axes
    lead = hist.shape[:-1]
    Q = qs.shape[-1]
    flat = hist.reshape(-1, B)
    q_flat = np.broadcast_to(qs, (*lead, Q)).reshape(-1, Q)
    out = np.empty((flat.shape[0], Q))
    block = max(1, 2**17 // max(1, B))  # rows per block: temporaries stay in cache (~1 MB)
    for a in range(0, flat.shape[0], block):
        out[a : a + block] = _quantile_rows(flat[a : a + block], q_flat[a : a + block], bins)
    return out.reshape(*lead, Q)


def _first_reaching(cum: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Per row of ``cum`` ``(N, B)`` (non-decreasing) and each of its targets ``(N, Q)``: the first bin whose
    cumulative count reaches the target (``B`` if none), by a binary search over all rows at once."""
    N, B = cum.shape
    rows = np.arange(N)[:, None]
    lo = np.zeros(target.shape, dtype=np.int64)
    hi = np.full(target.shape, B, dtype=np.int64)
    while True:
        open_ = lo < hi
        if not open_.any():
            return lo
        mid = (lo + hi) // 2
        below = cum[rows, np.minimum(mid, B - 1)] < target
        lo = np.where(open_ & below, mid + 1, lo)
        hi = np.where(open_ & ~below, mid, hi)


def _quantile_rows(counts: np.ndarray, qs: np.ndarray, bins: int) -> np.ndarray:
    """:func:`hist_quantiles` for histograms ``(N, B)`` (counts) and quantiles ``(N, Q)``."""
    # counts of at most MAX_SAMPLES < 2^31 per histogram add up exactly in 32 bits (half the memory traffic)
    cum = np.cumsum(counts, axis=-1, dtype=np.int32 if counts.dtype == np.int32 else np.float64)
    total = cum[:, -1:]
    target = np.maximum(qs * total, 1e-9)  # (N, Q); q = 0 means the first non-empty bin
    idx = np.minimum(_first_reaching(cum, target), counts.shape[-1] - 1)
    rows = np.arange(counts.shape[0])[:, None]
    inbin = counts[rows, idx].astype(np.float64)
    below = cum[rows, idx] - inbin
    with np.errstate(invalid="ignore", divide="ignore"):
        frac = np.clip(np.where(inbin > 0, (target - below) / inbin, 0.5), 0, 1)
        out = LAT_MIN_S * 10 ** ((idx + frac) / bins)
    return np.where(total > 0, out, np.nan)


GUESS_SHIFT = 44  # a latency's float64 bits >> 44: its exponent and 8 mantissa bits, an interval of 2^(1/256)


@cache
def bin_table(bins: int) -> tuple[np.ndarray, np.ndarray, int]:
    """For binning without a logarithm: the edges ``(B + 1,)``, a lookup table ``(J, 2)`` and its base.

    Latencies sharing their float64 bits above ``GUESS_SHIFT`` form an interval 0.27 % wide, narrower than any bin
    (``10^(1/bins) - 1 >= 0.58 %``), so at most one edge falls inside it. For the interval ``j = (bits >>
    GUESS_SHIFT) - base``: ``table[j, 1]`` is the bin of its lower end and ``table[j, 0]`` the edge inside it (or
    infinity); a latency's bin is ``table[j, 1] + (latency >= table[j, 0])``, exactly. The arrays are shared: do
    not modify them.
    """
    edges = histogram_edges(bins)
    inner = edges[1:-1]
    lo = int(edges[:1].view(np.int64)[0] >> GUESS_SHIFT)
    hi = int(edges[-1:].view(np.int64)[0] >> GUESS_SHIFT)
    bounds = (np.arange(lo, hi + 2, dtype=np.int64) << GUESS_SHIFT).view(np.float64)  # interval j: [b_j, b_j+1)
    start, end = bounds[:-1], bounds[1:]
    guess = np.searchsorted(inner, start, side="right")  # edges <= the lower end: its bin
    nxt = np.append(inner, np.inf)[guess]
    after = np.append(inner, [np.inf, np.inf])[guess + 1]
    if (after < end).any():  # two edges inside one interval: bins narrower than the table allows
        raise ValueError(f"{bins} bins per decade is too fine for the bin table")
    table = np.stack([np.where(nxt < end, nxt, np.inf), guess.astype(np.float64)], axis=1)
    return edges, table, lo


def latency_bins(latency: np.ndarray, bins: int) -> np.ndarray:
    """Each latency's histogram bin ``b`` (``(n,)`` int64): ``edges[b] <= latency < edges[b + 1]`` for the edges of
    :func:`histogram_edges` (``bins`` per decade); what lies below the first inner edge (or is NaN) goes to the
    first bin, what lies above the last inner edge to the last.

    Defined by the edges, not by a logarithm (whose last bit differs between numpy and libm), through
    :func:`bin_table`, which the compiled walk uses too: the two walks bin alike.
    """
    edges, table, base = bin_table(bins)
    inside, lower = _table_columns(bins)
    B = edges.size - 1
    latency = np.asarray(latency, dtype=np.float64)
    j = latency.view(np.int64) >> GUESS_SHIFT
    j -= base
    np.clip(j, 0, table.shape[0] - 1, out=j)
    b = lower[j]  # (indexing releases the GIL; np.take does not)
    b += latency >= inside[j]
    np.minimum(b, B - 1, out=b)  # above the last inner edge
    low = ~(latency >= edges[1])  # below the first inner edge, or NaN
    if low.any():
        b[low] = 0
    return b


@cache
def _table_columns(bins: int) -> tuple[np.ndarray, np.ndarray]:
    """:func:`bin_table`'s two columns as contiguous arrays: the edge inside each interval, its lower end's bin."""
    _, table, _ = bin_table(bins)
    return np.ascontiguousarray(table[:, 0]), table[:, 1].astype(np.int64)
