"""The chain walk of the Monte Carlo engine: requests through one policy's chains, given their random numbers.

Everything random is drawn before the walk (:mod:`routecalc.engine.mc`): per request and chain step a uniform for
provider failures (``u_fail``), a uniform for the answer and its gate (``u_good``), the answer's latency and,
where outcomes are not independent, its pass probability. The walk itself uses only ``+ - * /`` and comparisons,
so its two implementations give the same bits:

* :func:`walk_numpy` — vectorized numpy, one step at a time over the requests routed there (always available);
* :func:`walk_numba` — the same arithmetic as a compiled loop per request (``pip install routecalc[fast]``).

Per request ``i`` at step ``s`` on model ``m`` (parameters per step and category, ``T.<name>[s, c]``):

1. Failed tries ``K = #{j in 1..1+r : u < f^j}`` (geometric, capped), powers by repeated multiplication. If
   ``K > 0``, ``v = (u - lo) / (hi - lo)`` is uniform on [0, 1) given ``K`` (``hi = f^K``, ``lo = f^(K+1)``, or 0
   when all ``1 + r`` tries failed) and the number of timeouts is the Binomial(K, t) quantile of ``v``.
   Failed tries cost ``timeouts x timeout_s + (K - timeouts) x error_latency + backoff x min(K, r)`` seconds and,
   if billed, ``K x x x price_in``. ``K = 1 + r``: the step is abandoned -> ``on_failure``.
2. Answer: ``tokens = x p_in' + y p_out'`` (cache share and output ratio folded in), latency as given; good iff
   ``u_good < q``.
3. Gate (gated steps): ``g = call + (x + y ratio) per_token``; the same uniform decides the verdict: a good
   answer is rejected iff ``u_good < q false_reject``, a bad one iff ``u_good < q + (1 - q) catch`` (each has
   the right probability given good/bad). Rejected -> ``on_reject``: a later step, deliver, human review, fail.

Per request the walk returns total cost, latency, gate spend, outcome, answering model and the escalation /
fallback flags; per step the token spend per request (summed per category by the caller, so both
implementations share the order of every floating-point sum) and integer counts per (step, category).
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

import numpy as np

from routecalc.chains import DELIVER, FAIL, HUMAN

PENDING, GOOD, BAD, FAILED, HUMAN_REVIEW = 0, 1, 2, 3, 4


@dataclass(frozen=True, eq=False)
class StepTable:
    """One policy's chain parameters per (step, category), shape ``(S, C)``; money per token, seconds."""

    model: np.ndarray  # int64, -1 where the chain has no such step
    fail: np.ndarray
    retries: np.ndarray  # int64
    timeout_share: np.ndarray
    timeout_s: np.ndarray
    error_latency_s: np.ndarray
    price_in: np.ndarray  # what a failed try bills per input token (if billed)
    price_in_eff: np.ndarray  # input price with the category's prompt-cache share
    price_out: np.ndarray  # per band output token: price x output_ratio
    ratio: np.ndarray  # output_ratio (tokens a gate reads)
    q: np.ndarray  # pass rate when outcomes are independent
    gated: np.ndarray  # bool
    catch: np.ndarray
    false_reject: np.ndarray
    gate_cost_call: np.ndarray
    gate_cost_token: np.ndarray
    gate_latency_s: np.ndarray
    on_reject: np.ndarray  # int64
    on_failure: np.ndarray  # int64
    ttft_mu: np.ndarray  # answer latency = LogNormal(ttft) + y x ratio x LogNormal(tpot), drawn by the caller
    ttft_sigma: np.ndarray
    tpot_mu: np.ndarray
    tpot_sigma: np.ndarray

    def arrays(self) -> tuple[np.ndarray, ...]:
        """The arrays the compiled walk reads, in its argument order (latency parameters excluded)."""
        return tuple(getattr(self, f.name) for f in fields(self)[:19])


