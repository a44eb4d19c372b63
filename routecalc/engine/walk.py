"""The chain walk of the Monte Carlo engine: requests through one policy's chains, given their random numbers.

Everything random is drawn before the walk (:mod:`routecalc.engine.mc`): per request and chain step a uniform for
provider failures (``u_fail``), a uniform for the answer and its gate (``u_good``), the answer's latency and,
where outcomes are not independent, its pass probability; per request its lane (``key = category x L + lane``).
The walk itself uses only ``+ - * /`` and comparisons, so its two implementations give the same bits:

* :func:`walk_numpy` — vectorized numpy, one step at a time over the requests routed there (always available);
* :func:`walk_numba` — the same arithmetic as a compiled loop per request (``pip install routecalc[fast]``).

Per request at step ``s`` on catalog entry ``m`` (parameters per step and key, ``T.<name>[s, key]``):

0. A prompt longer than the window the engines enforce for (category, model) skips the step (a fast error,
   nothing billed) to ``on_overflow``.
1. Failed tries ``K = #{j in 1..1+r : u < f^j}`` (geometric, capped), powers by repeated multiplication. If
   ``K > 0``, ``v = (u - lo) / (hi - lo)`` is uniform on [0, 1) given ``K`` (``hi = f^K``, ``lo = f^(K+1)``, or 0
   when all ``1 + r`` tries failed); it decides each failed try's error type in turn (inverse CDF of the type
   shares, then ``v`` rescaled within the chosen type). A content-filter refusal is not retried: the step is
   abandoned there. Failed tries cost ``timeout_s`` (timeouts) or ``error_latency_s`` each, plus the backoff per
   retry, and, if billed, ``x p_in`` each. Abandoned -> ``on_failure`` of the deciding try's type.
2. Answer: ``tokens = x p_in' + y p_out' + call cost`` (cache share and output ratio folded in), latency as
   given; good iff ``u_good < q``.
3. Gate (gated steps and tools): ``g = call + (x + y ratio) per_token``; the same uniform decides the verdict:
   a good answer is rejected iff ``u_good < q false_reject``, a bad one iff ``u_good < q + (1 - q) catch`` (each
   has the right probability given good/bad). Rejected -> ``on_reject``: a later step, deliver, human review,
   fail. A tool's gate is its hit: it never rejects a right answer and always a miss.

Per request the walk returns total cost, latency, gate spend, outcome, answering entry and the escalation /
fallback / overflow flags; per step the token spend per request (summed by the caller, so both implementations
share the order of every floating-point sum) and integer counts per (step, key) and per category.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

import numpy as np

from routecalc.chains import DELIVER, FAIL, HUMAN

PENDING, GOOD, BAD, FAILED, HUMAN_REVIEW = 0, 1, 2, 3, 4


@dataclass(frozen=True, eq=False)
class StepTable:
    """One policy's chain parameters per (step, key), shape ``(S, K)`` with ``key = category x L + lane``.

    Money per token (``call_cost`` per call), seconds. ``cum0..2``: cumulative shares of failures that are
    timeouts, then 5xx, then 429 (the rest are content-filter refusals); ``on_<type>``: where each goes.
    """

    fail: np.ndarray
    price_in: np.ndarray  # what a failed try bills per input token (if billed)
    price_in_eff: np.ndarray  # input price with the category's prompt-cache share
    price_out: np.ndarray  # per band output token: price x output_ratio
    ratio: np.ndarray  # output_ratio (tokens a gate reads)
    call_cost: np.ndarray
    q: np.ndarray  # pass rate when outcomes are independent
    catch: np.ndarray
    false_reject: np.ndarray
    gate_cost_call: np.ndarray
    gate_cost_token: np.ndarray
    gate_latency_s: np.ndarray
    timeout_s: np.ndarray
    error_latency_s: np.ndarray
    window: np.ndarray
    cum0: np.ndarray
    cum1: np.ndarray
    cum2: np.ndarray
    model: np.ndarray  # int64, -1 where the chain has no such step
    retries: np.ndarray
    gated: np.ndarray  # 1 where a validator or a tool's own gate reads the answer
    on_reject: np.ndarray
    on_overflow: np.ndarray
    on_timeout: np.ndarray
    on_5xx: np.ndarray
    on_429: np.ndarray
    on_refusal: np.ndarray
    ttft_mu: np.ndarray  # answer latency = LogNormal(ttft) + y x ratio x LogNormal(tpot), drawn by the caller
    ttft_sigma: np.ndarray
    tpot_mu: np.ndarray
    tpot_sigma: np.ndarray


_FLOATS = tuple(f.name for f in fields(StepTable))[:18]
_INTS = tuple(f.name for f in fields(StepTable))[18:27]


def pack(T: StepTable) -> tuple[np.ndarray, np.ndarray]:
    """The step table as two contiguous blocks, ``(18, S, K)`` floats and ``(9, S, K)`` ints, for the kernel."""
    floats = np.ascontiguousarray(np.stack([getattr(T, f) for f in _FLOATS]), dtype=np.float64)
    ints = np.ascontiguousarray(np.stack([getattr(T, f) for f in _INTS]), dtype=np.int64)
    return floats, ints


@dataclass(frozen=True, eq=False)
class Walked:
    """What one policy did to a chunk's requests (see module docstring)."""

    cost: np.ndarray  # (n,)
    lat: np.ndarray
    gate: np.ndarray
    outcome: np.ndarray  # int8: GOOD, BAD, FAILED, HUMAN_REVIEW
    answer_model: np.ndarray  # int64: catalog index, M for human review, -1 none
    esc: np.ndarray  # bool
    fb: np.ndarray  # bool
    ovf: np.ndarray  # bool: skipped a step whose window the prompt exceeds
    tokens: np.ndarray  # (S, n) token spend per step
    tries: np.ndarray  # (S, K) int64 provider tries
    successes: np.ndarray  # (S, K) int64 answered tries
    slow: np.ndarray  # (S, K) int64 answered tries slower than the model's timeout
    served: np.ndarray  # (S, K) int64 requests delivered (or sent to review) at the step
    outcomes: np.ndarray  # (C, 5) int64 requests by outcome code
    escalated: np.ndarray  # (C,) int64
    fell_back: np.ndarray  # (C,) int64
    overflowed: np.ndarray  # (C,) int64
    answered: np.ndarray  # (C, M + 1) int64 delivered answers by catalog entry (column M: human review)


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


