"""A request-by-request reference for the time engine: the same draws and walk, its own state machines.

Each request is walked alone under the state its predecessors left, then its events update the state: the
definition the engine's windowed verification must reproduce exactly. Slow (a Python loop per request): tests only.
"""

from __future__ import annotations

import numpy as np

from routecalc.engine.timeline import _ChunkData, _ChunkOut, _Run
from routecalc.engine.timeline_state import call_tokens
from routecalc.engine.walk import ANSWERED


class ReferenceRun(_Run):
    """``run_timeline(..., runner=ReferenceRun)``: replaces the windowed verification by a loop over requests."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        fx = self.fx
        self.ref_open: list[tuple[int, float, float]] = []  # (model, from, until)
        self.ref_filled: list[tuple[int, int]] = []  # (model, minute)
        self.b_state = {}  # model -> [open_until, window, count]
        if fx.breaker is not None:
            self.b_state = {int(m): [-np.inf, -1, 0] for m in np.flatnonzero(fx.breaker.models)}
        self.l_state = {}  # model -> [minute, calls, tokens, full]
        if fx.limits is not None and not fx.limits.queue:
            lim = fx.limits
            self.l_state = {
                int(m): [-1, 0, 0.0, False] for m in np.flatnonzero(np.isfinite(lim.rpm) | np.isfinite(lim.tpm))
            }
        self.on, self.check, self.spent, self.base = False, 0, 0.0, 0.0

    def process(self, ch: _ChunkData, out: _ChunkOut) -> None:
        fx = self.fx
        for i in range(ch.t.size):
            t = float(ch.t[i])
            if fx.budget is not None:
                b = fx.budget
                while self.check < b.check_t.size and b.check_t[self.check] <= t:
                    k = self.check
                    if b.reset[k]:
                        self.base, self.on = self.spent, False
                    elif not self.on and self.spent - self.base > b.above * b.pace[k]:
                        self.on = True
                    elif self.on and self.spent - self.base < b.resume * b.pace[k]:
                        self.on = False
                    self.check += 1
            variant = self.v_load if ch.load is not None and ch.load[i] else 0
            if fx.budget is not None and self.on and fx.budget.categories[ch.cat[i]]:
                variant = self.v_budget
            model = self.T.model[:, ch.keys[variant, i]]
            brk = np.zeros(model.size, dtype=bool)
            lim = np.zeros(model.size, dtype=bool)
            minute = int(t // 60.0)
            for m, st in self.b_state.items():
                if st[0] > -np.inf and not fx.breaker.probe and t >= st[0]:  # type: ignore[union-attr]
                    st[:] = [-np.inf, int(st[0] // fx.breaker.window_s), 0]  # type: ignore[union-attr]
                brk |= (model == m) & (t < st[0])
            for m, st in self.l_state.items():
                if st[0] != minute:
                    st[:] = [minute, 0, 0.0, False]
                lim |= (model == m) & st[3]
            out.variant[i], out.model[:, i], out.brk[:, i], out.lim[:, i] = variant, model, brk, lim
            self._walk(ch, out, np.array([i]))
            self._update(i, t, out.model[:, i], out.trace[:, i].astype(np.int64), ch)
            self.spent += float(out.cost[i])

    def _update(self, i: int, t: float, model: np.ndarray, trace: np.ndarray, ch: _ChunkData) -> None:
        fx = self.fx
        for m in set(model[trace >= 0].tolist()):
            at = (model == m) & (trace >= 0)
            fails = int((trace[at] % ANSWERED).sum())
            answered = bool((trace[at] >= ANSWERED).any())
            st = self.b_state.get(m)
            if st is not None:
                b = fx.breaker
                assert b is not None
                if st[0] > -np.inf:  # the probe (the breaker was open, so this is after the cool-down)
                    if answered:
                        st[:] = [-np.inf, int(t // b.window_s), 0]
                    else:
                        st[0] = t + b.cooldown_s
                        self.ref_open.append((m, t, st[0]))
                else:
                    w = int(t // b.window_s)
                    if w != st[1]:
                        st[1], st[2] = w, 0
                    st[2] += fails
                    if fails > 0 and st[2] >= b.allowed_fails:
                        st[0] = t + b.cooldown_s
                        self.ref_open.append((m, t, st[0]))
            lt = self.l_state.get(m)
            if lt is not None:
                lim = fx.limits
                assert lim is not None
                lt[1] += fails + answered
                lt[2] += answered * float(call_tokens(ch.x[i], ch.y[i], self.problem.models.output_ratio[m]))
                if not lt[3] and (lt[1] >= lim.rpm[m] or lt[2] >= lim.tpm[m]):
                    lt[3] = True
                    self.ref_filled.append((m, lt[0]))
