"""The chain walk of the Monte Carlo engine: requests through one policy's chains, given their random numbers.

Everything random is drawn before the walk (:mod:`routecalc.engine.mc`): per request and chain step one uniform
``u`` (``u_fail``) for the provider's tries and then the answer and its gate, the answer's latency and,
where outcomes are not independent, its pass probability; per request its lane (``key = category x L + lane``).
The walk itself uses only ``+ - * /`` and comparisons, so its two implementations give the same bits:

* :func:`walk_numpy` — vectorized numpy, one step at a time over the requests routed there (always available);
* :func:`routecalc.engine.compiled.walk_numba` — the same arithmetic as a compiled loop per request
  (``pip install routecalc[fast]``).

Per request at step ``s`` on catalog entry ``m`` (parameters per step and key, ``T.<name>[s, key]``):

0. A prompt longer than the window the engines enforce for (category, model) skips the step (a fast error,
   nothing billed) to ``on_overflow``.
1. Failed tries ``K = #{j in 1..1+r : u < f^j}`` (geometric, capped), powers by repeated multiplication. If
   ``K > 0``, ``v = (u - lo) / (hi - lo)`` is uniform on [0, 1) given ``K`` (``hi = f^K``, ``lo = f^(K+1)``, or 0
   when all ``1 + r`` tries failed); it decides each failed try's error type in turn (inverse CDF of the type
   shares, then ``v`` rescaled within the chosen type). A content-filter refusal is not retried: the step is
   abandoned there. Failed tries cost ``timeout_s`` (timeouts) or ``error_latency_s`` each, plus the backoff per
   retry, and, if billed, ``x p_in`` each. Abandoned -> ``on_failure`` of the deciding try's type.
2. Answer: ``tokens = x p_in' + y p_out' + call cost`` (cache shares, reasoning tokens and output ratio folded
   in: :mod:`routecalc.engine.billing`), latency as given; good iff ``w < q``, where ``w`` is what is left of the
   step's uniform: ``(u - f) / (1 - f)`` when no try failed (uniform given ``u >= f``), else ``v`` after the
   failed tries' types were taken from it (uniform given them). The prices are those of the
   request's *billing mode* at the step: long-context when ``x`` exceeds the model's long-context threshold,
   batch when the request's batch uniform ``u_batch`` is below the step's batch share (one uniform per request,
   so a batched request is batched at every step that batches as large a share); a failed try's input and a
   cancelled or abandoned answer's input are billed in the same mode.
3. Gate (gated steps and tools): ``g = call + (x + y ratio) per_token``; the same uniform decides the verdict:
   a good answer is rejected iff ``w < q false_reject``, a bad one iff ``w < q + (1 - q) catch`` (each
   has the right probability given good/bad). Rejected -> ``on_reject``: a later step, deliver, human review,
   fail. A tool's gate is its hit: it never rejects a right answer and always a miss.

Time effects (:mod:`routecalc.engine.timeline`) pass an optional ``mask`` ``(S, n)`` int8 per request and step,
read after the window check (hedged steps ignore it):

* ``UNAVAILABLE`` (1): the model is not called (circuit breaker open, rate limit reached): no try, nothing billed,
  no latency, the step is abandoned to its ``on_429`` target (what a router's "no deployment available" is).
* ``DOWN_TIMEOUT`` / ``DOWN_5XX`` / ``DOWN_429`` (2, 3, 4): a provider outage: every one of the ``1 + r`` tries
  fails with that error type (``timeout_s`` or ``error_latency_s`` each, plus the backoff per retry, input billed
  as for any failed try) and the step is abandoned to that type's target.

With ``trace=True`` the walk also returns ``trace`` ``(S, n)`` int8: -2 where the request reached the step but the
mask made its model unavailable, -1 where it did not call the step's model otherwise (not reached, window
overflow, hedged step), else its failed tries ``K`` plus 16 if the model answered (a late answer abandoned at a
deadline counts as answered): what a circuit breaker and a rate limiter see.

Per request the walk returns total cost, latency, gate spend, outcome, answering entry and the escalation /
fallback / overflow flags; per step the token spend per request (summed by the caller, so both implementations
share the order of every floating-point sum) and integer counts per (step, key) and per category.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields
from functools import cached_property
from typing import Any

import numpy as np

from routecalc.chains import DELIVER, FAIL, HUMAN

PENDING, GOOD, BAD, FAILED, HUMAN_REVIEW = 0, 1, 2, 3, 4
AVAILABLE, UNAVAILABLE, DOWN_TIMEOUT, DOWN_5XX, DOWN_429 = 0, 1, 2, 3, 4  # mask codes (module docstring)
ANSWERED = 16  # trace: added to the failed tries when the model answered


@dataclass(frozen=True, eq=False)
class StepTable:
    """One policy's chain parameters per (step, key), shape ``(S, K)`` with ``key = category x L + lane``.

    Money per token (``call_cost`` per call), seconds. ``cum0..2``: cumulative shares of failures that are
    timeouts, then 5xx, then 429 (the rest are content-filter refusals); ``on_<type>``: where each goes.
    Prices are ``(4, S, K)``, by billing mode: standard, long-context, batch, batch long-context.
    """

    fail: np.ndarray
    price_in: np.ndarray  # (4, S, K) what a failed try bills per input token (if billed)
    price_in_eff: np.ndarray  # (4, S, K) per input token of an answer (prompt-cache shares)
    price_out: np.ndarray  # (4, S, K) per band output token: output_ratio x (price + reasoning)
    long_above: np.ndarray  # long-context threshold in input tokens (inf: none)
    batch_share: np.ndarray  # share of requests through the batch API (u_batch below it)
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
    deadline_s: np.ndarray  # inf: none
    b_fail: np.ndarray  # the hedged step's second model ("leg b"): one try, no retries
    b_price_in: np.ndarray
    b_price_in_eff: np.ndarray
    b_price_out: np.ndarray
    b_long_above: np.ndarray
    b_call_cost: np.ndarray
    b_q: np.ndarray
    b_timeout_s: np.ndarray
    b_error_latency_s: np.ndarray
    b_window: np.ndarray
    b_cum0: np.ndarray
    model: np.ndarray  # int64, -1 where the chain has no such step
    retries: np.ndarray
    gated: np.ndarray  # 1 where a validator or a tool's own gate reads the answer
    on_reject: np.ndarray
    on_overflow: np.ndarray
    on_timeout: np.ndarray
    on_5xx: np.ndarray
    on_429: np.ndarray
    on_refusal: np.ndarray
    on_deadline: np.ndarray
    b_model: np.ndarray  # -1: not hedged
    hedge_best: np.ndarray  # 1: wait for both, deliver the better; 0: deliver the first
    cancel_loser: np.ndarray  # 1: the slower answer is cancelled and bills its input only
    ttft_mu: np.ndarray  # answer latency = LogNormal(ttft) + y x ratio x LogNormal(tpot), drawn by the caller
    ttft_sigma: np.ndarray
    tpot_mu: np.ndarray
    tpot_sigma: np.ndarray
    b_ttft_mu: np.ndarray
    b_ttft_sigma: np.ndarray
    b_tpot_mu: np.ndarray
    b_tpot_sigma: np.ndarray
    b_ratio: np.ndarray

    @property
    def hedged(self) -> bool:
        return bool((self.b_model >= 0).any())

    @cached_property
    def moded(self) -> bool:
        """Whether any request may be billed other than in the standard mode (long-context or batch)."""
        return bool(
            np.isfinite(self.long_above).any() or np.isfinite(self.b_long_above).any() or (self.batch_share > 0).any()
        )


_NAMES = tuple(f.name for f in fields(StepTable))
_FLOATS = _NAMES[: _NAMES.index("model")]
_INTS = _NAMES[_NAMES.index("model") : _NAMES.index("ttft_mu")]
MODES = 4  # billing modes: standard, long-context, batch, batch long-context (long + 2 x batch)
_MODED = ("price_in", "price_in_eff", "price_out", "b_price_in", "b_price_in_eff", "b_price_out")
# each float field's first row in the kernel's block (a moded field takes MODES rows: row + mode)
_FLOAT_ROW = dict(
    zip(_FLOATS, np.cumsum([0] + [MODES if f in _MODED else 1 for f in _FLOATS[:-1]]).tolist(), strict=True)
)


def pack(T: StepTable) -> tuple[np.ndarray, np.ndarray]:
    """The step table as two contiguous blocks for the compiled walk: floats (a moded price takes ``MODES`` rows, see
    ``_FLOAT_ROW``) and ints, each ``(S, K, rows)``: one (step, key)'s parameters side by side in memory."""
    rows = [r for f in _FLOATS for r in (getattr(T, f) if f in _MODED else [getattr(T, f)])]
    floats = np.ascontiguousarray(np.stack(rows, axis=-1), dtype=np.float64)
    ints = np.ascontiguousarray(np.stack([getattr(T, f) for f in _INTS], axis=-1), dtype=np.int64)
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
    served_at: np.ndarray  # int8: the step that delivered the answer (or sent it to review); -1: none
    late: np.ndarray  # bool: abandoned at least one try at its deadline
    waste: np.ndarray  # (n,) spend on tries abandoned at a deadline
    tokens: np.ndarray  # (S, n) token spend per step (a hedged step's first model)
    tokens_b: np.ndarray  # (S, n) a hedged step's second model
    tries: np.ndarray  # (S, K) int64 provider tries
    tries_b: np.ndarray  # (S, K) int64 tries of hedged steps' second models
    successes: np.ndarray  # (S, K) int64 answered tries
    slow: np.ndarray  # (S, K) int64 answered tries slower than the model's timeout
    served: np.ndarray  # (S, K) int64 requests delivered (or sent to review) at the step
    outcomes: np.ndarray  # (C, 5) int64 requests by outcome code
    escalated: np.ndarray  # (C,) int64
    fell_back: np.ndarray  # (C,) int64
    overflowed: np.ndarray  # (C,) int64
    lated: np.ndarray  # (C,) int64 requests abandoned at a deadline at least once
    answered: np.ndarray  # (C, M + 1) int64 delivered answers by catalog entry (column M: human review)
    trace: np.ndarray | None = None  # (S, n) int8 (trace=True): -2 unavailable, -1 not called, failed tries (+16)
    # the compiled walk's sums (routecalc.engine.compiled): per category cost, cost², latency, latency², gate,
    # waste (C, 6); token spend per (leg, step, key) (2, S, K); per request category x B + latency bin (n,)
    sums: np.ndarray | None = None
    tok_sums: np.ndarray | None = None
    bin_key: np.ndarray | None = None
    binned: bool = False  # the compiled walk counted each request in the caller's latency histogram


