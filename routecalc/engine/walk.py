"""The chain walk of the Monte Carlo engine: requests through one policy's chains, given their random numbers.

Everything random is drawn before the walk (:mod:`routecalc.engine.mc`): per request and chain step one uniform
``u`` (``u_fail``) for the provider's tries and then the answer and its gate, the answer's latency and,
where outcomes are not independent, its pass probability; per request its lane (``key = category x L + lane``).
The walk itself uses only ``+ - * /`` and comparisons, so its two implementations give the same bits:

* :func:`routecalc.engine.numpy_walk.walk_numpy` — vectorized numpy, one step at a time over the requests routed
  there (always available);
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
    def on_error(self) -> np.ndarray:
        """``(S, 4, K)``: where a step abandoned after each error type goes (timeout, 5xx, 429, refusal)."""
        return np.stack([self.on_timeout, self.on_5xx, self.on_429, self.on_refusal], axis=1)

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


def walked_arrays(
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
    key_counts: np.ndarray | None = None  # (K,) requests per key, if the caller knows them (else counted)


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
