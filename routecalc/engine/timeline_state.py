"""State that depends on outcomes, for the time engine: circuit breakers, rate limiters, budget pacing.

Each mechanism keeps a small state and, given a window of walked requests (in arrival order), works out
sequentially what that state implies for them — which requests find a breaker open, a model's minute full, the
budget over pace — from the events the walk recorded (per request and step: the model called, its failed tries,
whether it answered; the request's spend). The result is a *plan*: breaker openings ``(model, first row, until)``,
filled minutes ``(model, minute, first row)``, a budget verdict per request. The time engine
(:mod:`routecalc.engine.timeline`) compares the plan with what the walk assumed and accepts the requests up to the
first disagreement: those are exactly what a request-by-request simulation gives, because a plan only depends on
earlier requests. Events of requests the plan skips are ignored (they would not have happened); events the plan
adds (a request that would reach a model it skipped) show up when the engine walks the request again.

Every event of a request is stamped with its arrival time (its tries take seconds; the windows are a minute).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np

from routecalc.engine.walk import ANSWERED

MINUTE_S = 60.0


def call_tokens(x: np.ndarray, y: np.ndarray, ratio: float) -> np.ndarray:
    """Whole tokens an answered call counts against a tokens-per-minute limit: input + output, rounded (so
    running totals are exact, whatever the order of summation)."""
    return np.rint(x + y * ratio)


def run_starts(w: np.ndarray) -> np.ndarray:
    """Index of the first element of each element's run of equal values in ``w``."""
    new = np.empty(w.size, dtype=bool)
    new[:1] = True
    np.not_equal(w[1:], w[:-1], out=new[1:])
    return np.maximum.accumulate(np.where(new, np.arange(w.size), 0))


def run_cumsum(values: np.ndarray, w: np.ndarray, carry: float | int, carry_key: int) -> np.ndarray:
    """Cumulative sums of ``values`` within runs of equal ``w``; the run keyed ``carry_key`` starts at ``carry``."""
    cs = np.cumsum(values)
    starts = run_starts(w)
    return cs - (cs - values)[starts] + np.where(w == carry_key, carry, 0)