class Workspace:
    """Reusable buffers, one set per thread.

    Allocating the chunk-sized arrays afresh for every chunk makes the kernel map and zero new pages each time
    (page faults were 15-43 % of CPU at 10^7-10^8 requests); reusing them keeps the pages mapped.
    """

    def __init__(self) -> None:
        self._bufs: dict[str, np.ndarray] = {}
        self._accs: dict[str, np.ndarray] = {}

    def accumulator(self, name: str, shape: tuple[int, ...], dtype: Any) -> np.ndarray:
        """A zeroed array made on first use and kept as it is: the caller adds into it across calls."""
        buf = self._accs.get(name)
        if buf is None:
            buf = self._accs[name] = np.zeros(shape, dtype=dtype)
        return buf

    def accumulated(self, name: str) -> np.ndarray | None:
        """The accumulator ``name``, if it was made."""
        return self._accs.get(name)

    def get(self, name: str, shape: tuple[int, ...], dtype: Any = np.float64, fill: Any = None) -> np.ndarray:
        """A C-contiguous array of ``shape`` named ``name`` (contents undefined unless ``fill`` is given)."""
        size = math.prod(shape)
        buf = self._bufs.get(name)
        if buf is None or buf.size < size or buf.dtype != np.dtype(dtype):
            buf = np.empty(size, dtype=dtype)
            self._bufs[name] = buf
        out = buf[:size].reshape(shape)
        if fill is not None:
            out.fill(fill)
        return out