def _empty(n: int, S: int, K: int, C: int, M: int, ws: Workspace | None, per_request_fill: bool = True) -> Walked:
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
        ovf=ws.get("ovf", (n,), bool, fill=f(False)),
        tokens=ws.get("tokens", (S, n), fill=f(0.0)),
        tries=ws.get("tries", (S, K), np.int64, fill=0),
        successes=ws.get("successes", (S, K), np.int64, fill=0),
        slow=ws.get("slow", (S, K), np.int64, fill=0),
        served=ws.get("served", (S, K), np.int64, fill=0),
        outcomes=ws.get("outcomes", (C, 5), np.int64, fill=0),
        escalated=ws.get("escalated", (C,), np.int64, fill=0),
        fell_back=ws.get("fell_back", (C,), np.int64, fill=0),
        overflowed=ws.get("overflowed", (C,), np.int64, fill=0),
        answered=ws.get("answered", (C, M + 1), np.int64, fill=0),
    )


# ---------------------------------------------------------------------------------------------------------
# numpy


def _failed_tries_numpy(
    u: np.ndarray, f: np.ndarray, r: np.ndarray, cums: tuple[np.ndarray, np.ndarray, np.ndarray]
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """For requests with ``u < f``: failed tries ``K``, timeouts among them, and the deciding try's error type
    (0 timeout, 1 5xx, 2 429, 3 refusal; -1 none: an answer followed). See the module docstring, step 1."""
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
    c0, c1, c2 = cums
    timeouts = np.zeros(K.shape, dtype=np.int64)
    last = np.full(K.shape, -1, dtype=np.int64)
    tries = np.zeros(K.shape, dtype=np.int64)
    going = K > 0
    for _ in range(int(K.max())):
        kind = (v >= c0).astype(np.int64) + (v >= c1) + (v >= c2)
        lower = np.where(kind == 0, 0.0, np.where(kind == 1, c0, np.where(kind == 2, c1, c2)))
        upper = np.where(kind == 0, c0, np.where(kind == 1, c1, np.where(kind == 2, c2, 1.0)))
        v = np.where(going, (v - lower) / (upper - lower), v)
        tries += going
        timeouts += going & (kind == 0)
        last = np.where(going, kind, last)
        going = going & (kind != 3) & (tries < K)
    K = tries
    decided = np.where((last == 3) | (r < K), last, -1)
    return K, timeouts, decided


def walk_numpy(
    T: StepTable,
    key: np.ndarray,
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
    n_categories: int,
    ws: Workspace | None = None,
) -> Walked:
    """Walk every request through the chains, vectorized per step (see module docstring).

    When ``key`` is sorted (one lane per category), so are the requests at each step, and a per-key parameter
    becomes a per-request array with one ``np.repeat`` over the step's key counts.
    """
    n = key.size
    S, K = T.model.shape
    C = n_categories
    out = _empty(n, S, K, C, n_models, ws)
    cost, lat, gate, outcome, answer_model = out.cost, out.lat, out.gate, out.outcome, out.answer_model
    at_step = np.zeros(n, dtype=np.int8) if S < 127 else np.zeros(n, dtype=np.int64)
    ordered = bool(n < 2 or (key[1:] >= key[:-1]).all())
    for s in range(min(S, u_fail.shape[0])):
        if s == 0:
            index = None
            rows: Any = slice(None)
            k = key
            u, w, answer_lat, xs, ys = u_fail[0], u_good[0], alat[0], x, y
        else:
            index = np.flatnonzero(at_step == s)
            if index.size == 0:
                continue
            rows = index
            k = key[index]
            u, w, answer_lat, xs, ys = u_fail[s, index], u_good[s, index], alat[s, index], x[index], y[index]
        at_step[rows] = -1  # settled here unless routed on below
        kc = np.bincount(k, minlength=K)
        per_row = _PerRow(s, k, kc, ordered)
        ns = k.size
        out.tries[s] = kc

        # 0. prompts longer than the window skip the step
        skip = xs > per_row(T.window)
        live = None
        if skip.any():
            sk = np.flatnonzero(skip)
            gone = sk if index is None else index[sk]
            out.ovf[gone] = True
            out.tries[s] -= np.bincount(k[sk], minlength=K)
            live = ~skip

        # 1. provider tries
        failing = np.flatnonzero((u < per_row(T.fail)) & ~skip)
        fail_lat = fail_cost = None
        if failing.size:
            kf = k[failing]
            r = T.retries[s, kf]
            Kf, Tf, decided = _failed_tries_numpy(
                u[failing], T.fail[s, kf], r, (T.cum0[s, kf], T.cum1[s, kf], T.cum2[s, kf])
            )
            retries = np.where(decided >= 0, Kf - 1, Kf)
            lat_f = Tf * T.timeout_s[s, kf] + (Kf - Tf) * T.error_latency_s[s, kf] + backoff * retries
            cost_f = Kf * xs[failing] * T.price_in[s, kf] if bill_failed_input else np.zeros(failing.size)
            abandoned = decided >= 0
            out.tries[s] += np.bincount(kf, weights=Kf - abandoned, minlength=K).astype(np.int64)
            fail_lat, fail_cost = np.zeros(ns), np.zeros(ns)
            fail_lat[failing] = lat_f
            fail_cost[failing] = cost_f
            if abandoned.any():
                ab = failing[abandoned]
                gone = ab if index is None else index[ab]
                out.fb[gone] = True  # their failed tries' cost and latency are added with the others' below
                targets = np.stack([T.on_timeout[s], T.on_5xx[s], T.on_429[s], T.on_refusal[s]])
                _route(gone, targets[decided[abandoned], kf[abandoned]], outcome, at_step)
                live = np.ones(ns, dtype=bool) if live is None else live
                live[ab] = False
        if skip.any():
            sk = np.flatnonzero(skip)
            fail_lat = np.zeros(ns) if fail_lat is None else fail_lat
            fail_lat[sk] = T.error_latency_s[s, k[sk]]
            fail_cost = np.zeros(ns) if fail_cost is None else fail_cost
            _route(sk if index is None else index[sk], T.on_overflow[s, k[sk]], outcome, at_step)

        # 2. answer
        tokens = xs * per_row(T.price_in_eff)
        tokens += ys * per_row(T.price_out)
        tokens += per_row(T.call_cost)
        qs = per_row(T.q) if q is None else q[s, rows]
        good = w < qs
        gated = per_row(T.gated).astype(bool)
        reject = gated & (good & (w < qs * per_row(T.false_reject)) | ~good & (w < qs + (1 - qs) * per_row(T.catch)))
        if live is not None:  # abandoned or skipped: no answer, no spend, nothing settled here
            tokens *= live
            answer_lat = answer_lat * live
            good &= live
            reject &= live
        spend = tokens if fail_cost is None else fail_cost + tokens
        step_lat = answer_lat if fail_lat is None else fail_lat + answer_lat

        # 3. gate
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
        answered_here = np.ones(ns, dtype=bool) if live is None else live
        out.successes[s] = np.bincount(k[answered_here], minlength=K)
        out.slow[s] = np.bincount(k[answered_here & (answer_lat > per_row(T.timeout_s))], minlength=K)
        code = BAD - good.view(np.int8)
        mdl = per_row(T.model)
        acc = answered_here & ~reject
        here = np.flatnonzero(acc)
        to = here if index is None else index[here]
        outcome[to] = code[here]
        answer_model[to] = mdl[here]
        settled = k[here]
        rj = np.flatnonzero(reject)
        if rj.size:
            rrows = rj if index is None else index[rj]
            out.esc[rrows] = True
            target = T.on_reject[s, k[rj]]
            dl = target == DELIVER
            outcome[rrows[dl]] = code[rj[dl]]
            answer_model[rrows[dl]] = mdl[rj[dl]]
            hr = target == HUMAN
            outcome[rrows[hr]] = HUMAN_REVIEW
            answer_model[rrows[hr]] = n_models
            cost[rrows[hr]] += human_cost
            lat[rrows[hr]] += human_latency
            settled = np.concatenate([settled, k[rj[dl | hr]]])
            _route(rrows, target, outcome, at_step)
        out.served[s] = np.bincount(settled, minlength=K)
    _count(out, cat, C, n_models)
    return out


class _PerRow:
    """A per-(step, key) parameter as a per-request array for the requests at step ``s`` (keys ``k``)."""

    def __init__(self, s: int, k: np.ndarray, counts: np.ndarray, ordered: bool):
        self.s, self.k, self.counts, self.ordered = s, k, counts, ordered

    def __call__(self, a: np.ndarray) -> np.ndarray:
        return np.repeat(a[self.s], self.counts) if self.ordered else a[self.s][self.k]


def _route(rows: np.ndarray, target: np.ndarray, outcome: np.ndarray, at_step: np.ndarray) -> None:
    """Send ``rows`` to their ``target`` if it is a later step or a failure (the caller settles the others)."""
    later = target >= 0
    at_step[rows[later]] = target[later]
    outcome[rows[target == FAIL]] = FAILED


def _count(out: Walked, cat: np.ndarray, C: int, M: int) -> None:
    """Integer counts per category (exact, so they do not depend on the order of summation)."""
    out.outcomes[:] = np.bincount(cat * 5 + out.outcome, minlength=C * 5).reshape(C, 5)
    out.escalated[:] = np.bincount(cat[out.esc], minlength=C)
    out.fell_back[:] = np.bincount(cat[out.fb], minlength=C)
    out.overflowed[:] = np.bincount(cat[out.ovf], minlength=C)
    answered = out.answer_model >= 0
    out.answered[:] = np.bincount(cat[answered] * (M + 1) + out.answer_model[answered], minlength=C * (M + 1)).reshape(
        C, M + 1
    )


# ---------------------------------------------------------------------------------------------------------
# The compiled twin


_NUMBA: Any = None  # the compiled kernel, once built; False when numba is not installed


def numba_available() -> bool:
    """Whether the compiled walk can be used (``pip install routecalc[fast]``); loads it on first call."""
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


def walk_numba(
    T: StepTable,
    key: np.ndarray,
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
    n_categories: int,
    ws: Workspace | None = None,
    packed: tuple[np.ndarray, np.ndarray] | None = None,
) -> Walked:
    """:func:`walk_numpy`, compiled: the same arithmetic in the same order, one request at a time."""
    kernel = _kernel()
    if kernel is None:
        raise RuntimeError("numba is not installed (pip install routecalc[fast])")
    n = key.size
    S, K = T.model.shape
    steps = min(S, u_fail.shape[0])
    out = _empty(n, S, K, n_categories, n_models, ws, per_request_fill=False)
    floats, ints = packed if packed is not None else pack(T)
    qq = np.zeros((0, 0)) if q is None else q
    kernel(
        floats, ints, key, cat, x, y, u_fail, u_good, alat, qq, q is not None, steps,
        float(backoff), float(human_cost), float(human_latency), bool(bill_failed_input), int(n_models),
        out.cost, out.lat, out.gate, out.outcome, out.answer_model, out.esc, out.fb, out.ovf, out.tokens,
        out.tries, out.successes, out.slow, out.served, out.outcomes, out.escalated, out.fell_back,
        out.overflowed, out.answered,
    )  # fmt: skip
    return out


def _compile() -> Any:
    from numba import njit

    (FAIL_, PIN, PINEFF, POUT, RATIO, CALL, Q, CATCH, FREJ, GCALL, GTOK, GLAT, TIMEOUT, ERRLAT, WINDOW, CUM0, CUM1,
     CUM2) = range(18)  # fmt: skip
    MODEL, RETRIES, GATED, ONREJ, ONOVF = range(5)  # then the four error-type targets

    @njit(nogil=True, cache=True)
    def kernel(
        FP, IP, key, cat, x, y, u_fail, u_good, alat, q, per_request_q, steps, backoff, human_cost, human_latency,
        bill, n_models, cost, lat, gate, outcome, answer_model, esc, fb, ovf, tokens_out, tries, successes, slow,
        served, n_outcome, n_esc, n_fb, n_ovf, n_answered,
    ):  # fmt: skip
        for i in range(key.size):
            k = key[i]
            cost[i] = 0.0
            lat[i] = 0.0
            gate[i] = 0.0
            outcome[i] = 0
            answer_model[i] = -1
            esc[i] = False
            fb[i] = False
            ovf[i] = False
            for s in range(tokens_out.shape[0]):
                tokens_out[s, i] = 0.0
            s = 0
            while s < steps:
                tries[s, k] += 1
                if x[i] > FP[WINDOW, s, k]:  # 0. too long for the window: skip
                    tries[s, k] -= 1
                    ovf[i] = True
                    cost[i] += 0.0
                    lat[i] += FP[ERRLAT, s, k]
                    tgt = IP[ONOVF, s, k]
                    if tgt >= 0:
                        s = tgt
                        continue
                    outcome[i] = 3  # FAILED
                    break
                u = u_fail[s, i]
                f = FP[FAIL_, s, k]
                r = IP[RETRIES, s, k]
                K = 0
                fail_lat = 0.0
                fail_cost = 0.0
                decided = -1
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
                    c0, c1, c2 = FP[CUM0, s, k], FP[CUM1, s, k], FP[CUM2, s, k]
                    n_to = 0
                    done = 0
                    last = -1
                    while done < K:
                        kind = (1 if v >= c0 else 0) + (1 if v >= c1 else 0) + (1 if v >= c2 else 0)
                        lower = 0.0 if kind == 0 else (c0 if kind == 1 else (c1 if kind == 2 else c2))
                        upper = c0 if kind == 0 else (c1 if kind == 1 else (c2 if kind == 2 else 1.0))
                        v = (v - lower) / (upper - lower)
                        done += 1
                        if kind == 0:
                            n_to += 1
                        last = kind
                        if kind == 3:
                            break
                    K = done
                    if last == 3 or r < K:
                        decided = last
                    n_retries = K - 1 if decided >= 0 else K
                    fail_lat = n_to * FP[TIMEOUT, s, k] + (K - n_to) * FP[ERRLAT, s, k] + backoff * n_retries
                    if bill:
                        fail_cost = K * x[i] * FP[PIN, s, k]
                abandoned = decided >= 0
                tries[s, k] += K - (1 if abandoned else 0)
                if abandoned:
                    fb[i] = True
                    cost[i] += fail_cost
                    lat[i] += fail_lat
                    tokens_out[s, i] = fail_cost
                    tgt = IP[5 + decided, s, k]
                    if tgt >= 0:
                        s = tgt
                        continue
                    outcome[i] = 3  # FAILED
                    break
                xs = x[i]
                ys = y[i]
                tok = xs * FP[PINEFF, s, k]
                tok += ys * FP[POUT, s, k]
                tok += FP[CALL, s, k]
                answer_lat = alat[s, i]
                qs = q[s, i] if per_request_q else FP[Q, s, k]
                w = u_good[s, i]
                good = w < qs
                g = 0.0
                g_lat = 0.0
                reject = False
                if IP[GATED, s, k]:
                    g = FP[GCALL, s, k] + (xs + ys * FP[RATIO, s, k]) * FP[GTOK, s, k]
                    g_lat = FP[GLAT, s, k]
                    reject = w < qs * FP[FREJ, s, k] if good else w < qs + (1 - qs) * FP[CATCH, s, k]
                spend = fail_cost + tok
                cost[i] += spend + g
                lat[i] += (fail_lat + answer_lat) + g_lat
                gate[i] += g
                tokens_out[s, i] = spend
                successes[s, k] += 1
                if answer_lat > FP[TIMEOUT, s, k]:
                    slow[s, k] += 1
                code = 1 if good else 2
                if not reject:
                    outcome[i] = code
                    answer_model[i] = IP[MODEL, s, k]
                    served[s, k] += 1
                    break
                esc[i] = True
                tgt = IP[ONREJ, s, k]
                if tgt == -2:  # DELIVER
                    outcome[i] = code
                    answer_model[i] = IP[MODEL, s, k]
                    served[s, k] += 1
                    break
                if tgt == -3:  # HUMAN
                    outcome[i] = 4
                    answer_model[i] = n_models
                    cost[i] += human_cost
                    lat[i] += human_latency
                    served[s, k] += 1
                    break
                if tgt >= 0:
                    s = tgt
                    continue
                outcome[i] = 3  # FAILED
                break
            c = cat[i]
            n_outcome[c, outcome[i]] += 1
            if esc[i]:
                n_esc[c] += 1
            if fb[i]:
                n_fb[c] += 1
            if ovf[i]:
                n_ovf[c] += 1
            if answer_model[i] >= 0:
                n_answered[c, answer_model[i]] += 1

    return kernel
