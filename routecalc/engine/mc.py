"""Monte Carlo engine: simulate N requests through every policy's chains, vectorized, chunked, multi-threaded.

A chunk of ``CHUNK`` requests draws its category counts (multinomial), then per request its tokens ``x, y`` and
its outcome state (:mod:`routecalc.outcomes`: a pattern of an outcome table, or a latent difficulty ``Z``), once;
every policy then sees the same requests (common random numbers, so differences between policies are sharper
than each estimate). Per chain step one uniform decides, in turn, the failed tries (geometric, capped at
``1 + r``) and their error types, then the answer (good with ``q`` given the request's state) and its gate
(:mod:`routecalc.engine.walk`). Requests of every category are simulated together, with per-request parameters
gathered from small per-(policy, step) tables, so the work per chunk does not grow with the number of categories.
Policies that route a category alike share its walk (:mod:`routecalc.engine.distinct`): with common random numbers
their results are the same bits, so each distinct (category, chain) is walked once.

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
from routecalc.chains import ModelTable, RoutingProblem
from routecalc.engine.billing import batch_shares, token_prices
from routecalc.engine.compiled import SUMS, numba_available, walk_numba
from routecalc.engine.distinct import Distinct, distinct_chains
from routecalc.engine.ev import Metrics
from routecalc.engine.histogram import (
    BINS_PER_DECADE,
    DECADES,
    bins_per_decade,
    hist_quantiles,
    histogram_edges,
    latency_bins,
    relative_error,
)
from routecalc.engine.walk import (
    BAD,
    DEADLINE_BILLING,
    FAILED,
    GOOD,
    HUMAN_REVIEW,
    Draws,
    Settings,
    StepTable,
    Walked,
    Workspace,
    pack,
    walk_numpy,
)
from routecalc.outcomes import LATENT

CHUNK = 2**16  # requests per chunk (and per child generator): part of the reproducibility contract
MAX_SAMPLES = limits.MAX_SAMPLES  # histogram counts are int32
NEVER_S = 1e300  # a tool's timeout: it never times out
THREAD_HIST_BYTES = 16 * 2**20  # histograms up to this size get a copy per thread (added up at the end)
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


def walk_sums(w: Walked, cat: np.ndarray, key: np.ndarray, C: int, hedged: bool) -> tuple[np.ndarray, np.ndarray]:
    """What the compiled walk sums as it walks, from the numpy walk's per-request arrays: per category ``(C, 6)``
    the sums of cost, cost², latency, latency², gate spend and deadline waste (``compiled.SUMS``), and the token
    spend per (leg, step, key) ``(2, S, K)``. ``np.bincount`` adds in row order, as the kernel does, so the two
    walks give the same bits."""
    cols = {"cost": w.cost, "cost2": w.cost * w.cost, "lat": w.lat, "lat2": w.lat * w.lat, "gate": w.gate}
    cols["waste"] = w.waste
    sums = np.zeros((C, len(SUMS)))
    for j, name in enumerate(SUMS):
        if name in ("cost", "cost2", "lat", "lat2") or cols[name].any():  # all-zero columns sum to zeros
            sums[:, j] = np.bincount(cat, weights=cols[name], minlength=C)
    S, K = w.tries.shape
    tok = np.zeros((2, S, K))
    for leg, spend, tries in ((0, w.tokens, w.tries), (1, w.tokens_b, w.tries_b))[: 2 if hedged else 1]:
        for s in range(S):
            if tries[s].any():  # spend comes from calls only
                tok[leg, s] = np.bincount(key, weights=spend[s], minlength=K)
    return sums, tok


# ---------------------------------------------------------------------------------------------------------
# Per-(policy, step, category) parameters


def step_tables(problem: RoutingProblem) -> list[StepTable]:
    """Each policy's chain and model parameters per (step, key = category x L + lane), for the walk."""
    mt, tt, ch, sg = problem.models, problem.tasks, problem.chains, problem.segments
    P, C, L, S = ch.shape
    model = ch.model.transpose(0, 3, 1, 2).reshape(P, S, C * L)  # (P, S, K)
    valid = model >= 0
    m = np.where(valid, model, 0)
    c = np.repeat(np.arange(C), L)[None, None, :]
    step = lambda a: a.transpose(0, 3, 1, 2).reshape(P, S, C * L)
    tool = step(ch.tool) & valid
    gated = (step(ch.gated) & valid) | tool
    validator = gated & ~tool
    g = lambda a, fill=0.0: np.where(valid, a[m], fill)
    err = mt.errors[m]  # (P, S, K, 4)
    cum = np.cumsum(err, axis=-1)
    on_failure = ch.on_failure.transpose(0, 3, 1, 2, 4).reshape(P, S, C * L, -1)
    b_model = step(ch.hedge)  # a hedged step's second model ("leg b")
    b_valid = b_model >= 0
    mb = np.where(b_valid, b_model, 0)
    gb = lambda a, fill=0.0: np.where(b_valid, a[mb], fill)
    batch = batch_shares(tt, step(ch.batch_share), c)

    def moded(mm: np.ndarray, ok: np.ndarray) -> dict[str, np.ndarray]:
        """Per-token prices ``(4, P, S, K)`` by billing mode: standard, long-context, batch, batch long-context."""
        modes = [token_prices(mt, tt, mm, c, long, batched) for batched in (0.0, 1.0) for long in (False, True)]
        return {
            key: np.where(ok, np.stack([np.broadcast_to(getattr(pr, attr), mm.shape) for pr in modes]), 0.0)
            for key, attr in (("price_in", "fail_in"), ("price_in_eff", "answer_in"), ("price_out", "answer_out"))
        }

    b = {
        "fail": gb(mt.fail),
        **moded(mb, b_valid),
        "long_above": np.where(b_valid, sg.long_above[c, mb], np.inf),
        "call_cost": gb(mt.call_cost),
        "q": np.where(b_valid, np.nan_to_num(tt.pass_rate[c, mb]), 0.0),
        "timeout_s": np.minimum(gb(mt.timeout_s, np.inf), NEVER_S),
        "error_latency_s": gb(mt.error_latency_s),
        "window": np.where(b_valid, sg.window[c, mb], np.inf),
        "cum0": np.where(b_valid, mt.errors[mb, 0], 0.0),
    }
    cols = {
        "fail": g(mt.fail),
        **moded(m, valid),
        "long_above": np.where(valid, sg.long_above[c, m], np.inf),
        "batch_share": np.where(valid, batch, 0.0),
        "ratio": g(mt.output_ratio),
        "call_cost": g(mt.call_cost),
        "q": np.where(valid, np.nan_to_num(tt.pass_rate[c, m]), 0.0),
        "catch": np.where(tool, tt.tool_catch[c, m], tt.catch[c]),
        "false_reject": np.where(tool, 0.0, np.broadcast_to(tt.false_reject[c], model.shape)),
        "gate_cost_call": np.where(validator, tt.gate_cost_call[c], 0.0),
        "gate_cost_token": np.where(validator, tt.gate_cost_token[c], 0.0),
        "gate_latency_s": np.where(validator, tt.gate_latency_s[c], 0.0),
        "timeout_s": np.minimum(g(mt.timeout_s, np.inf), NEVER_S),  # finite: 0 timeouts x "never" is 0 s
        "error_latency_s": g(mt.error_latency_s),
        "window": np.where(valid, sg.window[c, m], np.inf),
        "cum0": cum[..., 0],
        "cum1": cum[..., 1],
        "cum2": cum[..., 2],
        "deadline_s": step(ch.deadline_s),
        **{f"b_{k}": v for k, v in b.items()},
        "model": model,
        "retries": step(ch.retries),
        "gated": gated.astype(np.int64),
        "on_reject": step(ch.on_reject),
        "on_overflow": step(ch.on_overflow),
        "on_timeout": on_failure[..., 0],
        "on_5xx": on_failure[..., 1],
        "on_429": on_failure[..., 2],
        "on_refusal": on_failure[..., 3],
        "on_deadline": step(ch.on_deadline),
        "b_model": b_model,
        "hedge_best": step(ch.hedge_best).astype(np.int64),
        "cancel_loser": step(ch.cancel_loser).astype(np.int64),
        "ttft_mu": g(mt.ttft_mu),
        "ttft_sigma": g(mt.ttft_sigma),
        "tpot_mu": g(mt.tpot_mu, -np.inf),
        "tpot_sigma": g(mt.tpot_sigma),
        "b_ttft_mu": gb(mt.ttft_mu),
        "b_ttft_sigma": gb(mt.ttft_sigma),
        "b_tpot_mu": gb(mt.tpot_mu, -np.inf),
        "b_tpot_sigma": gb(mt.tpot_sigma),
        "b_ratio": gb(mt.output_ratio),
    }
    pick = lambda v, p: v[:, p] if v.ndim == 4 else v[p]  # (4, P, S, K) by billing mode, or (P, S, K)
    return [StepTable(**{k: np.ascontiguousarray(pick(v, p)) for k, v in cols.items()}) for p in range(P)]