def _empty(
    n: int, S: int, K: int, C: int, M: int, ws: Workspace | None, per_request_fill: bool = True, trace: bool = False
) -> Walked:
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
        served_at=ws.get("served_at", (n,), np.int8, fill=f(-1)),
        late=ws.get("late", (n,), bool, fill=f(False)),
        waste=ws.get("waste", (n,), fill=f(0.0)),
        tokens=ws.get("tokens", (S, n), fill=f(0.0)),
        tokens_b=ws.get("tokens_b", (S, n), fill=f(0.0)),
        tries=ws.get("tries", (S, K), np.int64, fill=0),
        tries_b=ws.get("tries_b", (S, K), np.int64, fill=0),
        successes=ws.get("successes", (S, K), np.int64, fill=0),
        slow=ws.get("slow", (S, K), np.int64, fill=0),
        served=ws.get("served", (S, K), np.int64, fill=0),
        outcomes=ws.get("outcomes", (C, 5), np.int64, fill=0),
        escalated=ws.get("escalated", (C,), np.int64, fill=0),
        fell_back=ws.get("fell_back", (C,), np.int64, fill=0),
        overflowed=ws.get("overflowed", (C,), np.int64, fill=0),
        lated=ws.get("lated", (C,), np.int64, fill=0),
        answered=ws.get("answered", (C, M + 1), np.int64, fill=0),
        trace=ws.get("trace", (S, n), np.int8, fill=f(-1)) if trace else None,
    )