@dataclass(frozen=True, eq=False)
class Walked:
    """What one policy did to a chunk's requests (see module docstring)."""

    cost: np.ndarray  # (n,)
    lat: np.ndarray
    gate: np.ndarray
    outcome: np.ndarray  # int8: GOOD, BAD, FAILED, HUMAN_REVIEW
    answer_model: np.ndarray  # int64: model index, M for human review, -1 none
    esc: np.ndarray  # bool
    fb: np.ndarray  # bool
    tokens: np.ndarray  # (S, n) token spend per step
    tries: np.ndarray  # (S, C) int64 provider tries
    successes: np.ndarray  # (S, C) int64 answered tries
    slow: np.ndarray  # (S, C) int64 answered tries slower than the model's timeout
    outcomes: np.ndarray  # (C, 5) int64 requests by outcome code
    escalated: np.ndarray  # (C,) int64
    fell_back: np.ndarray  # (C,) int64
    answered: np.ndarray  # (C, M + 1) int64 delivered answers by model (column M: human review)


def _timeouts_numpy(K: np.ndarray, v: np.ndarray, t: np.ndarray) -> np.ndarray:
    """Binomial(K, t) quantile of ``v`` by summing the pmf (``pmf_{j+1} = pmf_j ((K - j) t) / ((j + 1)(1 - t))``)."""
    out = np.zeros(K.shape, dtype=np.int64)
    inner = np.flatnonzero((t > 0) & (t < 1))
    out[t >= 1] = K[t >= 1]
    if inner.size == 0:
        return out
    K, v, t = K[inner], v[inner], t[inner]
    s = 1 - t
    pmf = s.copy()
    for _ in range(1, int(K.max())):
        more = _ < K
        pmf = np.where(more, pmf * s, pmf)
    cdf = pmf.copy()
    j = np.zeros(K.shape, dtype=np.int64)
    active = (v >= cdf) & (j < K)
    while active.any():
        pmf = np.where(active, pmf * ((K - j) * t) / ((j + 1) * s), pmf)
        cdf = np.where(active, cdf + pmf, cdf)
        j = j + active
        active = active & (v >= cdf) & (j < K)
    out[inner] = j
    return out