# ---------------------------------------------------------------------------------------------------------
# One chunk


@dataclass
class _Partial:
    """One chunk's sums, indexed ``[policy, category(, model or step)]``; added into the total in chunk order."""

    n: np.ndarray  # (C,)
    s: dict[str, np.ndarray]  # (P, C) each
    tokens: np.ndarray  # (P, C, M)
    answered: np.ndarray  # (P, C, M + 1): column M is human review
    calls: np.ndarray  # (P, C, M)
    served: np.ndarray  # (P, C, S)
    successes: np.ndarray  # (P, C, M) answered tries
    slow: np.ndarray  # (P, C, M) answered tries slower than the model's timeout

    def add(self, other: _Partial) -> None:
        self.n += other.n
        for k, v in other.s.items():
            self.s[k] += v
        for name in _PER_POLICY:
            getattr(self, name)[...] += getattr(other, name)

    def take(self, distinct: Distinct) -> _Partial:
        """Each policy's sums from the walk policies that stand for it (:mod:`routecalc.engine.distinct`)."""
        per_policy = {name: distinct.take(getattr(self, name)) for name in _PER_POLICY}
        return _Partial(n=self.n, s={k: distinct.take(v) for k, v in self.s.items()}, **per_policy)


_PER_POLICY = ("tokens", "answered", "calls", "served", "successes", "slow")  # _Partial's (P, C, ...) arrays