# ---------------------------------------------------------------------------------------------------------
# numpy


def _failed_tries_numpy(
    u: np.ndarray, f: np.ndarray, r: np.ndarray, cums: tuple[np.ndarray, np.ndarray, np.ndarray]
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """For requests with ``u < f``: failed tries ``K``, timeouts among them, the deciding try's error type
    (0 timeout, 1 5xx, 2 429, 3 refusal; -1 none: an answer followed) and the uniform left for the answer. See the
    module docstring, step 1."""
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


@dataclass(frozen=True, eq=False)
class Draws:
    """A chunk's random numbers for the walk, ``(S, n)`` each (``*_b``: hedged steps' second models)."""

    u_fail: np.ndarray
    alat: np.ndarray  # answer latency of the step's model (seconds), drawn by the caller
    q: np.ndarray | None = None  # pass probability given the request's outcome state (None: independent)
    u_fail_b: np.ndarray | None = None
    alat_b: np.ndarray | None = None
    q_b: np.ndarray | None = None
    u_batch: np.ndarray | None = None  # (n,) batch uniform per request (None: no step batches)
    # (S, K) int64: ``alat`` is a table of rows and step s of key k reads row alat_row[s, k] (None: row s)
    alat_row: np.ndarray | None = None


@dataclass(frozen=True)
class Settings:
    """Per-policy constants of the walk."""

    backoff: float
    human_cost: float
    human_latency: float
    bill_failed_input: bool
    deadline_billing: int  # 0 full, 1 input tokens only, 2 nothing
    n_models: int
    n_categories: int


DEADLINE_BILLING = {"full": 0, "input": 1, "none": 2}


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
    """Walk every request through the chains, vectorized per step (see module docstring).

    When ``key`` is sorted (one lane per category), so are the requests at each step, and a per-key parameter
    becomes a per-request array with one ``np.repeat`` over the step's key counts. ``mask`` and ``trace``: the
    time engine's per-request availability and what each model saw (module docstring).
    """
    n = key.size
    S, K = T.model.shape
    C = cfg.n_categories
    out = _empty(n, S, K, C, cfg.n_models, ws, trace=trace)
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
    kc = np.bincount(k, minlength=K)
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
            targets = np.stack([T.on_timeout[s], T.on_5xx[s], T.on_429[s], T.on_refusal[s]])
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
    acc = ~reject if live is None else live & ~reject
    here = np.flatnonzero(acc)
    outcome[index[here]] = code[here]
    answer_model[index[here]] = mdl[here]
    out.served_at[index[here]] = s
    settled = acc  # delivered here, or sent to human review from here
    rj = np.flatnonzero(reject)
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
        settled = acc.copy()
        settled[rj[dl | hr]] = True
        _route(rrows, target, outcome, at_step)
    out.served[s] += per_row.count(settled)


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
