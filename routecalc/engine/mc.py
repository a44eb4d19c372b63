"""Monte Carlo engine: simulate N requests through every policy's chains, vectorized, chunked, multi-threaded.

A chunk of ``CHUNK`` requests draws its category counts (multinomial), then per request its tokens ``x, y`` and
its outcome state (:mod:`routecalc.outcomes`: a pattern of an outcome table, or a latent difficulty ``Z``), once;
every policy then sees the same requests (common random numbers, so differences between policies are sharper
than each estimate). Within a chain, one uniform per decision is compared with its probability: number of
failed tries (geometric, capped at ``1 + r``), timeouts among them (binomial), answer good (``q`` given the
request's state), gate accepts. Requests of every category are simulated together, with per-request parameters
gathered from small per-(policy, step) tables, so the work per chunk does not grow with the number of categories.

Reproducible: chunk ``i`` uses the ``i``-th child of ``rng`` (``rng.spawn``), and chunk results are added in
chunk order, so the same seed gives the same bytes on any machine and with any number of threads. Memory stays
flat in N: per chunk ``O(CHUNK)`` arrays; latency percentiles come from log-spaced histograms whose resolution
(bins per decade) is chosen from the worksheet's size so they fit ``HIST_BUDGET_BYTES``.
"""

from __future__ import annotations

import os
import threading
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np

from routecalc.chains import RoutingProblem
from routecalc.engine.ev import Metrics
from routecalc.engine.walk import (
    BAD,
    FAILED,
    GOOD,
    HUMAN_REVIEW,
    StepTable,
    Walked,
    Workspace,
    numba_available,
    pack,
    walk_numba,
    walk_numpy,
)
from routecalc.outcomes import LATENT, TABLE

CHUNK = 2**16  # requests per chunk (and per child generator): part of the reproducibility contract
LAT_MIN_S = 1e-3  # histogram range: 1 ms .. 1e5 s (anything outside is clipped into the end bins)
DECADES = 8
BINS_PER_DECADE = 400  # finest resolution, used whenever the histograms fit the budget
BIN_CHOICES = (400, 200, 100, 50, 25, 20, 10)
HIST_BUDGET_BYTES = 128 * 2**20  # latency histograms: int32 counts, (P, C, DECADES * bins per decade)
HIST_REL_ERROR = 10 ** (1 / BINS_PER_DECADE) - 1  # one bin at the finest resolution (~0.58 %)
MAX_SAMPLES = 2**31 - 1  # histogram counts are int32
AUTO_NUMBA_WORK = 4_000_000  # request-policies from which engine="auto" uses the compiled walk (if installed)


def bins_per_decade(n_policies: int, n_categories: int) -> int:
    """The finest histogram resolution whose ``(P, C, bins)`` int32 counts fit ``HIST_BUDGET_BYTES``."""
    for b in BIN_CHOICES:
        if n_policies * n_categories * DECADES * b * 4 <= HIST_BUDGET_BYTES:
            return b
    return BIN_CHOICES[-1]


def relative_error(bins: int) -> float:
    """Bound on the interpolation error of a percentile read from a histogram: one bin, relative."""
    return float(10 ** (1 / bins) - 1)


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
    bins_per_decade: int = BINS_PER_DECADE

    @property
    def edges(self) -> np.ndarray:
        return histogram_edges(self.bins_per_decade)

    @property
    def hist_rel_error(self) -> float:
        """Interpolation error bound of a percentile read from ``hist`` (one bin, relative)."""
        return relative_error(self.bins_per_decade)

    def quantiles(self, hist: np.ndarray, qs: np.ndarray | list[float]) -> np.ndarray:
        """Quantiles (seconds) of histograms shaped like ``hist`` (``(..., B)``)."""
        return hist_quantiles(hist, qs, self.bins_per_decade)


def histogram_edges(bins: int = BINS_PER_DECADE) -> np.ndarray:
    """Bin edges (seconds) of the latency histogram, log-spaced."""
    return LAT_MIN_S * 10 ** (np.arange(DECADES * bins + 1) / bins)