@dataclass
class Window:
    """Walked requests ``lo..hi-1`` of a chunk (chunk rows, arrival order), as the mechanisms see them."""

    lo: int
    t: np.ndarray  # (n,) arrival times (s)
    t_end: float  # arrival time of the first request after the window (the chunk's end if none)
    model: np.ndarray  # (S, n) catalog entry each step would call (-1: none)
    trace: np.ndarray  # (S, n) int8: -2 unavailable, -1 not called, else failed tries + 16 if answered
    cost: np.ndarray  # (n,) spend per request
    x: np.ndarray
    y: np.ndarray
    _events: dict[int, tuple[np.ndarray, np.ndarray, np.ndarray]] = field(default_factory=dict)
    _failed: np.ndarray | None = None
    _parent: Window | None = None
    _n: int = 0

    def prefix(self, n: int) -> Window:
        """The first ``n`` requests (``t_end``: the next one's arrival); shares what was worked out already."""
        t_end = float(self.t[n]) if n < self.t.size else self.t_end
        out = Window(self.lo, self.t[:n], t_end, self.model[:, :n], self.trace[:, :n], self.cost[:n], self.x[:n],
                     self.y[:n])  # fmt: skip
        out._parent, out._n = self, n
        return out

    def events(self, m: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Window rows that called model ``m``, their failed tries there and whether it answered."""
        ev = self._events.get(m)
        if ev is None:
            if self._parent is not None:
                rows, fails, answered = self._parent.events(m)
                k = int(np.searchsorted(rows, self._n, side="left"))
                ev = (rows[:k], fails[:k], answered[:k])
            else:  # whole-array operations (gathering columns of (S, n) arrays is slow)
                hit = (self.model == m) & (self.trace >= 0)
                tr = np.where(hit, self.trace, 0)
                rows = np.flatnonzero(hit.any(axis=0))
                ev = (rows, (tr & (ANSWERED - 1)).sum(axis=0)[rows], (tr >= ANSWERED).any(axis=0)[rows])
            self._events[m] = ev
        return ev

    def failing(self, models: list[int]) -> set[int]:
        """Which of ``models`` had at least one failed try in the window."""
        if self._failed is None:
            self._failed = (self.trace > 0) & (self.trace != ANSWERED)  # K > 0 failed tries, answered or not
        return {m for m in models if (self._failed & (self.model == m)).any()}


# ---------------------------------------------------------------------------------------------------------
# Circuit breaker


@dataclass(frozen=True)
class BreakerState:
    open_until: float = -np.inf  # > -inf: opened; skipped until then, then probing (or reset)
    window: int = -1  # clock window (floor(t / window_s)) whose failures ``count`` holds
    count: int = 0


def spans(rows: list[tuple[float, float, float, float]]) -> np.ndarray:
    """Spans as an array ``(k, 4)``: model, first chunk row skipped, until (s), from (s; -inf: carried in)."""
    return np.array(rows, dtype=float).reshape(-1, 4)


class Breaker:
    """One circuit breaker per listed model (:class:`routecalc.engine.timeline.BreakerSpec`).

    Closed: failed tries are counted per clock-aligned window of ``window_s``; the try that brings a window's
    count to ``allowed_fails`` opens the breaker for ``cooldown_s`` from its request's arrival (the rest of that
    request's chain is not affected). Open: the model is not called (the step goes to its ``on_429`` target, as a
    router's "no deployment available"). After the cool-down, ``probe``: the next request that reaches the model
    calls it; if the model answers the breaker closes with a fresh count, if not it opens again; ``reset``: it
    closes with a fresh count.
    """

    def __init__(self, models: np.ndarray, allowed_fails: int, window_s: float, cooldown_s: float, probe: bool):
        self.models = [int(m) for m in np.flatnonzero(models)]
        self.k, self.window_s, self.cooldown_s, self.probe = allowed_fails, window_s, cooldown_s, probe
        self.state = {m: BreakerState() for m in self.models}
        self.opened: list[np.ndarray] = []  # spans (model, row, until, from) of every opening

    def plan(self, win: Window) -> tuple[np.ndarray, dict[int, BreakerState]]:
        """Openings in force in the window (:func:`spans`; one from its start for a breaker still open) and the
        states after it."""
        failing = win.failing(self.models)
        plan: list[tuple[float, float, float, float]] = []
        states: dict[int, BreakerState] = {}
        for m in self.models:
            st = self.state[m]
            if m not in failing and st.open_until == -np.inf:
                continue  # closed, and nothing to count: a later window drops the old count anyway
            if st.open_until > -np.inf:
                plan.append((m, win.lo, st.open_until, -np.inf))
            states[m] = self._plan_one(m, st, win, plan)
        return spans(plan), states

    def commit(self, states: dict[int, BreakerState], opened: np.ndarray) -> None:
        self.state.update(states)
        self.opened.append(opened[opened[:, 3] > -np.inf])

    def _plan_one(self, m: int, st: BreakerState, win: Window, out: list) -> BreakerState:
        """Model ``m``'s openings in the window (appended to ``out`` as spans) and its state after it.

        One step per opening: the failed tries are counted per clock window once (``count``: in the window up to
        each event), and each closed stretch looks for its trip in its first window (whose count starts where
        the stretch does, plus the carried count) and then among the precomputed trips of later windows.
        """
        rows, fails, answered = win.events(m)
        t = win.t[rows]
        E = rows.size
        w = (t // self.window_s).astype(np.int64)
        count = run_cumsum(fails, w, 0, -1)
        trips = np.flatnonzero((count >= self.k) & (fails > 0))  # where a window's count reaches k from its start
        run_end = np.searchsorted(w, w, side="right")  # one past each event's window
        pos = 0
        while True:
            if st.open_until > -np.inf:
                k = max(int(np.searchsorted(t, st.open_until, side="left")), pos)  # earlier events would be skipped
                if not self.probe:
                    if win.t_end <= st.open_until and k == E:
                        return st  # still cooling down at the window's end
                    st, pos = BreakerState(window=int(st.open_until // self.window_s)), k
                    continue
                if k == E:
                    return st  # waiting for a probe
                if answered[k]:  # the probe answered: closed, fresh count
                    st, pos = BreakerState(window=int(w[k])), k + 1
                    continue
                st = BreakerState(open_until=float(t[k]) + self.cooldown_s)  # the probe failed: open again
                out.append((m, win.lo + int(rows[k]) + 1, st.open_until, float(t[k])))
                pos = k + 1
                continue
            if pos >= E:
                return st
            # closed from event pos: its window counts from pos (plus the carried count), later windows from 0
            first_end = int(run_end[pos])
            before = int(count[pos - 1]) if pos > 0 and w[pos - 1] == w[pos] else 0
            carry = st.count if w[pos] == st.window else 0
            seg = slice(pos, first_end)
            hit = np.flatnonzero((count[seg] - before + carry >= self.k) & (fails[seg] > 0))
            if hit.size:
                e = pos + int(hit[0])
            else:
                j = int(np.searchsorted(trips, first_end))
                if j == trips.size:  # no trip: the count of the last window
                    last = E - 1
                    n = int(count[last]) - (before - carry if w[last] == w[pos] else 0)
                    return BreakerState(window=int(w[last]), count=n)
                e = int(trips[j])
            st = BreakerState(open_until=float(t[e]) + self.cooldown_s)
            out.append((m, win.lo + int(rows[e]) + 1, st.open_until, float(t[e])))
            pos = e + 1


# ---------------------------------------------------------------------------------------------------------
# Rate limits


@dataclass(frozen=True)
class LimitState:
    minute: int = -1  # the clock minute the counts are for
    calls: int = 0
    tokens: float = 0.0
    full: bool = False  # the minute's limit is reached: later requests in it are not sent


class Limiter:
    """Requests and tokens per minute per model (clock minutes, as LiteLLM counts them), ``spill`` mode.

    A request is sent to a model while the minute's count of calls (tries, failed ones included) is below ``rpm``
    and its tokens (answered tries: input + output, whole tokens) below ``tpm``; the call that reaches a limit fills the minute,
    and later requests in that minute skip the model as a 429 the router saw before calling (to the step's
    ``on_429`` target). ``queue`` mode does not change routes: see :func:`queue_waits`.
    """

    def __init__(self, rpm: np.ndarray, tpm: np.ndarray, ratio: np.ndarray):
        self.models = [int(m) for m in np.flatnonzero(np.isfinite(rpm) | np.isfinite(tpm))]
        self.rpm, self.tpm, self.ratio = rpm, tpm, ratio
        self.state = {m: LimitState() for m in self.models}
        self.filled: list[np.ndarray] = []  # spans (model, row, minute's end, minute's start) of every fill

    def plan(self, win: Window) -> tuple[np.ndarray, dict[int, LimitState]]:
        """Filled minutes in the window (:func:`spans`: from the request after the one that filled the minute to
        the minute's end; one from the window's start for a minute still full) and the states after it."""
        plan: list[np.ndarray] = []
        states: dict[int, LimitState] = {}
        for m in self.models:
            st = self.state[m]
            if st.full:
                plan.append(spans([(m, win.lo, (st.minute + 1) * MINUTE_S, st.minute * MINUTE_S)]))
            rows, fails, answered = win.events(m)
            if rows.size == 0:
                states[m] = st
                continue
            t = win.t[rows]
            w = (t // MINUTE_S).astype(np.int64)
            calls = fails + answered
            tokens = answered * call_tokens(win.x[rows], win.y[rows], self.ratio[m])
            n_calls = run_cumsum(calls, w, st.calls, st.minute)
            n_tokens = run_cumsum(tokens, w, st.tokens, st.minute)
            reached = (n_calls >= self.rpm[m]) | (n_tokens >= self.tpm[m])
            if st.full:
                reached &= w != st.minute  # already full (those events are skipped in the plan)
            hit = np.flatnonzero(reached)
            if hit.size:  # the first event reaching the limit in each minute fills it
                first = hit[np.concatenate(([True], w[hit][1:] != w[hit][:-1]))]
                minute = w[first].astype(float) * MINUTE_S
                plan.append(
                    np.column_stack([np.full(first.size, m), win.lo + rows[first] + 1.0, minute + MINUTE_S, minute])
                )
            last = rows.size - 1
            full = (bool(hit.size) and w[hit[-1]] == w[last]) or (st.full and w[last] == st.minute)
            states[m] = LimitState(int(w[last]), int(n_calls[last]), float(n_tokens[last]), full=bool(full))
        return (np.concatenate(plan) if plan else spans([])), states

    def commit(self, states: dict[int, LimitState], filled: np.ndarray, lo: int) -> None:
        """Move on; record the fills found in a window starting at chunk row ``lo`` (not the one carried in)."""
        self.state.update(states)
        self.filled.append(filled[filled[:, 1] > lo])


@dataclass
class QueueState:
    """A model's backlog (calls and tokens not yet sent) at the end of clock minute ``minute``."""

    minute: int = -1
    calls: float = 0.0
    tokens: float = 0.0


def queue_waits(
    t: np.ndarray, calls: np.ndarray, tokens: np.ndarray, rpm: float, tpm: float, state: QueueState
) -> tuple[np.ndarray, QueueState]:
    """``queue`` mode: how long each call to a rate-limited model waits (seconds), first come first served.

    Calls (and tokens) are sent up to ``rpm`` (``tpm``) per clock minute; the rest wait for the next minute with
    room: with ``a_w`` arriving in minute ``w`` and capacity ``c``, the backlog at the end of the minute is
    ``B_w = max(0, B_{w-1} + a_w - c)`` (Lindley); a call that finds ``p`` ahead of it in its minute (the backlog
    plus earlier arrivals of the minute) is sent in minute ``w + floor(p / c)``, at its start. ``t`` sorted;
    returns the waits and the backlog after the last minute.
    """
    if t.size == 0:
        return np.zeros(0), state
    w = (t // MINUTE_S).astype(np.int64)
    lo, hi = int(w[0]), int(w[-1])
    waits = np.zeros(t.size)
    out = QueueState(hi)
    for amount, cap, attr in ((calls.astype(float), rpm, "calls"), (tokens.astype(float), tpm, "tokens")):
        if not np.isfinite(cap):
            continue
        arrived = np.bincount(w - lo, weights=amount, minlength=hi - lo + 1)
        carry = getattr(state, attr)
        if state.minute >= 0:  # drain the backlog over the quiet minutes before this batch
            carry = max(0.0, carry - cap * max(0, lo - 1 - state.minute))
        # Lindley: B_w = S_w - min(0, min_{v <= w} S_v), S_w = carry + cumsum(a - c)
        s = carry + np.cumsum(arrived - cap)
        backlog = s - np.minimum(0.0, np.minimum.accumulate(s))
        before = np.concatenate(([carry], backlog[:-1]))  # backlog at the start of each minute
        ahead = before[w - lo] + run_cumsum(amount, w, 0.0, -1) - amount
        sent = w + np.floor(ahead / cap).astype(np.int64)
        waits = np.maximum(waits, np.where(sent > w, sent * MINUTE_S - t, 0.0))
        setattr(out, attr, float(backlog[-1]))
    return waits, out


# ---------------------------------------------------------------------------------------------------------
# Budget pacing


@dataclass(frozen=True)
class BudgetState:
    on: bool = False  # downgraded
    check: int = 0  # index of the next check
    spent: float = 0.0  # spend of every accepted request so far
    base: float = 0.0  # ``spent`` at the start of the current budget period


class Pacer:
    """The budget rule (:class:`routecalc.engine.timeline.BudgetSpec`), checked at fixed times ``check_t``.

    At a check, the spend since the period started (requests that arrived before the check, each charged at its
    arrival) is compared with the pro-rated budget ``pace``: over ``above x pace`` the named categories downgrade,
    under ``resume x pace`` they return; a new period starts with the main routes. The verdict holds until the
    next check.
    """

    def __init__(self, check_t: np.ndarray, pace: np.ndarray, reset: np.ndarray, above: float, resume: float):
        self.check_t, self.pace, self.reset, self.above, self.resume = check_t, pace, reset, above, resume
        self.state = BudgetState()
        self.period_spend = np.full(check_t.size, np.nan)  # recorded at each check, for the charts
        self.verdict = np.zeros(check_t.size, dtype=bool)

    def plan(self, win: Window) -> tuple[np.ndarray, BudgetState, tuple]:
        """The verdict each request of the window arrives under, the state after the window (checks up to
        ``t_end`` decided) and what to record of those checks (indices, spend in the period, verdicts)."""
        st = self.state
        cum = np.concatenate(([0.0], np.cumsum(win.cost)))
        hi = int(np.searchsorted(self.check_t, win.t_end, side="right"))
        if hi <= st.check:
            return np.full(win.t.size, st.on), replace(st, spent=st.spent + float(cum[-1])), ()
        ks = np.arange(st.check, hi)
        before = np.searchsorted(win.t, self.check_t[ks], side="left")  # requests before each check
        s = st.spent + cum[before]
        reset = self.reset[ks]
        base = np.maximum(np.maximum.accumulate(np.where(reset, s, st.base)), st.base)
        spend = s - base
        up = ~reset & (spend > self.above * self.pace[ks])
        down = reset | (spend < self.resume * self.pace[ks])
        verdict = np.empty(ks.size, dtype=bool)
        on, i = st.on, 0
        while i < ks.size:  # one step per flip: the next check that flips the verdict
            flips = np.flatnonzero((down if on else up)[i:])
            j = ks.size if not flips.size else i + int(flips[0])
            verdict[i:j] = on
            if j < ks.size:
                on = not on
                verdict[j] = on
            i = j + 1
        # each request arrives under the verdict of the last check before it (or the state's)
        k = np.searchsorted(self.check_t[ks], win.t, side="right") - 1
        at = np.where(k >= 0, verdict[np.maximum(k, 0)], st.on)
        new = BudgetState(on=bool(verdict[-1]), check=hi, spent=st.spent + float(cum[-1]), base=float(base[-1]))
        return at, new, (ks, spend, verdict)

    def commit(self, new: BudgetState, record: tuple) -> None:
        """Move on, recording the checks decided (spend in the period and verdict)."""
        if record:
            ks, spend, verdict = record
            self.period_spend[ks] = spend
            self.verdict[ks] = verdict
        self.state = new