_SUMS = ("cost", "cost2", "lat", "lat2", "gate", "router")
_COUNTS = ("good", "bad", "failed", "human")


def _pick(cum: np.ndarray, start: np.ndarray, count: np.ndarray, cat: np.ndarray, u: np.ndarray) -> np.ndarray:
    """Per request, an index into a per-category list of probabilities (flattened, cumulative within each
    category as ``cum``, categories from ``start`` for ``count`` entries), chosen by the uniform ``u``."""
    offset = cat + u  # category c's cumulative weights live in [c, c + 1]
    pick = np.searchsorted(cum, offset, side="right")
    return np.clip(pick, start[cat], start[cat] + count[cat] - 1)


def _offset_cumsum(weights: np.ndarray, start: np.ndarray, count: np.ndarray) -> np.ndarray:
    """Cumulative weights within each category's run, shifted by the category index (last entry exactly c+1)."""
    owner = np.repeat(np.arange(count.size), count)
    cum = np.cumsum(weights)
    before = np.repeat(cum[start] - weights[start], count)
    out = owner + (cum - before)
    out[start + count - 1] = np.arange(count.size) + 1.0
    return out


LATENCY_CACHE_BYTES = 64 * 2**20  # per chunk: answer latencies per (step, model) kept for the other policies


class _Latency:
    """A chunk's answer latencies per (step, catalog entry), computed once and shared by every policy using it.

    ``row(s, m)[i] = exp(ttft_mu + ttft_sigma n_i) + y_i ratio exp(tpot_mu + tpot_sigma n'_i)`` for entry ``m``
    (``y_i (ratio exp(tpot_mu))`` when no model's TPOT is lognormal)
    (``m = -1``: a padding step, never reached). The same operations in the same order as one policy at a time,
    so the values do not depend on which policies share them. Rows are kept up to ``LATENCY_CACHE_BYTES``.
    """

    def __init__(self, mt: ModelTable, y: np.ndarray, n_ttft: np.ndarray, n_tpot: np.ndarray | None) -> None:
        self.mt, self.y, self.n_ttft, self.n_tpot = mt, y, n_ttft, n_tpot
        self.rows: dict[tuple[int, int], np.ndarray] = {}
        self.decode: dict[int, np.ndarray] = {}  # y ratio exp(tpot_mu) per entry, when no TPOT is lognormal

    def row(self, s: int, m: int) -> np.ndarray:
        hit = self.rows.get((s, m))
        if hit is not None:
            return hit
        out = self.compute(s, m, np.empty_like(self.y))
        if self._room(out.nbytes):
            self.rows[(s, m)] = out
        return out

    def compute(self, s: int, m: int, out: np.ndarray) -> np.ndarray:
        """Entry ``m``'s answer latencies at step ``s``, written into ``out`` (``(n,)``)."""
        mt = self.mt
        mu, sigma, t_mu, t_sigma, ratio = (
            (mt.ttft_mu[m], mt.ttft_sigma[m], mt.tpot_mu[m], mt.tpot_sigma[m], mt.output_ratio[m])
            if m >= 0
            else (0.0, 0.0, -np.inf, 0.0, 0.0)
        )
        np.multiply(self.n_ttft[s], sigma, out=out)
        out += mu
        np.exp(out, out=out)
        if self.n_tpot is not None:
            scratch = np.multiply(self.y, ratio)
            scratch *= np.exp(t_mu + t_sigma * self.n_tpot[s])
            out += scratch
        else:  # the same decode time at every step: y (ratio exp(tpot_mu)), once per entry
            decode = self.decode.get(m)
            if decode is None:
                decode = self.y * (ratio * np.exp(t_mu))
                if self._room(out.nbytes):
                    self.decode[m] = decode
            out += decode
        return out

    def _room(self, nbytes: int) -> bool:
        return (len(self.rows) + len(self.decode) + 1) * nbytes <= LATENCY_CACHE_BYTES

    def fill(self, model: np.ndarray, per: Callable[[np.ndarray], np.ndarray], out: np.ndarray) -> None:
        """``out[s]``: each request's answer latency at step ``s`` on ``model[s]`` (per key; ``per`` maps a
        per-key array to requests)."""
        for s in range(out.shape[0]):
            used = np.unique(model[s])
            if used.size == 1:
                out[s] = self.row(s, int(used[0]))
                continue
            m = per(model[s])
            for u in used:
                np.copyto(out[s], self.row(s, int(u)), where=m == u)


