"""One chunk of the Monte Carlo run: draw ``CHUNK`` requests and their random numbers, walk them through every policy
(:mod:`routecalc.engine.walk`, :mod:`routecalc.engine.compiled`) and sum the walks per (policy, category).

The time engine (:mod:`routecalc.engine.timeline`) and replay (:mod:`routecalc.data.replay`) draw and walk chunks the
same way, through :class:`Chunk`.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np

from routecalc.chains import ModelTable, RoutingProblem
from routecalc.engine.compiled import SUMS, walk_numba
from routecalc.engine.distinct import Distinct
from routecalc.engine.histogram import DECADES, latency_bins
from routecalc.engine.numpy_walk import walk_numpy
from routecalc.engine.steps import step_tables
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
)
from routecalc.outcomes import LATENT

CHUNK = 2**16  # requests per chunk (and per child generator): part of the reproducibility contract
THREAD_HIST_BYTES = 16 * 2**20  # histograms up to this size get a copy per thread (added up at the end)


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


def chunk_generator(rng: np.random.Generator, k: int) -> np.random.Generator:
    """An SFC64 generator on the seed ``rng.spawn`` gives its child with spawn index ``k``, built on its own (memory
    flat in N). SFC64: numpy's fastest bit generator (about a fifth less time per normal than PCG64).

    ``rng.spawn(n)`` gives its ``i``-th child ``SeedSequence(entropy, spawn_key=(*spawn_key, done + i))``, where
    ``done`` counts the children spawned before.
    """
    ss = rng.bit_generator.seed_seq
    child = np.random.SeedSequence(ss.entropy, spawn_key=(*ss.spawn_key, k), pool_size=ss.pool_size)
    return np.random.Generator(np.random.SFC64(child))


class Workspaces:
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


@dataclass
class Partial:
    """One chunk's sums, indexed ``[policy, category(, model or step)]``; added into the total in chunk order."""

    n: np.ndarray  # (C,)
    s: dict[str, np.ndarray]  # (P, C) each
    tokens: np.ndarray  # (P, C, M)
    answered: np.ndarray  # (P, C, M + 1): column M is human review
    calls: np.ndarray  # (P, C, M)
    served: np.ndarray  # (P, C, S)
    successes: np.ndarray  # (P, M) answered tries, times the policies a walk stands for (Chunk.weights)
    slow: np.ndarray  # (P, M) answered tries slower than the model's timeout, the same way

    def add(self, other: Partial) -> None:
        self.n += other.n
        for k, v in other.s.items():
            self.s[k] += v
        for name in (*_PER_POLICY, "successes", "slow"):
            getattr(self, name)[...] += getattr(other, name)

    def take(self, distinct: Distinct) -> Partial:
        """Each policy's sums from the walk policies that stand for it (:mod:`routecalc.engine.distinct`)."""
        per_policy = {name: distinct.take(getattr(self, name)) for name in _PER_POLICY}
        s = {k: distinct.take(v) for k, v in self.s.items()}
        return Partial(n=self.n, s=s, successes=self.successes, slow=self.slow, **per_policy)


_PER_POLICY = ("tokens", "answered", "calls", "served")  # Partial's (P, C, ...) arrays


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


class Latency:
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


class Chunk:
    """Simulate one chunk: draw the requests and their random numbers, then walk them through every policy."""

    def __init__(self, problem: RoutingProblem, bins: int, hist: np.ndarray, lock: threading.Lock, engine: str):
        self.problem, self.bins, self.hist, self.lock = problem, bins, hist, lock
        self.step_hist: np.ndarray | None = None  # set by simulate when some policy has per-step targets
        # (P, C) int64: how many policies each walked (policy, category) stands for (engine.distinct); None: one
        self.weights: np.ndarray | None = None
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
        spaces: Workspaces | None = None,
    ) -> Partial:
        """One chunk: draw ``n`` requests, walk them through every policy, sum per category. With a ``pool``
        (and ``spaces``, the workers' workspaces), the policies are walked in parallel: the same sums, since each
        policy's go to its own rows and the shared counts are integers added under the lock."""
        req = self.draw(rng, n, ws)
        P, C, _, _ = self.problem.chains.shape
        M = len(self.problem.models.names)
        part = Partial(
            n=req.counts.astype(float),
            s={k: np.zeros((P, C)) for k in (*_SUMS, *_COUNTS, "esc", "fb", "ovf", "late", "waste")},
            tokens=np.zeros((P, C, M)),
            answered=np.zeros((P, C, M + 1)),
            calls=np.zeros((P, C, M)),
            served=np.zeros((P, C, self.problem.chains.shape[3])),
            successes=np.zeros((P, M)),
            slow=np.zeros((P, M)),
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
        latency: tuple[Latency, Latency | None],
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

    def _row_table(self, req: Requests, ws: Workspace, latency: Latency) -> np.ndarray | None:
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

    def latencies(self, req: Requests) -> tuple[Latency, Latency | None]:
        """The chunk's answer-latency caches (first models, hedged second models)."""
        st, mt = req.steps, self.problem.models
        first = Latency(mt, req.y, st["n_ttft"], st.get("n_tpot"))
        second = Latency(mt, req.y, st["n_ttft_b"], st.get("n_tpot_b")) if self.hedged else None
        return first, second

    def walk_inputs(
        self,
        p: int,
        req: Requests,
        ws: Workspace,
        outcome: np.ndarray | None = None,
        latency: tuple[Latency, Latency | None] | None = None,
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
            key_counts=None if self.lanes else req.counts,  # one lane: a request's key is its category
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
        part: Partial,
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
        successes, slow = w.successes[:S][valid], w.slow[:S][valid]
        if self.weights is not None:  # a shared walk counts once for every policy it stands for (0: for none)
            successes, slow = successes * self.weights[p, cidx], slow * self.weights[p, cidx]
        np.add.at(part.successes[p], mdl, successes)
        np.add.at(part.slow[p], mdl, slow)
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
