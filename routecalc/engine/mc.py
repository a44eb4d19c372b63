"""Monte Carlo engine: simulate N requests through every policy's chains, vectorized, chunked, multi-threaded.

A chunk of ``CHUNK`` requests draws its category counts (multinomial), then per request its tokens ``x, y`` and
its outcome state (:mod:`routecalc.outcomes`: a pattern of an outcome table, or a latent difficulty ``Z``), once;
every policy then sees the same requests (common random numbers, so differences between policies are sharper
than each estimate). Per chain step one uniform decides, in turn, the failed tries (geometric, capped at
``1 + r``) and their error types, then the answer (good with ``q`` given the request's state) and its gate
(:mod:`routecalc.engine.walk`). Requests of every category are simulated together, with per-request parameters
gathered from small per-(policy, step) tables, so the work per chunk does not grow with the number of categories.
Policies that route a category alike share its walk (:mod:`routecalc.engine.distinct`): with common random numbers
their results are the same bits, so each distinct (category, chain) is walked once. A chunk's draws, walks and sums
are :mod:`routecalc.engine.chunk`; the per-policy tables it walks, :mod:`routecalc.engine.steps`.

Reproducible: chunk ``i`` draws from an SFC64 generator seeded with the ``i``-th child of ``rng``'s
``SeedSequence`` (the child ``rng.spawn`` would make), and chunk results are added in chunk order, so the same seed
gives the same bytes on any machine, with any number of threads (which share out whole chunks, or, when there are
few, each chunk's policies) and with either walk. Memory stays flat in N: per chunk ``O(CHUNK)`` arrays; latency
percentiles come from log-spaced histograms whose resolution (bins per decade) is chosen from the worksheet's size
so they fit ``HIST_BUDGET_BYTES``.
"""

from __future__ import annotations

import os
import threading
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace

import numpy as np

from routecalc import limits
from routecalc.chains import RoutingProblem
from routecalc.engine.chunk import CHUNK, Chunk, Partial, Workspaces, chunk_generator
from routecalc.engine.compiled import numba_available
from routecalc.engine.distinct import distinct_chains
from routecalc.engine.ev import Metrics
from routecalc.engine.histogram import (
    BINS_PER_DECADE,
    DECADES,
    bins_per_decade,
    hist_quantiles,
    histogram_edges,
    relative_error,
)

MAX_SAMPLES = limits.MAX_SAMPLES  # histogram counts are int32
POLICY_THREADS_WORK = 2**20  # request-policies per chunk from which few chunks are shared out by policy
AUTO_NUMBA_WORK = 20_000_000  # request-policies from which engine="auto" uses the compiled walk (if installed);
# below, loading it (numba ~0.25 s, the cached kernel ~0.5 s, ~100 MB of RSS for LLVM) costs about what it saves


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
    step_hist: np.ndarray | None = None  # (len(step_policies), C, S, B) latency of requests served at each step
    step_policies: tuple[int, ...] = ()  # policies with per-step latency targets (rows of step_hist)

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