@dataclass
class Requests:
    """A chunk's requests (sorted by category) and their random numbers, ready for the walk."""

    cat: np.ndarray
    counts: np.ndarray  # (C,)
    x: np.ndarray
    y: np.ndarray
    state: np.ndarray
    z: np.ndarray | None
    segment: np.ndarray
    u_lane: np.ndarray | None
    n_router: np.ndarray | None
    u_batch: np.ndarray | None  # (n,) a request goes through the batch API at a step when below its batch share
    S: int
    steps: dict[str, np.ndarray]  # (S, n) each: u_fail, n_ttft[, n_tpot][, ..._b]


class _Chunk:
    """Simulate one chunk: draw the requests and their random numbers, then walk them through every policy."""

    def __init__(self, problem: RoutingProblem, bins: int, hist: np.ndarray, lock: threading.Lock, engine: str):
        self.problem, self.bins, self.hist, self.lock = problem, bins, hist, lock
        self.step_hist: np.ndarray | None = None  # set by simulate when some policy has per-step targets
        # the compiled walk counts latencies straight into per-thread histograms when they are small
        self.thread_hist = engine == "numba" and hist.nbytes <= THREAD_HIST_BYTES
        self.step_rows: dict[int, int] = {}
        self.tables = step_tables(problem)
        self.packed = [pack(T) for T in self.tables] if engine == "numba" else [None] * len(self.tables)
        oc, ch, sg = problem.outcomes, problem.chains, problem.segments
        P, C, L, _ = ch.shape
        self.draw_states = bool((oc.mc_count > 1).any())
        self.draw_latent = bool((oc.kind == LATENT).any())
        self.lognormal_tpot = bool((problem.models.tpot_sigma > 0).any())
        self.hedged = bool((ch.hedge >= 0).any())
        self.steps = (ch.model >= 0).sum(-1).max(axis=(0, 2))  # (C,) longest chain per category
        if self.draw_states:
            self.cum_states = _offset_cumsum(oc.mc_weight, oc.mc_start, oc.mc_count)
        self.draw_combos = bool((sg.n_combos > 1).any())
        if self.draw_combos:
            A = sg.combo_prob.shape[1]
            self.combo_cum = _offset_cumsum(sg.combo_prob.ravel(), np.arange(C) * A, np.full(C, A))
        self.n_cuts = np.isfinite(sg.edges).sum(1)
        # lanes: per policy, cumulative lane weights per (category, tier, segment), if any policy has two
        self.lanes = L > 1
        if self.lanes:
            T, G = ch.lane_weight.shape[2:4]
            w = ch.lane_weight.reshape(P, C * T * G, L)
            self.lane_cum = np.cumsum(w, axis=-1)
            self.lane_cum[..., -1] = np.maximum(self.lane_cum[..., -1], 1.0)  # rounding: the last lane closes at 1
        self.router = bool(np.isfinite(ch.lane_latency_mu).any() or ch.lane_cost_call.any() or ch.lane_cost_token.any())
        self.router_normal = bool((ch.lane_latency_sigma > 0).any())
        self.batch = any(bool((T.batch_share > 0).any()) for T in self.tables)
        # the walks read answer latencies from one table of rows per (step, model), filled once per chunk
        self.row_pairs: list[tuple[int, int]] = []
        self.row_of: list[np.ndarray] = []
        if not self.hedged:
            Smax = ch.shape[3]
            used = np.zeros((Smax, len(problem.models.names)), dtype=bool)
            for T in self.tables:
                s_idx, k_idx = np.nonzero(T.model >= 0)
                used[s_idx, T.model[s_idx, k_idx]] = True
            self.row_pairs = [(int(s_), int(m)) for s_, m in zip(*np.nonzero(used), strict=True)]  # sorted by step
            slot = np.zeros(used.shape, dtype=np.int64)
            slot[used] = np.arange(len(self.row_pairs))
            self.row_of = [
                np.ascontiguousarray(slot[np.arange(Smax)[:, None], np.maximum(T.model, 0)]) for T in self.tables
            ]

    def __call__(
        self,
        rng: np.random.Generator,
        n: int,
        ws: Workspace,
        pool: ThreadPoolExecutor | None = None,
        spaces: _Workspaces | None = None,
    ) -> _Partial:
        """One chunk: draw ``n`` requests, walk them through every policy, sum per category. With a ``pool``
        (and ``spaces``, the workers' workspaces), the policies are walked in parallel: the same sums, since each
        policy's go to its own rows and the shared counts are integers added under the lock."""
        req = self.draw(rng, n, ws)
        P, C, _, _ = self.problem.chains.shape
        M = len(self.problem.models.names)
        part = _Partial(
            n=req.counts.astype(float),
            s={k: np.zeros((P, C)) for k in (*_SUMS, *_COUNTS, "esc", "fb", "ovf", "late", "waste")},
            tokens=np.zeros((P, C, M)),
            answered=np.zeros((P, C, M + 1)),
            calls=np.zeros((P, C, M)),
            served=np.zeros((P, C, self.problem.chains.shape[3])),
            successes=np.zeros((P, C, M)),
            slow=np.zeros((P, C, M)),
        )
        latency = self.latencies(req)
        table = self._row_table(req, ws, latency[0])

        def one(p: int, ws_p: Workspace) -> None:
            key, T, w, router = self._walk(p, req, ws_p, None, latency, table, True)
            self._collect(p, w, req.counts, key, T, part, router)

        if pool is None or spaces is None:
            for p in range(P):
                one(p, ws)
        else:
            for future in [pool.submit(lambda p=p: one(p, spaces.get())) for p in range(P)]:
                future.result()
        return part

    def draw(
        self,
        rng: np.random.Generator,
        n: int,
        ws: Workspace,
        cat: np.ndarray | None = None,
        x: np.ndarray | None = None,
        y: np.ndarray | None = None,
    ) -> Requests:
        """Draw a chunk's requests and their random numbers. Draws, in this order: category counts (unless
        ``cat`` is given: sorted); tokens ``x``, ``y`` (unless given); request states (if any table or tiers);
        latent difficulty (if any); attribute combinations (if rules test any); lane and router-latency
        uniform/normal (if any policy has lanes / a random classifier latency); the batch uniform (if any step
        sends a share of requests through a batch API); then per chain step ``s`` below
        the longest chain present: the step's uniform (tries, then answer and gate), TTFT normal (and TPOT normal if any
        model's TPOT is lognormal), and the same four for hedged steps' second models if any."""
        tt, oc, sg = self.problem.tasks, self.problem.outcomes, self.problem.segments
        C = self.problem.chains.shape[1]
        if cat is None:
            counts = rng.multinomial(n, tt.share / tt.share.sum())
            cat = np.repeat(np.arange(C), counts)
        else:
            counts = np.bincount(cat, minlength=C)
        rep = lambda a: np.repeat(a, counts)
        drawn = []
        for given, name, mu, sigma in ((x, "x", tt.x_mu, tt.x_sigma), (y, "y", tt.y_mu, tt.y_sigma)):
            v = ws.get(name, (n,))
            rng.standard_normal(out=v)
            if given is not None:
                v[:] = given
            else:
                v *= rep(sigma)
                v += rep(mu)
                np.exp(v, out=v)
            drawn.append(v)
        x, y = drawn
        state = oc.mc_start[cat]
        if self.draw_states:
            state = _pick(self.cum_states, oc.mc_start, oc.mc_count, cat, rng.random(n))
        z = rng.standard_normal(n) if self.draw_latent else None
        segment = np.zeros(n, dtype=np.int64)
        if self.n_cuts.any():  # the token interval: how many of the category's cuts lie below x
            segment = (x[:, None] > sg.edges[cat]).sum(1) * sg.n_combos[cat]
        if self.draw_combos:
            A = sg.combo_prob.shape[1]
            segment = segment + _pick(self.combo_cum, np.arange(C) * A, np.full(C, A), cat, rng.random(n)) - cat * A
        u_lane = rng.random(n) if self.lanes else None
        n_router = rng.standard_normal(n) if self.router_normal else None
        u_batch = rng.random(n) if self.batch else None
        S = int(self.steps[counts > 0].max())
        names = ["u_fail", "n_ttft"] + (["n_tpot"] if self.lognormal_tpot else [])
        names += [k + "_b" for k in names] if self.hedged else []
        steps = {k: ws.get(k, (S, n)) for k in names}
        for s in range(S):
            for k in names:
                (rng.random if k.startswith("u_") else rng.standard_normal)(out=steps[k][s])
        return Requests(cat, counts, x, y, state, z, segment, u_lane, n_router, u_batch, S, steps)

    def walks(
        self, req: Requests, ws: Workspace, outcome: np.ndarray | None = None, summed: bool = False
    ) -> Iterator[tuple]:
        """Walk the requests through each policy in turn: ``(policy, lane keys, step table, walk, router cost)``.

        ``outcome`` ``(n, M)`` (replay): a request's known pass (1) / fail (0) per catalog entry, -1 unknown;
        known outcomes replace the drawn ones. Answer latencies per (step, model) are computed once for the chunk
        and shared by the policies. ``summed``: only the sums of :meth:`_collect` are read, so the compiled walk
        may sum as it walks and skip the per-request arrays (not for classifier costs or per-step targets, which
        are added or binned per request).
        """
        latency = self.latencies(req)
        table = self._row_table(req, ws, latency[0])
        for p in range(len(self.tables)):
            yield p, *self._walk(p, req, ws, outcome, latency, table, summed)

    def _walk(
        self,
        p: int,
        req: Requests,
        ws: Workspace,
        outcome: np.ndarray | None,
        latency: tuple[_Latency, _Latency | None],
        table: np.ndarray | None,
        summed: bool,
    ) -> tuple[np.ndarray, StepTable, Walked, np.ndarray | None]:
        """Policy ``p``'s walk of the chunk (see :meth:`walks`): lane keys, step table, walk, router cost."""
        T = self.tables[p]
        key, draws, cfg = self.walk_inputs(p, req, ws, outcome, latency, table)
        if self.packed[p] is not None:
            per_request = not summed or self.router or p in self.step_rows
            counts = None
            if self.thread_hist and not per_request:  # counted straight into this thread's histograms
                P, C = self.hist.shape[:2]
                counts = ws.accumulator("hist", (P, C * self.hist.shape[2]), np.int32)[p]
            w = walk_numba(
                T, key, req.cat, req.x, req.y, draws, cfg, ws, self.packed[p], per_request=per_request,
                bins=0 if per_request else self.bins, counts=counts,
            )  # fmt: skip
        else:
            w = walk_numpy(T, key, req.cat, req.x, req.y, draws, cfg, ws)
        router = self._router(p, key, req.x, req.n_router, w) if self.router else None
        return key, T, w, router

    def _row_table(self, req: Requests, ws: Workspace, latency: _Latency) -> np.ndarray | None:
        """The answer latencies of every (step, model) any policy uses, ``(R, n)``, in the order of ``row_pairs``
        (None: no such table, or it would not fit ``LATENCY_CACHE_BYTES``)."""
        R = sum(1 for s, _ in self.row_pairs if s < req.S)
        n = req.cat.size
        if R == 0 or R * n * 8 > LATENCY_CACHE_BYTES:
            return None
        table = ws.get("alat_rows", (R, n))
        for r, (s, m) in enumerate(self.row_pairs[:R]):
            latency.compute(s, m, table[r])
        return table

    def latencies(self, req: Requests) -> tuple[_Latency, _Latency | None]:
        """The chunk's answer-latency caches (first models, hedged second models)."""
        st, mt = req.steps, self.problem.models
        first = _Latency(mt, req.y, st["n_ttft"], st.get("n_tpot"))
        second = _Latency(mt, req.y, st["n_ttft_b"], st.get("n_tpot_b")) if self.hedged else None
        return first, second

    def walk_inputs(
        self,
        p: int,
        req: Requests,
        ws: Workspace,
        outcome: np.ndarray | None = None,
        latency: tuple[_Latency, _Latency | None] | None = None,
        table: np.ndarray | None = None,
    ) -> tuple[np.ndarray, Draws, Settings]:
        """Policy ``p``'s lane keys for the requests, their walk draws (answer latency and, where outcomes are not
        independent, pass probabilities, in ``ws`` buffers reused by the next call) and the walk's settings.
        ``latency``: the chunk's caches from :meth:`latencies` (made here when not given); ``table``: the
        chunk's table of answer latencies (:meth:`_row_table`), read in place instead."""
        pr, mt, sg, oc = self.problem, self.problem.models, self.problem.segments, self.problem.outcomes
        ch = pr.chains
        _, C, L, _ = ch.shape
        M = len(mt.names)
        T = self.tables[p]
        cat, n, S, st = req.cat, req.cat.size, req.S, req.steps
        rep = lambda a: np.repeat(a, req.counts)
        alat = ws.get("alat", (S, n)) if table is None else table
        alat_b = ws.get("alat_b", (S, n)) if self.hedged else None
        first, second = latency if latency is not None else self.latencies(req)
        key = cat * L
        if self.lanes:
            tier = oc.mc_tier[req.state]
            G = sg.prob.shape[1]
            T_ = ch.lane_weight.shape[2]
            cum = self.lane_cum[p, (cat * T_ + tier) * G + req.segment]  # (n, L)
            key = key + np.minimum((req.u_lane[:, None] >= cum).sum(1), L - 1)  # type: ignore[index]
        sorted_keys = not self.lanes and bool(n < 2 or (cat[1:] >= cat[:-1]).all())
        per = (lambda a: rep(a)) if sorted_keys else (lambda a, key=key: a[key])
        if table is None:
            first.fill(T.model[:S], per, alat)
        if alat_b is not None and second is not None:
            second.fill(T.b_model[:S], per, alat_b)
        states = self.draw_states or req.z is not None or outcome is not None
        draws = Draws(
            u_fail=st["u_fail"],
            alat=alat,
            q=self._q(T.model, key, req, S, ws, "q", outcome) if states else None,
            u_fail_b=st.get("u_fail_b"),
            alat_b=alat_b,
            q_b=self._q(T.b_model, key, req, S, ws, "q_b", outcome) if states and self.hedged else None,
            u_batch=req.u_batch,
            alat_row=None if table is None else self.row_of[p][:S],
        )
        cfg = Settings(
            backoff=float(ch.backoff_s[p]),
            human_cost=float(ch.human_cost[p]),
            human_latency=float(ch.human_latency_s[p]),
            bill_failed_input=pr.bill_failed_input,
            deadline_billing=DEADLINE_BILLING[pr.deadline_billing],
            n_models=M,
            n_categories=C,
        )
        return key, draws, cfg

    def _router(self, p: int, key: np.ndarray, x: np.ndarray, normal: np.ndarray | None, w: Walked) -> np.ndarray:
        """Add each request's classifier cost and latency to the walk's totals; return the cost per request."""
        cost, latency = self.router_cost(p, key, x, normal)
        w.cost[:] += cost
        w.lat[:] += latency
        return cost

    def router_cost(
        self, p: int, key: np.ndarray, x: np.ndarray, normal: np.ndarray | None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Each request's classifier cost and latency (seconds) on policy ``p``'s lanes ``key``."""
        ch = self.problem.chains
        flat = lambda a: a[p].reshape(-1)[key]
        cost = flat(ch.lane_cost_call) + x * flat(ch.lane_cost_token)
        mu = flat(ch.lane_latency_mu)
        latency = np.exp(mu + flat(ch.lane_latency_sigma) * normal) if normal is not None else np.exp(mu)
        return cost, latency

    def _q(
        self,
        models: np.ndarray,
        key: np.ndarray,
        req: Requests,
        S: int,
        ws: Workspace,
        name: str,
        outcome: np.ndarray | None = None,
    ) -> np.ndarray:
        """``(S, n)``: each request's pass probability at each step on ``models`` (per step and key), given its
        request state; a known ``outcome`` (replay) replaces it."""
        oc = self.problem.outcomes
        cat, state, z = req.cat, req.state, req.z
        M = oc.mc_q.shape[-1]
        q = ws.get(name, (S, cat.size))
        latent = np.flatnonzero(oc.kind[cat] == LATENT) if z is not None else None
        for s in range(S):
            mdl = np.maximum(models[s][key], 0)
            q[s] = oc.mc_q.reshape(-1)[state * M + mdl]
            if latent is not None and latent.size:
                from scipy.special import ndtr

                li = latent
                rho = oc.rho[cat[li]]
                a = oc.mc_a.reshape(-1)[state[li] * M + mdl[li]]
                q[s, li] = ndtr((a - np.sqrt(rho) * z[li]) / np.sqrt(1 - rho))  # type: ignore[index]
            if outcome is not None:
                known = outcome[np.arange(cat.size), mdl]
                q[s] = np.where(known >= 0, known, q[s])
        return q

    def _collect(
        self,
        p: int,
        w: Walked,
        counts: np.ndarray,
        lane_key: np.ndarray,
        T: StepTable,
        part: _Partial,
        router: np.ndarray | None,
    ) -> None:
        """Per-category sums of one policy's walk (rows are sorted by category), and its latency histogram.

        Shared by every thread: everything it needs comes in as arguments (no per-chunk state on ``self``).
        """
        C = counts.size
        L = self.problem.chains.shape[2]
        per_request = w.sums is None or router is not None or p in self.step_rows
        cat = np.repeat(np.arange(C), counts) if per_request else None
        if w.sums is not None and router is None:  # the compiled walk summed as it walked
            assert w.tok_sums is not None
            sums, tok = w.sums, w.tok_sums
        else:
            sums, tok = walk_sums(w, cat, lane_key, C, T.hedged)
        for j, name in enumerate(SUMS):
            part.s[name][p] = sums[:, j]
        if router is not None:
            part.s["router"][p] = np.bincount(cat, weights=router, minlength=C)
        for key, code in zip(_COUNTS, (GOOD, BAD, FAILED, HUMAN_REVIEW), strict=True):
            part.s[key][p] = w.outcomes[:, code]
        part.s["esc"][p] = w.escalated
        part.s["fb"][p] = w.fell_back
        part.s["ovf"][p] = w.overflowed
        part.s["late"][p] = w.lated
        part.answered[p] = w.answered
        S = w.tries.shape[0]
        valid = T.model[:S] >= 0
        sidx, kidx = np.nonzero(valid)
        cidx = kidx // L
        mdl = T.model[:S][valid]
        np.add.at(part.tokens[p], (cidx, mdl), tok[0, sidx, kidx])
        if T.hedged:  # the hedged steps' second models
            hb = T.b_model[:S] >= 0
            sb, kb = np.nonzero(hb)
            np.add.at(part.tokens[p], (kb // L, T.b_model[:S][hb]), tok[1, sb, kb])
            np.add.at(part.calls[p], (kb // L, T.b_model[:S][hb]), w.tries_b[:S][hb])
        np.add.at(part.calls[p], (cidx, mdl), w.tries[:S][valid])
        np.add.at(part.served[p], (cidx, sidx), w.served[:S][valid])
        np.add.at(part.successes[p], (cidx, mdl), w.successes[:S][valid])
        np.add.at(part.slow[p], (cidx, mdl), w.slow[:S][valid])
        B = DECADES * self.bins
        if w.binned:  # counted by the compiled walk in this thread's histograms (added up in simulate)
            return
        if w.bin_key is not None:
            key = w.bin_key
        else:
            assert cat is not None
            key = cat * B + latency_bins(w.lat, self.bins)
        flat = self.hist[p].reshape(-1)
        if 4 * key.size >= C * B:  # a dense count is cheaper than scattered increments
            counted = np.bincount(key, minlength=C * B).astype(np.int32)
            with self.lock:
                flat += counted
        else:
            with self.lock:
                np.add.at(flat, key, np.int32(1))
        if p in self.step_rows:  # per-step targets: the latency of the requests each step served
            assert self.step_hist is not None
            served = np.flatnonzero(w.served_at >= 0)
            S = self.step_hist.shape[2]
            assert cat is not None
            step_key = (cat[served] * S + w.served_at[served]) * B + key[served] % B
            with self.lock:
                np.add.at(self.step_hist[self.step_rows[p]].reshape(-1), step_key, np.int32(1))


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


class _Workspaces:
    """One workspace per thread, made on first use; every one listed (their histograms are added up at the end)."""

    def __init__(self) -> None:
        self.local = threading.local()
        self.made: list[Workspace] = []
        self.lock = threading.Lock()

    def get(self) -> Workspace:
        ws = getattr(self.local, "ws", None)
        if ws is None:
            ws = self.local.ws = Workspace()
            with self.lock:
                self.made.append(ws)
        return ws


def _child(rng: np.random.Generator, k: int) -> np.random.Generator:
    """An SFC64 generator on the seed ``rng.spawn`` gives its child with spawn index ``k``, built on its own (memory
    flat in N). SFC64: numpy's fastest bit generator (about a fifth less time per normal than PCG64).

    ``rng.spawn(n)`` gives its ``i``-th child ``SeedSequence(entropy, spawn_key=(*spawn_key, done + i))``, where
    ``done`` counts the children spawned before.
    """
    ss = rng.bit_generator.seed_seq
    child = np.random.SeedSequence(ss.entropy, spawn_key=(*ss.spawn_key, k), pool_size=ss.pool_size)
    return np.random.Generator(np.random.SFC64(child))


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
    chunk = _Chunk(walked, bins, hist[:G], threading.Lock(), engine)  # the walk policies' histograms come first
    if walk_targeted:
        chunk.step_rows = {p: i for i, p in enumerate(walk_targeted)}
        chunk.step_hist = np.zeros((len(walk_targeted), C, S, DECADES * bins), dtype=np.int32)
    n_chunks = -(-samples // CHUNK)
    ss = rng.bit_generator.seed_seq
    if not isinstance(ss, np.random.SeedSequence):
        raise ValueError("simulate needs a generator seeded through a SeedSequence (numpy.random.default_rng)")
    done = ss.n_children_spawned
    spaces = _Workspaces()
    threads = threads or default_threads()

    def run(i: int, pool: ThreadPoolExecutor | None = None) -> _Partial:
        return chunk(_child(rng, done + i), min(CHUNK, samples - i * CHUNK), spaces.get(), pool, spaces)

    def parts() -> Iterator[_Partial]:
        if threads > 1 and n_chunks <= 2 * threads and min(samples, CHUNK) * G >= POLICY_THREADS_WORK:
            # few chunks but much work in each: the threads share each chunk's policies
            with ThreadPoolExecutor(max_workers=threads, thread_name_prefix="routecalc-mc") as pool:
                for i in range(n_chunks):
                    yield run(i, pool)
        else:
            yield from _ordered(run, n_chunks, threads)

    total: _Partial | None = None
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
        model_successes=acc.successes.sum(axis=(0, 1)),
        model_slow=acc.slow.sum(axis=(0, 1)),
        bins_per_decade=bins,
    )
