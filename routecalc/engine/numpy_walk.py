"""The numpy walk: :mod:`routecalc.engine.walk`'s arithmetic vectorized per chain step over the requests routed
there (always available; :mod:`routecalc.engine.compiled` is the same walk as a compiled loop, giving the same
bits)."""

from __future__ import annotations

from typing import Any

import numpy as np

from routecalc.chains import DELIVER, FAIL, HUMAN
from routecalc.engine.walk import (
    ANSWERED,
    BAD,
    DOWN_TIMEOUT,
    FAILED,
    HUMAN_REVIEW,
    UNAVAILABLE,
    Draws,
    Settings,
    StepTable,
    Walked,
    Workspace,
    walked_arrays,
)


def _failed_tries_numpy(
    u: np.ndarray, f: np.ndarray, r: np.ndarray, cums: tuple[np.ndarray, np.ndarray, np.ndarray]
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """For requests with ``u < f``: failed tries ``K``, timeouts among them, the deciding try's error type
    (0 timeout, 1 5xx, 2 429, 3 refusal; -1 none: an answer followed) and the uniform left for the answer. See the
    :mod:`routecalc.engine.walk` docstring, step 1."""
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
    return K, timeouts, decided, v


def walk_numpy(
    T: StepTable,
    key: np.ndarray,
    cat: np.ndarray,
    x: np.ndarray,
    y: np.ndarray,
    d: Draws,
    cfg: Settings,
    ws: Workspace | None = None,
    mask: np.ndarray | None = None,
    trace: bool = False,
) -> Walked:
    """Walk every request through the chains, vectorized per step (as defined in :mod:`routecalc.engine.walk`).

    When ``key`` is sorted (one lane per category), so are the requests at each step, and a per-key parameter
    becomes a per-request array with one ``np.repeat`` over the step's key counts. ``mask`` and ``trace``: the
    time engine's per-request availability and what each model saw (:mod:`routecalc.engine.walk`).
    """
    n = key.size
    S, K = T.model.shape
    C = cfg.n_categories
    out = walked_arrays(n, S, K, C, cfg.n_models, ws, trace=trace)
    at_step = np.zeros(n, dtype=np.int8) if S < 127 else np.zeros(n, dtype=np.int64)
    ordered = bool(n < 2 or (key[1:] >= key[:-1]).all())
    for s in range(min(S, d.u_fail.shape[0])):
        index = np.arange(n) if s == 0 else np.flatnonzero(at_step == s)
        if index.size == 0:
            continue
        at_step[index] = -1  # settled here unless routed on below
        if (T.b_model[s] >= 0).any():
            hedged = T.b_model[s][key[index]] >= 0
            _hedge_numpy(T, s, index[hedged], key, x, y, d, cfg, out, at_step)
            index = index[~hedged]
            if index.size == 0:
                continue
        _step_numpy(T, s, index, key, x, y, d, cfg, out, at_step, ordered and s == 0 and index.size == n, mask)
    _count(out, cat, C, cfg.n_models, ordered)
    return out


def _step_numpy(
    T: StepTable,
    s: int,
    index: np.ndarray,
    key: np.ndarray,
    x: np.ndarray,
    y: np.ndarray,
    d: Draws,
    cfg: Settings,
    out: Walked,
    at_step: np.ndarray,
    all_rows: bool,
    mask: np.ndarray | None = None,
) -> None:
    """One step of plain (unhedged) chains for the requests ``index`` (sorted)."""
    cost, lat, gate, outcome, answer_model = out.cost, out.lat, out.gate, out.outcome, out.answer_model
    K = T.model.shape[1]
    rows: Any = slice(None) if all_rows else index
    k = key[rows]
    u, xs, ys = d.u_fail[s, rows], x[rows], y[rows]
    kc = d.key_counts if all_rows and d.key_counts is not None else np.bincount(k, minlength=K)
    per_row = _PerRow(s, k, kc, bool(k.size < 2 or (k[1:] >= k[:-1]).all()))
    ns = k.size
    # answer latency: row s, or from a table of rows the key's row at this step (one flat gather)
    if d.alat_row is None:
        answer_lat = d.alat[s, rows]
    else:
        row = per_row.param(d.alat_row)
        n_all = d.alat.shape[1]
        answer_lat = d.alat[int(row), rows] if np.ndim(row) == 0 else d.alat.reshape(-1)[row * n_all + index]
    out.tries[s] += kc
    mode = _mode(per_row.param(T.long_above), per_row.param(T.batch_share), xs, d, rows) if T.moded else None
    price = lambda a: per_row.param(a[0]) if mode is None else a[mode, s, k]

    # 0. prompts longer than the window skip the step
    skip = xs > per_row.param(T.window)
    live = None
    if skip.any():
        sk = np.flatnonzero(skip)
        out.ovf[index[sk]] = True
        out.tries[s] -= np.bincount(k[sk], minlength=K)
        live = ~skip
    code = None  # time effects: the model unavailable (not called) or down (every try fails)
    unavailable = down = None
    if mask is not None:
        code = mask[s, rows]
        unavailable = (code == UNAVAILABLE) & ~skip
        down = (code >= DOWN_TIMEOUT) & ~skip
        if unavailable.any():
            un = np.flatnonzero(unavailable)
            out.tries[s] -= np.bincount(k[un], minlength=K)
            out.fb[index[un]] = True
            live = ~(skip | unavailable)
        else:
            unavailable = None
        if not down.any():
            down = None

    # 1. provider tries; the answer's uniform: what is left of u above f (below f, what the failed tries leave)
    f_s = per_row.param(T.fail)
    with np.errstate(divide="ignore", invalid="ignore"):  # f = 1: every try fails, w is never read
        w = (u - f_s) / (1 - f_s)
    drawn = (u < f_s) & ~skip
    if unavailable is not None:
        drawn &= ~unavailable
    failing = np.flatnonzero(drawn if down is None else drawn | down)
    fail_lat = fail_cost = None
    Kall = abandoned_all = None
    if failing.size:
        kf = k[failing]
        r = T.retries[s, kf]
        if down is None:
            Kf, Tf, decided, w[failing] = _failed_tries_numpy(
                u[failing], T.fail[s, kf], r, (T.cum0[s, kf], T.cum1[s, kf], T.cum2[s, kf])
            )
        else:  # a down model: 1 + r tries, all of the outage's error type; the others as drawn
            Kf = 1 + r
            dn = down[failing]
            decided = np.where(dn, code[failing].astype(np.int64) - DOWN_TIMEOUT, -1)  # type: ignore[index]
            Tf = np.where(dn & (decided == 0), Kf, 0)
            rest = np.flatnonzero(~dn)
            if rest.size:
                kr = kf[rest]
                Kr, Tr, dr, w[failing[rest]] = _failed_tries_numpy(
                    u[failing[rest]], T.fail[s, kr], r[rest], (T.cum0[s, kr], T.cum1[s, kr], T.cum2[s, kr])
                )
                Kf[rest], Tf[rest], decided[rest] = Kr, Tr, dr
        retries = np.where(decided >= 0, Kf - 1, Kf)
        lat_f = Tf * T.timeout_s[s, kf] + (Kf - Tf) * T.error_latency_s[s, kf] + cfg.backoff * retries
        p_f = T.price_in[0 if mode is None else mode[failing], s, kf]
        cost_f = Kf * xs[failing] * p_f if cfg.bill_failed_input else np.zeros(failing.size)
        abandoned = decided >= 0
        out.tries[s] += np.bincount(kf, weights=Kf - abandoned, minlength=K).astype(np.int64)
        fail_lat, fail_cost = np.zeros(ns), np.zeros(ns)
        fail_lat[failing] = lat_f
        fail_cost[failing] = cost_f
        if out.trace is not None:
            Kall, abandoned_all = np.zeros(ns, dtype=np.int64), np.zeros(ns, dtype=bool)
            Kall[failing], abandoned_all[failing] = Kf, abandoned
        if abandoned.any():
            ab = failing[abandoned]
            gone = index[ab]
            out.fb[gone] = True  # their failed tries' cost and latency are added with the others' below
            targets = T.on_error[s]
            _route(gone, targets[decided[abandoned], kf[abandoned]], outcome, at_step)
            live = np.ones(ns, dtype=bool) if live is None else live
            live[ab] = False
    if out.trace is not None:  # what the model saw: failed tries, +16 if it answered; -1 not called
        called = ~skip if unavailable is None else ~(skip | unavailable)
        seen = np.full(ns, ANSWERED, dtype=np.int64) if Kall is None else Kall + ANSWERED * ~abandoned_all
        out.trace[s, index] = np.where(called, seen, -1 if unavailable is None else np.where(unavailable, -2, -1))
    if skip.any():
        sk = np.flatnonzero(skip)
        fail_lat = np.zeros(ns) if fail_lat is None else fail_lat
        fail_lat[sk] = T.error_latency_s[s, k[sk]]
        fail_cost = np.zeros(ns) if fail_cost is None else fail_cost
        _route(index[sk], T.on_overflow[s, k[sk]], outcome, at_step)
    if unavailable is not None:
        un = np.flatnonzero(unavailable)
        fail_lat = np.zeros(ns) if fail_lat is None else fail_lat
        fail_cost = np.zeros(ns) if fail_cost is None else fail_cost
        _route(index[un], T.on_429[s, k[un]], outcome, at_step)

    # 2. answer (abandoned at the deadline if it comes later)
    p_in = price(T.price_in_eff)
    tokens = xs * p_in
    tokens += ys * price(T.price_out)
    tokens += per_row.param(T.call_cost)
    answered = np.ones(ns, dtype=bool) if live is None else live
    out.successes[s] += per_row.count(answered)
    out.slow[s] += per_row.count(answered & (answer_lat > per_row.param(T.timeout_s)))
    late = None
    if np.isfinite(T.deadline_s[s]).any():
        deadline = per_row.param(T.deadline_s)
        late = answered & (answer_lat > deadline)
        if late.any():
            billed = (tokens, xs * p_in, np.zeros(ns))[cfg.deadline_billing]
            tokens = np.where(late, billed, tokens)
            answer_lat = np.where(late, deadline, answer_lat)
            lt = np.flatnonzero(late)
            out.late[index[lt]] = True
            out.waste[index[lt]] += tokens[lt]
            _route(index[lt], T.on_deadline[s, k[lt]], outcome, at_step)
            live = answered & ~late
        else:
            late = None
    qs = per_row.param(T.q) if d.q is None else d.q[s, rows]
    good = w < qs
    gated = per_row.param(T.gated).astype(bool)
    reject = None  # no gate reads these answers: none is rejected
    if np.ndim(gated) or gated:
        reject = gated & (
            good & (w < qs * per_row.param(T.false_reject)) | ~good & (w < qs + (1 - qs) * per_row.param(T.catch))
        )
    if live is not None:  # abandoned, skipped or late: nothing delivered here
        if late is None:
            tokens *= live
            answer_lat = answer_lat * live
        else:
            tokens *= answered
            answer_lat = answer_lat * answered
        good &= live
        if reject is not None:
            reject &= live
        gated = gated & live
    spend = tokens if fail_cost is None else fail_cost + tokens
    step_lat = answer_lat if fail_lat is None else fail_lat + answer_lat

    # 3. gate
    if T.gated[s].any():
        g = gated * (
            per_row.param(T.gate_cost_call) + (xs + ys * per_row.param(T.ratio)) * per_row.param(T.gate_cost_token)
        )
        g_lat = gated * per_row.param(T.gate_latency_s)
        cost[rows] += spend + g
        lat[rows] += step_lat + g_lat
        gate[rows] += g
    else:
        cost[rows] += spend
        lat[rows] += step_lat
    out.tokens[s, rows] = spend
    code = BAD - good.view(np.int8)
    mdl = per_row(T.model)
    # delivered here (None: every request)
    acc = live if reject is None else ~reject if live is None else live & ~reject
    if all_rows and acc is None:  # step 0, every request: none routed on or settled yet
        outcome[:] = code
        answer_model[:] = mdl
        out.served_at[:] = s
    elif all_rows:  # step 0: the others still have no outcome (0), answer (-1) or step (-1): add, do not scatter
        outcome += code * acc
        answer_model += (mdl + 1) * acc
        served_at = out.served_at
        served_at += acc
    else:
        here = np.arange(ns) if acc is None else np.flatnonzero(acc)
        outcome[index[here]] = code[here]
        answer_model[index[here]] = mdl[here]
        out.served_at[index[here]] = s
    settled = acc  # delivered here, or sent to human review from here
    rj = np.flatnonzero(reject) if reject is not None else np.empty(0, dtype=np.int64)
    if rj.size:
        rrows = index[rj]
        out.esc[rrows] = True
        target = T.on_reject[s, k[rj]]
        dl = target == DELIVER
        outcome[rrows[dl]] = code[rj[dl]]
        answer_model[rrows[dl]] = mdl[rj[dl]]
        hr = target == HUMAN
        out.served_at[rrows[dl | hr]] = s
        outcome[rrows[hr]] = HUMAN_REVIEW
        answer_model[rrows[hr]] = cfg.n_models
        cost[rrows[hr]] += cfg.human_cost
        lat[rrows[hr]] += cfg.human_latency
        settled = acc.copy()  # (some are rejected, so acc is not None)
        settled[rj[dl | hr]] = True
        _route(rrows, target, outcome, at_step)
    out.served[s] += per_row.counts if settled is None else per_row.count(settled)


def _hedge_numpy(
    T: StepTable,
    s: int,
    index: np.ndarray,
    key: np.ndarray,
    x: np.ndarray,
    y: np.ndarray,
    d: Draws,
    cfg: Settings,
    out: Walked,
    at_step: np.ndarray,
) -> None:
    """A hedged step: both models at once, one try each; the first (or, ``best``, the better) answer wins."""
    if index.size == 0:
        return
    assert d.u_fail_b is not None and d.alat_b is not None
    K = T.model.shape[1]
    k = key[index]
    g = lambda a: a[s][k]
    xs, ys = x[index], y[index]
    share = T.batch_share[s][k]
    legs = []
    for pre, uf, al, qq in (("", d.u_fail, d.alat, d.q), ("b_", d.u_fail_b, d.alat_b, d.q_b)):
        P = lambda name, pre=pre: g(getattr(T, pre + name))
        mode = _mode(P("long_above"), share, xs, d, index) if T.moded else np.zeros(index.size, dtype=np.int64)
        M = lambda name, pre=pre, mode=mode: getattr(T, pre + name)[mode, s, k]
        over = xs > P("window")
        u = uf[s, index]
        fail = ~over & (u < P("fail"))
        answered = ~over & ~fail
        with np.errstate(invalid="ignore", divide="ignore"):
            timed_out = fail & (u / P("fail") < P("cum0"))
            w = (u - P("fail")) / (1 - P("fail"))  # the answer's uniform: what is left of u above f
        tau = np.where(timed_out, P("timeout_s"), P("error_latency_s")) * (over | fail)
        fail_cost = (1.0 * fail) * xs * M("price_in") if cfg.bill_failed_input else np.zeros(index.size)
        tok = xs * M("price_in_eff")
        tok += ys * M("price_out")
        tok += P("call_cost")
        q = P("q") if qq is None else qq[s, index]
        legs.append((over, fail, answered, tau, fail_cost, tok, al[s, index], w < q, xs * M("price_in_eff")))
    (ov_a, _f_a, ans_a, tau_a, fc_a, tok_a, L_a, good_a, xin_a) = legs[0]
    (ov_b, _f_b, ans_b, tau_b, fc_b, tok_b, L_b, good_b, xin_b) = legs[1]
    best = g(T.hedge_best).astype(bool)
    cancel = g(T.cancel_loser).astype(bool) & ~best
    both = ans_a & ans_b
    a_first = ans_a & (~ans_b | (L_a <= L_b))
    a_wins = np.where(best, ans_a & (good_a | ~(ans_b & good_b)), a_first)
    b_wins = ans_b & ~a_wins
    paid_a = np.where(ans_a & ~a_wins & cancel & both, xin_a, tok_a * ans_a)
    paid_b = np.where(ans_b & ~b_wins & cancel & both, xin_b, tok_b * ans_b)
    spend_a = fc_a + paid_a
    spend_b = fc_b + paid_b
    first = np.where(a_wins, L_a, L_b)
    waited = np.where(ans_a, L_a, tau_a)
    waited_b = np.where(ans_b, L_b, tau_b)
    step_lat = np.where(ans_a | ans_b, np.where(best, np.maximum(waited, waited_b), first), np.maximum(tau_a, tau_b))
    out.cost[index] += spend_a + spend_b
    out.lat[index] += step_lat
    out.tokens[s, index] = spend_a
    out.tokens_b[s, index] = spend_b
    out.tries[s] += np.bincount(k[~ov_a], minlength=K)
    out.tries_b[s] += np.bincount(k[~ov_b], minlength=K)
    out.successes[s] += np.bincount(k[ans_a], minlength=K)
    out.ovf[index[ov_a & ov_b]] = True
    delivered = ans_a | ans_b
    good = np.where(best, (ans_a & good_a) | (ans_b & good_b), np.where(a_wins, good_a, good_b))
    here = np.flatnonzero(delivered)
    out.outcome[index[here]] = (BAD - good.view(np.int8))[here]
    out.answer_model[index[here]] = np.where(a_wins, g(T.model), g(T.b_model))[here]
    out.served_at[index[here]] = s
    out.served[s] += np.bincount(k[here], minlength=K)
    gone = np.flatnonzero(~delivered)
    if gone.size:
        out.fb[index[gone]] = True
        _route(index[gone], T.on_5xx[s, k[gone]], out.outcome, at_step)


def _mode(long_above: np.ndarray, batch_share: np.ndarray | float, x: np.ndarray, d: Draws, rows: Any) -> np.ndarray:
    """Each request's billing mode at a step: 1 if its prompt is above the long-context threshold, + 2 if its
    batch uniform is below the step's batch share."""
    mode = (x > long_above).astype(np.int64)
    if d.u_batch is not None:
        mode += 2 * (d.u_batch[rows] < batch_share)
    return mode


class _PerRow:
    """A per-(step, key) parameter as a per-request array for the requests at step ``s`` (keys ``k``)."""

    def __init__(self, s: int, k: np.ndarray, counts: np.ndarray, ordered: bool):
        self.s, self.k, self.counts, self.ordered = s, k, counts, ordered
        self.starts: np.ndarray | None = None

    def count(self, flags: np.ndarray) -> np.ndarray:
        """How many requests per key have ``flags`` set ``(K,)``: ``np.bincount(k[flags])``, exact."""
        if not self.ordered:
            return np.bincount(self.k[flags], minlength=self.counts.size)
        if self.starts is None:
            self.starts = _run_starts(self.counts)
        return _count_runs(flags, self.counts, self.starts)

    def __call__(self, a: np.ndarray) -> np.ndarray:
        return np.repeat(a[self.s], self.counts) if self.ordered else a[self.s][self.k]

    def param(self, a: np.ndarray) -> np.ndarray | np.generic:
        """The same, or one scalar when every key has the same value (it broadcasts alike, without a pass)."""
        row = a[self.s]
        if row.size and (row == row[0]).all():
            return row[0]
        return self(a)


def _route(rows: np.ndarray, target: np.ndarray, outcome: np.ndarray, at_step: np.ndarray) -> None:
    """Send ``rows`` to their ``target`` if it is a later step or a failure (the caller settles the others)."""
    later = target >= 0
    at_step[rows[later]] = target[later]
    outcome[rows[target == FAIL]] = FAILED


def _run_starts(counts: np.ndarray) -> np.ndarray:
    """Where each key's run of sorted requests starts (for :func:`_count_runs`)."""
    return np.cumsum(counts) - counts


def _count_runs(flags: np.ndarray, counts: np.ndarray, starts: np.ndarray) -> np.ndarray:
    """Set ``flags`` per key when the requests are sorted by key (runs of ``counts`` from ``starts``), ``(K,)``
    int64: the same integers as ``np.bincount(key[flags])``, by one pass over the flags."""
    out = np.zeros(counts.size, dtype=np.int64)
    if flags.size:
        some = counts > 0  # reduceat would give an empty run the element at its start
        out[some] = np.add.reduceat(flags.view(np.int8), starts[some], dtype=np.int64)
    return out


def _count(out: Walked, cat: np.ndarray, C: int, M: int, ordered: bool) -> None:
    """Integer counts per category (exact, so they do not depend on the order of summation). ``ordered``: the
    requests are sorted by category."""
    out.outcomes[:] = np.bincount(cat * 5 + out.outcome, minlength=C * 5).reshape(C, 5)
    if ordered:
        counts = np.bincount(cat, minlength=C)
        starts = _run_starts(counts)
        per_cat = lambda flags: _count_runs(flags, counts, starts)
    else:
        per_cat = lambda flags: np.bincount(cat[flags], minlength=C)
    out.escalated[:] = per_cat(out.esc)
    out.fell_back[:] = per_cat(out.fb)
    out.overflowed[:] = per_cat(out.ovf) if out.ovf.any() else 0
    out.lated[:] = per_cat(out.late) if out.late.any() else 0
    # column 0: no answer (-1), dropped
    answered = np.bincount(cat * (M + 2) + out.answer_model + 1, minlength=C * (M + 2)).reshape(C, M + 2)
    out.answered[:] = answered[:, 1:]