def _failed_tries_numpy(u: np.ndarray, f: np.ndarray, r: np.ndarray, t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For requests with ``u < f``: failed tries ``K`` and timeouts among them (module docstring, step 1)."""
    K = np.ones(u.shape, dtype=np.int64)
    hi = f.copy()
    pw = f * f
    lo = np.where(r >= 1, pw, 0.0)
    active = (r >= K) & (u < pw)
    while active.any():
        K = K + active
        hi = np.where(active, pw, hi)
        pw = np.where(active, pw * f, pw)
        lo = np.where(active, np.where(r >= K, pw, 0.0), lo)
        active = active & (r >= K) & (u < pw)
    v = (u - lo) / (hi - lo)
    return K, _timeouts_numpy(K, v, t)


def walk_numpy(
    T: StepTable,
    cat: np.ndarray,
    x: np.ndarray,
    y: np.ndarray,
    u_fail: np.ndarray,
    u_good: np.ndarray,
    alat: np.ndarray,
    q: np.ndarray | None,
    backoff: float,
    human_cost: float,
    human_latency: float,
    bill_failed_input: bool,
    n_models: int,
    ws: Workspace | None = None,
) -> Walked:
    """Walk every request through the chains, vectorized per step (see module docstring).

    ``cat`` is sorted, so the requests at a step are too: a per-category parameter becomes a per-request array
    with one ``np.repeat`` over the step's category counts, and per-category counts are ``reduceat`` sums.
    Requests abandoned at a step stay in that step's arrays with a mask (multiplying by it leaves the others'
    values bit for bit), which is cheaper than compacting every array again.
    """
    n = cat.size
    S, C = T.model.shape
    out = _empty(n, S, C, n_models, ws)
    cost, lat, gate, outcome, answer_model = out.cost, out.lat, out.gate, out.outcome, out.answer_model
    at_step = np.zeros(n, dtype=np.int8) if S < 127 else np.zeros(n, dtype=np.int64)
    for s in range(min(S, u_fail.shape[0])):
        if s == 0:
            rows = slice(None)
            k, kc = cat, np.bincount(cat, minlength=C)
            u, w, answer_lat, xs, ys = u_fail[0], u_good[0], alat[0], x, y
            index = None
        else:
            index = np.flatnonzero(at_step == s)
            if index.size == 0:
                continue
            rows = index
            k = cat[index]
            kc = np.bincount(k, minlength=C)
            u, w, answer_lat, xs, ys = u_fail[s, index], u_good[s, index], alat[s, index], x[index], y[index]
        at_step[rows] = -1  # settled here unless routed on below
        starts = np.cumsum(kc) - kc
        per_row = lambda a, kc=kc: np.repeat(a[s], kc)  # noqa: B023 - used within this step only
        ns = k.size
        out.tries[s] = kc
        failing = np.flatnonzero(u < per_row(T.fail))
        live = None
        fail_lat = fail_cost = None
        if failing.size:
            kf = k[failing]
            r = T.retries[s, kf]
            Kf, Tf = _failed_tries_numpy(u[failing], T.fail[s, kf], r, T.timeout_share[s, kf])
            lat_f = Tf * T.timeout_s[s, kf] + (Kf - Tf) * T.error_latency_s[s, kf] + backoff * np.minimum(Kf, r)
            cost_f = Kf * xs[failing] * T.price_in[s, kf] if bill_failed_input else np.zeros(failing.size)
            abandoned = Kf > r
            out.tries[s] += np.bincount(kf, weights=Kf - abandoned, minlength=C).astype(np.int64)
            fail_lat, fail_cost = np.zeros(ns), np.zeros(ns)
            fail_lat[failing] = lat_f
            fail_cost[failing] = cost_f
            if abandoned.any():
                ab = failing[abandoned]
                gone = ab if index is None else index[ab]
                out.fb[gone] = True  # their failed tries' cost and latency are added with the others' below
                _route(gone, T.on_failure[s, kf[abandoned]], outcome, at_step)
                live = np.ones(ns, dtype=bool)
                live[ab] = False
        tokens = xs * per_row(T.price_in_eff)
        tokens += ys * per_row(T.price_out)
        qs = per_row(T.q) if q is None else q[s, rows]
        good = w < qs
        gated = per_row(T.gated)
        reject = gated & (good & (w < qs * per_row(T.false_reject)) | ~good & (w < qs + (1 - qs) * per_row(T.catch)))
        if live is not None:  # abandoned: no answer, no spend, nothing settled here
            tokens *= live
            answer_lat = answer_lat * live
            good &= live
            reject &= live
        spend = tokens if fail_cost is None else fail_cost + tokens
        step_lat = answer_lat if fail_lat is None else fail_lat + answer_lat
        if T.gated[s].any():
            g = gated * (per_row(T.gate_cost_call) + (xs + ys * per_row(T.ratio)) * per_row(T.gate_cost_token))
            g_lat = gated * per_row(T.gate_latency_s)
            if live is not None:
                g *= live
                g_lat *= live
            cost[rows] += spend + g
            lat[rows] += step_lat + g_lat
            gate[rows] += g
        else:
            cost[rows] += spend
            lat[rows] += step_lat
        out.tokens[s, rows] = spend
        out.successes[s] = kc if live is None else _run_count(live, starts, kc)
        out.slow[s] = _run_count(answer_lat > per_row(T.timeout_s), starts, kc)
        code = BAD - good.view(np.int8)
        mdl = per_row(T.model)
        acc = ~reject if live is None else live & ~reject
        here = np.flatnonzero(acc)
        to = here if index is None else index[here]
        outcome[to] = code[here]
        answer_model[to] = mdl[here]
        rj = np.flatnonzero(reject)
        if rj.size:
            rrows = rj if index is None else index[rj]
            out.esc[rrows] = True
            target = T.on_reject[s, k[rj]]
            dl = target == DELIVER
            outcome[rrows[dl]] = code[rj[dl]]
            answer_model[rrows[dl]] = mdl[rj[dl]]
            hr = rrows[target == HUMAN]
            outcome[hr] = HUMAN_REVIEW
            answer_model[hr] = n_models
            cost[hr] += human_cost
            lat[hr] += human_latency
            _route(rrows, target, outcome, at_step)
    _count(out, cat, C, n_models)
    return out


def _run_count(mask: np.ndarray, starts: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """Per category, how many of its (contiguous) rows ``mask`` marks."""
    out = np.zeros(counts.size, dtype=np.int64)
    present = np.flatnonzero(counts)
    if present.size:
        out[present] = np.add.reduceat(mask, starts[present], dtype=np.int64)
    return out


def _route(rows: np.ndarray, target: np.ndarray, outcome: np.ndarray, at_step: np.ndarray) -> None:
    """Send ``rows`` to their ``target`` if it is a later step or a failure (the caller settles the others)."""
    later = target >= 0
    at_step[rows[later]] = target[later]
    outcome[rows[target == FAIL]] = FAILED


class Workspace:
    """Reusable buffers, one set per thread.

    Allocating the chunk-sized arrays afresh for every chunk makes the kernel map and zero new pages each time
    (page faults were 15-43 % of CPU at 10^7-10^8 requests); reusing them keeps the pages mapped.
    """

    def __init__(self) -> None:
        self._bufs: dict[str, np.ndarray] = {}

    def get(self, name: str, shape: tuple[int, ...], dtype: Any = np.float64, fill: Any = None) -> np.ndarray:
        """A C-contiguous array of ``shape`` named ``name`` (contents undefined unless ``fill`` is given)."""
        size = int(np.prod(shape))
        buf = self._bufs.get(name)
        if buf is None or buf.size < size or buf.dtype != np.dtype(dtype):
            buf = np.empty(size, dtype=dtype)
            self._bufs[name] = buf
        out = buf[:size].reshape(shape)
        if fill is not None:
            out.fill(fill)
        return out


def _empty(n: int, S: int, C: int, M: int, ws: Workspace | None, per_request_fill: bool = True) -> Walked:
    """Output arrays; per-request ones initialised (cost 0, no outcome, ...) unless the kernel does it."""
    ws = ws or Workspace()
    f = (lambda v: v) if per_request_fill else (lambda v: None)
    return Walked(
        cost=ws.get("cost", (n,), fill=f(0.0)),
        lat=ws.get("lat", (n,), fill=f(0.0)),
        gate=ws.get("gate", (n,), fill=f(0.0)),
        outcome=ws.get("outcome", (n,), np.int8, fill=f(PENDING)),
        answer_model=ws.get("answer_model", (n,), np.int64, fill=f(-1)),
        esc=ws.get("esc", (n,), bool, fill=f(False)),
        fb=ws.get("fb", (n,), bool, fill=f(False)),
        tokens=ws.get("tokens", (S, n), fill=f(0.0)),
        tries=ws.get("tries", (S, C), np.int64, fill=0),
        successes=ws.get("successes", (S, C), np.int64, fill=0),
        slow=ws.get("slow", (S, C), np.int64, fill=0),
        outcomes=ws.get("outcomes", (C, 5), np.int64, fill=0),
        escalated=ws.get("escalated", (C,), np.int64, fill=0),
        fell_back=ws.get("fell_back", (C,), np.int64, fill=0),
        answered=ws.get("answered", (C, M + 1), np.int64, fill=0),
    )


def _count(out: Walked, cat: np.ndarray, C: int, M: int) -> None:
    """Integer counts per category (exact, so they do not depend on the order of summation)."""
    counts = np.bincount(cat, minlength=C)
    starts = np.cumsum(counts) - counts
    for code in (GOOD, BAD, FAILED, HUMAN_REVIEW):
        out.outcomes[:, code] = _run_count(out.outcome == code, starts, counts)
    out.escalated[:] = _run_count(out.esc, starts, counts)
    out.fell_back[:] = _run_count(out.fb, starts, counts)
    answered = out.answer_model >= 0
    out.answered[:] = np.bincount(cat[answered] * (M + 1) + out.answer_model[answered], minlength=C * (M + 1)).reshape(
        C, M + 1
    )


# ---------------------------------------------------------------------------------------------------------
# The compiled twin


_NUMBA: Any = None  # the compiled kernel, once built; False when numba is not installed


def numba_available() -> bool:
    """Whether the compiled walk can be used (``pip install routecalc[fast]``); compiles it on first call."""
    return _kernel() is not None


def _kernel() -> Any:
    global _NUMBA
    if _NUMBA is None:
        try:
            import numba  # noqa: F401
        except ImportError:
            _NUMBA = False
        else:
            _NUMBA = _compile()
    return _NUMBA or None


_FLOATS = (
    "fail",
    "timeout_share",
    "timeout_s",
    "error_latency_s",
    "price_in",
    "price_in_eff",
    "price_out",
    "ratio",
    "q",
    "catch",
    "false_reject",
    "gate_cost_call",
    "gate_cost_token",
    "gate_latency_s",
)
_INTS = ("model", "retries", "gated", "on_reject", "on_failure")


def pack(T: StepTable) -> tuple[np.ndarray, np.ndarray]:
    """The step table as two contiguous blocks, ``(14, S, C)`` floats and ``(5, S, C)`` ints, for the kernel."""
    floats = np.ascontiguousarray(np.stack([getattr(T, f) for f in _FLOATS]), dtype=np.float64)
    ints = np.ascontiguousarray(np.stack([getattr(T, f) for f in _INTS]), dtype=np.int64)
    return floats, ints


def walk_numba(
    T: StepTable,
    cat: np.ndarray,
    x: np.ndarray,
    y: np.ndarray,
    u_fail: np.ndarray,
    u_good: np.ndarray,
    alat: np.ndarray,
    q: np.ndarray | None,
    backoff: float,
    human_cost: float,
    human_latency: float,
    bill_failed_input: bool,
    n_models: int,
    ws: Workspace | None = None,
    packed: tuple[np.ndarray, np.ndarray] | None = None,
) -> Walked:
    """:func:`walk_numpy`, compiled: the same arithmetic in the same order, one request at a time."""
    kernel = _kernel()
    if kernel is None:
        raise RuntimeError("numba is not installed (pip install routecalc[fast])")
    n = cat.size
    S, C = T.model.shape
    steps = min(S, u_fail.shape[0])
    out = _empty(n, S, C, n_models, ws, per_request_fill=False)
    floats, ints = packed if packed is not None else pack(T)
    qq = np.zeros((0, 0)) if q is None else q
    kernel(
        floats, ints, cat, x, y, u_fail, u_good, alat, qq, q is not None, steps,
        float(backoff), float(human_cost), float(human_latency), bool(bill_failed_input), int(n_models),
        out.cost, out.lat, out.gate, out.outcome, out.answer_model, out.esc, out.fb, out.tokens,
        out.tries, out.successes, out.slow, out.outcomes, out.escalated, out.fell_back, out.answered,
    )  # fmt: skip
    return out


def _compile() -> Any:
    from numba import njit

    FAIL_, TSHARE, TIMEOUT, ERRLAT, PIN, PINEFF, POUT, RATIO, Q, CATCH, FREJ, GCALL, GTOK, GLAT = range(14)
    MODEL, RETRIES, GATED, ONREJ, ONFAIL = range(5)

    @njit(nogil=True, cache=True)
    def kernel(
        FP, IP, cat, x, y, u_fail, u_good, alat, q, per_request_q, steps, backoff, human_cost, human_latency, bill,
        n_models, cost, lat, gate, outcome, answer_model, esc, fb, tokens_out, tries, successes, slow,
        n_outcome, n_esc, n_fb, n_answered,
    ):  # fmt: skip
        for i in range(cat.size):
            c = cat[i]
            cost[i] = 0.0
            lat[i] = 0.0
            gate[i] = 0.0
            outcome[i] = 0
            answer_model[i] = -1
            esc[i] = False
            fb[i] = False
            for s in range(tokens_out.shape[0]):
                tokens_out[s, i] = 0.0
            s = 0
            while s < steps:
                u = u_fail[s, i]
                f = FP[FAIL_, s, c]
                r = IP[RETRIES, s, c]
                K = 0
                fail_lat = 0.0
                fail_cost = 0.0
                if u < f:
                    K = 1
                    hi = f
                    pw = f * f
                    lo = pw if r >= 1 else 0.0
                    while r >= K and u < pw:
                        K += 1
                        hi = pw
                        pw = pw * f
                        lo = pw if r >= K else 0.0
                    v = (u - lo) / (hi - lo)
                    t = FP[TSHARE, s, c]
                    n_to = 0
                    if t >= 1:
                        n_to = K
                    elif t > 0:
                        sh = 1 - t
                        pmf = sh
                        for _ in range(1, K):
                            pmf = pmf * sh
                        cdf = pmf
                        j = 0
                        while v >= cdf and j < K:
                            pmf = pmf * ((K - j) * t) / ((j + 1) * sh)
                            cdf = cdf + pmf
                            j += 1
                        n_to = j
                    fail_lat = n_to * FP[TIMEOUT, s, c] + (K - n_to) * FP[ERRLAT, s, c] + backoff * min(K, r)
                    if bill:
                        fail_cost = K * x[i] * FP[PIN, s, c]
                abandoned = r < K
                tries[s, c] += K + (0 if abandoned else 1)
                if abandoned:
                    fb[i] = True
                    cost[i] += fail_cost
                    lat[i] += fail_lat
                    tokens_out[s, i] = fail_cost
                    tgt = IP[ONFAIL, s, c]
                    if tgt >= 0:
                        s = tgt
                        continue
                    outcome[i] = 3  # FAILED
                    break
                xs = x[i]
                ys = y[i]
                tok = xs * FP[PINEFF, s, c] + ys * FP[POUT, s, c]
                answer_lat = alat[s, i]
                qs = q[s, i] if per_request_q else FP[Q, s, c]
                w = u_good[s, i]
                good = w < qs
                g = 0.0
                g_lat = 0.0
                reject = False
                if IP[GATED, s, c]:
                    g = FP[GCALL, s, c] + (xs + ys * FP[RATIO, s, c]) * FP[GTOK, s, c]
                    g_lat = FP[GLAT, s, c]
                    reject = w < qs * FP[FREJ, s, c] if good else w < qs + (1 - qs) * FP[CATCH, s, c]
                spend = fail_cost + tok
                cost[i] += spend + g
                lat[i] += (fail_lat + answer_lat) + g_lat
                gate[i] += g
                tokens_out[s, i] = spend
                successes[s, c] += 1
                if answer_lat > FP[TIMEOUT, s, c]:
                    slow[s, c] += 1
                code = 1 if good else 2
                if not reject:
                    outcome[i] = code
                    answer_model[i] = IP[MODEL, s, c]
                    break
                esc[i] = True
                tgt = IP[ONREJ, s, c]
                if tgt == -2:  # DELIVER
                    outcome[i] = code
                    answer_model[i] = IP[MODEL, s, c]
                    break
                if tgt == -3:  # HUMAN
                    outcome[i] = 4
                    answer_model[i] = n_models
                    cost[i] += human_cost
                    lat[i] += human_latency
                    break
                if tgt >= 0:
                    s = tgt
                    continue
                outcome[i] = 3  # FAILED
                break
            n_outcome[c, outcome[i]] += 1
            if esc[i]:
                n_esc[c] += 1
            if fb[i]:
                n_fb[c] += 1
            if answer_model[i] >= 0:
                n_answered[c, answer_model[i]] += 1

    return kernel
