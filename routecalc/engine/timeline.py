"""The time engine: a month of requests in arrival order, walked through the compiled chains, with time effects.

Traffic: expected arrivals per time bucket (``Clock.expected``, from the volume and its hourly / weekly / growth /
spike profile), Poisson counts per bucket, arrival times uniform within their bucket. Requests are drawn exactly as
the Monte Carlo engine draws them (:meth:`routecalc.engine.chunk.Chunk.draw`: category, tokens, outcome state, one
uniform per decision) and walked by the same walk (:mod:`routecalc.engine.walk`), so a request's outcome comes
from the same model; what time adds is per request and step:

* **outages** (exogenous, drawn up front): a provider or model is down for a window; every try fails with the
  outage's error type (the walk's ``DOWN_*`` mask);
* **circuit breakers**, **rate limits** (``spill``), **budget pacing** (:mod:`routecalc.engine.timeline_state`):
  state that depends on what earlier requests saw; a breaker that is open, or a model whose minute is full, is
  not called (``UNAVAILABLE``: the step goes to its ``on_429`` target); over budget pace, named categories take
  another policy's routes;
* **load-adaptive routing**: above a load (requests per minute over the previous bucket), named categories take
  another policy's routes;
* rate limits in ``queue`` mode add the wait for the next minute with room to the request's latency.

**How the state stays exact without a per-request loop.** A chunk's requests are first walked under the state
as it stands. Then, window by window, each mechanism works out sequentially (one vectorized step per breaker
opening, budget flip, ...; :mod:`routecalc.engine.timeline_state`) what the walked results imply for the state each
request arrives under; the requests up to the first one whose assumed route or masks (at the steps it reached)
disagree are accepted — exactly what a request-by-request simulation gives, since each request's state depends
only on earlier requests — and from there the implied state is assumed and only the requests whose route or masks
changed are walked again. One pass finds every breaker opening and every filled minute of a window at once, so
the work is the month's requests plus a few small walks per window where effects interact (a spilled request
tripping the fallback's breaker, spend moving a budget verdict).

**Approximations** (README, "A month, not a mean"): every event of a request is stamped with its arrival time
(its tries take seconds; the breaker's and limiters' windows are a minute); the budget is checked every
``check_every`` (spend charged at arrival); load is measured over the previous bucket; arrival rates are
constant within a bucket. Hedged steps are not affected by outages, breakers or limits.

Reproducible: ``SeedSequence(seed)``'s child 0 draws the arrival counts, child 1 the outages; the requests of day
``d`` come in chunks of consecutive buckets (cut where the day's running count passes a multiple of ``CHUNK``),
chunk ``j`` drawn from the generator with spawn key ``(2 + d, j)``. So the same seed gives the same month on any
machine, a longer run repeats a shorter one's days, and every run with the same seed sees the same requests,
outages and uniforms whatever its effects (common random numbers: switching the breaker off changes what the
breaker does, not the month).
"""

from __future__ import annotations

import itertools
import threading
from dataclasses import dataclass, field, fields, replace

import numpy as np

from routecalc.chains import RoutingProblem
from routecalc.engine.chunk import CHUNK, Chunk, chunk_generator
from routecalc.engine.compiled import numba_available, walk_numba
from routecalc.engine.histogram import BINS_PER_DECADE, DECADES, latency_bins
from routecalc.engine.numpy_walk import walk_numpy
from routecalc.engine.timeline_spec import (
    COUNTS,
    DAY_S,
    HOUR_S,
    MONTH_DAYS,
    SUMS,
    BreakerSpec,
    BudgetSpec,
    Clock,
    Effects,
    LimitSpec,
    LoadSpec,
    Outages,
    OutageSpec,
    Timeline,
    budget_checks,
    draw_outages,
    expected_arrivals,
    pro_rated,
    shape_weights,
)
from routecalc.engine.timeline_state import (
    MINUTE_S,
    Breaker,
    Limiter,
    Pacer,
    QueueState,
    Window,
    call_tokens,
    queue_waits,
)
from routecalc.engine.walk import (
    ANSWERED,
    BAD,
    DOWN_TIMEOUT,
    FAILED,
    GOOD,
    HUMAN_REVIEW,
    UNAVAILABLE,
    Draws,
    Settings,
    StepTable,
    Workspace,
    pack,
)

