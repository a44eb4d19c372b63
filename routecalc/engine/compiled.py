"""The compiled twin of :func:`routecalc.engine.numpy_walk.walk_numpy`: the same arithmetic in the same order, one
request at a time, as a numba kernel (``pip install routecalc[fast]``).

Besides what the numpy walk returns, the kernel sums what the Monte Carlo engine needs while it walks, so a chunk
is not read again: per category the sums of cost, cost², latency, latency², gate spend and deadline waste
(``Walked.sums``), per (leg, step, key) the token spend (``Walked.tok_sums``) and, with ``bins``, per request its
latency-histogram bin (``Walked.bin_key``), or its count in the caller's histogram (``Walked.binned``). Each sum adds the requests in row order, as ``np.bincount`` does, so
:func:`routecalc.engine.chunk.walk_sums` gives the same bits from the numpy walk's per-request arrays; a bin is defined
by the histogram's edges (:func:`routecalc.engine.histogram.latency_bins`), not by a logarithm, so the two cannot
disagree on it either.

Four builds, by compile-time constants: with or without hedged steps, and "summed" (``per_request=False``, no
mask, no trace: the per-request arrays are left unwritten and the Monte Carlo engine reads only the sums and the
counts) or full. Dropping the code a walk cannot reach makes the loop about 10 % faster.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

from routecalc.engine.histogram import GUESS_SHIFT, bin_table
from routecalc.engine.walk import (
    _FLOAT_ROW,
    _FLOATS,
    _INTS,
    Draws,
    Settings,
    StepTable,
    Walked,
    Workspace,
    pack,
    walked_arrays,
)

_NUMBA: dict[tuple[bool, bool], Any] = {}  # the compiled kernels by ``(hedging, summed)``, once built
_HAVE_NUMBA: bool | None = None
SUMS = ("cost", "cost2", "lat", "lat2", "gate", "waste")  # the columns of ``Walked.sums``


def numba_available() -> bool:
    """Whether the compiled walk can be used (``pip install routecalc[fast]``)."""
    global _HAVE_NUMBA
    if _HAVE_NUMBA is None:
        try:
            import numba  # noqa: F401
        except ImportError:
            _HAVE_NUMBA = False
        else:
            _HAVE_NUMBA = True
    return _HAVE_NUMBA


def _kernel(hedging: bool, summed: bool) -> Any:
    if not numba_available():
        raise RuntimeError("numba is not installed (pip install routecalc[fast])")
    if (hedging, summed) not in _NUMBA:
        _NUMBA[hedging, summed] = _compile(hedging, summed)
    return _NUMBA[hedging, summed]


def walk_numba(
    T: StepTable,
    key: np.ndarray,
    cat: np.ndarray,
    x: np.ndarray,
    y: np.ndarray,
    d: Draws,
    cfg: Settings,
    ws: Workspace | None = None,
    packed: tuple[np.ndarray, np.ndarray] | None = None,
    mask: np.ndarray | None = None,
    trace: bool = False,
    per_request: bool = True,
    bins: int = 0,
    counts: np.ndarray | None = None,
) -> Walked:
    """:func:`~routecalc.engine.numpy_walk.walk_numpy`, compiled, plus the sums of the module docstring.

    ``bins``: the latency histogram's bins per decade, to fill ``Walked.bin_key`` (``category x B + bin``, ``B``
    bins in all, :func:`~routecalc.engine.histogram.latency_bins`); 0: no bins. ``counts`` ``(C x B,)`` int32, with
    ``bins``: count each request in its bin there instead (``Walked.binned``; no ``bin_key``).
    ``per_request=False``: leave the per-request arrays unwritten (module docstring).
    """
    n = key.size
    S, K = T.model.shape
    C = cfg.n_categories
    steps = min(S, d.u_fail.shape[0])
    kernel = _kernel(T.hedged, not per_request and mask is None and not trace)
    ws = ws or Workspace()
    out = walked_arrays(n, S, K, C, cfg.n_models, ws, per_request_fill=False, trace=trace)
    sums = ws.get("sums", (C, len(SUMS)), fill=0.0)
    tok_sums = ws.get("tok_sums", (2, S, K), fill=0.0)
    bin_key = ws.get("bin_key", (n if bins and counts is None else 0,), np.int64)
    if counts is None:
        counts = np.zeros(0, dtype=np.int32)
    floats, ints = packed if packed is not None else pack(T)
    none = np.zeros((0, 0))
    none8 = np.zeros((0, 0), dtype=np.int8)
    edges, table, base = bin_table(bins) if bins else (np.zeros(0), np.zeros((0, 2)), 0)
    kernel(
        floats, ints, key, cat, x, y, d.u_fail, d.alat, _rows(d.alat_row, S, K),
        none if d.q is None else d.q, d.q is not None,
        none if d.u_fail_b is None else d.u_fail_b, none if d.alat_b is None else d.alat_b,
        none if d.q_b is None else d.q_b,
        np.zeros(0) if d.u_batch is None else d.u_batch, d.u_batch is not None,
        steps, float(cfg.backoff), float(cfg.human_cost), float(cfg.human_latency), bool(cfg.bill_failed_input),
        int(cfg.deadline_billing), int(cfg.n_models), per_request,
        out.cost, out.lat, out.gate, out.outcome, out.answer_model, out.esc, out.fb, out.ovf, out.late, out.waste,
        out.tokens, out.tokens_b, out.tries, out.tries_b, out.successes, out.slow, out.served, out.outcomes,
        out.escalated, out.fell_back, out.overflowed, out.lated, out.answered, out.served_at,
        sums, tok_sums, edges, table, base, bin_key, counts,
        none8 if mask is None else mask, mask is not None, none8 if out.trace is None else out.trace, trace,
    )  # fmt: skip
    return dataclasses.replace(
        out, sums=sums, tok_sums=tok_sums, bin_key=bin_key if bin_key.size else None, binned=bool(bins and counts.size)
    )


def _rows(alat_row: np.ndarray | None, S: int, K: int) -> np.ndarray:
    """The row of ``Draws.alat`` each (step, key) reads: as given, or row ``s`` for step ``s``."""
    if alat_row is not None:
        return alat_row
    return np.ascontiguousarray(np.broadcast_to(np.arange(S)[:, None], (S, K)))


def _compile(hedging: bool, summed: bool) -> Any:
    """Build the kernel. Compile-time constants: ``hedging`` (False: hedged steps are not handled) and ``summed``
    (True: sums only; no per-request arrays, mask or trace)."""
    from numba import njit

    HEDGING = hedging
    FULL = not summed
    R = _FLOAT_ROW
    (FAIL_, PIN, PINEFF, POUT, LONG, BATCH, RATIO, CALL, Q, CATCH, FREJ, GCALL, GTOK, GLAT, TIMEOUT, ERRLAT, WINDOW,
     CUM0, CUM1, CUM2, DEADLINE, B_FAIL, B_PIN, B_PINEFF, B_POUT, B_LONG, B_CALL, B_Q, B_TIMEOUT, B_ERRLAT, B_WINDOW,
     B_CUM0) = (R[f] for f in _FLOATS)  # fmt: skip
    MODEL, RETRIES, GATED, ONREJ, ONOVF, ON_TO, ON_5XX, ON_429, _ON_REF, ONDEAD, B_MODEL, BEST, CANCEL = range(
        len(_INTS)
    )

    @njit(nogil=True, cache=True, error_model="numpy")
    def kernel(
        FP, IP, key, cat, x, y, u_fail, alat, arow, q, per_request_q, u_fail_b, alat_b, q_b, u_batch,
        batched, steps, backoff, human_cost, human_latency, bill, deadline_billing, n_models, per_request,
        cost, lat, gate, outcome, answer_model, esc, fb, ovf, late, waste, tokens_out, tokens_b, tries, tries_b,
        successes, slow, served, n_outcome, n_esc, n_fb, n_ovf, n_late, n_answered, served_at,
        sums, tok_sums, edges, table, base, bin_key, hist, mask, has_mask, trace, want_trace,
    ):  # fmt: skip
        B = edges.size - 1  # histogram bins (0: none)
        bits = np.zeros(1)  # a latency's float64 bits, for its bin (histogram.bin_table)
        ibits = bits.view(np.int64)
        for i in range(key.size):
            k = key[i]
            xs = x[i]
            ys = y[i]
            ci = 0.0  # the request's cost, latency, gate spend and deadline waste
            li = 0.0
            gi = 0.0
            wi = 0.0
            oi = 0  # outcome, answering entry, the step that served it
            ami = -1
            sat = -1
            e_i = False  # escalated, fell back, overflowed, late
            f_i = False
            v_i = False
            l_i = False
            if FULL and per_request:
                for s in range(tokens_out.shape[0]):
                    tokens_out[s, i] = 0.0
                    tokens_b[s, i] = 0.0
            if FULL and want_trace:
                for s in range(trace.shape[0]):
                    trace[s, i] = -1
            s = 0
            while s < steps:
                mode = 1 if xs > FP[s, k, LONG] else 0  # billing mode: + 1 long-context, + 2 batch
                if batched and u_batch[i] < FP[s, k, BATCH]:
                    mode += 2
                if HEDGING and IP[s, k, B_MODEL] >= 0:  # a hedged step: both models at once, one try each
                    mode_b = (1 if xs > FP[s, k, B_LONG] else 0) + (mode - mode % 2)
                    over_a = xs > FP[s, k, WINDOW]
                    over_b = xs > FP[s, k, B_WINDOW]
                    ua = u_fail[s, i]
                    ub = u_fail_b[s, i]
                    fail_a = (not over_a) and ua < FP[s, k, FAIL_]
                    fail_b = (not over_b) and ub < FP[s, k, B_FAIL]
                    ans_a = not over_a and not fail_a
                    ans_b = not over_b and not fail_b
                    tau_a = 0.0
                    if over_a or fail_a:
                        timed_out = fail_a and ua / FP[s, k, FAIL_] < FP[s, k, CUM0]
                        tau_a = FP[s, k, TIMEOUT] if timed_out else FP[s, k, ERRLAT]
                    tau_b = 0.0
                    if over_b or fail_b:
                        timed_out = fail_b and ub / FP[s, k, B_FAIL] < FP[s, k, B_CUM0]
                        tau_b = FP[s, k, B_TIMEOUT] if timed_out else FP[s, k, B_ERRLAT]
                    fc_a = 0.0
                    fc_b = 0.0
                    if bill:
                        fc_a = ((1.0 if fail_a else 0.0) * xs) * FP[s, k, PIN + mode]
                        fc_b = ((1.0 if fail_b else 0.0) * xs) * FP[s, k, B_PIN + mode_b]
                    tok_a = xs * FP[s, k, PINEFF + mode]
                    tok_a += ys * FP[s, k, POUT + mode]
                    tok_a += FP[s, k, CALL]
                    tok_b = xs * FP[s, k, B_PINEFF + mode_b]
                    tok_b += ys * FP[s, k, B_POUT + mode_b]
                    tok_b += FP[s, k, B_CALL]
                    la = alat[arow[s, k], i]
                    lb = alat_b[s, i]
                    qa = q[s, i] if per_request_q else FP[s, k, Q]
                    qb = q_b[s, i] if per_request_q else FP[s, k, B_Q]
                    good_a = (ua - FP[s, k, FAIL_]) / (1.0 - FP[s, k, FAIL_]) < qa  # what is left of u above f
                    good_b = (ub - FP[s, k, B_FAIL]) / (1.0 - FP[s, k, B_FAIL]) < qb
                    best = IP[s, k, BEST] != 0
                    cancel = IP[s, k, CANCEL] != 0 and not best
                    both = ans_a and ans_b
                    a_wins = ans_a and (good_a or not (ans_b and good_b)) if best else ans_a and (not ans_b or la <= lb)
                    b_wins = ans_b and not a_wins
                    paid_a = (
                        xs * FP[s, k, PINEFF + mode]
                        if (ans_a and not a_wins and cancel and both)
                        else tok_a * (1.0 if ans_a else 0.0)
                    )
                    paid_b = (
                        xs * FP[s, k, B_PINEFF + mode_b]
                        if (ans_b and not b_wins and cancel and both)
                        else tok_b * (1.0 if ans_b else 0.0)
                    )
                    spend_a = fc_a + paid_a
                    spend_b = fc_b + paid_b
                    if ans_a or ans_b:
                        if best:
                            wa = la if ans_a else tau_a
                            wb = lb if ans_b else tau_b
                            step_lat = max(wa, wb)
                        else:
                            step_lat = la if a_wins else lb
                    else:
                        step_lat = max(tau_a, tau_b)
                    ci += spend_a + spend_b
                    li += step_lat
                    if FULL and per_request:
                        tokens_out[s, i] = spend_a
                        tokens_b[s, i] = spend_b
                    tok_sums[0, s, k] += spend_a
                    tok_sums[1, s, k] += spend_b
                    if not over_a:
                        tries[s, k] += 1
                    if not over_b:
                        tries_b[s, k] += 1
                    if ans_a:
                        successes[s, k] += 1
                    if over_a and over_b:
                        v_i = True
                    if ans_a or ans_b:
                        good = (ans_a and good_a) or (ans_b and good_b) if best else good_a if a_wins else good_b
                        oi = 1 if good else 2
                        ami = IP[s, k, MODEL] if a_wins else IP[s, k, B_MODEL]
                        served[s, k] += 1
                        sat = s
                        break
                    f_i = True
                    tgt = IP[s, k, ON_5XX]
                    if tgt >= 0:
                        s = tgt
                        continue
                    oi = 3
                    break
                tries[s, k] += 1
                if xs > FP[s, k, WINDOW]:  # 0. too long for the window: skip
                    tries[s, k] -= 1
                    v_i = True
                    ci += 0.0
                    li += FP[s, k, ERRLAT]
                    tgt = IP[s, k, ONOVF]
                    if tgt >= 0:
                        s = tgt
                        continue
                    oi = 3  # FAILED
                    break
                code = mask[s, i] if FULL and has_mask else 0
                if code == 1:  # unavailable: not called, to on_429
                    if FULL and want_trace:
                        trace[s, i] = -2
                    tries[s, k] -= 1
                    f_i = True
                    ci += 0.0
                    li += 0.0
                    tgt = IP[s, k, ON_429]
                    if tgt >= 0:
                        s = tgt
                        continue
                    oi = 3
                    break
                u = u_fail[s, i]
                f = FP[s, k, FAIL_]
                r = IP[s, k, RETRIES]
                K = 0
                fail_lat = 0.0
                fail_cost = 0.0
                decided = -1
                v = 0.0
                if code >= 2:  # down: every try fails with the outage's error type
                    K = r + 1
                    decided = code - 2
                    n_to = K if decided == 0 else 0
                    fail_lat = n_to * FP[s, k, TIMEOUT] + (K - n_to) * FP[s, k, ERRLAT] + backoff * (K - 1)
                    if bill:
                        fail_cost = K * xs * FP[s, k, PIN + mode]
                elif u < f:
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
                    c0, c1, c2 = FP[s, k, CUM0], FP[s, k, CUM1], FP[s, k, CUM2]
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
                    fail_lat = n_to * FP[s, k, TIMEOUT] + (K - n_to) * FP[s, k, ERRLAT] + backoff * n_retries
                    if bill:
                        fail_cost = K * xs * FP[s, k, PIN + mode]
                abandoned = decided >= 0
                tries[s, k] += K - (1 if abandoned else 0)
                if FULL and want_trace:
                    trace[s, i] = K + (0 if abandoned else 16)
                if abandoned:
                    f_i = True
                    ci += fail_cost
                    li += fail_lat
                    if FULL and per_request:
                        tokens_out[s, i] = fail_cost
                    tok_sums[0, s, k] += fail_cost
                    tgt = IP[s, k, ON_TO + decided]
                    if tgt >= 0:
                        s = tgt
                        continue
                    oi = 3  # FAILED
                    break
                tok = xs * FP[s, k, PINEFF + mode]
                tok += ys * FP[s, k, POUT + mode]
                tok += FP[s, k, CALL]
                answer_lat = alat[arow[s, k], i]
                successes[s, k] += 1
                if answer_lat > FP[s, k, TIMEOUT]:
                    slow[s, k] += 1
                if answer_lat > FP[s, k, DEADLINE]:  # 2. abandoned at the client's deadline
                    if deadline_billing == 0:
                        billed = tok
                    elif deadline_billing == 1:
                        billed = xs * FP[s, k, PINEFF + mode]
                    else:
                        billed = 0.0
                    l_i = True
                    wi += billed
                    spend = fail_cost + billed
                    ci += spend + 0.0
                    li += (fail_lat + FP[s, k, DEADLINE]) + 0.0
                    if FULL and per_request:
                        tokens_out[s, i] = spend
                    tok_sums[0, s, k] += spend
                    tgt = IP[s, k, ONDEAD]
                    if tgt >= 0:
                        s = tgt
                        continue
                    oi = 3
                    break
                qs = q[s, i] if per_request_q else FP[s, k, Q]
                w = (u - f) / (1.0 - f) if K == 0 else v  # what is left of u for the answer
                good = w < qs
                g = 0.0
                g_lat = 0.0
                reject = False
                if IP[s, k, GATED]:
                    g = FP[s, k, GCALL] + (xs + ys * FP[s, k, RATIO]) * FP[s, k, GTOK]
                    g_lat = FP[s, k, GLAT]
                    t_good = qs * FP[s, k, FREJ]  # both thresholds, then a select: no branch on a coin flip
                    t_bad = qs + (1 - qs) * FP[s, k, CATCH]
                    reject = w < (t_good if good else t_bad)
                spend = fail_cost + tok
                ci += spend + g
                li += (fail_lat + answer_lat) + g_lat
                gi += g
                if FULL and per_request:
                    tokens_out[s, i] = spend
                tok_sums[0, s, k] += spend
                code = 1 if good else 2
                if not reject:
                    oi = code
                    ami = IP[s, k, MODEL]
                    served[s, k] += 1
                    sat = s
                    break
                e_i = True
                tgt = IP[s, k, ONREJ]
                if tgt == -2:  # DELIVER
                    oi = code
                    ami = IP[s, k, MODEL]
                    served[s, k] += 1
                    sat = s
                    break
                if tgt == -3:  # HUMAN
                    oi = 4
                    ami = n_models
                    ci += human_cost
                    li += human_latency
                    served[s, k] += 1
                    sat = s
                    break
                if tgt >= 0:
                    s = tgt
                    continue
                oi = 3  # FAILED
                break
            c = cat[i]
            if FULL and per_request:
                cost[i] = ci
                lat[i] = li
                gate[i] = gi
                waste[i] = wi
                outcome[i] = oi
                answer_model[i] = ami
                served_at[i] = sat
                esc[i] = e_i
                fb[i] = f_i
                ovf[i] = v_i
                late[i] = l_i
            sums[c, 0] += ci
            sums[c, 1] += ci * ci
            sums[c, 2] += li
            sums[c, 3] += li * li
            sums[c, 4] += gi
            sums[c, 5] += wi
            if B > 0:  # the bin b with edges[b] <= li < edges[b + 1]; the end bins take what lies outside
                if not li >= edges[1]:  # below the first inner edge, or NaN
                    b = 0
                elif li >= edges[B - 1]:
                    b = B - 1
                else:
                    bits[0] = li
                    j = (ibits[0] >> GUESS_SHIFT) - base
                    b = int(table[j, 1]) + (1 if li >= table[j, 0] else 0)
                if hist.size:
                    hist[c * B + b] += 1
                else:
                    bin_key[i] = c * B + b
            n_outcome[c, oi] += 1
            if e_i:
                n_esc[c] += 1
            if f_i:
                n_fb[c] += 1
            if v_i:
                n_ovf[c] += 1
            if l_i:
                n_late[c] += 1
            if ami >= 0:
                n_answered[c, ami] += 1

    return kernel