def hist_quantiles(hist: np.ndarray, qs: np.ndarray | list[float], bins: int | None = None) -> np.ndarray:
    """Quantiles (seconds) from latency histograms ``(..., B)``; log-linear inside a bin. Shape ``(..., Q)``.

    ``bins`` is the resolution in bins per decade (default: from the histogram's length). NaN where a
    histogram is empty.
    """
    counts = np.asarray(hist, dtype=float)
    bins = bins or counts.shape[-1] // DECADES
    qs = np.asarray(qs, dtype=float)  # (Q,), or (..., Q) broadcasting against the histograms' leading axes
    total = counts.sum(-1, keepdims=True)
    cum = np.cumsum(counts, axis=-1)
    target = np.maximum(qs * total, 1e-9)  # (..., Q); q = 0 means the first non-empty bin
    # first bin whose cumulative count reaches the target
    idx = np.minimum((cum[..., None, :] < target[..., :, None]).sum(-1), counts.shape[-1] - 1)
    below = np.take_along_axis(cum, idx, -1) - np.take_along_axis(counts, idx, -1)
    inbin = np.take_along_axis(counts, idx, -1)
    with np.errstate(invalid="ignore", divide="ignore"):
        frac = np.clip(np.where(inbin > 0, (target - below) / inbin, 0.5), 0, 1)
        out = LAT_MIN_S * 10 ** ((idx + frac) / bins)
    return np.where(total > 0, out, np.nan)


def _bin(latency: np.ndarray, bins: int) -> np.ndarray:
    b = np.log10(np.maximum(latency, LAT_MIN_S) * (1 / LAT_MIN_S))
    b *= bins
    return np.minimum(b.astype(np.int64), DECADES * bins - 1)


# ---------------------------------------------------------------------------------------------------------
# Per-(policy, step, category) parameters


def step_tables(problem: RoutingProblem) -> list[StepTable]:
    """Each policy's chain and model parameters per (step, category), for the walk."""
    mt, tt, ch = problem.models, problem.tasks, problem.chains
    if ch.shape[2] != 1:
        raise NotImplementedError("lanes are not simulated yet")
    model = np.moveaxis(ch.model[:, :, 0, :], 1, 2)  # (P, S, C)
    valid = model >= 0
    m = np.where(valid, model, 0)
    c = np.arange(model.shape[2])[None, None, :]
    gated = np.moveaxis(ch.gated[:, :, 0, :], 1, 2) & valid
    step = lambda a: np.moveaxis(a[:, :, 0, :], 1, 2)
    g = lambda a, fill=0.0: np.where(valid, a[m], fill)
    cat = lambda a: np.broadcast_to(a[c], model.shape)
    cols = {
        "model": model,
        "fail": g(mt.fail),
        "retries": step(ch.retries),
        "timeout_share": g(mt.timeout_share),
        "timeout_s": g(mt.timeout_s, np.inf),
        "error_latency_s": g(mt.error_latency_s),
        "price_in": g(mt.price_in),
        "price_in_eff": np.where(
            valid, mt.price_in[m] + tt.cached_share[c] * (mt.price_cache[m] - mt.price_in[m]), 0.0
        ),
        "price_out": np.where(valid, mt.price_out[m] * mt.output_ratio[m], 0.0),
        "ratio": g(mt.output_ratio),
        "ttft_mu": g(mt.ttft_mu),
        "ttft_sigma": g(mt.ttft_sigma),
        "tpot_mu": g(mt.tpot_mu, -np.inf),
        "tpot_sigma": g(mt.tpot_sigma),
        "q": np.where(valid, np.nan_to_num(tt.pass_rate[c, m]), 0.0),
        "gated": gated,
        "catch": cat(tt.catch),
        "false_reject": cat(tt.false_reject),
        "gate_cost_call": np.where(gated, tt.gate_cost_call[c], 0.0),
        "gate_cost_token": np.where(gated, tt.gate_cost_token[c], 0.0),
        "gate_latency_s": np.where(gated, tt.gate_latency_s[c], 0.0),
        "on_reject": step(ch.on_reject),
        "on_failure": step(ch.on_failure),
    }
    P = model.shape[0]
    return [StepTable(**{k: np.ascontiguousarray(v[p]) for k, v in cols.items()}) for p in range(P)]


# ---------------------------------------------------------------------------------------------------------
# One chunk