FIRST_WINDOW = 16384  # requests verified at once at first; doubles while they agree, up to the chunk
AUTO_NUMBA_REQUESTS = 200_000  # engine="auto": the compiled walk from this many requests (if installed)

__all__ = [  # the simulation's inputs and outputs live in timeline_spec; re-exported for one import
    "DAY_S",
    "HOUR_S",
    "MONTH_DAYS",
    "BreakerSpec",
    "BudgetSpec",
    "Clock",
    "Effects",
    "LimitSpec",
    "LoadSpec",
    "OutageSpec",
    "Outages",
    "Timeline",
    "budget_checks",
    "draw_outages",
    "expected_arrivals",
    "pro_rated",
    "run_timeline",
    "run_timelines",
    "shape_weights",
]


# ---------------------------------------------------------------------------------------------------------
# The run


def run_timeline(
    problem: RoutingProblem,
    policy: int,
    clock: Clock,
    effects: Effects,
    seed: int,
    engine: str = "auto",
    runner: type[_Run] | None = None,
) -> Timeline:
    """Simulate ``clock``'s period on ``problem``'s policy ``policy`` with ``effects`` (module docstring).

    ``engine``: ``numpy``, ``numba`` or ``auto`` (numba when installed and the period is large); the same
    numbers either way. ``runner``: a subclass of the chunk runner (tests: a request-by-request reference).
    """
    return run_timelines(problem, policy, clock, [effects], seed, engine, runner)[0]


def run_timelines(
    problem: RoutingProblem,
    policy: int,
    clock: Clock,
    effects: list[Effects],
    seed: int,
    engine: str = "auto",
    runner: type[_Run] | None = None,
) -> list[Timeline]:
    """The same period under each of ``effects`` (same seed: the same requests, outages and uniforms), drawn once
    per chunk and walked by each in turn; each result is what :func:`run_timeline` gives for it."""
    n_expected = float(clock.expected.sum())
    if engine == "auto":
        engine = "numba" if n_expected >= AUTO_NUMBA_REQUESTS and numba_available() else "numpy"
    elif engine not in ("numpy", "numba"):
        raise ValueError(f"engine must be auto, numpy or numba, not {engine!r}")
    rng = np.random.default_rng(seed)
    arrivals = chunk_generator(rng, 0).poisson(clock.expected).astype(np.int64)
    variants = [policy]  # route variants: the policy, then every budget / load rule's policy
    for fx in effects:
        for spec in (fx.budget, fx.load):
            if spec is not None and spec.policy not in variants:
                variants.append(spec.policy)
    mc = Chunk(problem.with_chains(problem.chains.select(variants)), BINS_PER_DECADE,
                np.zeros((1, 1, 1), dtype=np.int32), threading.Lock(), "numpy")  # fmt: skip
    runs = [
        (runner or _Run)(
            mc, variants, clock, fx, draw_outages(fx.outages, clock.days, chunk_generator(rng, 1)), arrivals, engine
        )
        for fx in effects
    ]
    per_day = round(DAY_S / clock.bucket_s)
    ss = rng.bit_generator.seed_seq
    for day, b0 in enumerate(range(0, arrivals.size, per_day)):
        b1 = min(b0 + per_day, arrivals.size)
        cum = np.cumsum(arrivals[b0:b1])
        # chunks: consecutive buckets, cut when the day's running count passes a multiple of CHUNK
        cuts = b0 + 1 + np.searchsorted(cum, np.arange(CHUNK, cum[-1] if cum.size else 0, CHUNK), side="left")
        bounds = np.unique(np.concatenate(([b0], cuts, [b1])))
        for j, (lo, hi) in enumerate(itertools.pairwise(bounds)):
            seq = np.random.SeedSequence(ss.entropy, spawn_key=(*ss.spawn_key, 2 + day, j))
            ch = runs[0].prepare(np.random.Generator(type(rng.bit_generator)(seq)), int(lo), int(hi))
            if ch is not None:
                for run in runs:
                    run.chunk(ch)
    return [run.result() for run in runs]


