"""The routecalc 0.1.0 Monte Carlo engine, kept unchanged as the plain-numpy reference for benchmarks.

It simulates per category block with scalar parameters, one thread, chunks of 2^18 requests. Only the
adapter at the bottom (``simulate_reference``) is new: it reads today's ``(P, C, L, S)`` chains (one lane)
and independent outcomes, which is all 0.1.0 could express.

Original docstring: Monte Carlo engine: simulate N requests through every policy's chains, vectorized and chunked.

Each request draws its category (by traffic share) and its tokens ``x, y`` once; every policy then sees the
same request (common random numbers, so differences between policies are sharper than each estimate).
Within a chain, one uniform per decision is compared with its probability: number of failed tries
(geometric, capped at ``1 + r``), timeouts among them (binomial), answer good (``q``), gate accepts.

Reproducible: a fixed chunk size and one child generator per chunk, ``rng.spawn(n_chunks)`` (for
``rng = default_rng(seed)`` that is ``SeedSequence(seed).spawn(n_chunks)``), give the same numbers for the same
seed on any machine. Memory stays
flat: per chunk only ``O(CHUNK)`` arrays; latency percentiles come from a log-spaced histogram
(``BINS_PER_DECADE`` bins per decade: a reported percentile is within one bin, ``HIST_REL_ERROR``, of the
sample's).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from routecalc.chains import DELIVER, FAIL, HUMAN, RoutingProblem
from routecalc.engine.ev import Metrics

CHUNK = 2**18  # requests per chunk; part of the reproducibility contract, do not tune per machine
LAT_MIN_S = 1e-3  # histogram range: 1 ms .. 1e5 s (anything outside is clipped into the end bins)
DECADES = 8
BINS_PER_DECADE = 400
HIST_REL_ERROR = 10 ** (1 / BINS_PER_DECADE) - 1  # one bin, relative (~0.58 %): bound on the interpolation error


@dataclass(frozen=True, eq=False)
class MonteCarlo:
    """Sample means per policy and category, their spread, and latency histograms.

    ``mean`` holds per-category sample means (NaN where a category drew no request); ``n`` is ``(C,)``.
    """

    samples: int
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
    qs = np.asarray(qs, dtype=float)  # (Q,), or (..., Q) broadcasting against the histograms' leading axes
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


class _Acc:
    """Running sums over chunks (the only state of a simulation), indexed ``[policy, category(, model)]``."""

    _SCALARS = ("cost", "cost2", "gate", "human_cost", "good", "bad", "failed", "human", "lat", "lat2", "esc", "fb")

    def __init__(self, P: int, C: int, M: int):
        self.M = M
        self.n = np.zeros(C)
        self.s = {k: np.zeros((P, C)) for k in self._SCALARS}
        self.tokens = np.zeros((P, C, M))
        self.answered = np.zeros((P, C, M + 1))  # column M: human review
        self.calls = np.zeros((P, C, M))
        self.hist = np.zeros((P, C, DECADES * BINS_PER_DECADE), dtype=np.int64)
        self.successes = np.zeros(M)
        self.slow = np.zeros(M)


def simulate(problem: RoutingProblem, samples: int, rng: np.random.Generator) -> MonteCarlo:
    """Simulate ``samples`` requests through every policy (chunked; see module docstring).

    ``rng`` is only used to spawn one child generator per chunk, so ``default_rng(seed)`` gives the same
    numbers on any machine. Memory: ``O(CHUNK)`` floats, whatever ``samples`` is.
    """
    if samples <= 0:
        raise ValueError("samples must be positive")
    P, C, _ = problem.chains.shape
    acc = _Acc(P, C, len(problem.models.names))
    n_chunks = -(-samples // CHUNK)
    for i, child in enumerate(rng.spawn(n_chunks)):
        _chunk(problem, child, min(CHUNK, samples - i * CHUNK), acc)
    return _finish(acc, samples)


def _lognormal(rng: np.random.Generator, mu: float, sigma: float, size: int) -> np.ndarray | float:
    """LogNormal(mu, sigma) draws; a fixed value (sigma 0) costs no random numbers."""
    if sigma == 0:
        return float(np.exp(mu))
    return np.exp(mu + sigma * rng.standard_normal(size))


def _chunk(problem: RoutingProblem, rng: np.random.Generator, n: int, acc: _Acc) -> None:
    """One chunk: category counts from a multinomial, then each category's requests as one block.

    Within a block every parameter is a scalar (one model per chain step), so the inner work is array-scalar
    arithmetic over the block's requests: no per-request Python, no gathers of per-model tables.
    """
    tt = problem.tasks
    counts = rng.multinomial(n, tt.share / tt.share.sum())
    acc.n += counts
    for c, n_c in enumerate(counts):
        if n_c == 0:
            continue
        x = _lognormal(rng, tt.x_mu[c], tt.x_sigma[c], n_c) * np.ones(n_c)
        y = _lognormal(rng, tt.y_mu[c], tt.y_sigma[c], n_c) * np.ones(n_c)
        for p in range(problem.chains.shape[0]):
            _block(problem, rng, p, c, x, y, acc)


def _block(
    problem: RoutingProblem, rng: np.random.Generator, p: int, c: int, x: np.ndarray, y: np.ndarray, acc: _Acc
) -> None:
    """Send one category's block of requests (tokens ``x``, ``y``) through policy ``p``'s chain.

    ``pending[s]`` holds the block rows routed to step ``s`` (``None`` = every row, for step 0); chains only
    point forward, so one pass over the steps finishes every request.
    """
    mt, tt, ch = problem.models, problem.tasks, problem.chains
    n = x.size
    cost = np.zeros(n)
    lat = np.zeros(n)
    esc = np.zeros(n, dtype=bool)
    fb = np.zeros(n, dtype=bool)
    sums = acc.s
    pending: dict[int, list] = {0: [None]}

    def route(rows: np.ndarray, target: int) -> None:
        if target >= 0:
            pending.setdefault(target, []).append(rows)
        elif target == FAIL:
            sums["failed"][p, c] += rows.size

    for s in range(ch.shape[2]):
        parts = pending.pop(s, None)
        m = int(ch.model[p, c, s])
        if not parts or m < 0:
            continue
        idx = None if parts[0] is None else np.concatenate(parts)
        rows = (lambda local: local) if idx is None else (lambda local, idx=idx: idx[local])
        k = n if idx is None else idx.size
        xs = x if idx is None else x[idx]
        ys = (y if idx is None else y[idx]) * mt.output_ratio[m]
        r = int(ch.retries[p, c, s])

        # 1. provider tries: K failed tries, P(K >= k) = f^k, capped at 1 + r; only u < f fail at all
        u = rng.random(k)
        failing = np.flatnonzero(u < mt.fail[m])
        fail_cost: np.ndarray | float = 0.0
        fail_lat: np.ndarray | float = 0.0
        answered = None  # mask of this step's requests that got an answer (None = all)
        n_tries = k
        if failing.size:
            with np.errstate(divide="ignore"):  # u == 0 (p = 2^-53) gives K = inf, capped below
                K = np.minimum(np.floor(np.log(u[failing]) / np.log(mt.fail[m])), r + 1).astype(np.int64)
            timeouts = rng.binomial(K, mt.timeout_share[m])
            fail_lat = np.zeros(k)
            fail_lat[failing] = (
                timeouts * mt.timeout_s[m] + (K - timeouts) * mt.error_latency_s[m] + ch.backoff_s[p] * np.minimum(K, r)
            )
            if problem.bill_failed_input:
                fail_cost = np.zeros(k)
                fail_cost[failing] = K * xs[failing] * mt.price_in[m]
                acc.tokens[p, c, m] += fail_cost.sum()
            abandoned = failing[r < K]
            n_tries += int(K.sum()) - abandoned.size
            if abandoned.size:
                answered = np.ones(k, dtype=bool)
                answered[abandoned] = False
                fb[rows(abandoned)] = True
                route(rows(abandoned), int(ch.on_failure[p, c, s]))
        acc.calls[p, c, m] += n_tries
        k_ok = k if answered is None else k - abandoned.size

        # 2. answer: cost, latency, good? Computed for every row, then zeroed for abandoned ones
        #    (cheaper than gathering the few percent that were abandoned out of every array).
        p_in = mt.price_in[m]
        answer_cost = xs * (p_in + tt.cached_share[c] * (mt.price_cache[m] - p_in)) + ys * mt.price_out[m]
        answer_lat = _lognormal(rng, mt.ttft_mu[m], mt.ttft_sigma[m], k) + ys * _lognormal(
            rng, mt.tpot_mu[m], mt.tpot_sigma[m], k
        )
        good = rng.random(k) < tt.pass_rate[c, m]
        if answered is not None:
            answer_cost *= answered
            answer_lat = answer_lat * answered
            good &= answered
        acc.tokens[p, c, m] += answer_cost.sum()
        acc.successes[m] += k_ok
        acc.slow[m] += np.count_nonzero(answer_lat > mt.timeout_s[m])

        # 3. gate (paid on every answer it reads)
        accept = answered  # None: every answer is delivered
        if ch.gated[p, c, s]:
            if tt.gate_cost_call[c] or tt.gate_cost_token[c]:
                g_cost = tt.gate_cost_call[c] + (xs + ys) * tt.gate_cost_token[c]
                if answered is not None:
                    g_cost *= answered
                sums["gate"][p, c] += g_cost.sum()
                answer_cost = answer_cost + g_cost
            answer_lat = answer_lat + (tt.gate_latency_s[c] if answered is None else tt.gate_latency_s[c] * answered)
            accept = rng.random(k) < np.where(good, 1 - tt.false_reject[c], 1 - tt.catch[c])
            if answered is not None:
                accept &= answered

        step_cost = answer_cost + fail_cost
        step_lat = answer_lat + fail_lat
        if idx is None:
            cost += step_cost
            lat += step_lat
        else:
            cost[idx] += step_cost
            lat[idx] += step_lat

        n_good = np.count_nonzero(good if accept is None else good & accept)
        n_acc = k if accept is None else np.count_nonzero(accept)
        sums["good"][p, c] += n_good
        sums["bad"][p, c] += n_acc - n_good
        acc.answered[p, c, m] += n_acc
        if n_acc == k_ok:
            continue

        # rejected -> on_reject
        rejected = ~accept if answered is None else answered & ~accept
        rejected_local = np.flatnonzero(rejected)
        rj = rows(rejected_local)
        esc[rj] = True
        target = int(ch.on_reject[p, c, s])
        n_rej = rj.size
        if target == DELIVER:
            g = np.count_nonzero(good[rejected_local])
            sums["good"][p, c] += g
            sums["bad"][p, c] += n_rej - g
            acc.answered[p, c, m] += n_rej
        elif target == HUMAN:
            sums["good"][p, c] += n_rej
            sums["human"][p, c] += n_rej
            sums["human_cost"][p, c] += n_rej * ch.human_cost[p]
            acc.answered[p, c, -1] += n_rej
            cost[rj] += ch.human_cost[p]
            lat[rj] += ch.human_latency_s[p]
        route(rj, target)

    for key, v in (("cost", cost), ("lat", lat)):
        sums[key][p, c] += v.sum()
        sums[key + "2"][p, c] += np.einsum("i,i->", v, v)  # not v @ v: BLAS dot is slow on some builds
    sums["esc"][p, c] += np.count_nonzero(esc)
    sums["fb"][p, c] += np.count_nonzero(fb)
    acc.hist[p, c] += np.bincount(_bin(lat), minlength=acc.hist.shape[-1])


def _finish(acc: _Acc, samples: int) -> MonteCarlo:
    M = acc.M
    with np.errstate(invalid="ignore", divide="ignore"):
        n = np.where(acc.n > 0, acc.n, np.nan)
        mean = {k: v / n for k, v in acc.s.items()}
        per_model = lambda a: (a / n[None, :, None])[..., :M]
        metrics = Metrics(
            token_cost=per_model(acc.tokens),
            gate_cost=mean["gate"],
            human_cost=mean["human_cost"],
            quality=mean["good"],
            delivered_bad=mean["bad"],
            failed=mean["failed"],
            human=mean["human"],
            latency=mean["lat"],
            escalation=mean["esc"],
            fallback=mean["fb"],
            answered=per_model(acc.answered),
            calls=per_model(acc.calls),
        )
        cost_sd = np.sqrt(np.maximum(mean["cost2"] - mean["cost"] ** 2, 0.0))
        lat_sd = np.sqrt(np.maximum(mean["lat2"] - mean["lat"] ** 2, 0.0))
    return MonteCarlo(
        samples=samples,
        n=acc.n.astype(np.int64),
        mean=metrics,
        cost_sd=cost_sd,
        latency_sd=lat_sd,
        hist=acc.hist,
        model_successes=acc.successes,
        model_slow=acc.slow,
    )


def simulate_reference(problem: RoutingProblem, samples: int, rng: np.random.Generator) -> MonteCarlo:
    """Run the 0.1.0 engine on a compiled problem with one lane and independent outcomes."""
    from dataclasses import replace

    ch = problem.chains
    if ch.shape[2] != 1 or not problem.outcomes.independent:
        raise ValueError("the 0.1.0 reference simulates one lane and independent outcomes only")
    flat = replace(
        ch,
        model=ch.model[:, :, 0],
        gated=ch.gated[:, :, 0],
        retries=ch.retries[:, :, 0],
        on_reject=ch.on_reject[:, :, 0],
        on_failure=ch.on_failure[:, :, 0, :, 0],  # 0.1.0 had one target for every error type
    )
    return simulate(problem.with_chains(flat), samples, rng)