def _ordered(fn: Callable[[int], Partial], n: int, threads: int) -> Iterator[Partial]:
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
    progress: Callable[[int, int], None] | None = None,
) -> MonteCarlo:
    """Simulate ``samples`` requests through every policy (chunked; see module docstring).

    ``progress(done, samples)``, if given, is called after each chunk is added (requests simulated so far, in
    chunk order): a caller's progress bar; it never changes the numbers.

    ``rng`` is only used to spawn one child generator per chunk, so ``default_rng(seed)`` gives the same
    numbers on any machine; ``threads`` (default: every CPU available) and ``engine`` (``numpy``, ``numba``, or
    ``auto``: numba when installed) change the speed, never the result.
    Memory: ``O(CHUNK)`` per thread plus the histograms, whatever ``samples`` is.
    """
    if samples <= 0:
        raise ValueError("samples must be positive")
    if samples > MAX_SAMPLES:
        raise ValueError(f"samples must be at most {MAX_SAMPLES:,} (histogram counts are 32-bit)")
    P, C, _, S = problem.chains.shape
    M = len(problem.models.names)
    bins = bins_per_decade(P, C)
    hist = np.zeros((P, C, DECADES * bins), dtype=np.int32)
    has_targets = np.isfinite(problem.chains.latency_target_s).any(axis=(1, 2, 3))
    targeted = tuple(int(p) for p in np.flatnonzero(has_targets))
    # policies that route a category alike share its walk (engine.distinct): G walk policies instead of P
    distinct = distinct_chains(problem.chains, has_targets)
    walked = problem if distinct is None else problem.with_chains(distinct.chains)
    walk_targeted = targeted if distinct is None else distinct.targeted
    G = walked.chains.shape[0]
    if engine == "auto":  # numba costs ~0.8 s to import and load: worth it only for big runs
        engine = "numba" if samples * G >= AUTO_NUMBA_WORK and numba_available() else "numpy"
    elif engine not in ("numpy", "numba"):
        raise ValueError(f"engine must be auto, numpy or numba, not {engine!r}")
    chunk = Chunk(walked, bins, hist[:G], threading.Lock(), engine)  # the walk policies' histograms come first
    chunk.weights = None if distinct is None else distinct.weights()
    if walk_targeted:
        chunk.step_rows = {p: i for i, p in enumerate(walk_targeted)}
        chunk.step_hist = np.zeros((len(walk_targeted), C, S, DECADES * bins), dtype=np.int32)
    n_chunks = -(-samples // CHUNK)
    ss = rng.bit_generator.seed_seq
    if not isinstance(ss, np.random.SeedSequence):
        raise ValueError("simulate needs a generator seeded through a SeedSequence (numpy.random.default_rng)")
    done = ss.n_children_spawned
    spaces = Workspaces()
    threads = threads or default_threads()

    def run(i: int, pool: ThreadPoolExecutor | None = None) -> Partial:
        return chunk(chunk_generator(rng, done + i), min(CHUNK, samples - i * CHUNK), spaces.get(), pool, spaces)

    def parts() -> Iterator[Partial]:
        if threads > 1 and n_chunks <= 2 * threads and min(samples, CHUNK) * G >= POLICY_THREADS_WORK:
            # few chunks but much work in each: the threads share each chunk's policies
            with ThreadPoolExecutor(max_workers=threads, thread_name_prefix="routecalc-mc") as pool:
                for i in range(n_chunks):
                    yield run(i, pool)
        else:
            yield from _ordered(run, n_chunks, threads)

    total: Partial | None = None
    for i, part in enumerate(parts()):
        if total is None:
            total = part
        else:
            total.add(part)
        if progress is not None:
            progress(min((i + 1) * CHUNK, samples), samples)
    assert total is not None
    ss.spawn(n_chunks)  # leave the parent as rng.spawn(n_chunks) would: a second run draws new numbers
    for ws in spaces.made:  # the compiled walk's per-thread histograms (integer counts: any order)
        counted = ws.accumulated("hist")
        if counted is not None:
            hist[:G] += counted.reshape(hist[:G].shape)
    step_hist = chunk.step_hist
    if distinct is not None:  # each policy's results from the walk policies that stand for it
        total = total.take(distinct)
        distinct.take_inplace(hist)
        if step_hist is not None:
            row = np.full(G, -1, dtype=np.int64)
            row[list(walk_targeted)] = np.arange(len(walk_targeted))
            step_hist = step_hist[row[distinct.owner[list(targeted)]], np.arange(C)]
    mc = _finish(total, samples, hist, bins, M, problem.chains.human_cost)
    return replace(mc, step_hist=step_hist, step_policies=targeted) if targeted else mc


def _finish(acc: Partial, samples: int, hist: np.ndarray, bins: int, M: int, human_cost: np.ndarray) -> MonteCarlo:
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
            overflow=mean["ovf"],
            router_cost=mean["router"],
            served=acc.served / n[None, :, None],
            late=mean["late"],
            deadline_waste=mean["waste"],
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
        model_successes=acc.successes.sum(axis=0),
        model_slow=acc.slow.sum(axis=0),
        bins_per_decade=bins,
    )