@dataclass
class _Partial:
    """One chunk's sums, indexed ``[policy, category(, model)]``; added into the total in chunk order."""

    n: np.ndarray  # (C,)
    s: dict[str, np.ndarray]  # (P, C) each
    tokens: np.ndarray  # (P, C, M)
    answered: np.ndarray  # (P, C, M + 1): column M is human review
    calls: np.ndarray  # (P, C, M)
    successes: np.ndarray  # (M,)
    slow: np.ndarray  # (M,)

    def add(self, other: _Partial) -> None:
        self.n += other.n
        for k, v in other.s.items():
            self.s[k] += v
        self.tokens += other.tokens
        self.answered += other.answered
        self.calls += other.calls
        self.successes += other.successes
        self.slow += other.slow


_SUMS = ("cost", "cost2", "lat", "lat2", "gate")
_COUNTS = ("good", "bad", "failed", "human")


def _run_sums(values: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """Sums of ``values`` (``(..., n)``, sorted by category) over each category's run of ``counts`` rows."""
    out = np.zeros((*values.shape[:-1], counts.size))
    present = np.flatnonzero(counts)
    if present.size:
        starts = (np.cumsum(counts) - counts)[present]
        out[..., present] = np.add.reduceat(values, starts, axis=-1)
    return out


class _Chunk:
    """Simulate one chunk: draw the requests and their random numbers, then walk them through every policy."""

    def __init__(self, problem: RoutingProblem, bins: int, hist: np.ndarray, lock: threading.Lock, engine: str):
        self.problem, self.bins, self.hist, self.lock = problem, bins, hist, lock
        self.tables = step_tables(problem)
        self.walk = walk_numba if engine == "numba" else walk_numpy
        self.packed = [pack(T) for T in self.tables] if engine == "numba" else []
        oc = problem.outcomes
        self.draw_states = bool((oc.kind == TABLE).any())
        self.draw_latent = bool((oc.kind == LATENT).any())
        self.lognormal_tpot = bool((problem.models.tpot_sigma > 0).any())
        self.steps = (problem.chains.model[:, :, 0, :] >= 0).sum(-1).max(0)  # (C,) longest chain per category
        if self.draw_states:  # cumulative state weights offset by category: searchsorted(c + u) picks a state
            cum = np.cumsum(oc.weight)
            before = np.repeat(cum[oc.start] - oc.weight[oc.start], oc.count)
            self.cum_states = oc.cat + (cum - before)
            self.cum_states[oc.start + oc.count - 1] = oc.cat[oc.start + oc.count - 1] + 1.0

    def __call__(self, rng: np.random.Generator, n: int, ws: Workspace) -> _Partial:
        """Draws, in this order: category counts; tokens ``x``, ``y``; outcome states (if any table);
        latent difficulty (if any); then per chain step ``s`` below the longest chain present: failure
        uniform, answer uniform, TTFT normal (and TPOT normal if any model's TPOT is lognormal)."""
        pr, tt, oc, mt = self.problem, self.problem.tasks, self.problem.outcomes, self.problem.models
        P, C, _, _ = pr.chains.shape
        M = len(mt.names)
        counts = rng.multinomial(n, tt.share / tt.share.sum())
        rep = lambda a: np.repeat(a, counts)
        cat = rep(np.arange(C))
        x, y = ws.get("x", (n,)), ws.get("y", (n,))
        for v, mu, sigma in ((x, tt.x_mu, tt.x_sigma), (y, tt.y_mu, tt.y_sigma)):
            rng.standard_normal(out=v)
            v *= rep(sigma)
            v += rep(mu)
            np.exp(v, out=v)
        state = None
        if self.draw_states:
            last = oc.start + oc.count - 1
            state = np.minimum(np.searchsorted(self.cum_states, cat + rng.random(n), side="right"), rep(last))
        z = rng.standard_normal(n) if self.draw_latent else None
        S = int(self.steps[counts > 0].max())
        u_fail, u_good, n_ttft = ws.get("u_fail", (S, n)), ws.get("u_good", (S, n)), ws.get("n_ttft", (S, n))
        n_tpot = ws.get("n_tpot", (S, n)) if self.lognormal_tpot else None
        for s in range(S):
            rng.random(out=u_fail[s])
            rng.random(out=u_good[s])
            rng.standard_normal(out=n_ttft[s])
            if n_tpot is not None:
                rng.standard_normal(out=n_tpot[s])

        part = _Partial(
            n=counts.astype(float),
            s={k: np.zeros((P, C)) for k in (*_SUMS, *_COUNTS, "esc", "fb")},
            tokens=np.zeros((P, C, M)),
            answered=np.zeros((P, C, M + 1)),
            calls=np.zeros((P, C, M)),
            successes=np.zeros(M),
            slow=np.zeros(M),
        )
        ch = pr.chains
        alat = ws.get("alat", (S, n))
        scratch = ws.get("scratch", (n,))
        for p, T in enumerate(self.tables):
            for s in range(S):
                np.multiply(rep(T.ttft_sigma[s]), n_ttft[s], out=alat[s])
                alat[s] += rep(T.ttft_mu[s])
                np.exp(alat[s], out=alat[s])
                np.multiply(y, rep(T.ratio[s]), out=scratch)
                if n_tpot is not None:
                    scratch *= np.exp(rep(T.tpot_mu[s]) + rep(T.tpot_sigma[s]) * n_tpot[s])
                else:
                    scratch *= rep(np.exp(T.tpot_mu[s]))
                alat[s] += scratch
            q = self._q(T, cat, state, z, S, ws) if (state is not None or z is not None) else None
            w = self.walk(
                T, cat, x, y, u_fail, u_good, alat, q,
                float(ch.backoff_s[p]), float(ch.human_cost[p]), float(ch.human_latency_s[p]),
                pr.bill_failed_input, M, ws, *self.packed[p:p + 1],
            )  # fmt: skip
            self._collect(p, w, counts, T, part)
        return part

    def _q(
        self, T: StepTable, cat: np.ndarray, state: np.ndarray | None, z: np.ndarray | None, S: int, ws: Workspace
    ) -> np.ndarray:
        """``(S, n)``: each request's pass probability at each step, given its outcome state."""
        oc = self.problem.outcomes
        M = oc.q.shape[-1]
        q = ws.get("q", (S, cat.size))
        for s in range(S):
            mdl = np.maximum(T.model[s][cat], 0)
            q[s] = T.q[s][cat]
            if state is not None:
                table = np.flatnonzero(oc.kind[cat] == TABLE)
                q[s, table] = oc.q.reshape(-1)[state[table] * M + mdl[table]]
            if z is not None:
                from scipy.special import ndtr

                li = np.flatnonzero(oc.kind[cat] == LATENT)
                c, rho = cat[li], oc.rho[cat[li]]
                q[s, li] = ndtr((oc.a[c, mdl[li]] - np.sqrt(rho) * z[li]) / np.sqrt(1 - rho))
        return q

    def _collect(self, p: int, w: Walked, counts: np.ndarray, T: StepTable, part: _Partial) -> None:
        """Per-category sums of one policy's walk (rows are sorted by category), and its latency histogram."""
        for key, v in (("cost", w.cost), ("lat", w.lat), ("gate", w.gate)):
            part.s[key][p] = _run_sums(v, counts)
        part.s["cost2"][p] = _run_sums(w.cost * w.cost, counts)
        part.s["lat2"][p] = _run_sums(w.lat * w.lat, counts)
        for key, code in zip(_COUNTS, (GOOD, BAD, FAILED, HUMAN_REVIEW), strict=True):
            part.s[key][p] = w.outcomes[:, code]
        part.s["esc"][p] = w.escalated
        part.s["fb"][p] = w.fell_back
        part.answered[p] = w.answered
        S = w.tokens.shape[0]
        valid = T.model[:S] >= 0
        sidx, cidx = np.nonzero(valid)
        mdl = T.model[:S][valid]
        spend = np.stack([_run_sums(w.tokens[s], counts) for s in range(S)])
        np.add.at(part.tokens[p], (cidx, mdl), spend[sidx, cidx])
        np.add.at(part.calls[p], (cidx, mdl), w.tries[:S][valid])
        np.add.at(part.successes, mdl, w.successes[:S][valid])
        np.add.at(part.slow, mdl, w.slow[:S][valid])
        key = np.repeat(np.arange(counts.size) * (DECADES * self.bins), counts) + _bin(w.lat, self.bins)
        with self.lock:
            np.add.at(self.hist[p].reshape(-1), key, np.int32(1))


# ---------------------------------------------------------------------------------------------------------
# The run


def default_threads() -> int:
    """Worker threads for Monte Carlo: the CPUs this process may use (``ROUTECALC_THREADS`` overrides)."""
    env = os.environ.get("ROUTECALC_THREADS")
    if env and env.isdigit() and int(env) > 0:
        return int(env)
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not Linux
        return max(1, os.cpu_count() or 1)


def _child(rng: np.random.Generator, k: int) -> np.random.Generator:
    """The child ``rng.spawn`` makes with spawn index ``k``, built on its own (memory flat in N).

    ``rng.spawn(n)`` gives its ``i``-th child ``SeedSequence(entropy, spawn_key=(*spawn_key, done + i))``, where
    ``done`` counts the children spawned before.
    """
    ss = rng.bit_generator.seed_seq
    child = np.random.SeedSequence(ss.entropy, spawn_key=(*ss.spawn_key, k), pool_size=ss.pool_size)
    return np.random.Generator(type(rng.bit_generator)(child))


def _ordered(fn: Callable[[int], _Partial], n: int, threads: int) -> Iterator[_Partial]:
    """``fn(0), fn(1), ...`` in order, computed by ``threads`` workers at most ``2 * threads`` chunks ahead."""
    if threads <= 1 or n <= 1:
        for i in range(n):
            yield fn(i)
        return
    with ThreadPoolExecutor(max_workers=threads, thread_name_prefix="routecalc-mc") as pool:
        pending: deque = deque()
        nxt = 0
        while nxt < n or pending:
            while nxt < n and len(pending) < 2 * threads:
                pending.append(pool.submit(fn, nxt))
                nxt += 1
            yield pending.popleft().result()


def simulate(
    problem: RoutingProblem,
    samples: int,
    rng: np.random.Generator,
    threads: int | None = None,
    engine: str = "auto",
) -> MonteCarlo:
    """Simulate ``samples`` requests through every policy (chunked; see module docstring).

    ``rng`` is only used to spawn one child generator per chunk, so ``default_rng(seed)`` gives the same
    numbers on any machine; ``threads`` (default: every CPU available) and ``engine`` (``numpy``, ``numba``, or
    ``auto``: numba when installed) change the speed, never the result.
    Memory: ``O(CHUNK)`` per thread plus the histograms, whatever ``samples`` is.
    """
    if samples <= 0:
        raise ValueError("samples must be positive")
    if samples > MAX_SAMPLES:
        raise ValueError(f"samples must be at most {MAX_SAMPLES:,} (histogram counts are 32-bit)")
    P, C, _, _ = problem.chains.shape
    M = len(problem.models.names)
    bins = bins_per_decade(P, C)
    hist = np.zeros((P, C, DECADES * bins), dtype=np.int32)
    if engine == "auto":  # numba costs ~0.3 s to import and load: worth it only for big runs
        engine = "numba" if samples * P >= AUTO_NUMBA_WORK and numba_available() else "numpy"
    elif engine not in ("numpy", "numba"):
        raise ValueError(f"engine must be auto, numpy or numba, not {engine!r}")
    chunk = _Chunk(problem, bins, hist, threading.Lock(), engine)
    n_chunks = -(-samples // CHUNK)
    ss = rng.bit_generator.seed_seq
    if not isinstance(ss, np.random.SeedSequence):
        raise ValueError("simulate needs a generator seeded through a SeedSequence (numpy.random.default_rng)")
    done = ss.n_children_spawned
    local = threading.local()

    def run(i: int) -> _Partial:
        if not hasattr(local, "ws"):
            local.ws = Workspace()
        return chunk(_child(rng, done + i), min(CHUNK, samples - i * CHUNK), local.ws)

    total: _Partial | None = None
    for part in _ordered(run, n_chunks, threads or default_threads()):
        if total is None:
            total = part
        else:
            total.add(part)
    assert total is not None
    ss.spawn(n_chunks)  # leave the parent as rng.spawn(n_chunks) would: a second run draws new numbers
    return _finish(total, samples, hist, bins, M, problem.chains.human_cost)


def _finish(acc: _Partial, samples: int, hist: np.ndarray, bins: int, M: int, human_cost: np.ndarray) -> MonteCarlo:
    with np.errstate(invalid="ignore", divide="ignore"):
        n = np.where(acc.n > 0, acc.n, np.nan)
        mean = {k: v / n for k, v in acc.s.items()}
        per_model = lambda a: (a / n[None, :, None])[..., :M]
        metrics = Metrics(
            token_cost=per_model(acc.tokens),
            gate_cost=mean["gate"],
            human_cost=mean["human"] * human_cost[:, None],
            quality=mean["good"] + mean["human"],
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
        hist=hist,
        model_successes=acc.successes,
        model_slow=acc.slow,
        bins_per_decade=bins,
    )