class _Run:
    """One period under one set of effects, chunk after chunk (the chunks' draws are shared between runs)."""

    def __init__(
        self,
        mc: Chunk,
        variants: list[int],
        clock: Clock,
        fx: Effects,
        outages: Outages,
        arrivals: np.ndarray,
        engine: str,
    ):
        self.clock, self.fx, self.outages, self.arrivals, self.engine = clock, fx, outages, arrivals, engine
        self.v_budget = variants.index(fx.budget.policy) if fx.budget is not None else 0
        self.v_load = variants.index(fx.load.policy) if fx.load is not None else 0
        sub = mc.problem
        self.problem = sub
        self.cats = sub.chains.shape[1]
        self.mc = mc
        tables = self.mc.tables
        self.KV = tables[0].model.shape[1]  # keys per variant
        self.T = StepTable(
            **{f.name: np.concatenate([getattr(t, f.name) for t in tables], axis=-1) for f in fields(StepTable)}
        )
        self.packed = pack(self.T) if engine == "numba" else None
        self.V = len(variants)
        H = int(np.ceil(clock.days * 24 - 1e-9))
        self.hourly = {k: np.zeros(H) for k in (*COUNTS, *SUMS)}
        self.hist = np.zeros((max(1, int(np.ceil(clock.days - 1e-9))), DECADES * BINS_PER_DECADE), dtype=np.int64)
        self.sq = [0.0, 0.0]
        self.walks = 0
        self.ws = Workspace()  # the walk's buffers, reused block after block (accepted rows are copied out)
        M = len(sub.models.names)
        self.breaker = None
        if fx.breaker is not None:
            b = fx.breaker
            self.breaker = Breaker(b.models, b.allowed_fails, b.window_s, b.cooldown_s, b.probe)
        self.limiter = self.queues = None
        if fx.limits is not None and not fx.limits.queue:
            self.limiter = Limiter(fx.limits.rpm, fx.limits.tpm, sub.models.output_ratio)
        elif fx.limits is not None:
            lim = fx.limits
            self.queues = {int(m): QueueState() for m in np.flatnonzero(np.isfinite(lim.rpm) | np.isfinite(lim.tpm))}
        self.pacer = None
        if fx.budget is not None:
            bs = fx.budget
            self.pacer = Pacer(bs.check_t, bs.pace, bs.reset, bs.above, bs.resume)
        self.down_models = [int(m) for m in np.unique(outages.model)] if outages.model.size else []
        self.M = M
        # load routing: the previous bucket's arrivals, per minute (the first bucket: its expected rate)
        self.load_on = None
        if fx.load is not None:
            prev = np.concatenate((clock.expected[:1], arrivals[:-1])) * (MINUTE_S / clock.bucket_s)
            self.load_on = prev > fx.load.above_rpm

    # --- one chunk ---------------------------------------------------------------------------------------

    def chunk(self, shared: _ChunkData) -> None:
        """Simulate a chunk's requests (drawn by :meth:`prepare`) under this run's effects (module docstring)."""
        ch = replace(shared, down=self._down_codes(shared.t))
        if self.load_on is not None:
            assert self.fx.load is not None
            ch.load = self.load_on[ch.bucket] & self.fx.load.categories[ch.cat]
        out = _ChunkOut(ch.t.size, ch.S)
        self.process(ch, out)
        self._collect(ch, out)

    def prepare(self, rng: np.random.Generator, lo: int, hi: int) -> _ChunkData | None:
        """Draw the requests of buckets ``lo..hi-1``: arrival times, categories, then what the MC engine draws."""
        bs = self.clock.bucket_s
        counts = self.arrivals[lo:hi]
        n = int(counts.sum())
        if n == 0:
            return None
        bucket = np.repeat(np.arange(lo, hi), counts)
        t = np.sort((bucket + rng.random(n)) * bs)  # buckets are disjoint: sorting keeps each in its own
        tt = self.problem.tasks
        cum = np.cumsum(tt.share / tt.share.sum())
        cat = np.minimum(np.searchsorted(cum, rng.random(n), side="right"), self.cats - 1)
        order = np.argsort(cat, kind="stable")  # the MC draw wants requests sorted by category
        inv = np.empty(n, dtype=np.int64)
        inv[order] = np.arange(n)
        ws = Workspace()
        req = self.mc.draw(rng, n, ws, cat=cat[order])
        per_variant: dict[str, list[np.ndarray]] = {}
        keys = np.empty((self.V, n), dtype=np.int64)
        latency = self.mc.latencies(req)
        for v in range(self.V):
            key, d, cfg = self.mc.walk_inputs(v, req, ws, None, latency)
            keys[v] = (key + v * self.KV)[inv]
            for name in ("alat", "q", "alat_b", "q_b"):
                a = getattr(d, name)
                if a is not None:
                    per_variant.setdefault(name, []).append(a[:, inv])
            if self.mc.router:
                c, lat = self.mc.router_cost(v, key, req.x, req.n_router)
                per_variant.setdefault("rcost", []).append(c[inv])
                per_variant.setdefault("rlat", []).append(lat[inv])
            if v == 0:
                ch_cfg = cfg
        ch = _ChunkData(
            t=t,
            bucket=bucket,
            cat=cat,
            x=req.x[inv],
            y=req.y[inv],
            shared={k: v[:, inv] for k, v in req.steps.items() if k in ("u_fail", "u_fail_b")},
            keys=keys,
            per_variant={k: np.stack(v) for k, v in per_variant.items()},
            t_end=hi * bs,
            S=req.S,
            cfg=ch_cfg,
            u_batch=None if req.u_batch is None else req.u_batch[inv],
        )
        return ch

    def process(self, ch: _ChunkData, out: _ChunkOut) -> None:
        """Walk every request under the state as it stands, then verify window by window (module docstring)."""
        n, S = ch.t.size, out.trace.shape[0]
        empty = Window(0, ch.t[:0], float(ch.t[0]), np.zeros((S, 0), dtype=np.int64), np.zeros((S, 0), dtype=np.int8),
                       np.zeros(0), np.zeros(0), np.zeros(0))  # fmt: skip
        plans = self._plans(empty)  # what is in force already: breakers open, a minute full
        out.variant[:] = self._variants(ch, 0, n, np.full(n, self.pacer.state.on) if self.pacer is not None else None)
        out.model[:] = self.T.model[:S, ch.keys[out.variant, np.arange(n)]]
        out.brk[:], out.lim[:] = self._masks(plans, 0, n, ch.t, out.model)
        self._walk(ch, out, slice(0, n))
        lo, hi, size = 0, min(n, FIRST_WINDOW), FIRST_WINDOW
        while lo < n:
            lo += self._window(ch, out, lo, hi)
            if lo == hi:  # the window agrees: the next one twice as long
                size = min(2 * size, CHUNK)
                hi = min(n, lo + size)
            # else: verify the rest of the window again (its disagreeing rows were walked again)

    def _down_codes(self, t: np.ndarray) -> dict[int, np.ndarray]:
        """Per down model, the outage mask code at each arrival (0: up)."""
        o = self.outages
        out = {}
        for m in self.down_models:
            sel = o.model == m
            code = np.zeros(t.size, dtype=np.int8)
            for s, e, c in zip(o.start[sel], o.end[sel], o.code[sel], strict=True):
                lo, hi = np.searchsorted(t, [s, e], side="left")
                code[lo:hi] = np.where(code[lo:hi] == 0, c, code[lo:hi])  # overlapping: the earlier incident's
            out[m] = code
        return out

    def _walk(self, ch: _ChunkData, out: _ChunkOut, rows: np.ndarray | slice) -> None:
        """Walk chunk ``rows`` under their assumed route variant and masks; store what happened to them."""
        self.walks += 1
        variant = out.variant[rows]
        key = (
            ch.keys[variant, rows]
            if isinstance(rows, np.ndarray)
            else ch.keys[variant, np.arange(rows.start, rows.stop)]
        )
        model = self.T.model[: out.trace.shape[0], key]
        mask = np.zeros(model.shape, dtype=np.int8)
        for m, code in ch.down.items():
            mask = np.where(model == m, code[rows][None, :], mask)
        mask[out.brk[:, rows] | out.lim[:, rows]] = UNAVAILABLE
        idx = rows if isinstance(rows, np.ndarray) else np.arange(rows.start, rows.stop)
        pv = ch.per_variant
        pick = lambda a: np.ascontiguousarray(a[variant, :, idx].T)
        d = Draws(
            u_fail=ch.shared["u_fail"][:, rows],
            alat=pick(pv["alat"]),
            q=pick(pv["q"]) if "q" in pv else None,
            u_fail_b=ch.shared["u_fail_b"][:, rows] if "u_fail_b" in ch.shared else None,
            alat_b=pick(pv["alat_b"]) if "alat_b" in pv else None,
            q_b=pick(pv["q_b"]) if "q_b" in pv else None,
            u_batch=None if ch.u_batch is None else ch.u_batch[rows],
        )
        x, y, cat = ch.x[rows], ch.y[rows], ch.cat[rows]
        if self.engine == "numba":
            w = walk_numba(self.T, key, cat, x, y, d, ch.cfg, self.ws, self.packed, mask=mask, trace=True)
        else:
            w = walk_numpy(self.T, key, cat, x, y, d, ch.cfg, self.ws, mask=mask, trace=True)
        assert w.trace is not None
        out.cost[rows] = w.cost
        out.lat[rows] = w.lat
        if "rcost" in pv:
            out.cost[rows] += pv["rcost"][variant, idx]
            out.lat[rows] += pv["rlat"][variant, idx]
        out.outcome[rows] = w.outcome
        out.fb[rows] = w.fb
        out.trace[:, rows] = w.trace[: out.trace.shape[0]]
        out.model[:, rows] = model

    def _window(self, ch: _ChunkData, out: _ChunkOut, lo: int, hi: int) -> int:
        """Verify rows ``lo..hi-1``: work out what the state implies for them from what the walk recorded; return
        how many agree with what they were walked under (accepted, state committed). At the first that does not,
        assume the implied state from there to ``hi`` and walk again the rows whose route or masks changed."""
        win = Window(
            lo, ch.t[lo:hi], float(ch.t[hi]) if hi < ch.t.size else ch.t_end, out.model[:, lo:hi],
            out.trace[:, lo:hi], out.cost[lo:hi], ch.x[lo:hi], ch.y[lo:hi],
        )  # fmt: skip
        plans = self._plans(win)
        variant = self._variants(ch, lo, hi, plans["budget"][0] if "budget" in plans else None)
        brk, lim = self._masks(plans, lo, hi, ch.t[lo:hi], out.model[:, lo:hi])
        tr = out.trace[:, lo:hi]
        reached = (tr >= 0) | (tr == -2)
        wrong = (variant != out.variant[lo:hi]) | (
            reached & ((brk != out.brk[:, lo:hi]) | (lim != out.lim[:, lo:hi]))
        ).any(axis=0)
        bad = np.flatnonzero(wrong)
        if not bad.size:
            self._commit(plans, lo)
            return hi - lo
        r = int(bad[0])
        self._commit(self._plans(win.prefix(r)), lo)
        # assume the implied state for rows lo + r .. hi - 1; walk again those whose route or masks changed
        rows = np.arange(lo + r, hi)
        new_variant = variant[r:]
        routed = new_variant != out.variant[rows]
        out.variant[rows] = new_variant
        model = out.model[:, rows]
        if routed.any():
            model = np.where(routed[None, :], self.T.model[: model.shape[0], ch.keys[new_variant, rows]], model)
        brk, lim = self._masks(plans, lo + r, hi, ch.t[rows], model)
        changed = routed | (reached[:, r:] & ((brk != out.brk[:, rows]) | (lim != out.lim[:, rows]))).any(axis=0)
        out.brk[:, rows], out.lim[:, rows] = brk, lim
        self._walk(ch, out, rows[changed])
        return r

    def _plans(self, win: Window) -> dict[str, tuple]:
        plans: dict[str, tuple] = {}
        if self.breaker is not None:
            plans["breaker"] = self.breaker.plan(win)
        if self.limiter is not None:
            plans["limits"] = self.limiter.plan(win)
        if self.pacer is not None:
            plans["budget"] = self.pacer.plan(win)
        return plans

    def _commit(self, plans: dict[str, tuple], lo: int) -> None:
        if "breaker" in plans:
            self.breaker.commit(plans["breaker"][1], plans["breaker"][0])  # type: ignore[union-attr]
        if "limits" in plans:
            self.limiter.commit(plans["limits"][1], plans["limits"][0], lo)  # type: ignore[union-attr]
        if "budget" in plans:
            self.pacer.commit(plans["budget"][1], plans["budget"][2])  # type: ignore[union-attr]

    def _variants(self, ch: _ChunkData, lo: int, hi: int, downgraded: np.ndarray | None) -> np.ndarray:
        """Route variant per row: the load rule's (exogenous), then the budget verdict's (wins)."""
        variant = np.zeros(hi - lo, dtype=np.int64)
        if ch.load is not None:
            variant[ch.load[lo:hi]] = self.v_load
        if downgraded is not None:
            assert self.fx.budget is not None
            variant[downgraded & self.fx.budget.categories[ch.cat[lo:hi]]] = self.v_budget
        return variant

    def _masks(
        self, plans: dict[str, tuple], lo: int, hi: int, t: np.ndarray, model: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """Which steps of rows ``lo..hi-1`` find their model's breaker open / its minute full, per the plans."""
        none = np.zeros((0, 4))
        brk = plans["breaker"][0] if "breaker" in plans else none
        lim = plans["limits"][0] if "limits" in plans else none
        return _span_mask(brk, lo, t, model), _span_mask(lim, lo, t, model)

    def _collect(self, ch: _ChunkData, out: _ChunkOut) -> None:
        """Queue waits (queue mode), then per-hour sums and per-day histograms of the chunk."""
        if self.queues is not None:
            lim = self.fx.limits
            assert lim is not None
            for m, st in self.queues.items():
                hit = (out.model == m) & (out.trace >= 0)
                rows = np.flatnonzero(hit.any(axis=0))
                tr = np.where(hit[:, rows], out.trace[:, rows], 0).astype(np.int64)
                answered = (tr >= ANSWERED).any(axis=0)
                calls = (tr % ANSWERED).sum(axis=0) + answered
                tokens = answered * call_tokens(ch.x[rows], ch.y[rows], self.problem.models.output_ratio[m])
                wait, self.queues[m] = queue_waits(ch.t[rows], calls, tokens, lim.rpm[m], lim.tpm[m], st)
                out.wait[rows] += wait
            out.lat += out.wait
        oc = out.outcome
        during = self.outages.active(ch.t)
        unavailable = out.trace == -2
        called_down = np.zeros(out.model.shape, dtype=bool)
        timeouts = np.zeros(out.model.shape, dtype=np.int64)
        for m, code in ch.down.items():
            if code.any():
                down = np.where(out.model == m, code[None, :], 0)
                hit = (down >= DOWN_TIMEOUT) & (out.trace >= 0)
                called_down |= hit
                timeouts += np.where(hit & (down == DOWN_TIMEOUT), out.trace % ANSWERED, 0)
        columns = {
            "requests": np.ones(oc.size),
            "good": oc == GOOD,
            "bad": oc == BAD,
            "failed": oc == FAILED,
            "human": oc == HUMAN_REVIEW,
            "fell_back": out.fb,
            "downgraded": (out.variant == self.v_budget) & (self.v_budget > 0),
            "load_routed": (out.variant == self.v_load) & (self.v_load > 0) & (out.variant != self.v_budget),
            "breaker_skipped": (unavailable & out.brk).any(axis=0),
            "spilled": (unavailable & out.lim & ~out.brk).any(axis=0),
            "queued": out.wait > 0,
            "during_outage": during,
            "outage_hit": called_down.any(axis=0),
            "outage_failed": during & (oc == FAILED),
            "outage_timeouts": timeouts.sum(axis=0),
            "spend": out.cost,
            "latency": out.lat,
            "wait": out.wait,
        }
        H = self.hourly["requests"].size
        hour = np.minimum((ch.t // HOUR_S).astype(np.int64), H - 1)  # sorted: arrivals are in time order
        edges = np.searchsorted(hour, np.arange(hour[0], hour[-1] + 2))
        present = np.arange(hour[0], hour[-1] + 1)[edges[1:] > edges[:-1]]
        start = edges[:-1][edges[1:] > edges[:-1]]
        values = np.empty((len(columns), hour.size))
        for k, v in enumerate(columns.values()):
            values[k] = v
        sums = np.add.reduceat(values, start, axis=1)
        for k, name in enumerate(columns):
            self.hourly[name][present] += sums[k]
        self.sq[0] += float(np.square(out.cost).sum())  # not a BLAS dot: its threads stall on a busy machine
        self.sq[1] += float(np.square(out.lat).sum())
        D, nb = self.hist.shape
        day = np.minimum((ch.t // DAY_S).astype(np.int64), D - 1)
        self.hist += np.bincount(day * nb + latency_bins(out.lat, BINS_PER_DECADE), minlength=D * nb).reshape(D, nb)

    def result(self) -> Timeline:
        p = self.pacer
        bs = self.fx.budget
        return Timeline(
            bucket_s=self.clock.bucket_s,
            arrivals=self.arrivals,
            expected=self.clock.expected,
            hourly=self.hourly,
            hist=self.hist,
            bins_per_decade=BINS_PER_DECADE,
            cost2=self.sq[0],
            latency2=self.sq[1],
            outages=self.outages,
            breaker_open=_stack(self.breaker.opened if self.breaker is not None else [])[:, [0, 3, 2]],
            filled=(_stack(self.limiter.filled if self.limiter is not None else [])[:, [0, 3]] // [1, MINUTE_S]),
            budget_t=bs.check_t if bs is not None else np.zeros(0),
            budget_spend=p.period_spend if p is not None else np.zeros(0),
            budget_pace=bs.pace if bs is not None else np.zeros(0),
            budget_on=p.verdict if p is not None else np.zeros(0, dtype=bool),
            walks=self.walks,
            engine=self.engine,
        )


def _stack(spans: list[np.ndarray]) -> np.ndarray:
    return np.concatenate(spans) if spans else np.zeros((0, 4))


def _span_mask(spans: np.ndarray, lo: int, t: np.ndarray, model: np.ndarray) -> np.ndarray:
    """``(S, n)``: steps of rows ``lo, lo + 1, ...`` (arrival times ``t``) on a model with a span (model, first
    chunk row, until, ...) covering the row: from the first row while the arrival is before ``until``."""
    out = np.zeros(model.shape, dtype=bool)
    if not spans.size:
        return out
    n = t.size
    start = np.clip(spans[:, 1].astype(np.int64) - lo, 0, n)
    stop = np.maximum(start, np.searchsorted(t, spans[:, 2], side="left"))
    models = spans[:, 0].astype(np.int64)
    for m in np.unique(models):
        sel = models == m
        edges = np.bincount(start[sel], minlength=n + 1) - np.bincount(stop[sel], minlength=n + 1)
        out |= (model == m) & (np.cumsum(edges[:n]) > 0)[None, :]
    return out


@dataclass
class _ChunkData:
    """A chunk's requests in arrival order: times, buckets, categories, tokens, the uniforms every route shares,
    and per route variant ``(V, ...)`` their keys, answer latencies, pass probabilities (if not independent) and
    classifier cost / latency (if any)."""

    t: np.ndarray
    bucket: np.ndarray
    cat: np.ndarray
    x: np.ndarray
    y: np.ndarray
    shared: dict[str, np.ndarray]  # (S, n): u_fail[, u_fail_b]
    keys: np.ndarray  # (V, n)
    per_variant: dict[str, np.ndarray]  # (V, S, n): alat[, q, alat_b, q_b]; (V, n): rcost, rlat
    t_end: float  # end of the chunk's last bucket
    S: int  # chain steps drawn
    cfg: Settings  # the walk's settings (the main policy's)
    down: dict[int, np.ndarray] = field(default_factory=dict)
    u_batch: np.ndarray | None = None  # (n,) batch uniform (None: no step sends requests through a batch API)
    load: np.ndarray | None = None


class _ChunkOut:
    """Per request of a chunk: what it was walked under (route variant, breaker / limit masks per step) and what
    happened to it."""

    def __init__(self, n: int, S: int):
        self.cost = np.zeros(n)
        self.lat = np.zeros(n)
        self.wait = np.zeros(n)
        self.outcome = np.zeros(n, dtype=np.int8)
        self.fb = np.zeros(n, dtype=bool)
        self.variant = np.zeros(n, dtype=np.int64)
        self.brk = np.zeros((S, n), dtype=bool)
        self.lim = np.zeros((S, n), dtype=bool)
        self.trace = np.full((S, n), -1, dtype=np.int8)
        self.model = np.full((S, n), -1, dtype=np.int64)
