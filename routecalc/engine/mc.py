"""Monte Carlo engine: simulate N requests through every policy's chains, vectorized and chunked.

Each request draws its category (by traffic share) and its tokens ``x, y`` once; every policy then sees the
same request (common random numbers, so differences between policies are sharper than each estimate).
Within a chain, one uniform per decision is compared with its probability: number of failed tries
(geometric, capped at ``1 + r``), timeouts among them (binomial), answer good (``q``), gate accepts.

Reproducible: a fixed chunk size and one child generator per chunk from
``SeedSequence(seed).spawn(n_chunks)`` give the same numbers for the same seed on any machine. Memory stays
flat: per chunk only ``O(CHUNK)`` arrays; latency percentiles come from a log-spaced histogram
(``BINS_PER_DECADE`` bins per decade, so a reported percentile is within ``HIST_REL_ERROR`` of the sample's).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from routecalc.chains import DELIVER, FAIL, HUMAN, RoutingProblem
from routecalc.engine.ev import Metrics

CHUNK = 2**18  # requests per chunk; part of the reproducibility contract, do not tune per machine
LAT_MIN_S = 1e-3  # histogram range: 1 ms .. 1e5 s (anything outside is clipped into the end bins)
DECADES = 8
BINS_PER_DECADE = 200
HIST_REL_ERROR = 10 ** (0.5 / BINS_PER_DECADE) - 1  # half a bin, relative: ~0.58 %
_DONE = -9

# outcome codes per request
_FAILED, _GOOD, _BAD, _HUMAN = 0, 1, 2, 3


@dataclass(frozen=True, eq=False)
class MonteCarlo:
    """Sample means per policy and category, their spread, and latency histograms.

    ``mean`` holds per-category sample means (NaN where a category drew no request); ``n`` is ``(C,)``.
    """

    samples: int
    seed: int
    n: np.ndarray
    mean: Metrics
    cost_sd: np.ndarray  # (P, C) per-request standard deviation of total cost
    latency_sd: np.ndarray  # (P, C) per-request standard deviation of latency (s)
    hist: np.ndarray  # (P, C, B) counts of end-to-end latency, failed requests included
    model_successes: np.ndarray  # (M,) successful tries
    model_slow: np.ndarray  # (M,) successful tries slower than the model's timeout

    @property
    def edges(self) -> np.ndarray:
        return histogram_edges()


def histogram_edges() -> np.ndarray:
    """Bin edges (seconds) of the latency histogram, log-spaced."""
    return LAT_MIN_S * 10 ** (np.arange(DECADES * BINS_PER_DECADE + 1) / BINS_PER_DECADE)


def hist_quantiles(hist: np.ndarray, qs: np.ndarray | list[float]) -> np.ndarray:
    """Quantiles (seconds) from latency histograms ``(..., B)``; log-linear inside a bin. Shape ``(..., Q)``.

    NaN where a histogram is empty.
    """
    qs = np.asarray(qs, dtype=float)
    counts = np.asarray(hist, dtype=float)
    total = counts.sum(-1, keepdims=True)
    cum = np.cumsum(counts, axis=-1)
    target = np.maximum(qs * total, 1e-9)  # (..., Q); q = 0 means the first non-empty bin
    # first bin whose cumulative count reaches the target
    idx = np.minimum((cum[..., None, :] < target[..., :, None]).sum(-1), counts.shape[-1] - 1)
    below = np.take_along_axis(cum, idx, -1) - np.take_along_axis(counts, idx, -1)
    inbin = np.take_along_axis(counts, idx, -1)
    with np.errstate(invalid="ignore", divide="ignore"):
        frac = np.clip(np.where(inbin > 0, (target - below) / inbin, 0.5), 0, 1)
        out = LAT_MIN_S * 10 ** ((idx + frac) / BINS_PER_DECADE)
    return np.where(total > 0, out, np.nan)


def _bin(latency: np.ndarray) -> np.ndarray:
    b = np.floor(np.log10(np.maximum(latency, LAT_MIN_S) / LAT_MIN_S) * BINS_PER_DECADE)
    return np.minimum(b.astype(np.int64), DECADES * BINS_PER_DECADE - 1)


def _geometric_failures(u: np.ndarray, f: np.ndarray, cap: np.ndarray) -> np.ndarray:
    """Failed tries before the first success, ``P(K >= k) = f^k``, capped at ``cap`` (u in (0, 1])."""
    logf = np.log(np.where(f > 0, f, 0.5))
    k = np.where(f > 0, np.floor(np.log(u) / logf), 0.0)
    return np.minimum(k, cap).astype(np.int64)


class _Acc:
    """Running sums over chunks (the only state of a simulation)."""

    _SCALARS = (
        "cost",
        "cost2",
        "gate",
        "human_cost",
        "good",
        "bad",
        "failed",
        "human",
        "lat",
        "lat2",
        "esc",
        "fb",
    )

    def __init__(self, P: int, C: int, M: int):
        self.P, self.C, self.M = P, C, M
        self.n = np.zeros(C)
        self.s = {k: np.zeros((P, C)) for k in self._SCALARS}
        self.tokens = np.zeros((P, C * M))
        self.answered = np.zeros((P, C * (M + 1)))
        self.calls = np.zeros((P, C * M))
        self.hist = np.zeros((P, C * DECADES * BINS_PER_DECADE), dtype=np.int64)
        self.successes = np.zeros(M)
        self.slow = np.zeros(M)


def simulate(problem: RoutingProblem, samples: int, rng_seed: int) -> MonteCarlo:
    """Simulate ``samples`` requests through every policy (seeded, chunked; see module docstring)."""
    if samples <= 0:
        raise ValueError("samples must be positive")
    ch = problem.chains
    P, C, _ = ch.shape
    M = len(problem.models.names)
    acc = _Acc(P, C, M)
    n_chunks = -(-samples // CHUNK)
    children = np.random.SeedSequence(rng_seed).spawn(n_chunks)
    for i, child in enumerate(children):
        size = min(CHUNK, samples - i * CHUNK)
        _chunk(problem, np.random.default_rng(child), size, acc)
    return _finish(acc, samples, rng_seed)


def _chunk(problem: RoutingProblem, rng: np.random.Generator, n: int, acc: _Acc) -> None:
    mt, tt, ch = problem.models, problem.tasks, problem.chains
    P, C, S = ch.shape
    M = len(mt.names)
    cum = np.cumsum(tt.share)
    cat = np.minimum(np.searchsorted(cum / cum[-1], rng.random(n), side="right"), C - 1)
    z = rng.standard_normal((2, n))
    x = np.exp(tt.x_mu[cat] + tt.x_sigma[cat] * z[0])
    y = np.exp(tt.y_mu[cat] + tt.y_sigma[cat] * z[1])
    acc.n += np.bincount(cat, minlength=C)
    B = DECADES * BINS_PER_DECADE

    for p in range(P):
        nxt = np.zeros(n, dtype=np.int64)
        tok = np.zeros(n)
        gate = np.zeros(n)
        human_cost = np.zeros(n)
        lat = np.zeros(n)
        outcome = np.full(n, _FAILED, dtype=np.int8)
        answered = np.full(n, M, dtype=np.int64)  # M = no model answered (failed or human review)
        esc = np.zeros(n, dtype=bool)
        fb = np.zeros(n, dtype=bool)
        for s in range(S):
            idx = np.flatnonzero(nxt == s)
            if idx.size == 0:
                continue
            c = cat[idx]
            m = ch.model[p, c, s]
            r = ch.retries[p, c, s]
            xi = x[idx]
            yi = y[idx] * mt.output_ratio[m]

            # 1. provider tries: K failed tries (geometric), abandoned when K reaches 1 + r
            K = _geometric_failures(1.0 - rng.random(idx.size), mt.fail[m], r + 1)
            abandon = r < K
            n_timeout = rng.binomial(K, mt.timeout_share[m])
            lat[idx] += (
                n_timeout * mt.timeout_s[m]
                + (K - n_timeout) * mt.error_latency_s[m]
                + ch.backoff_s[p] * np.minimum(K, r)
            )
            step_tokens = K * xi * mt.price_in[m] if problem.bill_failed_input else np.zeros(idx.size)
            cm = c * M + m
            acc.calls[p] += np.bincount(cm, weights=K + ~abandon, minlength=C * M)

            # provider failure after retries -> on_failure
            a = np.flatnonzero(abandon)
            fb[idx[a]] = True
            _send(idx[a], ch.on_failure[p, c[a], s], nxt, outcome)

            # 2. answer
            ok = np.flatnonzero(~abandon)
            j, cj, mj, xj, yj = idx[ok], c[ok], m[ok], xi[ok], yi[ok]
            zz = rng.standard_normal((2, ok.size))
            ans_lat = np.exp(mt.ttft_mu[mj] + mt.ttft_sigma[mj] * zz[0]) + yj * np.exp(
                mt.tpot_mu[mj] + mt.tpot_sigma[mj] * zz[1]
            )
            acc.successes += np.bincount(mj, minlength=M)
            acc.slow += np.bincount(mj, weights=ans_lat > mt.timeout_s[mj], minlength=M)
            p_in = mt.price_in[mj]
            step_tokens[ok] += (
                xj * p_in + yj * mt.price_out[mj] + tt.cached_share[cj] * xj * (mt.price_cache[mj] - p_in)
            )
            tok[idx] += step_tokens
            acc.tokens[p] += np.bincount(cm, weights=step_tokens, minlength=C * M)
            good = rng.random(ok.size) < tt.pass_rate[cj, mj]

            # 3. gate
            gated = ch.gated[p, cj, s]
            accept_p = np.where(gated, np.where(good, 1 - tt.false_reject[cj], 1 - tt.catch[cj]), 1.0)
            accept = rng.random(ok.size) < accept_p
            gate[j] += np.where(gated, tt.gate_cost_call[cj] + (xj + yj) * tt.gate_cost_token[cj], 0.0)
            lat[j] += ans_lat + np.where(gated, tt.gate_latency_s[cj], 0.0)

            acc_ix = j[accept]
            outcome[acc_ix] = np.where(good[accept], _GOOD, _BAD)
            answered[acc_ix] = mj[accept]
            nxt[acc_ix] = _DONE

            rej = ~accept
            rj, tr = j[rej], ch.on_reject[p, cj[rej], s]
            esc[rj] = True
            dl = tr == DELIVER
            outcome[rj[dl]] = np.where(good[rej][dl], _GOOD, _BAD)
            answered[rj[dl]] = mj[rej][dl]
            hu = tr == HUMAN
            outcome[rj[hu]] = _HUMAN
            human_cost[rj[hu]] += ch.human_cost[p]
            lat[rj[hu]] += ch.human_latency_s[p]
            _send(rj, tr, nxt, outcome)

        total = tok + gate + human_cost
        sums = {
            "cost": total,
            "cost2": total**2,
            "gate": gate,
            "human_cost": human_cost,
            "good": (outcome == _GOOD) | (outcome == _HUMAN),
            "bad": outcome == _BAD,
            "failed": outcome == _FAILED,
            "human": outcome == _HUMAN,
            "lat": lat,
            "lat2": lat**2,
            "esc": esc,
            "fb": fb,
        }
        for k, v in sums.items():
            acc.s[k][p] += np.bincount(cat, weights=v, minlength=C)
        acc.answered[p] += np.bincount(cat * (M + 1) + answered, minlength=C * (M + 1))
        acc.hist[p] += np.bincount(cat * B + _bin(lat), minlength=C * B)


def _send(rows: np.ndarray, target: np.ndarray, nxt: np.ndarray, outcome: np.ndarray) -> None:
    """Move requests to their next step, or end them (FAIL ends as failed; DELIVER/HUMAN set by caller)."""
    nxt[rows] = np.where(target >= 0, target, _DONE)
    outcome[rows[target == FAIL]] = _FAILED


def _finish(acc: _Acc, samples: int, seed: int) -> MonteCarlo:
    P, C, M = acc.P, acc.C, acc.M
    with np.errstate(invalid="ignore", divide="ignore"):
        n = np.where(acc.n > 0, acc.n, np.nan)
        mean = {k: v / n for k, v in acc.s.items()}
        per_model = lambda a, width: (a.reshape(P, C, width) / n[None, :, None])[..., :M]
        metrics = Metrics(
            token_cost=per_model(acc.tokens, M),
            gate_cost=mean["gate"],
            human_cost=mean["human_cost"],
            quality=mean["good"],
            delivered_bad=mean["bad"],
            failed=mean["failed"],
            human=mean["human"],
            latency=mean["lat"],
            escalation=mean["esc"],
            fallback=mean["fb"],
            answered=per_model(acc.answered, M + 1),
            calls=per_model(acc.calls, M),
        )
        cost_sd = np.sqrt(np.maximum(mean["cost2"] - mean["cost"] ** 2, 0.0))
        lat_sd = np.sqrt(np.maximum(mean["lat2"] - mean["lat"] ** 2, 0.0))
    return MonteCarlo(
        samples=samples,
        seed=seed,
        n=acc.n.astype(np.int64),
        mean=metrics,
        cost_sd=cost_sd,
        latency_sd=lat_sd,
        hist=acc.hist.reshape(P, C, DECADES * BINS_PER_DECADE),
        model_successes=acc.successes,
        model_slow=acc.slow,
    )
